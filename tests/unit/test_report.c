/*
 * test_report.c - the daily report's method, rendering and cron entry.
 *
 * Synthetic days are written through the store's own API: each day is a
 * multinomial draw of samples over a few stack shapes, spread over the
 * day's hours, ingested as one profile.  Times are UTC (TZ is set) so the
 * days are fixed.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/profile.h"
#include "core/strbuf.h"
#include "report/report.h"
#include "report/report_cron.h"
#include "report/report_stats.h"
#include "server/reports_api.h"
#include "store/store.h"

#define HOUR_NS (3600LL * 1000000000LL)

struct shape {
	const char *stack; /* root first, ';' separated */
	double weight;
};

struct env {
	char dir[64];
	char db[128];
	struct ember_store *store;
};

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static void add_shape(struct ember_profile *p, uint32_t target, const char *stack, uint64_t count,
		      int64_t t)
{
	char buf[256], *names[32], *save = NULL;
	uint32_t frames[32];
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", stack);
	for (char *tok = strtok_r(buf, ";", &save); tok && n < 32; tok = strtok_r(NULL, ";", &save))
		names[n++] = tok;
	for (int i = 0; i < n; i++) { /* leaf first */
		const char *name = names[n - 1 - i];
		struct ember_frame f = {.function = name, .file = "svc.cpp", .module = "/usr/bin/svc",
					.address = 0x1000 + ember_hash64(name, strlen(name), 0) % 0x10000};
		frames[i] = ember_profile_frame(p, &f);
		assert_int_not_equal(frames[i], UINT32_MAX);
	}
	assert_int_equal(ember_profile_add(p, target, frames, (uint32_t)n, count, t), 0);
}

/* The profile type ingest() writes: off-CPU "samples" become 10 ms each. */
static enum ember_profile_type ingest_type = EMBER_PROFILE_CPU;

/*
 * Ingest `samples` samples drawn from shapes over hours [h0, h1) of the day
 * starting at day_ns, for service/version.
 */
static void ingest(struct env *e, const char *service, const char *version, int64_t day_ns,
		   int h0, int h1, const struct shape *shapes, size_t n, uint64_t samples,
		   uint64_t seed)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 100, .comm = service, .exe = "/usr/bin/svc",
				 .service = service, .version = version};
	uint64_t *counts = calloc(n, sizeof(*counts));
	double sum = 0;
	char err[EMBER_STORE_ERRLEN];
	uint32_t tid;

	assert_non_null(p);
	assert_non_null(counts);
	p->type = ingest_type;
	uint64_t unit = ingest_type == EMBER_PROFILE_OFFCPU ? EMBER_REPORT_OFFCPU_UNIT_NS : 1;
	tid = ember_profile_target(p, &t);
	for (size_t i = 0; i < n; i++)
		sum += shapes[i].weight;
	for (int h = h0; h < h1; h++) {
		memset(counts, 0, n * sizeof(*counts));
		for (uint64_t k = 0; k < samples / (uint64_t)(h1 - h0); k++) {
			double u = rng_unit(&seed) * sum, acc = 0;
			size_t i = 0;
			for (; i + 1 < n; i++) {
				acc += shapes[i].weight;
				if (u < acc)
					break;
			}
			counts[i]++;
		}
		for (size_t i = 0; i < n; i++)
			if (counts[i])
				add_shape(p, tid, shapes[i].stack, counts[i] * unit,
					  day_ns + h * HOUR_NS + 60LL * 1000000000LL);
	}
	assert_int_equal(ember_store_ingest(e->store, p, day_ns, err, sizeof(err)), 0);
	ember_profile_free(p);
	free(counts);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[EMBER_STORE_ERRLEN];

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/ember-test-report-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->db, sizeof(e->db), "%s/ember.db", e->dir);
	assert_int_equal(ember_store_open(e->db, &e->store, err, sizeof(err)), 0);
	*state = e;
	return 0;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) && errno == EISDIR)
			remove_tree(path);
	}
	closedir(d);
	rmdir(dir);
}

static int teardown(void **state)
{
	struct env *e = *state;

	ember_store_close(e->store);
	remove_tree(e->dir);
	free(e);
	return 0;
}

static int64_t day(const char *s)
{
	int64_t from, to;

	assert_int_equal(ember_report_parse_day(s, &from, &to), 0);
	return from;
}

static struct ember_report *report_day(struct env *e, const char *d, enum ember_baseline b,
				       const char *service)
{
	struct ember_report_options o = {.baseline = b, .service = service};
	struct ember_report *r = NULL;
	char err[512] = "";

	ember_report_default_thresholds(&o.th);
	assert_int_equal(ember_report_parse_day(d, &o.from_ns, &o.to_ns), 0);
	int ret = ember_report_build(e->store, &o, &r, err, sizeof(err));
	if (ret)
		fail_msg("report: %s", err);
	assert_non_null(r);
	return r;
}

static const struct ember_report_service *service(const struct ember_report *r, const char *name)
{
	for (size_t i = 0; i < r->n_services; i++)
		if (!strcmp(r->services[i].service, name))
			return &r->services[i];
	fail_msg("service %s not in the report", name);
	return NULL;
}

static const struct shape base_day[] = {
	{"main;handle;parse", 0.30},
	{"main;handle;compute", 0.40},
	{"main;handle;render", 0.10},
	{"main;idle", 0.20},
};

/* render's share 0.10 -> 0.20 in version 2.0 (half of the day): 0.15 over the day */
static const struct shape v2_day[] = {
	{"main;handle;parse", 0.30 * 0.8 / 0.9},
	{"main;handle;compute", 0.40 * 0.8 / 0.9},
	{"main;handle;render", 0.20},
	{"main;idle", 0.20 * 0.8 / 0.9},
};

static void test_regression_found(void **state)
{
	struct env *e = *state;
	struct ember_report *r;
	const struct ember_report_service *svc;
	const struct ember_report_finding *f;
	struct strbuf sb;

	ingest(e, "shop", "1.0", day("2024-05-01"), 0, 24, base_day, 4, 24000, 1);
	ingest(e, "shop", "1.0", day("2024-05-02"), 0, 12, base_day, 4, 12000, 2);
	ingest(e, "shop", "2.0", day("2024-05-02"), 12, 24, v2_day, 4, 12000, 3);

	r = report_day(e, "2024-05-02", EMBER_BASELINE_PREVIOUS_DAY, NULL);
	assert_int_equal(r->n_services, 1);
	svc = service(r, "shop");
	assert_int_equal(svc->status, EMBER_SERVICE_OK);
	assert_int_equal(svc->samples, 24000);
	assert_int_equal(svc->base_samples, 24000);
	assert_int_equal(svc->n_versions, 2);
	assert_int_equal(svc->n_base_versions, 1);
	print_message("findings %zu, suppressed %zu (diluted %zu, moved %zu), tests %zu\n",
		      svc->n_findings, svc->n_suppressed, svc->suppressed_by[EMBER_SUPPRESS_DILUTED],
		      svc->suppressed_by[EMBER_SUPPRESS_MOVED], svc->tests);
	assert_int_equal(ember_report_count(svc, EMBER_FINDING_REGRESSION), 1);
	assert_int_equal(svc->n_findings, 1);
	f = &svc->findings[0];
	print_message("render: self %.4f -> %.4f, delta %.4f, rel %.2f, z %.1f, q %.2g, "
		      "via %s, version %s -> %s (%.3f)\n",
		      f->base.self_share, f->cur.self_share, f->delta, f->relative, f->z, f->q,
		      f->via, f->version_base, f->version_cur, f->version_share);
	assert_string_equal(f->function, "render");
	assert_int_equal(f->kind, EMBER_FINDING_REGRESSION);
	assert_int_equal(f->metric, EMBER_METRIC_SELF);
	assert_true(fabs(f->base.self_share - 0.10) < 0.01);
	assert_true(fabs(f->cur.self_share - 0.15) < 0.01);
	assert_true(fabs(f->delta - 0.05) < 0.01);
	assert_true(fabs(f->relative - 0.5) < 0.15);
	assert_true(f->q < 0.01);
	assert_true(f->z > 5);
	assert_int_equal(f->base.self, f->base.total); /* a leaf: self = total */
	assert_string_equal(f->via, "handle");
	assert_string_equal(f->version_base, "1.0");
	assert_string_equal(f->version_cur, "2.0");
	assert_true(fabs(f->version_share - 0.20) < 0.02);
	/* the others' shares only shrank because render grew */
	assert_int_equal(ember_report_count(svc, EMBER_FINDING_IMPROVEMENT), 0);

	/* renderings: numbers, links to the diff view, nothing external */
	sb_init(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_HTML, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "<code>render</code>"));
	char nums[64];
	snprintf(nums, sizeof(nums), "%.2f%% \u2192 %.2f%%", f->base.self_share * 100,
		 f->cur.self_share * 100);
	assert_non_null(strstr(sb.buf, nums)); /* self share before -> after */
	snprintf(nums, sizeof(nums), "%+.2f pt", f->delta * 100);
	assert_non_null(strstr(sb.buf, nums));
	assert_non_null(strstr(sb.buf, "href=\"http://127.0.0.1:7070/#s=shop&amp;cmp=range&amp;from="));
	assert_non_null(strstr(sb.buf, "q=%5Erender%24&amp;by=self"));
	assert_null(strstr(sb.buf, "<script"));
	assert_null(strstr(sb.buf, "stylesheet"));
	assert_non_null(strstr(sb.buf, "<link rel=\"icon\" href=\"data:,\">")); /* no favicon fetch */
	int links = 0;
	for (const char *l = strstr(sb.buf, "<link"); l; l = strstr(l + 1, "<link"))
		links++;
	assert_int_equal(links, 1);
	assert_null(strstr(sb.buf, "src="));
	sb_reset(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_JSON, "/", &sb), 0);
	assert_non_null(strstr(sb.buf, "\"regressions\":[{\"rank\":1,\"function\":\"render\""));
	assert_non_null(strstr(sb.buf, "\"link\":\"/#s=shop&cmp=range&from=1714608000000&to="
				       "1714694400000&afrom=1714521600000&ato=1714608000000&q="));
	sb_reset(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_MD, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "| 1 | `render`"));
	sb_free(&sb);
	ember_report_free(r);
}

/* off-CPU: waiting in the futex 0.4 -> 0.6 of the time */
static const struct shape waits_before[] = {
	{"main;worker;lock;futex_wait", 0.4},
	{"main;worker;sleep;nanosleep", 0.4},
	{"main;poll;epoll_wait", 0.2},
};
static const struct shape waits_after[] = {
	{"main;worker;lock;futex_wait", 0.6},
	{"main;worker;sleep;nanosleep", 0.25},
	{"main;poll;epoll_wait", 0.15},
};

/*
 * Profile types: a service with CPU and off-CPU profiles gets one entry per
 * type; the off-CPU regression is found in its own entry while the CPU one
 * holds still; a CPU-only service gets no off-CPU entry unless off-CPU is
 * asked for alone; --type keeps one type.
 */
static void test_profile_types(void **state)
{
	struct env *e = *state;
	struct ember_report_options o = {.baseline = EMBER_BASELINE_PREVIOUS_DAY};
	struct ember_report *r = NULL;
	char err[512] = "";
	struct strbuf sb;

	ingest(e, "shop", "1", day("2024-05-01"), 0, 24, base_day, 4, 24000, 1);
	ingest(e, "shop", "1", day("2024-05-02"), 0, 24, base_day, 4, 24000, 2);
	ingest(e, "cpuonly", "1", day("2024-05-01"), 0, 24, base_day, 4, 24000, 3);
	ingest(e, "cpuonly", "1", day("2024-05-02"), 0, 24, base_day, 4, 24000, 4);
	ingest_type = EMBER_PROFILE_OFFCPU;
	ingest(e, "shop", "1", day("2024-05-01"), 0, 24, waits_before, 3, 20000, 5);
	ingest(e, "shop", "1", day("2024-05-02"), 0, 24, waits_after, 3, 20000, 6);
	ingest_type = EMBER_PROFILE_CPU;

	ember_report_default_thresholds(&o.th);
	assert_int_equal(ember_report_parse_day("2024-05-02", &o.from_ns, &o.to_ns), 0);
	if (ember_report_build(e->store, &o, &r, err, sizeof(err)))
		fail_msg("report: %s", err);
	/* cpuonly (cpu), shop (cpu), shop (offcpu) */
	assert_int_equal(r->n_services, 3);
	assert_string_equal(r->services[0].service, "cpuonly");
	assert_int_equal(r->services[0].type, EMBER_PROFILE_CPU);
	const struct ember_report_service *cpu = &r->services[1], *off = &r->services[2];
	assert_string_equal(cpu->service, "shop");
	assert_int_equal(cpu->type, EMBER_PROFILE_CPU);
	assert_int_equal(cpu->status, EMBER_SERVICE_OK);
	assert_int_equal(ember_report_count(cpu, EMBER_FINDING_REGRESSION), 0);
	assert_string_equal(off->service, "shop");
	assert_int_equal(off->type, EMBER_PROFILE_OFFCPU);
	assert_int_equal(off->status, EMBER_SERVICE_OK);
	/* 20000 samples of 10 ms per day, counted back as 20000 */
	assert_true(off->samples >= 19900 && off->samples <= 20000);
	assert_true(ember_report_count(off, EMBER_FINDING_REGRESSION) >= 1);
	const struct ember_report_finding *f = &off->findings[0];
	assert_int_equal(f->kind, EMBER_FINDING_REGRESSION);
	assert_true(strcmp(f->function, "futex_wait") == 0 || strcmp(f->function, "lock") == 0);
	assert_true(fabs(f->delta - 0.2) < 0.02);
	sb_init(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_JSON, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "\"service\":\"shop\",\"status\":\"ok\",\"type\":\"offcpu\""));
	assert_non_null(strstr(sb.buf, "#s=shop&t=offcpu&cmp=range"));
	sb_free(&sb);
	sb_init(&sb);
	ember_report_summary(r, &sb);
	assert_non_null(strstr(sb.buf, "in 2 services")); /* shop counted once */
	sb_free(&sb);
	ember_report_free(r);

	/* one type at a time */
	o.types = 1u << EMBER_PROFILE_CPU;
	assert_int_equal(ember_report_build(e->store, &o, &r, err, sizeof(err)), 0);
	assert_int_equal(r->n_services, 2);
	for (size_t i = 0; i < r->n_services; i++)
		assert_int_equal(r->services[i].type, EMBER_PROFILE_CPU);
	ember_report_free(r);
	o.types = 1u << EMBER_PROFILE_OFFCPU;
	assert_int_equal(ember_report_build(e->store, &o, &r, err, sizeof(err)), 0);
	assert_int_equal(r->n_services, 2); /* asked for alone: cpuonly is listed, without data */
	assert_int_equal(r->services[0].type, EMBER_PROFILE_OFFCPU);
	assert_int_equal(r->services[0].status, EMBER_SERVICE_TOO_FEW_SAMPLES);
	assert_int_equal(r->services[0].samples, 0);
	assert_int_equal(r->services[1].status, EMBER_SERVICE_OK);
	ember_report_free(r);
}

static const struct shape aa_day[] = {
	{"main;loop;a", 0.22}, {"main;loop;b", 0.15}, {"main;loop;b;memcpy", 0.05},
	{"main;loop;c", 0.10}, {"main;loop;c;d", 0.08}, {"main;loop;c;d;e", 0.04},
	{"main;io;read", 0.06}, {"main;io;write", 0.05}, {"main;io;poll", 0.03},
	{"main;gc;mark", 0.07}, {"main;gc;sweep", 0.04}, {"main;f", 0.02},
	{"main;g", 0.015}, {"main;h", 0.01}, {"main;loop;rare", 0.005},
	{"main;loop;b;malloc", 0.04},
};

static void test_aa_no_findings(void **state)
{
	struct env *e = *state;
	size_t n = sizeof(aa_day) / sizeof(aa_day[0]);
	char svcname[16];

	for (uint64_t seed = 1; seed <= 6; seed++) {
		snprintf(svcname, sizeof(svcname), "aa%u", (unsigned)seed);
		ingest(e, svcname, "1", day("2024-06-01"), 0, 24, aa_day, n, 30000, seed * 1000);
		ingest(e, svcname, "1", day("2024-06-02"), 0, 24, aa_day, n, 30000, seed * 1000 + 7);
	}
	struct ember_report *r = report_day(e, "2024-06-02", EMBER_BASELINE_PREVIOUS_DAY, NULL);
	assert_int_equal(r->n_services, 6);
	for (size_t i = 0; i < r->n_services; i++) {
		const struct ember_report_service *svc = &r->services[i];
		print_message("%s: %zu findings, %zu tests, %zu significant under thresholds\n",
			      svc->service, svc->n_findings, svc->tests, svc->small);
		assert_int_equal(svc->status, EMBER_SERVICE_OK);
		assert_true(svc->tests > 20);
		assert_int_equal(svc->n_findings, 0);
	}
	ember_report_free(r);
}

static void test_moved_cost_suppressed(void **state)
{
	struct env *e = *state;
	static const struct shape before[] = {
		{"main;work", 0.30}, {"main;work;helper", 0.10}, {"main;other", 0.60}};
	static const struct shape after[] = {
		{"main;work", 0.10}, {"main;work;helper", 0.30}, {"main;other", 0.60}};

	ingest(e, "mover", "1", day("2024-07-01"), 0, 24, before, 3, 20000, 11);
	ingest(e, "mover", "1", day("2024-07-02"), 0, 24, after, 3, 20000, 12);
	struct ember_report *r = report_day(e, "2024-07-02", EMBER_BASELINE_PREVIOUS_DAY, "mover");
	const struct ember_report_service *svc = service(r, "mover");

	for (size_t i = 0; i < svc->n_suppressed; i++)
		print_message("suppressed %s (%s, %+.3f, %s)\n", svc->suppressed[i].function,
			      ember_suppress_reason_name(svc->suppressed[i].reason),
			      svc->suppressed[i].delta,
			      svc->suppressed[i].other ? svc->suppressed[i].other : "-");
	for (size_t i = 0; i < svc->n_findings; i++)
		print_message("finding %s %+.3f\n", svc->findings[i].function, svc->findings[i].delta);
	assert_int_equal(svc->status, EMBER_SERVICE_OK);
	assert_int_equal(svc->n_findings, 0);
	assert_int_equal(svc->suppressed_by[EMBER_SUPPRESS_MOVED], 2);
	assert_int_equal(svc->suppressed_by[EMBER_SUPPRESS_DILUTED], 0);
	assert_int_equal(svc->n_suppressed, 2);

	struct strbuf sb;
	sb_init(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_JSON, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "\"suppressed\":{\"total\":2,\"diluted\":0,\"moved\":2"));
	sb_free(&sb);
	ember_report_free(r);
}

static void test_too_few_samples(void **state)
{
	struct env *e = *state;
	struct strbuf sb;

	ingest(e, "big", "1", day("2024-08-01"), 0, 24, base_day, 4, 24000, 21);
	ingest(e, "big", "1", day("2024-08-02"), 0, 24, base_day, 4, 24000, 22);
	ingest(e, "tiny", "1", day("2024-08-01"), 0, 24, base_day, 4, 240, 23);
	ingest(e, "tiny", "1", day("2024-08-02"), 0, 24, v2_day, 4, 240, 24);
	struct ember_report *r = report_day(e, "2024-08-02", EMBER_BASELINE_PREVIOUS_DAY, NULL);
	assert_int_equal(r->n_services, 2);
	const struct ember_report_service *tiny = service(r, "tiny");
	assert_int_equal(tiny->status, EMBER_SERVICE_TOO_FEW_SAMPLES);
	assert_int_equal(tiny->samples, 240);
	assert_int_equal(tiny->n_findings, 0);
	assert_non_null(tiny->note);
	assert_non_null(strstr(tiny->note, "Too little data"));
	assert_int_equal(service(r, "big")->status, EMBER_SERVICE_OK);
	sb_init(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_HTML, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "Too little data to compare: 240 samples"));
	sb_reset(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_JSON, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "\"service\":\"tiny\",\"status\":\"too_few_samples\""));
	sb_free(&sb);
	ember_report_free(r);

	/* a service asked for by name that has no data at all */
	r = report_day(e, "2024-08-02", EMBER_BASELINE_PREVIOUS_DAY, "nosuch");
	assert_int_equal(r->n_services, 1);
	assert_int_equal(r->services[0].status, EMBER_SERVICE_TOO_FEW_SAMPLES);
	assert_int_equal(r->services[0].samples, 0);
	ember_report_free(r);
}

static void test_previous_version(void **state)
{
	struct env *e = *state;

	ingest(e, "api", "1.0", day("2024-09-01"), 0, 24, base_day, 4, 24000, 31);
	ingest(e, "api", "1.1", day("2024-09-03"), 0, 24, v2_day, 4, 24000, 32);
	struct ember_report *r = report_day(e, "2024-09-03", EMBER_BASELINE_PREVIOUS_VERSION, NULL);
	const struct ember_report_service *svc = service(r, "api");
	assert_int_equal(svc->status, EMBER_SERVICE_OK);
	assert_string_equal(svc->version_cur, "1.1");
	assert_string_equal(svc->version_base, "1.0");
	assert_int_equal(svc->base_samples, 24000);
	for (size_t i = 0; i < svc->n_suppressed; i++)
		print_message("suppressed %s (%s, %+.3f)\n", svc->suppressed[i].function,
			      ember_suppress_reason_name(svc->suppressed[i].reason),
			      svc->suppressed[i].delta);
	assert_int_equal(svc->n_findings, 1);
	assert_string_equal(svc->findings[0].function, "render");
	assert_string_equal(svc->findings[0].version_cur, "1.1");
	/* parse, compute and idle shrank by 11% only because render grew */
	assert_int_equal(svc->suppressed_by[EMBER_SUPPRESS_DILUTED], 3);
	assert_true(fabs(svc->findings[0].delta - 0.10) < 0.015);
	ember_report_free(r);

	/* a service with one version has no previous one */
	ingest(e, "solo", "1", day("2024-09-03"), 0, 24, base_day, 4, 2400, 33);
	r = report_day(e, "2024-09-03", EMBER_BASELINE_PREVIOUS_VERSION, "solo");
	assert_int_equal(r->services[0].status, EMBER_SERVICE_NO_BASELINE);
	ember_report_free(r);
}

/*
 * Issue [13] #8: "Not compared" gives a single-version service its real
 * sample count (the number ingested), and names the small services (a
 * shell command) in one line instead of a row each.
 */
static void test_not_compared(void **state)
{
	struct env *e = *state;
	struct strbuf sb;

	ingest(e, "api", "1.0", day("2024-09-01"), 0, 24, base_day, 4, 24000, 41);
	ingest(e, "api", "1.1", day("2024-09-03"), 0, 24, v2_day, 4, 24000, 42);
	ingest(e, "solo", "1", day("2024-09-03"), 0, 24, base_day, 4, 2400, 43);
	ingest(e, "ls", "1", day("2024-09-03"), 0, 24, base_day, 4, 24, 44);
	struct ember_report *r = report_day(e, "2024-09-03", EMBER_BASELINE_PREVIOUS_VERSION, NULL);
	assert_int_equal(r->n_services, 3);
	const struct ember_report_service *solo = service(r, "solo"), *ls = service(r, "ls");
	assert_int_equal(solo->status, EMBER_SERVICE_NO_BASELINE);
	assert_int_equal(solo->samples, 2400);
	assert_false(solo->small_share);
	assert_int_equal(ls->status, EMBER_SERVICE_NO_BASELINE);
	assert_int_equal(ls->samples, 24);
	assert_true(ls->small_share); /* 24 of 50424 */
	assert_false(service(r, "api")->small_share);

	sb_init(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_HTML, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "Not compared (2)"));
	assert_non_null(strstr(sb.buf, "<code>solo</code></td><td class=\"num\">2400</td>"));
	assert_null(strstr(sb.buf, "<code>ls</code>"));
	assert_non_null(strstr(sb.buf, "1 small service (under 0.5% of the samples each, 24 "
					"samples together) not listed: ls."));
	sb_reset(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_MD, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "| `solo` | 2400 | 0 |"));
	assert_null(strstr(sb.buf, "| `ls` |"));
	assert_non_null(strstr(sb.buf, "not listed: ls."));
	sb_reset(&sb);
	assert_int_equal(ember_report_render(r, EMBER_REPORT_JSON, NULL, &sb), 0);
	assert_non_null(strstr(sb.buf, "\"samples\":24,\"base_samples\":0,\"small\":true"));
	assert_non_null(strstr(sb.buf, "\"samples\":2400,\"base_samples\":0,\"small\":false"));
	sb_free(&sb);
	ember_report_free(r);
}

static void test_statistics(void **state)
{
	const double p[] = {0.01, 0.04, 0.03, 0.005};
	double q[4];

	/* 100/1000 vs 150/1000: z ~ 3.38 */
	double z = rs_z_two_proportions(100, 1000, 150, 1000);
	assert_true(fabs(z - 3.38) < 0.02);
	assert_true(fabs(rs_p_two_sided(1.959964) - 0.05) < 1e-4);
	assert_true(rs_z_two_proportions(0, 1000, 0, 1000) == 0);
	/* Benjamini-Hochberg: sorted .005 .01 .03 .04 -> .02 .02 .04 .04 */
	assert_int_equal(rs_adjust(p, q, 4, EMBER_CORRECTION_BH), 0);
	assert_true(fabs(q[3] - 0.02) < 1e-12 && fabs(q[0] - 0.02) < 1e-12);
	assert_true(fabs(q[2] - 0.04) < 1e-12 && fabs(q[1] - 0.04) < 1e-12);
	/* Holm: .005*4=.02, .01*3=.03, .03*2=.06, .04*1 -> max so far .06 */
	assert_int_equal(rs_adjust(p, q, 4, EMBER_CORRECTION_HOLM), 0);
	assert_true(fabs(q[3] - 0.02) < 1e-12 && fabs(q[0] - 0.03) < 1e-12);
	assert_true(fabs(q[2] - 0.06) < 1e-12 && fabs(q[1] - 0.06) < 1e-12);
}

static void test_times(void **state)
{
	int64_t t, from, to;

	assert_int_equal(ember_report_parse_day("2024-02-29", &from, &to), 0);
	assert_int_equal(to - from, 24 * HOUR_NS);
	assert_int_equal(from, 1709164800LL * 1000000000LL);
	assert_int_equal(ember_report_parse_day("2023-02-29", &from, &to), -EINVAL);
	assert_int_equal(ember_report_parse_day("2024-1-01", &from, &to), -EINVAL);
	assert_int_equal(ember_report_parse_day("2024-01-01x", &from, &to), -EINVAL);
	assert_int_equal(ember_report_parse_time("2024-02-29T10:30", 0, &t), 0);
	assert_int_equal(t, (1709164800LL + 10 * 3600 + 1800) * 1000000000LL);
	assert_int_equal(ember_report_parse_time("2024-02-29 10:30:05", 0, &t), 0);
	assert_int_equal(t, (1709164800LL + 10 * 3600 + 1805) * 1000000000LL);
	assert_int_equal(ember_report_parse_time("@1700000000", 0, &t), 0);
	assert_int_equal(t, 1700000000LL * 1000000000LL);
	assert_int_equal(ember_report_parse_time("-2h", 10 * HOUR_NS, &t), 0);
	assert_int_equal(t, 8 * HOUR_NS);
	assert_int_equal(ember_report_parse_time("now", 5, &t), 0);
	assert_int_equal(t, 5);
	assert_int_equal(ember_report_parse_time("-2x", 0, &t), -EINVAL);
	assert_int_equal(ember_report_parse_time("-h", 0, &t), -EINVAL);
	assert_int_equal(ember_report_parse_time("@", 0, &t), -EINVAL);
	assert_int_equal(ember_report_parse_time("2024-02-29T25:00", 0, &t), -EINVAL);
	assert_int_equal(ember_report_parse_time("", 0, &t), -EINVAL);
	assert_int_equal(ember_report_day_shift(from, -1), from - 24 * HOUR_NS);
	assert_int_equal(ember_report_day_start(from + 5 * HOUR_NS), from);
}

/* The job lines of a cron file: not comments, not variable settings. */
static int cron_jobs(const char *path, char *job, size_t size)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t word = strcspn(line, " \t\n");
		if (line[0] == '#' || line[0] == '\n' || memchr(line, '=', word))
			continue; /* comment, blank line, VAR=value */
		n++;
		snprintf(job, size, "%s", line);
	}
	fclose(f);
	return n;
}

static void test_cron_install(void **state)
{
	struct env *e = *state;
	char crondir[128], out[128], path[256], job[4096], err[512] = "";
	struct ember_cron_options o = {.ember_path = "/usr/local/bin/ember",
				       .db_path = "/var/lib/ember/ember.db", .keep = 14,
				       .hour = 6, .minute = 30};
	bool changed, removed;
	struct stat st;

	snprintf(crondir, sizeof(crondir), "%s/cron.d", e->dir);
	snprintf(out, sizeof(out), "%s/reports dir", e->dir);
	assert_int_equal(mkdir(crondir, 0755), 0);
	o.output_dir = out;
	setenv("EMBER_CRON_DIR", crondir, 1);
	assert_int_equal(ember_cron_install(&o, path, sizeof(path), &changed, err, sizeof(err)), 0);
	assert_true(changed);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640); /* root's cron reads it; others need not */
	assert_int_equal(stat(out, &st), 0); /* the output directory was made, not world-readable */
	assert_int_equal(st.st_mode & 0007, 0);
	assert_int_equal(cron_jobs(path, job, sizeof(job)), 1);
	print_message("%s", job);
	/* m h dom mon dow user command */
	int m, h;
	char user[32], cmd[4096];
	assert_int_equal(sscanf(job, "%d %d * * * %31s %4095[^\n]", &m, &h, user, cmd), 4);
	assert_int_equal(m, 30);
	assert_int_equal(h, 6);
	assert_string_equal(user, "root");
	assert_non_null(strstr(cmd, "'/usr/local/bin/ember' report --db '/var/lib/ember/ember.db'"));
	assert_non_null(strstr(cmd, "--output-dir '"));
	assert_non_null(strstr(cmd, "/reports dir' --keep 14"));

	/* twice: unchanged, still one entry */
	assert_int_equal(ember_cron_install(&o, path, sizeof(path), &changed, err, sizeof(err)), 0);
	assert_false(changed);
	assert_int_equal(cron_jobs(path, job, sizeof(job)), 1);
	/* another time replaces the entry */
	o.hour = 7;
	assert_int_equal(ember_cron_install(&o, path, sizeof(path), &changed, err, sizeof(err)), 0);
	assert_true(changed);
	assert_int_equal(cron_jobs(path, job, sizeof(job)), 1);
	assert_int_equal(strncmp(job, "30 7 * * * root ", 16), 0);
	/* nothing else left in the directory (no temporary file) */
	DIR *d = opendir(crondir);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d)))
		files += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	assert_int_equal(files, 1);

	/* unusable values are refused with a message */
	o.db_path = "relative.db";
	assert_int_equal(ember_cron_install(&o, path, sizeof(path), &changed, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "relative.db"));
	o.db_path = "/tmp/a\nb";
	assert_int_equal(ember_cron_install(&o, path, sizeof(path), &changed, err, sizeof(err)),
			 -EINVAL);

	assert_int_equal(ember_cron_uninstall(NULL, path, sizeof(path), &removed, err, sizeof(err)), 0);
	assert_true(removed);
	assert_int_not_equal(stat(path, &st), 0);
	assert_int_equal(ember_cron_uninstall(NULL, path, sizeof(path), &removed, err, sizeof(err)), 0);
	assert_false(removed);
	unsetenv("EMBER_CRON_DIR");

	int hh, mm;
	assert_int_equal(ember_cron_parse_at("06:05", &hh, &mm), 0);
	assert_int_equal(hh * 60 + mm, 365);
	assert_int_equal(ember_cron_parse_at("24:00", &hh, &mm), -EINVAL);
	assert_int_equal(ember_cron_parse_at("6:05", &hh, &mm), -EINVAL);
}

static void test_prune(void **state)
{
	struct env *e = *state;
	char dir[128], path[256], err[256];
	unsigned deleted;
	const char *files[] = {"ember-report-2024-05-01.html", "ember-report-2024-05-02.html",
			       "ember-report-2024-05-02.json", "ember-report-2024-05-03.html",
			       "ember-report-2024-05-04.html", "ember-report-2024-05-04.json",
			       "notes.txt", "ember-report-x.tmp"};
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/out", e->dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	assert_int_equal(ember_report_prune(dir, 2, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 3);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		bool keep = i >= 3;
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		assert_int_equal(stat(path, &st) == 0, keep);
	}
	char name[64];
	ember_report_file_name(day("2024-05-01"), "html", name, sizeof(name));
	assert_string_equal(name, "ember-report-2024-05-01.html");
}

static int count_row(const struct ember_report_row *row, void *arg)
{
	struct ember_report_row *rows = arg;

	for (int i = 0; i < 3; i++) {
		if (rows[i].id)
			continue;
		rows[i].id = row->id;
		rows[i].from_ns = row->from_ns;
		rows[i].regressions = row->regressions;
		rows[i].service = row->service ? "set" : NULL;
		assert_string_equal(row->baseline, "previous-day");
		assert_non_null(strstr(row->summary, "regression"));
		return 0;
	}
	return 1;
}

static void test_saved_reports(void **state)
{
	struct env *e = *state;
	struct ember_report_row row = {.created_ns = 5, .from_ns = day("2024-05-01"),
				       .to_ns = day("2024-05-02"), .baseline = "previous-day",
				       .summary = "1 regression", .regressions = 1};
	struct ember_report_row rows[3] = {{0}};
	char err[EMBER_STORE_ERRLEN], *body;
	int64_t id1 = 0, id2 = 0;
	size_t len;

	assert_int_equal(ember_store_save_report(e->store, &row, "<p>one</p>", "{\"n\":1}", &id1,
						 err, sizeof(err)), 0);
	row.from_ns = day("2024-05-02");
	row.service = "shop";
	row.regressions = 0;
	row.summary = "0 regressions";
	assert_int_equal(ember_store_save_report(e->store, &row, "<p>two</p>", "{\"n\":2}", &id2,
						 err, sizeof(err)), 0);
	assert_true(id2 > id1 && id1 > 0);
	assert_int_equal(ember_store_list_reports(e->store, 10, count_row, rows, err, sizeof(err)), 0);
	assert_int_equal(rows[0].id, id2); /* newest first */
	assert_non_null(rows[0].service);
	assert_int_equal(rows[1].id, id1);
	assert_null(rows[1].service);
	assert_int_equal(rows[1].regressions, 1);
	assert_int_equal(rows[2].id, 0);
	assert_int_equal(ember_store_get_report(e->store, id1, "html", &body, &len, err, sizeof(err)), 0);
	assert_string_equal(body, "<p>one</p>");
	assert_int_equal(len, 10);
	free(body);
	assert_int_equal(ember_store_get_report(e->store, id2, "json", &body, &len, err, sizeof(err)), 0);
	assert_string_equal(body, "{\"n\":2}");
	free(body);
	assert_int_equal(ember_store_get_report(e->store, id2 + 7, "html", &body, &len, err,
						sizeof(err)), -ENOENT);
	assert_null(body);
	assert_int_equal(ember_store_get_report(e->store, id2, "pdf", &body, &len, err, sizeof(err)),
			 -EINVAL);
}

static void test_reports_api(void **state)
{
	struct env *e = *state;
	struct ember_report_row row = {.created_ns = 5000000, .from_ns = 86400000000000LL,
				       .to_ns = 2 * 86400000000000LL, .baseline = "previous-day",
				       .summary = "1 regression <b>", .regressions = 1};
	const char *html = "<!doctype html><head><style>body{x:y}</style></head><a href=\"/#s=a\">";
	struct ember_api_param p[2] = {{"limit", "5"}, {"format", "json"}};
	struct ember_api_reply r;
	char err[EMBER_STORE_ERRLEN], path[64];
	int64_t id;

	assert_int_equal(ember_store_save_report(e->store, &row, html, "{\"a\":1}", &id, err,
						 sizeof(err)), 0);
	assert_true(ember_reports_api_path("/api/reports"));
	assert_true(ember_reports_api_path("/api/reports/3"));
	assert_false(ember_reports_api_path("/api/reportsx"));

	ember_reports_api_handle(e->store, "/api/reports", p, 1, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "{\"reports\":[{\"id\":"));
	assert_non_null(strstr(r.body, "\"from\":86400000,\"to\":172800000,"));
	assert_non_null(strstr(r.body, "\"summary\":\"1 regression <b>\",\"regressions\":1"));
	free(r.body);

	snprintf(path, sizeof(path), "/api/reports/%lld", (long long)id);
	ember_reports_api_handle(e->store, path, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "text/html; charset=utf-8");
	assert_string_equal(r.body, "<!doctype html><head><link rel=\"stylesheet\" "
				    "href=\"report.css\"></head><a href=\"/#s=a\">");
	free(r.body);
	ember_reports_api_handle(e->store, path, p + 1, 1, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"a\":1}");
	free(r.body);
	ember_reports_api_handle(e->store, "/api/reports/report.css", NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, ember_report_css);
	free(r.body);

	ember_reports_api_handle(e->store, "/api/reports/99999", NULL, 0, &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	ember_reports_api_handle(e->store, "/api/reports/1x", NULL, 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	ember_reports_api_handle(e->store, "/api/reports/0", NULL, 0, &r);
	assert_int_equal(r.status, 400);
	free(r.body);
	ember_reports_api_handle(e->store, path, p, 1, &r); /* limit is not a parameter here */
	assert_int_equal(r.status, 400);
	free(r.body);
	p[0].value = "0";
	ember_reports_api_handle(e->store, "/api/reports", p, 1, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "limit"));
	free(r.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statistics),
		cmocka_unit_test(test_times),
		cmocka_unit_test_setup_teardown(test_regression_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aa_no_findings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_cost_suppressed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_few_samples, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profile_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_previous_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_compared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cron_install, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_saved_reports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reports_api, setup, teardown),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
