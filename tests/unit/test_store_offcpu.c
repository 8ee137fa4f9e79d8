/*
 * test_store_offcpu.c - profile types in the store (schema version 8).
 *
 * A CPU and an off-CPU profile of the same process are two targets; a
 * selection reads one type only (cpu by default), and the result says its
 * type; the target and version lists tell them apart.  A file of schema
 * version 7 (the targets table without profile_type, rebuilt here from a
 * new file as version 7 wrote it) migrates with its targets as cpu and
 * its samples still readable.
 */
#include "testutil.h"

#include <sqlite3.h>

#include "core/profile.h"
#include "store/store.h"

#define SEC 1000000000LL
#define T0 (1700000000LL * SEC)

static char path[64];

static int setup(void **state)
{
	return test_db_path(path, sizeof(path), "so");
}

static int teardown(void **state)
{
	test_db_remove(path);
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

/* One stack (leaf first) of `count` for process 42 "svc" 1.0, of the given type. */
static void ingest(struct ember_store *s, enum ember_profile_type type, const char *leaf,
		   uint64_t count)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 42, .comm = "svc", .service = "svc", .version = "1.0"};
	struct ember_frame f[2] = {{.function = leaf, .module = "/bin/svc"},
				   {.function = "main", .module = "/bin/svc"}};
	uint32_t ids[2];

	assert_non_null(p);
	p->type = type;
	uint32_t tid = ember_profile_target(p, &t);
	ids[0] = ember_profile_frame(p, &f[0]);
	ids[1] = ember_profile_frame(p, &f[1]);
	assert_int_equal(ember_profile_add(p, tid, ids, 2, count, T0), 0);
	if (ember_store_ingest(s, p, T0, err, sizeof(err)))
		fail_msg("ingest: %s", err);
	ember_profile_free(p);
}

static struct ember_profile *query(struct ember_store *s, enum ember_profile_type type)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_selection sel = {.type = type, .service = "svc"};
	struct ember_profile *p;

	if (ember_store_query(s, &sel, &p, err, sizeof(err)))
		fail_msg("query: %s", err);
	return p;
}

static int count_type(const struct ember_target_row *row, void *arg)
{
	int *n = arg;

	n[row->type]++;
	return 0;
}

static int version_totals(const struct ember_version_row *row, void *arg)
{
	uint64_t *v = arg;

	v[0] += row->samples;
	v[1] += row->offcpu_ns;
	return 0;
}

static void test_types_apart(void **state)
{
	struct ember_store *s = open_store();
	char err[EMBER_STORE_ERRLEN];

	ingest(s, EMBER_PROFILE_CPU, "compute", 10);
	ingest(s, EMBER_PROFILE_OFFCPU, "wait_for_lock", 5 * SEC);

	struct ember_profile *cpu = query(s, EMBER_PROFILE_CPU);
	assert_int_equal(cpu->type, EMBER_PROFILE_CPU);
	assert_int_equal(cpu->total, 10);
	assert_int_equal(cpu->n_stacks, 1);
	assert_string_equal(cpu->frames[cpu->stacks[0].frames[0]].function, "compute");
	ember_profile_free(cpu);

	struct ember_profile *off = query(s, EMBER_PROFILE_OFFCPU);
	assert_int_equal(off->type, EMBER_PROFILE_OFFCPU);
	assert_int_equal(off->total, 5 * SEC);
	assert_int_equal(off->n_stacks, 1);
	assert_string_equal(off->frames[off->stacks[0].frames[0]].function, "wait_for_lock");
	ember_profile_free(off);

	int types[EMBER_PROFILE__TYPES] = {0};
	assert_int_equal(ember_store_list_targets(s, count_type, types, err, sizeof(err)), 0);
	assert_int_equal(types[EMBER_PROFILE_CPU], 1);
	assert_int_equal(types[EMBER_PROFILE_OFFCPU], 1);
	uint64_t totals[2] = {0, 0};
	assert_int_equal(ember_store_list_versions(s, version_totals, totals, err, sizeof(err)), 0);
	assert_int_equal(totals[0], 10);
	assert_int_equal(totals[1], 5 * SEC);
	ember_store_close(s);
}

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

static void test_migrate_v7(void **state)
{
	struct ember_store *s = open_store();
	ingest(s, EMBER_PROFILE_CPU, "compute", 7);
	ember_store_close(s);

	/* back to version 7's targets table (no profile_type), rows kept */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec(db, "BEGIN;"
		 "CREATE TABLE targets_v7 ("
		 "  id INTEGER PRIMARY KEY, service TEXT NOT NULL, version TEXT NOT NULL,"
		 "  host TEXT NOT NULL, pid INTEGER NOT NULL, comm TEXT NOT NULL,"
		 "  exe TEXT NOT NULL, build_id TEXT NOT NULL, labels TEXT NOT NULL,"
		 "  first_seen_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL,"
		 "  UNIQUE (service, version, host, pid, comm, exe, build_id, labels));"
		 "INSERT INTO targets_v7 SELECT id, service, version, host, pid, comm, exe,"
		 "  build_id, labels, first_seen_ns, last_seen_ns FROM targets;"
		 "DROP TABLE targets;"
		 "ALTER TABLE targets_v7 RENAME TO targets;"
		 "CREATE INDEX targets_by_last_seen ON targets(last_seen_ns);"
		 /* and without version 9's TLS marks */
		 "ALTER TABLE spans DROP COLUMN tls;"
		 "ALTER TABLE spans_1h DROP COLUMN tls;"
		 "ALTER TABLE slow_spans DROP COLUMN tls;"
		 "PRAGMA user_version = 7;"
		 "COMMIT;");
	sqlite3_close(db);

	s = open_store(); /* migrates to 8 */
	struct ember_profile *cpu = query(s, EMBER_PROFILE_CPU);
	assert_int_equal(cpu->total, 7);
	ember_profile_free(cpu);
	struct ember_profile *off = query(s, EMBER_PROFILE_OFFCPU);
	assert_int_equal(off->total, 0);
	ember_profile_free(off);
	/* and the same process's off-CPU profile is a new target beside it */
	ingest(s, EMBER_PROFILE_OFFCPU, "wait", 3 * SEC);
	off = query(s, EMBER_PROFILE_OFFCPU);
	assert_int_equal(off->total, 3 * SEC);
	ember_profile_free(off);
	cpu = query(s, EMBER_PROFILE_CPU);
	assert_int_equal(cpu->total, 7);
	ember_profile_free(cpu);
	ember_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_types_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v7, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
