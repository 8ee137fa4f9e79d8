/*
 * test_store_readonly.c - ember_store_open_readonly(), the HTTP server's
 * query threads' connection: it reads what the writer wrote (also while
 * the writer goes on writing, WAL), several of them at once from several
 * threads, it cannot write, and it refuses what it cannot read (a missing
 * file, an empty one, a schema it does not know) with a message naming
 * the file.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include "core/profile.h"
#include "store/store.h"

#define T0 1700000000000000000LL
#define SEC 1000000000LL

static char tmpdir[64], path[128];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ember-test-ro-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(path, sizeof(path), "%s/ember.db", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];

	for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", NULL}; *sfx; sfx++) {
		snprintf(p, sizeof(p), "%s%s", path, *sfx);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/empty.db", tmpdir);
	unlink(p);
	return rmdir(tmpdir);
}

/* count samples of one stack main;work at time t */
static struct ember_profile *profile(uint64_t count)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 7, .comm = "app", .service = "app", .version = "1"};
	struct ember_frame fmain = {.function = "main", .module = "/bin/app", .address = 0x10};
	struct ember_frame fwork = {.function = "work", .module = "/bin/app", .address = 0x20};
	uint32_t tid, frames[2];

	assert_non_null(p);
	tid = ember_profile_target(p, &t);
	frames[0] = ember_profile_frame(p, &fwork);
	frames[1] = ember_profile_frame(p, &fmain);
	assert_int_equal(ember_profile_add(p, tid, frames, 2, count, 0), 0);
	return p;
}

static void ingest(struct ember_store *s, uint64_t count, int64_t t)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = profile(count);

	if (ember_store_ingest(s, p, t, err, sizeof(err)))
		fail_msg("ingest: %s", err);
	ember_profile_free(p);
}

static uint64_t total(struct ember_store *s)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_selection sel = {.merge_targets = true};
	struct ember_profile *p;
	uint64_t n;

	if (ember_store_query(s, &sel, &p, err, sizeof(err)))
		fail_msg("query: %s", err);
	n = p->total;
	ember_profile_free(p);
	return n;
}

static void test_reads_what_the_writer_writes(void **state)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *w, *r;

	assert_int_equal(ember_store_open(path, &w, err, sizeof(err)), 0);
	ingest(w, 5, T0);
	assert_int_equal(ember_store_open_readonly(path, &r, err, sizeof(err)), 0);
	assert_int_equal(total(r), 5);
	/* the writer goes on; the reader sees each commit */
	ingest(w, 3, T0 + 10 * SEC);
	assert_int_equal(total(r), 8);

	/* and cannot write itself */
	struct ember_profile *p = profile(1);
	err[0] = '\0';
	assert_int_equal(ember_store_ingest(r, p, T0, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, path));
	ember_profile_free(p);
	assert_int_equal(total(r), 8);
	ember_store_close(r);
	ember_store_close(w);

	/* the writer gone (WAL checkpointed and removed), a reader still opens */
	assert_int_equal(ember_store_open_readonly(path, &r, err, sizeof(err)), 0);
	assert_int_equal(total(r), 8);
	ember_store_close(r);
}

struct reader {
	pthread_t tid;
	int queries;
	uint64_t last;
	bool failed;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *r;
	struct ember_selection sel = {.merge_targets = true};

	if (ember_store_open_readonly(path, &r, err, sizeof(err))) {
		rd->failed = true;
		return NULL;
	}
	for (int i = 0; i < 50; i++) {
		struct ember_profile *p;
		if (ember_store_query(r, &sel, &p, err, sizeof(err))) {
			rd->failed = true;
			break;
		}
		if (p->total < rd->last) /* never goes back */
			rd->failed = true;
		rd->last = p->total;
		rd->queries++;
		ember_profile_free(p);
	}
	ember_store_close(r);
	return NULL;
}

/* Four readers on their own threads while the writer ingests. */
static void test_concurrent_readers(void **state)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *w;
	struct reader rd[4] = {0};

	assert_int_equal(ember_store_open(path, &w, err, sizeof(err)), 0);
	uint64_t before = total(w);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&rd[i].tid, NULL, reader_main, &rd[i]), 0);
	for (int i = 0; i < 50; i++)
		ingest(w, 1, T0 + (int64_t)(20 + i) * SEC);
	for (int i = 0; i < 4; i++) {
		pthread_join(rd[i].tid, NULL);
		assert_false(rd[i].failed);
		assert_int_equal(rd[i].queries, 50);
		assert_true(rd[i].last >= before && rd[i].last <= before + 50);
	}
	assert_int_equal(total(w), before + 50);
	ember_store_close(w);
}

static void test_refusals(void **state)
{
	char err[EMBER_STORE_ERRLEN], other[160];
	struct ember_store *r = NULL;
	sqlite3 *db;
	int fd;

	/* no file: nothing is created */
	snprintf(other, sizeof(other), "%s/missing.db", tmpdir);
	assert_int_equal(ember_store_open_readonly(other, &r, err, sizeof(err)), -ENOENT);
	assert_null(r);
	assert_non_null(strstr(err, other));
	assert_int_equal(access(other, F_OK), -1);

	/* an empty file holds no schema */
	snprintf(other, sizeof(other), "%s/empty.db", tmpdir);
	fd = open(other, O_CREAT | O_WRONLY | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_true(ember_store_open_readonly(other, &r, err, sizeof(err)) < 0);
	assert_null(r);
	assert_non_null(strstr(err, "schema version 0"));

	/* a schema newer than this code's */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(ember_store_open_readonly(path, &r, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "schema version 999"));
	assert_non_null(strstr(err, path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_what_the_writer_writes),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
