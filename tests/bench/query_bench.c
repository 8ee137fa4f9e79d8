/*
 * query_bench.c - query latency of the store and the API computations over a
 * day of synthetic data.
 *
 *   query_bench DB [HOURS] [SAMPLES_PER_BUCKET]     (defaults 24, 400)
 *
 * Generates HOURS of samples through the store API (ember_store_ingest, one
 * ingest per minute as the agent's flushes would, 10 s buckets): one
 * service in version "v1" for the first half and "v2" for the second, 60000
 * distinct stacks of depth 3-32 over 5000 functions, shaped like a program's
 * call tree (stacks share prefixes), the process restarting every 4 hours
 * (a new target), drawn with a Zipf law so a few stacks
 * are hot and most are rare (>= 50000 of them appear over 24 h).  Then times
 * what the API does for:
 *   - a flame graph of the whole range (store query + JSON tree),
 *   - a diff of v1 against v2 (two queries + merged tree),
 *   - the top-functions table with a base, a timeline, the services list,
 * best of 3 runs each, and how many sample rows the hourly roll-up saved
 * (finished hours are sealed into one packed row per hour and target).
 * The peer: the flame graph and diff again on a handle reading through
 * mmap (PRAGMA mmap_size = 256 MiB), as the store did before issue [9]
 * (a truncated file then killed the process with SIGBUS); the store now
 * reads with read() and a 16 MiB page cache per reading handle.
 * The database is reused when it already holds the data (delete it to
 * regenerate).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/memory.h"
#include "core/profile.h"
#include "core/strbuf.h"
#include "server/diff.h"
#include "server/flamegraph.h"
#include "server/topfuncs.h"
#include "store/store.h"
#include "store/store_internal.h"

#define N_FUNCS 5000
#define N_STACKS 60000
#define MAX_DEPTH 32
#define SEC 1000000000LL
#define BUCKET (10 * SEC)
#define T0 (1700000000LL / 3600 * 3600 * SEC + 1800 * SEC) /* half past an hour */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Stacks root first, grown like a call tree: each one is an earlier stack
 * minus 0-3 of its innermost frames plus 1-4 new ones (a call site of a
 * caller seen before), so stacks share long prefixes as real ones do.
 * The first stacks are seeded with 8-16 frames under _start, main.
 */
static uint32_t stacks[N_STACKS][MAX_DEPTH];
static uint32_t depths[N_STACKS];

static void make_stacks(void)
{
	for (uint32_t i = 0; i < N_STACKS; i++) {
		uint32_t d = 2, target;
		stacks[i][0] = 0; /* _start */
		stacks[i][1] = 1; /* main */
		if (i >= 64) {
			uint32_t parent = (uint32_t)(next_rand() % i);
			uint32_t drop = (uint32_t)(next_rand() % 4);
			d = depths[parent] > drop + 2 ? depths[parent] - drop : 2;
			memcpy(stacks[i], stacks[parent], d * sizeof(uint32_t));
			target = d + 1 + (uint32_t)(next_rand() % 4);
		} else {
			target = 8 + (uint32_t)(next_rand() % 9);
		}
		if (target > MAX_DEPTH)
			target = MAX_DEPTH;
		while (d < target)
			stacks[i][d++] = 2 + (uint32_t)(next_rand() % (N_FUNCS - 2));
		depths[i] = d;
	}
}

/* Zipf(s = 1) over N_STACKS by inverting the cumulative weights. */
static double cdf[N_STACKS];

static void make_cdf(void)
{
	double sum = 0;

	for (int i = 0; i < N_STACKS; i++)
		cdf[i] = (sum += 1.0 / (i + 1));
	for (int i = 0; i < N_STACKS; i++)
		cdf[i] /= sum;
}

static uint32_t draw(void)
{
	double u = (double)(next_rand() >> 11) / (double)(1ULL << 53);
	size_t lo = 0, hi = N_STACKS - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* scatter ranks over stack ids so hot stacks are not all early ones */
	return (uint32_t)((lo * 7919u) % N_STACKS);
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "query_bench: %s: %s\n", what, err);
	exit(1);
}

static void generate(struct ember_store *s, int hours, int per_bucket)
{
	char err[EMBER_STORE_ERRLEN], name[32];
	uint32_t frame_ids[N_FUNCS], leaf_first[MAX_DEPTH];
	int minutes = hours * 60;
	double t0 = now_ms();

	for (int m = 0; m < minutes; m++) {
		struct ember_profile *p = ember_profile_new();
		const char *version = m < minutes / 2 ? "v1" : "v2";
		struct ember_target t = {.pid = 1000 + (uint32_t)(m / 240), .comm = "shop",
					 .exe = "/srv/shop", .service = "shop", .version = version};
		if (!p)
			die("generate", "out of memory");
		uint32_t tid = ember_profile_target(p, &t);
		for (int f = 0; f < N_FUNCS; f++) {
			snprintf(name, sizeof(name), f == 0 ? "_start" : f == 1 ? "main" : "shop::fn_%d",
				 f);
			struct ember_frame fr = {.function = name, .file = "shop.cc", .line = (uint32_t)f,
						 .module = "/srv/shop", .address = 0x400000u + 64u * f};
			frame_ids[f] = ember_profile_frame(p, &fr);
		}
		for (int b = 0; b < 6; b++) {
			int64_t when = T0 + ((int64_t)m * 6 + b) * BUCKET;
			for (int k = 0; k < per_bucket; k++) {
				uint32_t st = draw();
				/* v2 makes one subtree hotter: stacks through fn_7 count double */
				uint64_t count = 1;
				for (uint32_t d = 0; d < depths[st]; d++) {
					leaf_first[depths[st] - 1 - d] = frame_ids[stacks[st][d]];
					if (stacks[st][d] == 7 && version[1] == '2')
						count = 2;
				}
				if (ember_profile_add(p, tid, leaf_first, depths[st], count, when))
					die("generate", "out of memory");
			}
		}
		if (ember_store_ingest(s, p, T0 + (int64_t)m * 60 * SEC, err, sizeof(err)))
			die("ingest", err);
		ember_profile_free(p);
		if (m % 120 == 119)
			fprintf(stderr, "query_bench: generated %d of %d hours (%.0f s)\n", (m + 1) / 60,
				hours, (now_ms() - t0) / 1e3);
	}
	printf("generated %d h: %d ingests of 1 min in %.1f s (%.1f ms per ingest)\n", hours,
	       minutes, (now_ms() - t0) / 1e3, (now_ms() - t0) / minutes);
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static struct ember_profile *query(struct ember_store *s, const struct ember_selection *sel)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p;

	if (ember_store_query(s, sel, &p, err, sizeof(err)))
		die("query", err);
	return p;
}

struct timing {
	double query, build; /* ms: store, JSON */
	size_t bytes, stacks;
};

static void bench_flame(struct ember_store *s, const struct ember_selection *sel, struct timing *t)
{
	struct strbuf sb;
	double a = now_ms();
	struct ember_profile *p = query(s, sel);
	double b = now_ms();

	sb_init(&sb);
	if (ember_flamegraph_json(p, NULL, &sb, NULL))
		die("flamegraph", "out of memory");
	t->query = b - a;
	t->build = now_ms() - b;
	t->bytes = sb.len;
	t->stacks = p->n_stacks;
	sb_free(&sb);
	ember_profile_free(p);
}

static void bench_diff(struct ember_store *s, const struct ember_selection *sa,
		       const struct ember_selection *sb_sel, struct timing *t)
{
	struct strbuf sb;
	double a = now_ms();
	struct ember_profile *pa = query(s, sa), *pb = query(s, sb_sel);
	double b = now_ms();

	sb_init(&sb);
	if (ember_diff_json(pa, pb, NULL, &sb))
		die("diff", "out of memory");
	t->query = b - a;
	t->build = now_ms() - b;
	t->bytes = sb.len;
	t->stacks = pa->n_stacks + pb->n_stacks;
	sb_free(&sb);
	ember_profile_free(pa);
	ember_profile_free(pb);
}

static void bench_top(struct ember_store *s, const struct ember_selection *sa,
		      const struct ember_selection *sb_sel, struct timing *t)
{
	struct strbuf sb;
	double a = now_ms();
	struct ember_profile *pa = query(s, sa), *pb = query(s, sb_sel);
	double b = now_ms();

	sb_init(&sb);
	if (ember_top_json(pb, pa, EMBER_TOP_DIFF, 100, &sb))
		die("top", "out of memory");
	t->query = b - a;
	t->build = now_ms() - b;
	t->bytes = sb.len;
	t->stacks = pa->n_stacks + pb->n_stacks;
	sb_free(&sb);
	ember_profile_free(pa);
	ember_profile_free(pb);
}

static void report(const char *what, void (*run)(struct timing *, void *), void *arg)
{
	struct timing best = {INFINITY, 0, 0, 0};

	for (int i = 0; i < 3; i++) {
		struct timing t;
		run(&t, arg);
		if (t.query + t.build < best.query + best.build)
			best = t;
	}
	printf("| %s | %zu | %.0f | %.0f | %.0f | %zu KiB |\n", what, best.stacks, best.query,
	       best.build, best.query + best.build, best.bytes / 1024);
}

struct bench_args {
	struct ember_store *s;
	struct ember_selection all, v1, v2;
};

static void run_flame(struct timing *t, void *arg)
{
	struct bench_args *a = arg;
	bench_flame(a->s, &a->all, t);
}

static void run_diff(struct timing *t, void *arg)
{
	struct bench_args *a = arg;
	bench_diff(a->s, &a->v1, &a->v2, t);
}

static void run_top(struct timing *t, void *arg)
{
	struct bench_args *a = arg;
	bench_top(a->s, &a->v1, &a->v2, t);
}

static void run_timeline(struct timing *t, void *arg)
{
	struct bench_args *a = arg;
	struct ember_timeline tl;
	char err[EMBER_STORE_ERRLEN];
	double t0 = now_ms();

	if (ember_store_timeline(a->s, &a->all, 0, 0, &tl, err, sizeof(err)))
		die("timeline", err);
	*t = (struct timing){.query = now_ms() - t0, .stacks = tl.n};
	ember_timeline_free(&tl);
}

static int count_version(const struct ember_version_row *row, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void run_services(struct timing *t, void *arg)
{
	struct bench_args *a = arg;
	char err[EMBER_STORE_ERRLEN];
	int n = 0;
	double t0 = now_ms();

	if (ember_store_list_versions(a->s, count_version, &n, err, sizeof(err)))
		die("services", err);
	*t = (struct timing){.query = now_ms() - t0, .stacks = (size_t)n};
}

int main(int argc, char **argv)
{
	char err[EMBER_STORE_ERRLEN];
	struct bench_args a = {0};
	sqlite3 *db;

	if (argc < 2) {
		fprintf(stderr, "usage: query_bench DB [HOURS] [SAMPLES_PER_BUCKET]\n");
		return 2;
	}
	int hours = argc > 2 ? atoi(argv[2]) : 24;
	int per_bucket = argc > 3 ? atoi(argv[3]) : 400;
	if (hours < 2 || hours > 24 * 31 || per_bucket < 1 || per_bucket > 100000) {
		fprintf(stderr, "query_bench: HOURS in 2..744, SAMPLES_PER_BUCKET in 1..100000\n");
		return 2;
	}
	ember_memory_keep_freed(); /* as ember run sets up the allocator for its server */
	if (ember_store_open(argv[1], &a.s, err, sizeof(err)))
		die("open", err);
	if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die("open", argv[1]);
	make_stacks();
	make_cdf();
	if (scalar(db, "SELECT count(*) FROM samples") <= 0)
		generate(a.s, hours, per_bucket);

	int64_t end = T0 + (int64_t)hours * 3600 * SEC, mid = T0 + (int64_t)hours * 1800 * SEC;
	/* as the API asks: flame graphs and diffs merge stacks over targets */
	a.all = (struct ember_selection){.from_ns = T0, .to_ns = end, .service = "shop",
					 .merge_targets = true};
	a.v1 = a.all;
	a.v1.version = "v1";
	a.v2 = a.all;
	a.v2.version = "v2";
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM samples WHERE bucket_ns >= %lld AND bucket_ns < %lld",
		 (long long)T0, (long long)end);
	int64_t raw = scalar(db, sql);
	printf("data: %d h, %" PRId64 " distinct stacks stored, %" PRId64 " sample rows (10 s), "
	       "%" PRId64 " open hourly rows + %" PRId64 " sealed (hour, target) rows of %" PRId64
	       " KiB, %" PRId64 " samples; v2 from %+.1f h\n",
	       hours, scalar(db, "SELECT count(*) FROM stacks"), raw,
	       scalar(db, "SELECT count(*) FROM samples_1h"),
	       scalar(db, "SELECT count(*) FROM samples_1h_packed"),
	       scalar(db, "SELECT sum(length(stacks)) / 1024 FROM samples_1h_packed"),
	       scalar(db, "SELECT sum(count) FROM sample_totals"), (mid - T0) / 3600.0 / SEC);

	double t0 = now_ms();
	int64_t n = scalar(db, "SELECT sum(count) FROM samples"); /* the scan a roll-up avoids */
	printf("for scale: one pass over the 10 s rows (sum(count)): %.0f ms (%" PRId64 ")\n\n",
	       now_ms() - t0, n);

	printf("| query (%d h) | stacks | store ms | compute+JSON ms | total ms | JSON |\n", hours);
	printf("| --- | --- | --- | --- | --- | --- |\n");
	report("flame graph, whole range (goal <= 200 ms)", run_flame, &a);
	report("diff v1 vs v2 (goal <= 300 ms)", run_diff, &a);
	report("top functions v2 with base v1", run_top, &a);
	report("timeline (points)", run_timeline, &a);
	report("services (versions)", run_services, &a);

	/* the peer in the same run: the same queries read through mmap */
	struct bench_args m = a;
	if (ember_store_open(argv[1], &m.s, err, sizeof(err)))
		die("open", err);
	if (sqlite3_exec(m.s->db, "PRAGMA mmap_size=268435456", NULL, NULL, NULL) != SQLITE_OK)
		die("mmap", sqlite3_errmsg(m.s->db));
	report("flame graph, mmap reads (before issue [9], unsafe)", run_flame, &m);
	report("diff v1 vs v2, mmap reads (before issue [9], unsafe)", run_diff, &m);
	ember_store_close(m.s);

	sqlite3_close(db);
	ember_store_close(a.s);
	return 0;
}
