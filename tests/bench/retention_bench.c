/*
 * retention_bench.c - how long retention holds up ingest and queries.
 *
 *   retention_bench DB HOURS
 *
 * DB is a copy of the query benchmark's day of data (tests/bench/query.sh:
 * HOURS of 10 s buckets, ~100k sample rows an hour).  Retention is set to
 * keep 2 h of 10 s buckets and HOURS/2 of roll-ups, so one pass deletes
 * nearly all the 10 s rows and half the roll-ups, collects the stacks,
 * frames and targets left unreferenced, and vacuums.  Meanwhile, as in
 * `ember run`, the same thread ingests a 200-stack profile every 100 ms of
 * retention work, and another thread queries the last hour (a flame graph
 * of the 10 s rows) on its own connection without pause.  Printed: the
 * one-time conversion to incremental vacuum, the steps (count, p50, p99,
 * max), ingest and query latency during retention against the same
 * measured without it (the peer), and what was deleted.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/profile.h"
#include "store/store.h"

#define SEC 1000000000LL
#define HOUR (3600 * SEC)
#define T0 (1700000000LL / 3600 * 3600 * SEC + 1800 * SEC) /* as query_bench.c */
#define MAX_LAT 200000

static void die(const char *what, const char *err)
{
	fprintf(stderr, "retention_bench: %s: %s\n", what, err);
	exit(1);
}

static double ms_since(int64_t t0) { return (double)(ember_monotonic_ns() - t0) / 1e6; }

/* CPU time of this thread: the wall time of a step on a machine nobody else loads */
static int64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct lat {
	double v[MAX_LAT];
	size_t n;
};

static void lat_add(struct lat *l, double ms)
{
	if (l->n < MAX_LAT)
		l->v[l->n++] = ms;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(struct lat *l, double p)
{
	if (!l->n)
		return 0;
	qsort(l->v, l->n, sizeof(l->v[0]), cmp_d);
	size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return l->v[i];
}

/* ---- the reader thread ---- */

struct reader {
	const char *path;
	int64_t from, to;
	volatile int stop;
	struct lat lat;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *s;
	struct ember_selection sel = {.from_ns = r->from, .to_ns = r->to, .merge_targets = true};

	if (ember_store_open(r->path, &s, err, sizeof(err)))
		die("reader open", err);
	while (!r->stop) {
		struct ember_profile *p;
		int64_t t0 = ember_monotonic_ns();
		if (ember_store_query(s, &sel, &p, err, sizeof(err)))
			die("reader query", err);
		lat_add(&r->lat, ms_since(t0));
		ember_profile_free(p);
	}
	ember_store_close(s);
	return NULL;
}

/* ---- the ingest the agent would do meanwhile ---- */

static double ingest(struct ember_store *s, int64_t t, unsigned seed)
{
	char err[EMBER_STORE_ERRLEN], name[48];
	struct ember_profile *p = ember_profile_new();
	struct ember_target tg = {.pid = 4242, .comm = "shop", .service = "shop", .version = "v3"};
	uint32_t ti = ember_profile_target(p, &tg), fr[12];

	for (unsigned i = 0; i < 200; i++) {
		for (unsigned d = 0; d < 12; d++) {
			snprintf(name, sizeof(name), "shop::fn_%u", (i * 31 + d * 7 + seed) % 5000);
			struct ember_frame f = {.function = name, .file = "shop.cc", .module = "/srv/shop",
						.address = 0x400000u + 64u * ((i * 31 + d * 7 + seed) % 5000)};
			fr[d] = ember_profile_frame(p, &f);
		}
		ember_profile_add(p, ti, fr, 12, 1 + i % 3, t);
	}
	int64_t t0 = ember_monotonic_ns();
	if (ember_store_ingest(s, p, t, err, sizeof(err)))
		die("ingest", err);
	double ms = ms_since(t0);
	ember_profile_free(p);
	return ms;
}

static uint64_t file_kib(const char *path)
{
	char wal[4200];
	struct stat a, b;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return ((stat(path, &a) ? 0 : (uint64_t)a.st_size) + (stat(wal, &b) ? 0 : (uint64_t)b.st_size)) >>
	       10;
}

int main(int argc, char **argv)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *s;
	static struct reader rd;
	static struct lat steps, step_cpu, ing_during, ing_alone;
	pthread_t th;

	if (argc != 3)
		die("usage", "retention_bench DB HOURS");
	int hours = atoi(argv[2]);
	int64_t end = T0 + (int64_t)hours * HOUR;
	uint64_t before = file_kib(argv[1]);
	if (ember_store_open(argv[1], &s, err, sizeof(err)))
		die("open", err);

	/* the peers: ingest and the query alone */
	rd = (struct reader){.path = argv[1], .from = end - HOUR, .to = end};
	pthread_create(&th, NULL, read_loop, &rd);
	for (unsigned i = 0; i < 40; i++) {
		lat_add(&ing_alone, ingest(s, end - 30 * SEC, i));
		struct timespec ts = {0, 25 * 1000000L};
		nanosleep(&ts, NULL);
	}
	rd.stop = 1;
	pthread_join(th, NULL);
	struct lat q_alone = rd.lat;

	struct ember_retention_options o = {.full_res_ns = 2 * HOUR,
					    .retention_ns = (int64_t)hours * HOUR / 2};
	int64_t t0 = ember_monotonic_ns();
	if (ember_store_retention_setup(s, &o, err, sizeof(err)))
		die("setup", err);
	double setup_ms = ms_since(t0);
	printf("one-time conversion to incremental vacuum: %.0f ms (%s)\n", setup_ms,
	       err[0] ? err : "nothing to do");

	rd = (struct reader){.path = argv[1], .from = end - HOUR, .to = end};
	pthread_create(&th, NULL, read_loop, &rd);
	int64_t start = ember_monotonic_ns(), since_ingest = start;
	int rc;
	unsigned k = 100;
	do {
		int64_t a = ember_monotonic_ns(), c = cpu_ns();
		rc = ember_store_retention_step(s, end, err, sizeof(err));
		lat_add(&steps, ms_since(a));
		lat_add(&step_cpu, (double)(cpu_ns() - c) / 1e6);
		if (ember_monotonic_ns() - since_ingest >= 100 * 1000000LL) {
			lat_add(&ing_during, ingest(s, end - 30 * SEC, k++));
			since_ingest = ember_monotonic_ns();
		}
	} while (rc == 1);
	if (rc < 0)
		die("retention", err);
	double total_ms = ms_since(start);
	rd.stop = 1;
	pthread_join(th, NULL);

	struct ember_retention_stats st;
	ember_store_retention_stats(s, &st);
	ember_store_close(s);
	printf("retention pass over %d h of data (keep 2 h of 10 s buckets, %d h of roll-ups): "
	       "%.1f s of work in %zu steps; %" PRIu64 " rows, %" PRIu64 " stacks, %" PRIu64
	       " frames, %" PRIu64 " targets deleted, %" PRIu64 " pages vacuumed; file %" PRIu64
	       " -> %" PRIu64 " KiB\n\n",
	       hours, hours / 2, total_ms / 1e3, steps.n, st.rows_deleted, st.stacks_deleted,
	       st.frames_deleted, st.targets_deleted, st.pages_vacuumed, before, file_kib(argv[1]));
	printf("| what (ms) | n | p50 | p99 | max | peer: without retention p50 / p99 / max | max ratio |\n");
	printf("| --- | --- | --- | --- | --- | --- | --- |\n");
	printf("| retention step (one transaction or scan), wall | %zu | %.2f | %.2f | %.2f | - | - |\n",
	       steps.n, pct(&steps, 0.5), pct(&steps, 0.99), pct(&steps, 1));
	printf("| retention step, CPU time of the thread | %zu | %.2f | %.2f | %.2f | - | - |\n",
	       step_cpu.n, pct(&step_cpu, 0.5), pct(&step_cpu, 0.99), pct(&step_cpu, 1));
	double ia = pct(&ing_alone, 1);
	printf("| ingest of 200 stacks, between steps | %zu | %.2f | %.2f | %.2f | %.2f / %.2f / %.2f | %.1fx |\n",
	       ing_during.n, pct(&ing_during, 0.5), pct(&ing_during, 0.99), pct(&ing_during, 1),
	       pct(&ing_alone, 0.5), pct(&ing_alone, 0.99), ia, ia > 0 ? pct(&ing_during, 1) / ia : 0);
	double qa = pct(&q_alone, 1);
	printf("| flame graph of the last hour, other connection | %zu | %.2f | %.2f | %.2f | %.2f / %.2f / %.2f | %.1fx |\n",
	       rd.lat.n, pct(&rd.lat, 0.5), pct(&rd.lat, 0.99), pct(&rd.lat, 1), pct(&q_alone, 0.5),
	       pct(&q_alone, 0.99), qa, qa > 0 ? pct(&rd.lat, 1) / qa : 0);
	return 0;
}
