/*
 * test_spans_store.c - spans from the aggregator to the store, the API and /metrics.
 *
 * Spans are fed to an offline ember_spans (no BPF): flushed into a
 * temporary database they must come back from the RED query and the slow
 * list with the counts, errors, statuses, quantiles and text put in; a
 * second flush into the same buckets adds up (histograms merged by SQL);
 * endpoints past a service's cap count as "other"; ranges over a day read
 * the hourly roll-up; the store's retention deletes span rows by age and
 * keeps the targets and endpoints they still use.  /api/spans and
 * /api/spans/slow answer and validate their parameters; the Prometheus
 * text is well formed (promtool check metrics when the prometheus package
 * is installed) and its numbers match.
 */
#include "testutil.h"
#include "apiutil.h"

#include <errno.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "server/api.h"
#include "server/spans_metrics.h"
#include "spans/spans.h"
#include "spans/tracker.h"
#include "store/store.h"
#include "store/store_spans.h"

#define MS 1000000LL
#define BUCKET 10000000000LL

static char dir[64], db[128];
static int64_t base_ns; /* a bucket start an hour ago, wall clock */
static int64_t mono_offset;

static int64_t wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool name_pid(uint32_t pid, const char *comm, struct ember_target *out, void *arg)
{
	(void)arg;
	memset(out, 0, sizeof(*out));
	out->pid = pid;
	out->comm = comm;
	out->service = pid < 200 ? "shop" : "db";
	out->version = "1.0";
	return true;
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(test_mkdtemp(dir, sizeof(dir), "/tmp", "spans"), 0);
	snprintf(db, sizeof(db), "%s/e.db", dir);
	int64_t now = wall_now();
	base_ns = (now - 3600000000000LL) / BUCKET * BUCKET;
	mono_offset = now - ember_monotonic_ns();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return test_rmtree(dir);
}

static bool add_tls; /* the spans add() makes are read at the TLS library */

/* A span starting at wall time t (ns), lasting dur_ns. */
static void add(struct ember_spans *sp, uint32_t pid, uint8_t proto, uint8_t role,
		const char *endpoint, uint16_t status, bool error, int64_t t, int64_t dur_ns,
		const char *text)
{
	struct ember_span s = {.pid = pid, .tid = pid + 1, .proto = proto, .role = role,
			       .error = error, .tls = add_tls, .status = status, .text = text,
			       .peer = role == EMBER_ROLE_CLIENT ? "10.0.0.9:3306" : "10.0.0.2",
			       .comm = "svc", .req_bytes = 100, .resp_bytes = 1000};
	s.endpoint = ember_spans_intern_endpoint(sp, proto, endpoint);
	/* the aggregator's clock is the kernel's: monotonic */
	s.start_ns = t - mono_offset;
	s.end_ns = s.start_ns + dur_ns;
	ember_spans_add(sp, &s);
}

static struct ember_spans *offline(unsigned max_endpoints)
{
	struct ember_spans *sp;
	struct ember_spans_opts o = {.slow_ns = 500 * MS, .max_endpoints = max_endpoints,
				     .name = name_pid};
	assert_int_equal(ember_spans_open_offline(&o, &sp), 0);
	return sp;
}

static void flush(struct ember_spans *sp, struct ember_store *st)
{
	char err[EMBER_STORE_ERRLEN];
	int rc = ember_spans_flush(sp, st, err, sizeof(err));
	if (rc)
		fail_msg("%s", err);
}

static const struct ember_span_group *group(const struct ember_span_red *r, const char *endpoint,
					    const char *role)
{
	for (size_t i = 0; i < r->n_groups; i++)
		if (strcmp(r->groups[i].endpoint, endpoint) == 0 && strcmp(r->groups[i].role, role) == 0)
			return &r->groups[i];
	return NULL;
}

static uint64_t status_count(const struct ember_span_group *g, const char *status)
{
	for (size_t i = 0; i < g->n_statuses; i++)
		if (strcmp(g->statuses[i].status, status) == 0)
			return g->statuses[i].count;
	return 0;
}

static void test_flush_and_query(void **state)
{
	struct ember_store *st;
	char err[EMBER_STORE_ERRLEN];
	struct ember_span_red red;
	struct ember_selection sel = {.from_ns = base_ns - BUCKET, .to_ns = base_ns + 600 * 1000000000LL};
	struct ember_span_filter f = {0};

	(void)state;
	assert_int_equal(ember_store_open(db, &st, err, sizeof(err)), 0);
	struct ember_spans *sp = offline(3);
	/* 100 GET /orders/{id} spread over 60 s: 1..100 ms, five of them 500s */
	for (int i = 0; i < 100; i++) {
		add_tls = i % 4 == 0; /* a quarter over TLS, in the same rows as the rest */
		add(sp, 100, EMBER_PROTO_HTTP, EMBER_ROLE_SERVER, "GET /orders/{id}", i < 5 ? 500 : 200,
		    i < 5, base_ns + i * 600 * MS, (i + 1) * MS, "GET /orders/1");
	}
	/* client calls to a database over TLS, one of them slow */
	add_tls = true;
	for (int i = 0; i < 50; i++)
		add(sp, 100, EMBER_PROTO_MYSQL, EMBER_ROLE_CLIENT, "SELECT * FROM t WHERE id=?", 0, false,
		    base_ns + i * MS, i == 7 ? 700 * MS : 2 * MS, "SELECT * FROM t WHERE id=7");
	add_tls = false;
	flush(sp, st);
	/* the same bucket again: counts add up */
	for (int i = 0; i < 50; i++)
		add(sp, 100, EMBER_PROTO_MYSQL, EMBER_ROLE_CLIENT, "SELECT * FROM t WHERE id=?", 0, true,
		    base_ns + 5000 * MS + i * MS, 4 * MS, NULL);
	/* five more endpoints for shop/http: past the cap of 3, counted as other */
	for (int k = 0; k < 5; k++) {
		char ep[32];
		snprintf(ep, sizeof(ep), "GET /extra%d", k);
		add(sp, 100, EMBER_PROTO_HTTP, EMBER_ROLE_SERVER, ep, 200, false, base_ns, MS, NULL);
	}
	flush(sp, st);

	assert_int_equal(ember_store_spans_red(st, &sel, &f, 0, &red, err, sizeof(err)), 0);
	assert_false(red.hourly);
	const struct ember_span_group *g = group(&red, "GET /orders/{id}", "server");
	assert_non_null(g);
	assert_string_equal(g->service, "shop");
	assert_string_equal(g->protocol, "http");
	assert_int_equal(g->count, 100);
	assert_int_equal(g->tls, 25);
	assert_int_equal(g->errors, 5);
	assert_int_equal(status_count(g, "200"), 95);
	assert_int_equal(status_count(g, "500"), 5);
	assert_int_equal(g->dur_max_ns, 100 * MS);
	double p50_us = ember_hist_quantile(&g->hist, 0.5);
	assert_true(p50_us >= 44000 && p50_us <= 56000);
	uint64_t series = 0;
	for (size_t i = 0; i < red.n_steps; i++)
		series += g->series[i];
	assert_int_equal(series, 100);
	assert_int_equal(g->req_bytes, 100 * 100);
	g = group(&red, "SELECT * FROM t WHERE id=?", "client");
	assert_non_null(g);
	assert_int_equal(g->count, 100);
	assert_int_equal(g->tls, 50); /* the second 50 were plain */
	assert_int_equal(g->errors, 50);
	assert_int_equal(status_count(g, "ok"), 50);
	assert_int_equal(status_count(g, "error"), 50);
	assert_int_equal(g->hist.count, 100);
	/* the cap: GET /orders/{id} and two extras, the rest "other" */
	int extras = 0;
	for (size_t i = 0; i < red.n_groups; i++)
		extras += strncmp(red.groups[i].endpoint, "GET /extra", 10) == 0;
	assert_int_equal(extras, 2);
	g = group(&red, "other", "server");
	assert_non_null(g);
	assert_int_equal(g->count, 3);
	assert_int_equal(g->tls, 0);
	ember_span_red_free(&red);

	/* filters */
	f.protocol = "mysql";
	assert_int_equal(ember_store_spans_red(st, &sel, &f, 0, &red, err, sizeof(err)), 0);
	assert_int_equal(red.n_groups, 1);
	ember_span_red_free(&red);
	f = (struct ember_span_filter){.role = "server", .by_peer = true};
	assert_int_equal(ember_store_spans_red(st, &sel, &f, 0, &red, err, sizeof(err)), 0);
	assert_string_equal(red.groups[0].peer, "10.0.0.2");
	ember_span_red_free(&red);

	/* over a day: the hourly roll-up, same totals */
	struct ember_selection day = {.from_ns = base_ns - 2 * 86400000000000LL, .to_ns = base_ns + 3600000000000LL};
	f = (struct ember_span_filter){0};
	assert_int_equal(ember_store_spans_red(st, &day, &f, 0, &red, err, sizeof(err)), 0);
	assert_true(red.hourly);
	g = group(&red, "GET /orders/{id}", "server");
	assert_non_null(g);
	assert_int_equal(g->count, 100);
	assert_int_equal(g->tls, 25);
	ember_span_red_free(&red);

	ember_spans_stop(sp);
	ember_store_close(st);
}

static int slow_row(const struct ember_slow_span_row *row, void *arg)
{
	int *n = arg;
	if ((*n)++ == 0) {
		assert_int_equal(row->duration_ns, 700 * MS);
		assert_string_equal(row->endpoint, "SELECT * FROM t WHERE id=?");
		assert_string_equal(row->text, "SELECT * FROM t WHERE id=7");
		assert_string_equal(row->service, "shop");
		assert_string_equal(row->role, "client");
		assert_int_equal(row->pid, 100);
		assert_int_equal(row->tid, 101);
		assert_true(row->tls);
	}
	return 0;
}

/* Run the store's retention (store_retention.c) to its end at now_ns. */
static void retain(struct ember_store *s, int64_t full_res_ns, int64_t keep_ns, int64_t now_ns)
{
	struct ember_retention_options o = {.full_res_ns = full_res_ns, .retention_ns = keep_ns};
	char err[EMBER_STORE_ERRLEN];
	int rc;

	assert_int_equal(ember_store_retention_setup(s, &o, err, sizeof(err)), 0);
	for (int i = 0; i < 10000 && (rc = ember_store_retention_step(s, now_ns, err, sizeof(err))) > 0;
	     i++)
		;
	if (rc)
		fail_msg("retention: %s", err);
}

static int rows(const char *table)
{
	char sql[128];
	sqlite3 *h;
	sqlite3_stmt *st;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* The span tables are registered with the store's retention: by age, and their references. */
static void test_slow_and_retention(void **state)
{
	struct ember_store *st;
	char err[EMBER_STORE_ERRLEN];
	struct ember_selection sel = {0};
	struct ember_selection recent = {.from_ns = base_ns - BUCKET, .to_ns = base_ns + 600 * 1000000000LL};
	struct ember_span_filter f = {0};
	struct ember_span_red red;
	int64_t hour = 3600000000000LL;
	int n = 0;

	(void)state;
	assert_int_equal(ember_store_open(db, &st, err, sizeof(err)), 0);
	assert_int_equal(ember_store_spans_slow(st, &sel, &f, 10, slow_row, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	/* everything is an hour old: two hours of everything keep it all */
	retain(st, 2 * hour, 2 * hour, wall_now());
	assert_true(rows("spans") > 0);
	int hourly = rows("spans_1h"), endpoints = rows("span_endpoints");
	assert_true(hourly > 0 && endpoints > 0);
	/* two hours later, 1 ns of 10 s buckets and 10 hours of roll-ups: the
	 * 10 s rows go; the RED table now reads the roll-up, whose targets and
	 * endpoints were kept by the collection of unreferenced rows */
	retain(st, 1, 10 * hour, wall_now() + 2 * hour);
	assert_int_equal(rows("spans"), 0);
	assert_int_equal(rows("spans_1h"), hourly);
	assert_int_equal(rows("span_endpoints"), endpoints);
	assert_int_equal(ember_store_spans_red(st, &recent, &f, 0, &red, err, sizeof(err)), 0);
	assert_true(red.hourly);
	const struct ember_span_group *g = group(&red, "GET /orders/{id}", "server");
	assert_non_null(g);
	assert_int_equal(g->count, 100);
	ember_span_red_free(&red);
	n = 0;
	assert_int_equal(ember_store_spans_slow(st, &sel, &f, 10, slow_row, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	/* eight hours later with 1 ns of everything: nothing stays, endpoints
	 * and targets included */
	retain(st, 1, 1, wall_now() + 8 * hour);
	n = 0;
	assert_int_equal(ember_store_spans_slow(st, &sel, &f, 10, slow_row, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(ember_store_spans_red(st, &sel, &f, 0, &red, err, sizeof(err)), 0);
	assert_int_equal(red.n_groups, 0);
	ember_span_red_free(&red);
	ember_store_close(st);
	assert_int_equal(rows("spans_1h"), 0);
	assert_int_equal(rows("slow_spans"), 0);
	assert_int_equal(rows("span_endpoints"), 0);
	assert_int_equal(rows("targets"), 0);
	unlink(db);
}

/* ---- the API ---- */

static void test_api(void **state)
{
	struct ember_store *st;
	char err[EMBER_STORE_ERRLEN], q[256];
	struct ember_api_reply r;

	(void)state;
	assert_int_equal(ember_store_open(db, &st, err, sizeof(err)), 0);
	struct ember_spans *sp = offline(0);
	for (int i = 0; i < 10; i++)
		add(sp, 300, EMBER_PROTO_REDIS, EMBER_ROLE_SERVER, "GET", 0, i == 0, base_ns + i * MS,
		    MS, NULL);
	add(sp, 300, EMBER_PROTO_REDIS, EMBER_ROLE_SERVER, "KEYS", 0, false, base_ns, 900 * MS, "KEYS *");
	flush(sp, st);
	ember_store_close(st);

	struct ember_server_config cfg = {.db_path = db};
	struct ember_api *api = ember_api_new(&cfg);
	snprintf(q, sizeof(q), "service=db&from=%lld&to=%lld&protocol=redis", (long long)(base_ns / MS - 10000),
		 (long long)(base_ns / MS + 60000));
	test_api_get(api, "/api/spans", q, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"endpoint\":\"GET\""));
	assert_non_null(strstr(r.body, "\"count\":10,\"errors\":1,"));
	assert_non_null(strstr(r.body, "\"tls\":0,")); /* plain requests: none over TLS */
	assert_non_null(strstr(r.body, "\"statuses\":{\"error\":1,\"ok\":9}") ||
			strstr(r.body, "\"statuses\":{\"ok\":9,\"error\":1}"));
	assert_non_null(strstr(r.body, "\"series\":["));
	free(r.body);
	test_api_get(api, "/api/spans/slow", "service=db", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"text\":\"KEYS *\""));
	assert_non_null(strstr(r.body, "\"tls\":false,"));
	assert_non_null(strstr(r.body, "\"duration_ms\":900.0000"));
	free(r.body);
	test_api_get(api, "/api/spans", "endpoint=KEYS&protocol=redis", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"endpoint\":\"KEYS\""));
	assert_null(strstr(r.body, "\"endpoint\":\"GET\""));
	free(r.body);
	static const char *const bad[][2] = {
		{"/api/spans", "protocol=ftp"},   {"/api/spans", "role=both"},
		{"/api/spans", "by=service"},     {"/api/spans", "step=0"},
		{"/api/spans", "nonsense=1"},     {"/api/spans", "from=10&to=5"},
		{"/api/spans/slow", "limit=0"},   {"/api/spans/slow", "limit=1001"},
		{"/api/spans/slow", "step=10"},   {"/api/spans", "protocol=http&protocol=redis"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_api_get(api, bad[i][0], bad[i][1], &r);
		if (r.status != 400)
			fail_msg("%s?%s: %u %s", bad[i][0], bad[i][1], r.status, r.body);
		free(r.body);
	}
	test_api_get(api, "/api/spans/nope", "", &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	ember_api_free(api);

	/* /metrics: the series flushed, in the text format */
	struct strbuf sb;
	sb_init(&sb);
	ember_spans_metrics_write(&sb, sp);
	assert_false(sb.oom);
	assert_non_null(strstr(sb.buf, "# TYPE ember_requests_total counter\n"));
	assert_non_null(strstr(sb.buf, "ember_requests_total{service=\"db\",protocol=\"redis\",role=\"server\",endpoint=\"GET\",status=\"ok\"} 9\n"));
	assert_non_null(strstr(sb.buf, "ember_requests_total{service=\"db\",protocol=\"redis\",role=\"server\",endpoint=\"GET\",status=\"error\"} 1\n"));
	assert_non_null(strstr(sb.buf, "ember_request_duration_seconds_bucket{service=\"db\",protocol=\"redis\",role=\"server\",endpoint=\"KEYS\",status=\"ok\",le=\"0.5\"} 0\n"));
	assert_non_null(strstr(sb.buf, "ember_request_duration_seconds_bucket{service=\"db\",protocol=\"redis\",role=\"server\",endpoint=\"KEYS\",status=\"ok\",le=\"1\"} 1\n"));
	assert_non_null(strstr(sb.buf, "ember_request_duration_seconds_sum{service=\"db\",protocol=\"redis\",role=\"server\",endpoint=\"KEYS\",status=\"ok\"} 0.9\n"));
	/* label values are escaped */
	add(sp, 300, EMBER_PROTO_HTTP, EMBER_ROLE_SERVER, "GET /a\"b\\c", 200, false, base_ns, MS, NULL);
	flush(sp, NULL);
	sb_reset(&sb);
	ember_spans_metrics_write(&sb, sp);
	assert_non_null(strstr(sb.buf, "endpoint=\"GET /a\\\"b\\\\c\""));
	if (access("/usr/bin/promtool", X_OK) == 0) {
		char path[160], cmd[256];
		snprintf(path, sizeof(path), "%s/metrics.txt", dir);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fwrite(sb.buf, 1, sb.len, f);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
		assert_int_equal(system(cmd), 0);
	} else {
		printf("promtool not installed (Debian package prometheus): text format checked here only\n");
	}
	sb_free(&sb);
	ember_spans_stop(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_and_query),
		cmocka_unit_test(test_slow_and_retention),
		cmocka_unit_test(test_api),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
