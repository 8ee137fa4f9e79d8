/*
 * test_store_versions.c - schema version 2 of the store: a version-1 file
 * migrates (roll-up and totals filled from its samples), queries that read
 * the hourly roll-up agree with a sum over the raw samples for any range,
 * version lists select, merged-target queries sum over targets, and the
 * per-version listing and timeline report the right totals.  Version 5:
 * finished hours are sealed into packed rows, late rows merge into them,
 * and a corrupt packed row fails the query with a message.
 */
#include "testutil.h"

#include <errno.h>
#include <sqlite3.h>
#include <unistd.h>

#include "core/profile.h"
#include "store/store.h"
#include "store/store_internal.h"

#define SEC 1000000000LL
#define HOUR (3600 * SEC)
#define T0 (1700000000LL / 3600 * 3600 * SEC) /* an hour start */

static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/ember-test-sv-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	unlink(path);
	return 0;
}

static int teardown(void **state)
{
	char p[96];

	for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", NULL}; *sfx; sfx++) {
		snprintf(p, sizeof(p), "%s%s", path, *sfx);
		unlink(p);
	}
	return 0;
}

static struct ember_store *open_store(void)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *s;

	if (ember_store_open(path, &s, err, sizeof(err)))
		fail_msg("open: %s", err);
	return s;
}

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

static int64_t scalar(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* A file as schema version 1 wrote it (the tables of migration 0 -> 1). */
static void test_migrate_v1(void **state)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec(db, "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
		 "INSERT INTO meta(key, value) VALUES ('bucket_ns', 10000000000);"
		 "CREATE TABLE targets (id INTEGER PRIMARY KEY, service TEXT NOT NULL,"
		 " version TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
		 " comm TEXT NOT NULL, exe TEXT NOT NULL, build_id TEXT NOT NULL,"
		 " labels TEXT NOT NULL, first_seen_ns INTEGER NOT NULL,"
		 " last_seen_ns INTEGER NOT NULL,"
		 " UNIQUE (service, version, host, pid, comm, exe, build_id, labels));"
		 "CREATE INDEX targets_by_last_seen ON targets(last_seen_ns);"
		 "CREATE TABLE frames (id INTEGER PRIMARY KEY, function TEXT NOT NULL,"
		 " file TEXT NOT NULL, line INTEGER NOT NULL, module TEXT NOT NULL,"
		 " build_id TEXT NOT NULL, address INTEGER NOT NULL, flags INTEGER NOT NULL,"
		 " UNIQUE (function, file, line, module, build_id, address, flags));"
		 "CREATE TABLE stacks (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL UNIQUE,"
		 " frames BLOB NOT NULL);"
		 "CREATE TABLE samples (bucket_ns INTEGER NOT NULL,"
		 " target_id INTEGER NOT NULL REFERENCES targets(id),"
		 " stack_id INTEGER NOT NULL REFERENCES stacks(id), count INTEGER NOT NULL,"
		 " PRIMARY KEY (bucket_ns, target_id, stack_id)) WITHOUT ROWID;"
		 "CREATE INDEX samples_by_target ON samples(target_id, bucket_ns, stack_id, count);"
		 "PRAGMA user_version = 1;");
	/* one target, frames main (1) and work (2), stack work<-main (blob 02 01) */
	exec(db, "INSERT INTO targets VALUES (1, 'api', 'v1', 'h', 7, 'api', '/bin/api', '', '',"
		 " 1700000000000000000, 1700003600000000000);"
		 "INSERT INTO frames VALUES (1, 'main', '', 0, '/bin/api', '', 16, 0);"
		 "INSERT INTO frames VALUES (2, 'work', '', 0, '/bin/api', '', 32, 0);"
		 "INSERT INTO stacks VALUES (1, 11, x'0201');"
		 "INSERT INTO samples VALUES (1700000000000000000, 1, 1, 5);"
		 "INSERT INTO samples VALUES (1700000010000000000, 1, 1, 7);"
		 "INSERT INTO samples VALUES (1700003600000000000, 1, 1, 11);");
	sqlite3_close(db);

	struct ember_store *s = open_store();
	/* migrated through every later version: 1 -> 2 -> 3 ... */
	assert_int_equal(scalar("PRAGMA user_version"), store_schema_version());
	assert_int_equal(scalar("SELECT count(*) FROM frames WHERE start_line = 0"), 2);
	/* 5+7 in the first hour, sealed (version 5) as stack 1 count 12; 11 in the newest */
	assert_int_equal(scalar("SELECT sum(count) FROM samples_1h"), 11);
	assert_int_equal(scalar("SELECT count(*) FROM samples_1h"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM samples_1h_packed"), 1);
	assert_int_equal(scalar("SELECT stacks = x'010c' FROM samples_1h_packed"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM sample_totals"), 3);

	/* the migrated file answers queries, through the roll-up too */
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p;
	assert_int_equal(ember_store_query(s, NULL, &p, err, sizeof(err)), 0);
	assert_int_equal(p->total, 23);
	assert_int_equal(p->n_stacks, 1);
	ember_profile_free(p);
	struct ember_timeline tl;
	assert_int_equal(ember_store_timeline(s, NULL, 3600 * SEC, 0, &tl, err, sizeof(err)), 0);
	assert_int_equal(tl.n, 2);
	assert_int_equal(tl.samples[0] + tl.samples[1], 23);
	ember_timeline_free(&tl);
	ember_store_close(s);
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

/* Random samples over three days; query totals equal the raw sums for random ranges. */
static void test_rollup_agrees(void **state)
{
	struct ember_store *s = open_store();
	char err[EMBER_STORE_ERRLEN];
	static const char *const versions[] = {"a", "b", "c"};
	enum { N = 600 };
	int64_t when[N];
	uint64_t counts[N];
	int ver[N];

	for (int i = 0; i < N; i++) {
		struct ember_profile *p = ember_profile_new();
		struct ember_frame f = {.function = "f", .module = "/bin/x",
					.address = next_rand() % 50};
		ver[i] = (int)(next_rand() % 3);
		struct ember_target t = {.pid = 1 + (uint32_t)(next_rand() % 4), .comm = "x",
					 .service = "x", .version = versions[ver[i]]};
		uint32_t tid = ember_profile_target(p, &t), fid = ember_profile_frame(p, &f);
		when[i] = T0 - 5 * HOUR + (int64_t)(next_rand() % (72 * 3600)) * SEC;
		counts[i] = 1 + next_rand() % 9;
		assert_int_equal(ember_profile_add(p, tid, &fid, 1, counts[i], 0), 0);
		if (ember_store_ingest(s, p, when[i], err, sizeof(err)))
			fail_msg("ingest: %s", err);
		ember_profile_free(p);
	}
	for (int r = 0; r < 200; r++) {
		int64_t a = T0 - 6 * HOUR + (int64_t)(next_rand() % (80 * 3600 * 1000)) * 1000000;
		int64_t b = a + (int64_t)(next_rand() % (30 * 3600 * 1000)) * 1000000 + 1;
		bool ab = r % 2;
		struct ember_selection sel = {.from_ns = r % 7 ? a : 0, .to_ns = r % 5 ? b : 0,
					      .versions = versions, .n_versions = ab ? 2 : 3,
					      .merge_targets = r % 3 == 0};
		uint64_t want = 0;
		for (int i = 0; i < N; i++) {
			int64_t bucket = when[i] / (10 * SEC) * (10 * SEC);
			if ((!sel.from_ns || bucket >= sel.from_ns / (10 * SEC) * (10 * SEC)) &&
			    (!sel.to_ns || bucket < sel.to_ns) && (!ab || ver[i] < 2))
				want += counts[i];
		}
		struct ember_profile *p;
		assert_int_equal(ember_store_query(s, &sel, &p, err, sizeof(err)), 0);
		if (p->total != want)
			fail_msg("range [%lld, %lld) %s: %llu samples, want %llu", (long long)sel.from_ns,
				 (long long)sel.to_ns, ab ? "a,b" : "all", (unsigned long long)p->total,
				 (unsigned long long)want);
		if (sel.merge_targets && p->n_stacks)
			assert_int_equal(p->n_targets, 1);
		ember_profile_free(p);

		struct ember_timeline tl;
		assert_int_equal(ember_store_timeline(s, &sel, 0, 50, &tl, err, sizeof(err)), 0);
		uint64_t sum = 0;
		for (size_t i = 0; i < tl.n; i++)
			sum += tl.samples[i];
		assert_int_equal(sum, want);
		assert_true(tl.n <= 51);
		ember_timeline_free(&tl);
	}
	ember_store_close(s);
}

static int count_rows(const struct ember_version_row *row, void *arg)
{
	uint64_t *n = arg;
	n[0]++;
	n[1] += row->samples;
	return 0;
}

static void test_versions_listing(void **state)
{
	struct ember_store *s = open_store();
	char err[EMBER_STORE_ERRLEN];
	uint64_t n[2] = {0, 0};

	for (int i = 0; i < 4; i++) {
		struct ember_profile *p = ember_profile_new();
		struct ember_frame f = {.function = "f"};
		struct ember_target t = {.pid = 10 + (uint32_t)i, .comm = "svc", .service = "svc",
					 .version = i < 3 ? "1.0" : "2.0"};
		uint32_t tid = ember_profile_target(p, &t), fid = ember_profile_frame(p, &f);
		assert_int_equal(ember_profile_add(p, tid, &fid, 1, 10, 0), 0);
		assert_int_equal(ember_store_ingest(s, p, T0 + i * HOUR, err, sizeof(err)), 0);
		ember_profile_free(p);
	}
	assert_int_equal(ember_store_list_versions(s, count_rows, n, err, sizeof(err)), 0);
	assert_int_equal(n[0], 2);
	assert_int_equal(n[1], 40);
	/* too many versions in a selection is refused, not truncated */
	const char *many[EMBER_STORE_MAX_VERSIONS + 1];
	for (int i = 0; i <= EMBER_STORE_MAX_VERSIONS; i++)
		many[i] = "x";
	struct ember_selection sel = {.versions = many, .n_versions = EMBER_STORE_MAX_VERSIONS + 1};
	struct ember_profile *p;
	assert_int_equal(ember_store_query(s, &sel, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "versions"));
	ember_store_close(s);
}

/* One sample of stack `fn` (a one-frame stack) at time t. */
static void ingest_one(struct ember_store *s, const char *fn, uint64_t count, int64_t t)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = ember_profile_new();
	struct ember_frame f = {.function = fn, .module = "/bin/x"};
	struct ember_target tg = {.pid = 1, .comm = "x", .service = "x", .version = "1"};
	uint32_t tid = ember_profile_target(p, &tg), fid = ember_profile_frame(p, &f);

	assert_int_equal(ember_profile_add(p, tid, &fid, 1, count, 0), 0);
	if (ember_store_ingest(s, p, t, err, sizeof(err)))
		fail_msg("ingest: %s", err);
	ember_profile_free(p);
}

static uint64_t query_total(struct ember_store *s)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p;
	uint64_t total;

	if (ember_store_query(s, NULL, &p, err, sizeof(err)))
		fail_msg("query: %s", err);
	total = p->total;
	ember_profile_free(p);
	return total;
}

static void test_seal_hours(void **state)
{
	struct ember_store *s = open_store();
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p;

	ingest_one(s, "a", 3, T0 + 10 * SEC);
	ingest_one(s, "b", 4, T0 + 20 * SEC);
	assert_int_equal(scalar("SELECT count(*) FROM samples_1h_packed"), 0);
	/* entering the next hour seals the first: its two rows become one packed row */
	ingest_one(s, "a", 5, T0 + HOUR + 10 * SEC);
	assert_int_equal(scalar("SELECT count(*) FROM samples_1h_packed"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM samples_1h WHERE hour_ns = 1699999200000000000"), 0);
	assert_int_equal(scalar("SELECT sum(count) FROM samples_1h"), 5);
	assert_int_equal(query_total(s), 12);
	/* late samples for the sealed hour merge into its packed row */
	ingest_one(s, "b", 6, T0 + 30 * SEC);
	ingest_one(s, "c", 1, T0 + 40 * SEC);
	assert_int_equal(scalar("SELECT count(*) FROM samples_1h_packed"), 1);
	assert_int_equal(scalar("SELECT sum(count) FROM samples_1h"), 5);
	assert_int_equal(query_total(s), 19);
	/* a whole-hour range reads only the packed row: a (3), b (4 + 6), c (1) */
	struct ember_selection sel = {.from_ns = T0, .to_ns = T0 + HOUR};
	assert_int_equal(ember_store_query(s, &sel, &p, err, sizeof(err)), 0);
	assert_int_equal(p->total, 14);
	assert_int_equal(p->n_stacks, 3);
	for (size_t i = 0; i < p->n_stacks; i++) {
		const char *fn = p->frames[p->stacks[i].frames[0]].function;
		uint64_t want = fn[0] == 'a' ? 3 : fn[0] == 'b' ? 10 : 1;
		assert_int_equal(p->stacks[i].count, want);
	}
	ember_profile_free(p);
	/* reopening knows nothing of the newest hour yet and seals nothing new */
	ember_store_close(s);
	s = open_store();
	ingest_one(s, "a", 1, T0 + HOUR + 50 * SEC);
	assert_int_equal(scalar("SELECT count(*) FROM samples_1h_packed"), 1);
	assert_int_equal(query_total(s), 20);

	/* a corrupt packed row (a zero stack distance) fails the query, naming it */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec(db, "UPDATE samples_1h_packed SET stacks = x'0003'");
	sqlite3_close(db);
	assert_int_equal(ember_store_query(s, NULL, &p, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "bad sealed hour"));
	ember_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollup_agrees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_hours, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
