/*
 * test_api_diff.c - the issue [4] endpoints on hand-built profiles:
 * /api/services, /api/diff, /api/top, /api/sandwich, /api/timeline, and
 * the a./b./base. parameters and version lists.
 *
 * Service "shop" has two versions stored through the store API:
 *   v1 at T0 (100 samples):   main>handle>parse 40, >render 20, >compute 30, >legacy 10
 *   v2 at T0+2h (280 samples): main>handle>parse 80, >render 120, >compute 80
 * v2 carries 2.8x the load, so raw counts all grow; only render's share
 * does (0.2 -> 0.43), and legacy vanished.  Service "rec" (recursion):
 *   main>handle>fib>fib>leaf 6, main>handle>fib 4, main>other 10.
 * The API is called directly (ember_api_handle); test_server.c covers HTTP.
 */
#include "testutil.h"
#include "apiutil.h"

#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "core/profile.h"
#include "server/api.h"
#include "store/store.h"

#define SEC 1000000000LL
#define T0 1700000000000000000LL /* ns; a 10 s bucket start, not an hour start */
#define T0_MS (T0 / 1000000)
#define HOUR_MS 3600000LL

static char tmpdir[64], db_path[128];
static struct ember_api *api;

/* ---- fixture ---- */

struct fstack {
	const char *frames[6]; /* root first, NULL-terminated */
	uint64_t count;
};

static void add_stacks(struct ember_profile *p, uint32_t target, const struct fstack *st,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t ids[6], depth = 0;
		while (depth < 6 && st[i].frames[depth])
			depth++;
		for (uint32_t d = 0; d < depth; d++) {
			struct ember_frame f = {.function = st[i].frames[d], .file = "shop.cc",
						.line = 10 + d, .module = "/srv/shop",
						.address = 0x1000 + 16 * (uint64_t)st[i].frames[d][0]};
			ids[depth - 1 - d] = ember_profile_frame(p, &f); /* leaf first */
		}
		assert_int_equal(ember_profile_add(p, target, ids, depth, st[i].count, 0), 0);
	}
}

static void ingest(struct ember_store *s, const char *service, const char *version, uint32_t pid,
		   const struct fstack *st, size_t n, int64_t t)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = ember_profile_new();
	struct ember_target tg = {.pid = pid, .comm = service, .exe = "/srv/shop",
				  .service = service, .version = version};

	assert_non_null(p);
	add_stacks(p, ember_profile_target(p, &tg), st, n);
	if (ember_store_ingest(s, p, t, err, sizeof(err)))
		fail_msg("ingest: %s", err);
	ember_profile_free(p);
}

static const struct fstack V1[] = {
	{{"main", "handle", "parse", NULL}, 40},
	{{"main", "handle", "render", NULL}, 20},
	{{"main", "handle", "compute", NULL}, 30},
	{{"main", "handle", "legacy", NULL}, 10},
};
static const struct fstack V2[] = {
	{{"main", "handle", "parse", NULL}, 80},
	{{"main", "handle", "render", NULL}, 120},
	{{"main", "handle", "compute", NULL}, 80},
};
static const struct fstack REC[] = {
	{{"main", "handle", "fib", "fib", "leaf", NULL}, 6},
	{{"main", "handle", "fib", NULL}, 4},
	{{"main", "other", NULL}, 10},
};

static int group_setup(void **state)
{
	struct ember_server_config cfg = {.db_path = db_path};
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *s;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ember-test-api-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/ember.db", tmpdir);
	if (ember_store_open(db_path, &s, err, sizeof(err))) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	ingest(s, "shop", "v1", 100, V1, 4, T0);
	ingest(s, "shop", "v2", 200, V2, 3, T0 + 7200 * SEC);
	ingest(s, "rec", "1", 300, REC, 3, T0 + 20 * SEC);
	ember_store_close(s);
	api = ember_api_new(&cfg);
	return api ? 0 : -1;
}

static int group_teardown(void **state)
{
	char path[256];

	ember_api_free(api);
	for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", NULL}; *sfx; sfx++) {
		snprintf(path, sizeof(path), "%s%s", db_path, *sfx);
		unlink(path);
	}
	rmdir(tmpdir);
	return 0;
}

/* ---- calling the API ---- */

/* GET path?query through the API; query is "k=v&k=v" (no escaping needed here). */
static unsigned get(const char *path, const char *query, struct ember_api_reply *r)
{
	test_api_get(api, path, query, r);
	assert_non_null(r->body);
	return r->status;
}

static char *get_ok(const char *path, const char *query)
{
	struct ember_api_reply r;

	if (get(path, query, &r) != 200)
		fail_msg("%s?%s: HTTP %u: %s", path, query ? query : "", r.status, r.body);
	return r.body;
}

static void expect_400(const char *path, const char *query, const char *param)
{
	struct ember_api_reply r;
	char needle[96];

	if (get(path, query, &r) != 400)
		fail_msg("%s?%s: HTTP %u, expected 400: %s", path, query, r.status, r.body);
	snprintf(needle, sizeof(needle), "{\"error\":\"%s", param);
	if (!strstr(r.body, needle))
		fail_msg("%s?%s: error does not start with %s: %s", path, query, param, r.body);
	free(r.body);
}

/* The number after "key": following the first occurrence of anchor, or NAN. */
static double num_after(const char *body, const char *anchor, const char *key)
{
	const char *a = strstr(body, anchor);
	char k[64];

	if (!a)
		return NAN;
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *v = strstr(a, k);
	return v ? strtod(v + strlen(k), NULL) : NAN;
}

/* Largest "delta" of any node other than the root, and its node's name. */
static double max_delta(const char *body, char *name, size_t size, double *max_abs)
{
	double best = -INFINITY;
	const char *p = strstr(body, "\"children\":"); /* skip the root */

	*max_abs = 0;
	while (p && (p = strstr(p, "{\"name\":\""))) {
		const char *start = p + 9, *end = strchr(start, '"');
		const char *d = strstr(start, "\"delta\":");
		double v = d ? strtod(d + 8, NULL) : NAN;
		if (!end || !d)
			break;
		if (fabs(v) > *max_abs)
			*max_abs = fabs(v);
		if (v > best) {
			best = v;
			snprintf(name, size, "%.*s", (int)(end - start), start);
		}
		p = end;
	}
	return best;
}

/* ---- tests ---- */

static void test_services(void **state)
{
	char *b = get_ok("/api/services", NULL);

	assert_non_null(strstr(b, "{\"services\":[{\"service\":\"rec\",\"samples\":20,"));
	assert_non_null(strstr(b, "{\"service\":\"shop\",\"samples\":380,"));
	/* newest version first, each with its own totals and times */
	const char *shop = strstr(b, "\"service\":\"shop\"");
	const char *v2 = strstr(shop, "{\"version\":\"v2\"");
	const char *v1 = strstr(shop, "{\"version\":\"v1\"");
	assert_non_null(v1);
	assert_non_null(v2);
	assert_true(v2 < v1);
	assert_int_equal((int64_t)num_after(v2, "", "samples"), 280);
	assert_int_equal((int64_t)num_after(v2, "", "targets"), 1);
	assert_int_equal((int64_t)num_after(v1, "", "samples"), 100);
	assert_int_equal((int64_t)num_after(v1, "", "first_seen"), T0_MS);
	assert_int_equal((int64_t)num_after(shop, "", "last_seen"), T0_MS + 2 * HOUR_MS);
	assert_non_null(strstr(b, "\"truncated\":false}"));
	free(b);
}

static void test_diff_versions(void **state)
{
	char *b = get_ok("/api/diff", "a.service=shop&a.version=v1&b.service=shop&b.version=v2");
	char name[64] = "";
	double max_abs;

	assert_non_null(strstr(b, "{\"a_total\":100,\"b_total\":280,"));
	assert_non_null(strstr(b, "\"root\":{\"name\":\"all\",\"a\":100,\"b\":280,"));
	/* the function whose share grew ranks first, with a positive change */
	double d = max_delta(b, name, sizeof(name), &max_abs);
	assert_string_equal(name, "render");
	assert_true(fabs(d - (120.0 / 280 - 0.2)) < 1e-4);
	/* normalized: handle ran 2.8x as often, but its share did not change */
	assert_true(fabs(num_after(b, "{\"name\":\"handle\"", "delta")) < 1e-9);
	assert_true(fabs(num_after(b, "{\"name\":\"parse\"", "delta") - (80.0 / 280 - 0.4)) < 1e-4);
	assert_true(fabs(num_after(b, "{\"name\":\"render\"", "delta_self") - (120.0 / 280 - 0.2)) <
		    1e-4);
	assert_int_equal((int)num_after(b, "{\"name\":\"render\"", "a"), 20);
	assert_int_equal((int)num_after(b, "{\"name\":\"render\"", "b"), 120);
	assert_non_null(strstr(b, "{\"name\":\"render\",\"file\":\"shop.cc\",\"line\":12,"));
	/* legacy is in the tree with b = 0, and listed as vanished */
	assert_int_equal((int)num_after(b, "{\"name\":\"legacy\"", "b"), 0);
	assert_non_null(strstr(b, "\"vanished\":[{\"name\":\"legacy\",\"a_total_share\":0.1,"
				  "\"a_self_share\":0.1}]"));
	/* siblings by the larger share: render (0.43) before parse (0.4) before compute */
	const char *r = strstr(b, "{\"name\":\"render\""), *p = strstr(b, "{\"name\":\"parse\"");
	assert_true(r && p && r < p && p < strstr(b, "{\"name\":\"compute\""));
	free(b);

	/* a version list: both versions on side B */
	b = get_ok("/api/diff", "a.version=v1&b.version=v1,v2&b.service=shop");
	assert_non_null(strstr(b, "{\"a_total\":100,\"b_total\":380,"));
	free(b);
}

static void test_diff_same(void **state)
{
	char name[64];
	double max_abs;
	char *b = get_ok("/api/diff", "a.version=v1&b.version=v1");

	assert_non_null(strstr(b, "{\"a_total\":100,\"b_total\":100,"));
	max_delta(b, name, sizeof(name), &max_abs);
	assert_true(max_abs == 0.0);
	assert_null(strstr(b, "\"delta_self\":-"));
	assert_non_null(strstr(b, "\"vanished\":[]"));
	free(b);

	/* a side without parameters selects everything; time ranges per side */
	char q[256];
	snprintf(q, sizeof(q), "a.from=%lld&a.to=%lld&b.service=shop",
		 (long long)(T0_MS - HOUR_MS), (long long)(T0_MS + 3 * HOUR_MS));
	b = get_ok("/api/diff", q);
	assert_non_null(strstr(b, "{\"a_total\":400,\"b_total\":380,"));
	free(b);
	snprintf(q, sizeof(q), "a.to=%lld&b.from=%lld", (long long)(T0_MS + HOUR_MS),
		 (long long)(T0_MS + HOUR_MS));
	b = get_ok("/api/diff", q);
	assert_non_null(strstr(b, "{\"a_total\":120,\"b_total\":280,"));
	free(b);
}

static void test_top(void **state)
{
	char *b = get_ok("/api/top", "service=rec");

	assert_non_null(strstr(b, "{\"total\":20,\"base_total\":null,"));
	/* by self: other 10, leaf 6, fib 4 */
	const char *other = strstr(b, "{\"name\":\"other\""), *leaf = strstr(b, "{\"name\":\"leaf\"");
	const char *fib = strstr(b, "{\"name\":\"fib\"");
	assert_true(other && leaf && fib && other < leaf && leaf < fib);
	/* a recursive function counts once per stack */
	assert_int_equal((int)num_after(fib, "", "total"), 10);
	assert_int_equal((int)num_after(fib, "", "self"), 4);
	assert_true(fabs(num_after(fib, "", "total_share") - 0.5) < 1e-9);
	assert_int_equal((int)num_after(b, "{\"name\":\"main\"", "total"), 20);
	assert_non_null(strstr(fib, "\"diff_self\":null"));
	free(b);

	b = get_ok("/api/top", "service=rec&sort=total&limit=2");
	assert_non_null(strstr(b, "\"functions\":[{\"name\":\"main\""));
	assert_non_null(strstr(b, "{\"name\":\"fib\"")); /* 10, ties broken by name */
	assert_null(strstr(b, "{\"name\":\"leaf\""));
	free(b);

	/* with a base: diff columns, sorted by diff_self */
	b = get_ok("/api/top", "version=v2&base.version=v1");
	assert_non_null(strstr(b, "{\"total\":280,\"base_total\":100,"));
	assert_non_null(strstr(b, "\"functions\":[{\"name\":\"render\""));
	assert_true(fabs(num_after(b, "{\"name\":\"render\"", "diff_self") - (120.0 / 280 - 0.2)) <
		    1e-4);
	assert_true(fabs(num_after(b, "{\"name\":\"render\"", "base_self_share") - 0.2) < 1e-9);
	assert_true(fabs(num_after(b, "{\"name\":\"legacy\"", "diff_total") + 0.1) < 1e-9);
	assert_int_equal((int)num_after(b, "{\"name\":\"legacy\"", "total"), 0);
	free(b);
}

static void test_sandwich(void **state)
{
	char *b = get_ok("/api/sandwich", "function=fib&service=rec");

	assert_non_null(strstr(b, "{\"function\":\"fib\",\"total\":10,\"self\":4,\"total_share\":0.5,"));
	/* callers: fib <- handle <- main */
	assert_non_null(strstr(b, "\"callers\":{\"name\":\"fib\",\"value\":10,\"self\":0,"
				  "\"children\":[{\"name\":\"handle\",\"value\":10,\"self\":0,"));
	const char *callers = strstr(b, "\"callers\":"), *callees = strstr(b, "\"callees\":");
	const char *m = strstr(callers, "{\"name\":\"main\",\"value\":10,\"self\":10,");
	assert_true(m && m < callees);
	/* callees: the outermost fib, the inner fib below it, leaf below that */
	assert_non_null(strstr(callees, "\"callees\":{\"name\":\"fib\",\"value\":10,\"self\":4,"
					"\"children\":[{\"name\":\"fib\",\"value\":6,\"self\":0,"));
	assert_non_null(strstr(callees, "{\"name\":\"leaf\",\"value\":6,\"self\":6,"));
	assert_null(strstr(b, "\"other\""));
	free(b);

	b = get_ok("/api/sandwich", "function=no_such_function");
	assert_non_null(strstr(b, "\"total\":0,\"self\":0,"));
	assert_non_null(strstr(b, "\"callers\":{\"name\":\"no_such_function\",\"value\":0,"));
	free(b);
}

static void test_timeline(void **state)
{
	char q[256];
	char *b;

	snprintf(q, sizeof(q), "service=shop&from=%lld&to=%lld&step=3600",
		 (long long)(T0_MS - HOUR_MS), (long long)(T0_MS + 3 * HOUR_MS));
	b = get_ok("/api/timeline", q);
	int64_t hour0 = T0_MS / HOUR_MS * HOUR_MS;
	char want[256];
	snprintf(want, sizeof(want), "{\"step_ms\":3600000,\"from\":%lld,\"to\":%lld,"
		 "\"points\":[[%lld,100],[%lld,280]]}", (long long)(hour0 - HOUR_MS),
		 (long long)(T0_MS + 3 * HOUR_MS), (long long)hour0, (long long)(hour0 + 2 * HOUR_MS));
	assert_string_equal(b, want);
	free(b);

	/* 10 s steps without a range: the span of the data, one point per bucket */
	b = get_ok("/api/timeline", "version=v1,1");
	snprintf(want, sizeof(want), "{\"step_ms\":10000,\"from\":%lld,\"to\":%lld,"
		 "\"points\":[[%lld,100],[%lld,20]]}", (long long)T0_MS, (long long)(T0_MS + 30000),
		 (long long)T0_MS, (long long)(T0_MS + 20000));
	assert_string_equal(b, want);
	free(b);

	/* a long range with a tiny step: the step is raised to at most ~2000 points */
	snprintf(q, sizeof(q), "from=1&to=%lld&step=1", (long long)(T0_MS + HOUR_MS));
	b = get_ok("/api/timeline", q);
	int64_t step = (int64_t)num_after(b, "", "step_ms");
	assert_true(step >= (T0_MS + HOUR_MS) / 2001);
	assert_int_equal(step % 10000, 0);
	free(b);

	b = get_ok("/api/timeline", "service=nobody");
	assert_non_null(strstr(b, "\"points\":[]}"));
	free(b);
}

static void test_version_list_selects(void **state)
{
	char *b = get_ok("/api/flamegraph", "version=v1,v2");

	assert_non_null(strstr(b, "{\"total\":380,"));
	free(b);
	b = get_ok("/api/flamegraph", "version=v2,,nothing,");
	assert_non_null(strstr(b, "{\"total\":280,"));
	free(b);
}

static void test_bad_params(void **state)
{
	char q[1024];
	size_t len = 0;

	expect_400("/api/diff", "a.from=yesterday", "a.from");
	expect_400("/api/diff", "b.pid=0", "b.pid");
	expect_400("/api/diff", "a.from=5&a.to=1", "a.from");
	expect_400("/api/diff", "a.version=1&a.version=2", "a.version");
	expect_400("/api/diff", "c.version=1", "unknown parameter 'c.version'");
	expect_400("/api/diff", "version=1", "unknown parameter 'version'");
	expect_400("/api/diff", "min_share=2", "min_share");
	expect_400("/api/diff", "min_share=abc", "min_share");
	expect_400("/api/top", "limit=0", "limit");
	expect_400("/api/top", "limit=100000", "limit");
	expect_400("/api/top", "sort=name", "sort");
	expect_400("/api/top", "sort=diff", "sort");
	expect_400("/api/top", "base.target=x", "base.target");
	expect_400("/api/top", "a.version=1", "unknown parameter 'a.version'");
	expect_400("/api/sandwich", "service=shop", "function");
	expect_400("/api/sandwich", "function=f&function=g", "function");
	expect_400("/api/timeline", "step=0", "step");
	expect_400("/api/timeline", "step=1h", "step");
	expect_400("/api/timeline", "to=0", "to");
	expect_400("/api/services", "x=1", "unknown parameter 'x'");
	len += (size_t)snprintf(q, sizeof(q), "version=");
	for (int i = 0; i < EMBER_API_MAX_VERSIONS + 1; i++)
		len += (size_t)snprintf(q + len, sizeof(q) - len, "%sv%d", i ? "," : "", i);
	expect_400("/api/flamegraph", q, "version");
}

static void test_parse_selection(void **state)
{
	struct ember_api_param params[] = {{"a.version", "1.0,2.0"}, {"b.service", "api"},
					   {"a.from", "1000"}, {"min_share", "0.5"}};
	struct ember_api_query q;
	char err[256];

	assert_int_equal(ember_api_parse_selection(params, 4, "a.", &q, err, sizeof(err)), 0);
	assert_true(q.given);
	assert_int_equal(q.sel.n_versions, 2);
	assert_string_equal(q.sel.versions[0], "1.0");
	assert_string_equal(q.sel.versions[1], "2.0");
	assert_null(q.sel.service);
	assert_int_equal(q.sel.from_ns, 1000 * 1000000LL);
	assert_int_equal(ember_api_parse_selection(params, 4, "b.", &q, err, sizeof(err)), 0);
	assert_string_equal(q.sel.service, "api");
	assert_int_equal(q.sel.n_versions, 0);
	assert_int_equal(ember_api_parse_selection(params, 4, "base.", &q, err, sizeof(err)), 0);
	assert_false(q.given);
	/* the plain parser rejects prefixed names */
	assert_int_equal(ember_api_parse_query(params, 4, &q, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a.version"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_diff_versions),
		cmocka_unit_test(test_diff_same),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_sandwich),
		cmocka_unit_test(test_timeline),
		cmocka_unit_test(test_version_list_selects),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_parse_selection),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
