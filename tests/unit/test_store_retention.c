/*
 * test_store_retention.c - retention and the size bound (store_retention.c),
 * through the store API: 30 simulated days written with a tight size bound.
 *
 * The oracle is the test's own arithmetic: every sample count is a
 * function of (ingest, stack), so the expected total of any stack over any
 * window is computed here, outside the store.  Checked:
 *  - the database file and its WAL stay under the bound after every pass,
 *    and the bound forced deletions (full resolution first);
 *  - every write transaction of retention holds at most batch_rows rows;
 *  - a day still kept answers its query exactly as it did right after it
 *    was written (before any deletion), and as the arithmetic says, also
 *    for a range cut mid-hour in the roll-up zone (widened to whole hours)
 *    and for a 10 s-precise range in the full-resolution window;
 *  - data before the cuts is gone; stacks, frames and targets nothing
 *    references are deleted, and nothing still referenced is (checked
 *    with SQL on the file: no dangling ids) -- including stacks that an
 *    ingest between two retention steps brings back into use;
 *  - a daily report on a kept day builds, with the day's sample counts;
 *  - freed pages are given back (incremental vacuum), and a database
 *    made before incremental vacuum is converted once.
 */
#include "testutil.h"

#include <errno.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/profile.h"
#include "report/report.h"
#include "store/store.h"
#include "store/store_internal.h"

#define SEC 1000000000LL
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)
#define T0 (1699920000LL * SEC) /* 2023-11-14 00:00 UTC */
#define DAYS 30
#define STEP (10 * 60 * SEC) /* one ingest per 10 minutes */
#define PER_DAY (DAY / STEP)
#define COMMON 20     /* stacks in every ingest */
#define DAILY 20      /* stacks of one day only */
#define DEPTH 12
#define POOL (COMMON + DAYS * DAILY)
#define MAX_BYTES (1400u << 10)
#define BATCH 200

static char dir[256], db[300];

static int setup(void **state)
{
	struct stat st;

	/* tmpfs when there is one: the store fsyncs at every checkpoint, and
	 * this test writes some 9000 transactions */
	if (test_mkdtemp(dir, sizeof(dir),
			 stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
				 ? "/dev/shm"
				 : "/tmp",
			 "retention"))
		return -1;
	snprintf(db, sizeof(db), "%s/ember.db", dir);
	return 0;
}

static int teardown(void **state)
{
	return test_rmtree(dir);
}

/* ---- the arithmetic ---- */

static uint64_t count_of(long ingest, int stack)
{
	uint64_t h = (uint64_t)ingest * 0x9e3779b97f4a7c15ULL ^ (uint64_t)stack * 0xc2b2ae3d27d4eb4fULL;
	h ^= h >> 31;
	return 1 + h % 7;
}

/* Whether pool stack j is in ingest i (the common ones, its day's own, and "revived" ones). */
static bool in_ingest(long i, int j)
{
	long day = i / PER_DAY;
	return j < COMMON || (j - COMMON) / DAILY == day;
}

static int64_t time_of(long i) { return T0 + i * STEP + 5 * SEC; }

/* Revived: a few stacks of a day about to expire, written again between retention steps. */
#define REVIVE_DAYS_BACK 14
struct revive {
	long ingest_like; /* a stand-in ingest number for count_of */
	int64_t t;
	int stack;
};
static struct revive revived[20000];
static size_t n_revived;

/* Expected samples of pool stack j in [from, to). */
static uint64_t expected(int j, int64_t from, int64_t to)
{
	uint64_t n = 0;

	for (long i = 0; i < DAYS * PER_DAY; i++)
		if (time_of(i) >= from && time_of(i) < to && in_ingest(i, j))
			n += count_of(i, j);
	for (size_t k = 0; k < n_revived; k++)
		if (revived[k].stack == j && revived[k].t >= from && revived[k].t < to)
			n += count_of(revived[k].ingest_like, j);
	return n;
}

/* ---- writing ---- */

static void add_stack(struct ember_profile *p, uint32_t target, int j, uint64_t count, int64_t t)
{
	uint32_t frames[DEPTH];
	char name[96];

	for (int d = 0; d < DEPTH; d++) {
		if (d == 0)
			snprintf(name, sizeof(name), "leaf_%d", j);
		else if (j < COMMON)
			snprintf(name, sizeof(name), "common::caller_%d_at_depth_%d", j, d);
		else
			snprintf(name, sizeof(name), "day%d::caller_%d_at_depth_%d", (j - COMMON) / DAILY,
				 j, d);
		struct ember_frame f = {.function = name, .file = "src/app.cc", .line = (uint32_t)d,
					.module = "/usr/bin/app", .address = 0x1000 + (uint64_t)j * 64 + d};
		frames[d] = ember_profile_frame(p, &f);
	}
	assert_int_equal(ember_profile_add(p, target, frames, DEPTH, count, t), 0);
}

static uint32_t day_target(struct ember_profile *p, long day)
{
	struct ember_target t = {.pid = (uint32_t)(1000 + day), .comm = "app", .service = "svc",
				 .version = "v1"};
	return ember_profile_target(p, &t);
}

static void ingest_one(struct ember_store *s, long i)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = ember_profile_new();
	uint32_t t = day_target(p, i / PER_DAY);

	for (int j = 0; j < POOL; j++)
		if (in_ingest(i, j))
			add_stack(p, t, j, count_of(i, j), time_of(i));
	p->period_ns = SEC / 19;
	if (ember_store_ingest(s, p, time_of(i), err, sizeof(err)))
		fail_msg("ingest %ld: %s", i, err);
	ember_profile_free(p);
}

/* Between two retention steps: stacks of the day that is expiring, used again now. */
static void ingest_revived(struct ember_store *s, long i)
{
	char err[EMBER_STORE_ERRLEN];
	long old_day = i / PER_DAY - REVIVE_DAYS_BACK;
	struct ember_profile *p;

	if (old_day < 0 || n_revived + 2 > sizeof(revived) / sizeof(revived[0]))
		return;
	p = ember_profile_new();
	uint32_t t = day_target(p, i / PER_DAY);
	for (int k = 0; k < 2; k++) {
		int j = COMMON + (int)old_day * DAILY + (int)((n_revived + (size_t)k) % DAILY);
		struct revive *r = &revived[n_revived++];
		r->ingest_like = 1000000 + (long)n_revived;
		r->t = time_of(i) + 1 * SEC; /* same bucket as ingest i */
		r->stack = j;
		add_stack(p, t, j, count_of(r->ingest_like, j), r->t);
	}
	p->period_ns = SEC / 19;
	if (ember_store_ingest(s, p, time_of(i), err, sizeof(err)))
		fail_msg("revive at %ld: %s", i, err);
	ember_profile_free(p);
}

/* ---- reading ---- */

/* Per pool stack, the samples a query returns; false if a stack is not a pool one. */
static void query_counts(struct ember_store *s, int64_t from, int64_t to, uint64_t *out)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_selection sel = {.from_ns = from, .to_ns = to};
	struct ember_profile *p;
	int j;

	memset(out, 0, POOL * sizeof(*out));
	if (ember_store_query(s, &sel, &p, err, sizeof(err)))
		fail_msg("query: %s", err);
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *st = &p->stacks[i];
		assert_int_equal(st->depth, DEPTH);
		assert_int_equal(sscanf(p->frames[st->frames[0]].function, "leaf_%d", &j), 1);
		assert_true(j >= 0 && j < POOL);
		out[j] += st->count;
	}
	ember_profile_free(p);
}

static void check_window(struct ember_store *s, int64_t from, int64_t to, int64_t efrom,
			 int64_t eto, const char *what)
{
	uint64_t got[POOL], total = 0;

	query_counts(s, from, to, got);
	for (int j = 0; j < POOL; j++) {
		uint64_t want = expected(j, efrom, eto);
		if (got[j] != want)
			fail_msg("%s: stack %d has %llu samples, expected %llu", what, j,
				 (unsigned long long)got[j], (unsigned long long)want);
		total += want;
	}
	assert_true(total > 0);
}

static uint64_t file_bytes(void)
{
	char wal[400];
	struct stat a, b;

	snprintf(wal, sizeof(wal), "%s-wal", db);
	return (stat(db, &a) ? 0 : (uint64_t)a.st_size) + (stat(wal, &b) ? 0 : (uint64_t)b.st_size);
}

/* Retention to the end of its pass, with ingests of revived stacks between steps. */
static void run_retention(struct ember_store *s, int64_t now, long i)
{
	char err[EMBER_STORE_ERRLEN];
	int rc, steps = 0;

	while ((rc = ember_store_retention_step(s, now, err, sizeof(err))) == 1) {
		if (++steps % 3 == 0)
			ingest_revived(s, i);
		assert_true(steps < 100000);
	}
	if (rc)
		fail_msg("retention: %d %s", rc, err);
}

/* No id in a referencing table is missing from the table it refers to (SQL on the file). */
static void check_references(const char *path)
{
	static const char *const dangling[] = {
		"SELECT count(*) FROM samples WHERE stack_id NOT IN (SELECT id FROM stacks)",
		"SELECT count(*) FROM samples_1h WHERE stack_id NOT IN (SELECT id FROM stacks)",
		"SELECT count(*) FROM samples WHERE target_id NOT IN (SELECT id FROM targets)",
		"SELECT count(*) FROM sample_totals WHERE target_id NOT IN (SELECT id FROM targets)",
		"SELECT count(*) FROM samples_1h_packed WHERE target_id NOT IN (SELECT id FROM targets)",
	};
	sqlite3 *d;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_open_v2(path, &d, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (size_t i = 0; i < sizeof(dangling) / sizeof(dangling[0]); i++) {
		assert_int_equal(sqlite3_prepare_v2(d, dangling[i], -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		if (sqlite3_column_int64(st, 0))
			fail_msg("%lld dangling: %s", (long long)sqlite3_column_int64(st, 0), dangling[i]);
		sqlite3_finalize(st);
	}
	/* frames of every stack, stacks of every packed hour */
	assert_int_equal(sqlite3_prepare_v2(d, "SELECT frames FROM stacks", -1, &st, NULL), SQLITE_OK);
	sqlite3_stmt *f;
	assert_int_equal(sqlite3_prepare_v2(d, "SELECT 1 FROM frames WHERE id = ?1", -1, &f, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *p = sqlite3_column_blob(st, 0), *end = p + sqlite3_column_bytes(st, 0);
		uint64_t id;
		while (p < end && store_varint_get(&p, end, &id)) {
			sqlite3_bind_int64(f, 1, (int64_t)id);
			assert_int_equal(sqlite3_step(f), SQLITE_ROW);
			sqlite3_reset(f);
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(f);
	assert_int_equal(sqlite3_prepare_v2(d, "SELECT stacks FROM samples_1h_packed", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(d, "SELECT 1 FROM stacks WHERE id = ?1", -1, &f, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct store_packed_iter it;
		int64_t stack;
		uint64_t count;
		store_packed_init(&it, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
		while (store_packed_next(&it, &stack, &count) > 0) {
			sqlite3_bind_int64(f, 1, stack);
			assert_int_equal(sqlite3_step(f), SQLITE_ROW);
			sqlite3_reset(f);
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(f);
	sqlite3_close(d);
}

static void test_thirty_days_bounded(void **state)
{
	static uint64_t before[DAYS][POOL];
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *s;
	struct ember_retention_options o = {.max_bytes = MAX_BYTES, .batch_rows = BATCH,
					    .vacuum_pages = 64};
	struct ember_retention_stats st;
	uint64_t peak = 0;

	assert_int_equal(ember_store_open(db, &s, err, sizeof(err)), 0);
	assert_int_equal(ember_store_retention_setup(s, &o, err, sizeof(err)), 0);
	ember_store_retention_stats(s, &st);
	assert_true(st.incremental_vacuum); /* a new file */

	for (long i = 0; i < DAYS * PER_DAY; i++) {
		ingest_one(s, i);
		if ((i + 1) % PER_DAY == 0) /* the day as written, before anything is deleted */
			query_counts(s, T0 + (i / PER_DAY) * DAY, T0 + (i / PER_DAY + 1) * DAY,
				     before[i / PER_DAY]);
		if ((i + 1) % (PER_DAY / 24) == 0) { /* hourly, as the agent would */
			run_retention(s, time_of(i) + STEP, i);
			uint64_t b = file_bytes();
			if (b > peak)
				peak = b;
			if (b > MAX_BYTES)
				fail_msg("day %ld: %llu bytes over the bound of %u", i / PER_DAY,
					 (unsigned long long)b, MAX_BYTES);
		}
	}
	ember_store_retention_stats(s, &st);
	print_message("30 days: peak %llu KiB (bound %u KiB); passes %llu (%llu for size, %llu "
		      "unreachable), rows %llu, stacks %llu, frames %llu, targets %llu deleted, "
		      "%llu collections, %llu pages vacuumed, %llu batches of <= %llu rows, longest "
		      "step %.1f ms; full resolution from +%.1f h, everything from +%.1f h\n",
		      (unsigned long long)peak >> 10, MAX_BYTES >> 10, (unsigned long long)st.passes,
		      (unsigned long long)st.size_passes, (unsigned long long)st.bound_unreachable,
		      (unsigned long long)st.rows_deleted, (unsigned long long)st.stacks_deleted,
		      (unsigned long long)st.frames_deleted, (unsigned long long)st.targets_deleted,
		      (unsigned long long)st.gc_runs, (unsigned long long)st.pages_vacuumed,
		      (unsigned long long)st.batches, (unsigned long long)st.max_batch_rows,
		      st.max_step_ns / 1e6, (double)(st.full_res_from_ns - T0) / HOUR,
		      (double)(st.rollup_from_ns - T0) / HOUR);

	/* bounded batches, and the bound was what deleted data */
	assert_true(st.max_batch_rows <= BATCH);
	assert_true(st.batches > 0);
	assert_true(st.size_passes > 0);
	assert_int_equal(st.bound_unreachable, 0);
	assert_true(st.stacks_deleted > 0 && st.frames_deleted > 0 && st.targets_deleted > 0);
	assert_true(st.pages_vacuumed > 0);
	int64_t end = T0 + DAYS * DAY;
	/* full resolution went first: its cut is past the 48 h window's, and never behind the roll-up's */
	assert_true(st.full_res_from_ns > end - EMBER_RETENTION_FULL_RES_NS);
	assert_true(st.full_res_from_ns >= st.rollup_from_ns);
	assert_true(st.rollup_from_ns >= end - EMBER_RETENTION_NS);

	/* kept whole days answer as they did before any deletion, and as computed */
	int kept = 0;
	for (int d = 0; d < DAYS; d++) {
		int64_t from = T0 + d * DAY, to = from + DAY;
		uint64_t now[POOL];
		if (from < st.rollup_from_ns)
			continue;
		query_counts(s, from, to, now);
		for (int j = 0; j < POOL; j++)
			if (now[j] != before[d][j] && !(j >= COMMON && now[j] > before[d][j]))
				fail_msg("day %d stack %d: %llu now, %llu before deletion", d, j,
					 (unsigned long long)now[j], (unsigned long long)before[d][j]);
		check_window(s, from, to, from, to, "a kept day");
		kept++;
	}
	print_message("%d whole days kept (from day %lld)\n", kept,
		      (long long)((st.rollup_from_ns - T0) / DAY));
	assert_true(kept >= 2);

	/* before the full-resolution cut, a range cut mid-hour reads whole hours */
	int64_t h = store_ceil_to(st.rollup_from_ns, HOUR) + 2 * HOUR;
	assert_true(h + 3 * HOUR <= st.full_res_from_ns);
	check_window(s, h + 30 * 60 * SEC, h + 2 * HOUR + 30 * 60 * SEC, h, h + 3 * HOUR,
		     "a mid-hour range in the roll-up zone");
	/* in the full-resolution window, 10 s precise */
	int64_t a = end - 3 * HOUR + 20 * 60 * SEC, b = end - 1 * HOUR + 10 * SEC;
	assert_true(a >= st.full_res_from_ns);
	check_window(s, a, b, store_floor_to(a, 10 * SEC), store_ceil_to(b, 10 * SEC),
		     "a full-resolution range");
	/* nothing older than the roll-up cut */
	uint64_t gone[POOL], sum = 0;
	query_counts(s, T0, st.rollup_from_ns, gone);
	for (int j = 0; j < POOL; j++)
		sum += gone[j];
	assert_int_equal(sum, 0);

	/* a report on the last kept day against the day before */
	struct ember_report_options ro = {.from_ns = end - DAY, .to_ns = end,
					  .baseline = EMBER_BASELINE_PREVIOUS_DAY};
	struct ember_report *r;
	ember_report_default_thresholds(&ro.th);
	ro.th.min_samples = 100;
	assert_int_equal(ember_report_build(s, &ro, &r, err, sizeof(err)), 0);
	assert_int_equal(r->n_services, 1);
	uint64_t want = 0, want_base = 0;
	for (int j = 0; j < POOL; j++) {
		want += expected(j, end - DAY, end);
		want_base += expected(j, end - 2 * DAY, end - DAY);
	}
	print_message("report: %llu samples against %llu\n",
		      (unsigned long long)r->services[0].samples,
		      (unsigned long long)r->services[0].base_samples);
	assert_int_equal(r->services[0].samples, want);
	assert_int_equal(r->services[0].base_samples, want_base);
	ember_report_free(r);

	ember_store_close(s);
	check_references(db);
}

/*
 * A stack whose last rows retention just deleted is used again by an
 * ingest while the collection runs (after its snapshot): it must survive,
 * or the new samples would name a stack that no longer exists.
 */
static void test_collect_race(void **state)
{
	char path[400], err[EMBER_STORE_ERRLEN];
	struct ember_store *s;
	struct ember_retention_options o = {.batch_rows = 10};
	struct ember_retention_stats st;
	long old_i = 0, new_i = 20 * PER_DAY; /* day 0 expires by day 20 */
	int rc, steps = 0;

	snprintf(path, sizeof(path), "%s/race.db", dir);
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	assert_int_equal(ember_store_retention_setup(s, &o, err, sizeof(err)), 0);
	n_revived = 0;
	ingest_one(s, old_i);  /* common stacks and day 0's */
	ingest_one(s, new_i);  /* common stacks and day 20's */
	do {
		rc = ember_store_retention_step(s, time_of(new_i) + STEP, err, sizeof(err));
		ember_store_retention_stats(s, &st);
	} while (rc == 1 && !st.collecting && ++steps < 10000);
	assert_true(st.collecting);
	/* day 0's stacks are unreferenced in the snapshot; use them again now */
	char e2[EMBER_STORE_ERRLEN];
	struct ember_profile *p = ember_profile_new();
	uint32_t t = day_target(p, 20);
	for (int j = COMMON; j < COMMON + DAILY; j++)
		add_stack(p, t, j, 3, time_of(new_i));
	assert_int_equal(ember_store_ingest(s, p, time_of(new_i), e2, sizeof(e2)), 0);
	ember_profile_free(p);
	while ((rc = ember_store_retention_step(s, time_of(new_i) + STEP, err, sizeof(err))) == 1)
		;
	assert_int_equal(rc, 0);
	ember_store_retention_stats(s, &st);
	assert_true(st.stacks_deleted == 0 || st.gc_runs > 0);
	/* the day-0 stacks are still there, with their new samples */
	uint64_t got[POOL];
	query_counts(s, time_of(new_i) - HOUR, time_of(new_i) + HOUR, got);
	for (int j = COMMON; j < COMMON + DAILY; j++)
		assert_int_equal(got[j], 3);
	ember_store_close(s);
	check_references(path);
}

/* Age alone, no bound: 48 h of 10 s buckets, 14 days of roll-ups. */
static void test_age_only(void **state)
{
	char path[400], err[EMBER_STORE_ERRLEN];
	struct ember_store *s;
	struct ember_retention_options o = {.batch_rows = 50};
	struct ember_retention_stats st;
	sqlite3 *d;
	sqlite3_stmt *q;

	snprintf(path, sizeof(path), "%s/age.db", dir);
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	assert_int_equal(ember_store_retention_setup(s, &o, err, sizeof(err)), 0);
	n_revived = 0;
	for (long i = 0; i < 20 * PER_DAY; i += 6) { /* an ingest an hour */
		ingest_one(s, i);
		while (ember_store_retention_step(s, time_of(i) + STEP, err, sizeof(err)) == 1)
			;
	}
	ember_store_retention_stats(s, &st);
	ember_store_close(s);
	int64_t last = time_of(20 * PER_DAY - 6) + STEP;
	assert_int_equal(st.full_res_from_ns, store_floor_to(last - EMBER_RETENTION_FULL_RES_NS, HOUR));
	assert_int_equal(st.rollup_from_ns, store_floor_to(last - EMBER_RETENTION_NS, HOUR));
	assert_int_equal(st.size_passes, 0);
	assert_true(st.max_batch_rows <= 50);

	assert_int_equal(sqlite3_open_v2(path, &d, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(d, "SELECT (SELECT min(bucket_ns) FROM samples),"
					       " (SELECT min(hour_ns) FROM samples_1h_packed),"
					       " (SELECT min(bucket_ns) FROM sample_totals)",
					    -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_true(sqlite3_column_int64(q, 0) >= st.full_res_from_ns);
	assert_true(sqlite3_column_int64(q, 0) < st.full_res_from_ns + HOUR);
	assert_true(sqlite3_column_int64(q, 1) >= st.rollup_from_ns);
	assert_true(sqlite3_column_int64(q, 1) < st.rollup_from_ns + HOUR);
	assert_true(sqlite3_column_int64(q, 2) >= st.rollup_from_ns);
	sqlite3_finalize(q);
	sqlite3_close(d);
}

/* A database from before incremental vacuum is converted once; reports beyond --keep go. */
static void test_convert_and_keep_reports(void **state)
{
	char path[400], err[EMBER_STORE_ERRLEN];
	struct ember_store *s;
	struct ember_retention_options o = {0};
	struct ember_retention_stats st;
	sqlite3 *d;
	uint64_t deleted;

	snprintf(path, sizeof(path), "%s/old.db", dir);
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	ingest_one(s, 0);
	for (int i = 0; i < 5; i++) {
		struct ember_report_row row = {.created_ns = T0 + i, .baseline = "window",
					       .summary = "x"};
		assert_int_equal(ember_store_save_report(s, &row, "<p>", "{}", NULL, err, sizeof(err)), 0);
	}
	assert_int_equal(ember_store_prune_reports(s, 2, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 3);
	ember_store_close(s);
	/* as an older Ember made it */
	assert_int_equal(sqlite3_open(path, &d), SQLITE_OK);
	assert_int_equal(sqlite3_exec(d, "PRAGMA auto_vacuum=NONE; VACUUM", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(d);

	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	assert_int_equal(ember_store_retention_setup(s, &o, err, sizeof(err)), 0);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "converted"));
	ember_store_retention_stats(s, &st);
	assert_true(st.incremental_vacuum);
	ember_store_close(s);
	assert_int_equal(sqlite3_open(path, &d), SQLITE_OK);
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(d, "SELECT (SELECT auto_vacuum FROM pragma_auto_vacuum),"
					       " (SELECT count(*) FROM reports)", -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 2);
	assert_int_equal(sqlite3_column_int(q, 1), 2);
	sqlite3_finalize(q);
	sqlite3_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thirty_days_bounded),
		cmocka_unit_test(test_collect_race),
		cmocka_unit_test(test_age_only),
		cmocka_unit_test(test_convert_and_keep_reports),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
