/*
 * test_store_file.c - the database file under a writer that must survive
 * it (store_file.c): truncated, removed, replaced, restored in place; a
 * reader of a truncated file gets an error, not SIGBUS; the file, WAL and
 * SHM are 0640; symlinks and world-readable leftovers are handled.
 *
 * The oracle for "resumed" is the sample total the store answers against
 * the counts this test ingested, and the file system (stat) for modes.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/profile.h"
#include "store/store.h"
#include "store/store_internal.h"

#define T0 1700000000000000000LL
#define SEC 1000000000LL

static char dir[256];

static const char *path_in(const char *name)
{
	return test_path(dir, name);
}

static int setup(void **state)
{
	umask(022);
	return test_mkdtemp(dir, sizeof(dir), "/tmp", "store-file");
}

static int teardown(void **state)
{
	return test_rmtree(dir);
}

/* A profile of `n` distinct stacks of 8 frames, `count` samples each. */
static struct ember_profile *profile(unsigned n, unsigned seed, uint64_t count)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 42, .comm = "app", .service = "svc", .version = "v1"};
	uint32_t ti = ember_profile_target(p, &t), frames[8];
	char name[64];

	for (unsigned i = 0; i < n; i++) {
		for (unsigned d = 0; d < 8; d++) {
			snprintf(name, sizeof(name), "fn_%u_%u_%u", seed, i, d);
			struct ember_frame f = {.function = name, .module = "/usr/bin/app",
						.address = 0x1000 + i * 16 + d};
			frames[d] = ember_profile_frame(p, &f);
		}
		assert_int_equal(ember_profile_add(p, ti, frames, 8, count, 0), 0);
	}
	p->period_ns = SEC / 19;
	return p;
}

static int ingest(struct ember_store *s, unsigned n, unsigned seed, int64_t t, char *err,
		  size_t errlen)
{
	struct ember_profile *p = profile(n, seed, 1);
	int ret = ember_store_ingest(s, p, t, err, errlen);

	ember_profile_free(p);
	return ret;
}

static uint64_t total(struct ember_store *s)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p;
	uint64_t n;

	if (ember_store_query(s, NULL, &p, err, sizeof(err)))
		fail_msg("query: %s", err);
	n = p->total;
	ember_profile_free(p);
	return n;
}

static struct ember_store *writer(const char *path)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *s;

	if (ember_store_open(path, &s, err, sizeof(err)))
		fail_msg("open %s: %s", path, err);
	return s;
}

/* Fill enough to span many pages, then check it is all there. */
static void fill(struct ember_store *s, unsigned rounds)
{
	char err[EMBER_STORE_ERRLEN];

	for (unsigned r = 0; r < rounds; r++)
		if (ingest(s, 200, r, T0 + r * 10 * SEC, err, sizeof(err)))
			fail_msg("ingest: %s", err);
}

static void test_truncated_to_zero(void **state)
{
	const char *path = path_in("zero.db");
	struct ember_store *s = writer(path);
	struct ember_store_file_stats fs;
	char err[EMBER_STORE_ERRLEN];

	fill(s, 10);
	assert_int_equal(total(s), 2000);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(ingest(s, 10, 99, T0 + 1000 * SEC, err, sizeof(err)), -EIO);
	print_message("%s\n", err);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "truncated"));
	assert_true(ember_store_damaged(s));
	/* nothing is read while damaged */
	struct ember_profile *p = NULL;
	assert_int_equal(ember_store_query(s, NULL, &p, err, sizeof(err)), -EIO);
	assert_int_equal(ingest(s, 10, 99, T0, err, sizeof(err)), -EIO);

	/* an empty file is an empty database: it goes on at once */
	assert_int_equal(ember_store_recover(s, err, sizeof(err)), 0);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "emptied"));
	assert_false(ember_store_damaged(s));
	assert_int_equal(ingest(s, 10, 99, T0 + 1000 * SEC, err, sizeof(err)), 0);
	assert_int_equal(total(s), 10); /* the new data only: no stale WAL replayed */
	ember_store_get_file_stats(s, &fs);
	assert_int_equal(fs.damaged, 1);
	assert_int_equal(fs.recovered, 1);
	assert_false(fs.is_damaged);
	ember_store_close(s);

	/* and the file is a sound database afterwards */
	s = writer(path);
	assert_int_equal(total(s), 10);
	ember_store_close(s);
}

static void test_truncated_then_removed(void **state)
{
	const char *path = path_in("cut.db");
	char wal[600];
	struct ember_store *s = writer(path);
	char err[EMBER_STORE_ERRLEN];
	struct stat st;

	fill(s, 10);
	assert_int_equal(truncate(path, 4096), 0);
	assert_int_equal(ingest(s, 10, 99, T0 + 1000 * SEC, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "truncated"));
	/* unchanged: still damaged, and said so */
	assert_int_equal(ember_store_recover(s, err, sizeof(err)), -EAGAIN);
	assert_non_null(strstr(err, "unchanged"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 4096); /* nothing was written into it */
	assert_int_equal(ember_store_recover(s, err, sizeof(err)), -EAGAIN);

	/* truncated again: changed, but still not a database to use */
	assert_int_equal(truncate(path, 8192), 0);
	assert_true(ember_store_recover(s, err, sizeof(err)) < 0);
	print_message("still damaged: %s\n", err);
	assert_true(ember_store_damaged(s));

	/* removed: a new database */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ember_store_recover(s, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "removed"));
	assert_int_equal(ingest(s, 5, 7, T0 + 2000 * SEC, err, sizeof(err)), 0);
	assert_int_equal(total(s), 5);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(stat(wal, &st), 0);
	ember_store_close(s);
}

/* A backup restored by rename (new inode) or by copying over the file (same inode). */
static void test_replaced_and_restored(void **state)
{
	const char *path = path_in("live.db"), *backup = path_in("backup.db");
	char cmd[1200], err[EMBER_STORE_ERRLEN];
	struct ember_store *s;

	s = writer(backup);
	fill(s, 3); /* 600 samples */
	ember_store_close(s);

	s = writer(path);
	fill(s, 10);
	/* replaced while running, e.g. `mv backup.db live.db` */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s.new' && mv '%s.new' '%s'", backup, path, path, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ingest(s, 10, 99, T0 + 1000 * SEC, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "replaced"));
	assert_int_equal(ember_store_recover(s, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "replaced"));
	assert_int_equal(ingest(s, 10, 99, T0 + 1000 * SEC, err, sizeof(err)), 0);
	assert_int_equal(total(s), 610);

	/* truncated, then restored in place (`cp backup.db live.db` keeps the inode),
	 * with a reader of this process (the HTTP server's) connected throughout */
	struct ember_store *r = writer(path);
	assert_int_equal(total(r), 610);
	assert_int_equal(truncate(path, 4096), 0);
	assert_int_equal(ingest(s, 10, 98, T0 + 1010 * SEC, err, sizeof(err)), -EIO);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", backup, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ember_store_recover(s, err, sizeof(err)), 0);
	print_message("%s\n", err);
	assert_int_equal(ingest(s, 10, 98, T0 + 1010 * SEC, err, sizeof(err)), 0);
	assert_int_equal(total(s), 610); /* the backup's 600 and the new 10, no stale WAL */
	assert_int_equal(total(r), 610); /* the reader followed */
	ember_store_close(r);
	ember_store_close(s);
}

/* A reader whose file is truncated under it gets an error or old data, never SIGBUS. */
static void test_reader_survives_truncation(void **state)
{
	const char *path = path_in("read.db");
	struct ember_store *w = writer(path), *r;
	struct ember_store_file_stats fs;
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = NULL;

	fill(w, 30);
	ember_store_close(w); /* checkpointed into the file, WAL gone */
	r = writer(path);
	assert_int_equal(truncate(path, 4096), 0);
	int ret = ember_store_query(r, NULL, &p, err, sizeof(err));
	print_message("query of a truncated file: %d %s\n", ret, ret ? err : "");
	assert_int_not_equal(ret, 0); /* the pages are gone: an error, not a crash */
	ember_profile_free(p);
	ember_store_close(r);

	/* a reader follows the writer to the new file after removal */
	assert_int_equal(unlink(path), 0);
	w = writer(path);
	fill(w, 2);
	r = writer(path);
	assert_int_equal(total(r), 400);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ingest(w, 1, 1, T0, err, sizeof(err)), -EIO); /* removed */
	assert_int_equal(ember_store_recover(w, err, sizeof(err)), 0);
	assert_int_equal(ingest(w, 3, 5, T0, err, sizeof(err)), 0);
	assert_int_equal(total(r), 3); /* reconnected to the new file */
	ember_store_get_file_stats(r, &fs);
	assert_int_equal(fs.reopened, 1);
	ember_store_close(r);
	ember_store_close(w);
}

/*
 * The agent died of SIGBUS (issue [9], defect B): a read transaction had
 * the file mapped when it was truncated, and the next page it touched
 * was past the end of the file.  Without mmap the same reads return
 * pages from the cache, or an error.
 */
static void test_no_sigbus_mid_read(void **state)
{
	const char *path = path_in("mid.db");
	struct ember_store *w = writer(path), *r;
	sqlite3_stmt *st;
	int rc;

	fill(w, 40);
	ember_store_close(w);
	r = writer(path);
	assert_int_equal(sqlite3_exec(r->db, "BEGIN; SELECT count(*) FROM frames", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(truncate(path, 4096), 0);
	assert_int_equal(sqlite3_prepare_v2(r->db, "SELECT sum(length(function)) FROM frames"
						   " UNION ALL SELECT sum(length(frames)) FROM stacks",
					    -1, &st, NULL),
			 SQLITE_OK);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	print_message("reading a file truncated mid-transaction: %s\n", sqlite3_errstr(rc));
	sqlite3_finalize(st);
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	ember_store_close(r);
}

/*
 * Whether another process would see a lock on byte `off` of path (the
 * kernel's lock table: F_GETLK from a child, since a process never
 * conflicts with its own locks).
 */
static bool locked_for_others(const char *path, off_t off)
{
	int fds[2], fd;
	char c = 0;

	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};
		fd = open(path, O_RDWR);
		c = fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 'y' : 'n';
		if (write(fds[1], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(read(fds[0], &c, 1), 1);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	return c == 'y';
}

/*
 * Opening a second handle in the same process (the HTTP server's, while
 * the agent writes) checks the files; closing a descriptor of them would
 * drop every POSIX lock of the process on them, the first handle's too,
 * and another process would then rebuild the SHM and checkpoint over the
 * writer (a full disk made this a corrupt database).  SQLite holds a
 * shared lock on byte 128 of the SHM (its "DMS" lock) while connected.
 */
static void test_second_handle_keeps_locks(void **state)
{
	const char *path = path_in("locks.db");
	char shm[600];
	struct ember_store *w = writer(path), *r;

	fill(w, 1);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	assert_true(locked_for_others(shm, 128));
	r = writer(path);
	assert_int_equal(total(r), 200);
	assert_true(locked_for_others(shm, 128));
	ember_store_close(r);
	assert_true(locked_for_others(shm, 128)); /* the writer's lock, still */
	ember_store_close(w);
	assert_false(locked_for_others(shm, 128));
}

static void test_modes_and_links(void **state)
{
	const char *path = path_in("mode.db"), *victim = path_in("victim");
	const char *sides[] = {"", "-wal", "-shm"};
	char side[600], err[EMBER_STORE_ERRLEN];
	struct ember_store *s = writer(path), *t;
	struct stat st;

	fill(s, 1);
	for (int i = 0; i < 3; i++) {
		snprintf(side, sizeof(side), "%s%s", path, sides[i]);
		assert_int_equal(stat(side, &st), 0);
		print_message("%s: %o\n", side, st.st_mode & 0777);
		assert_int_equal(st.st_mode & 0777, 0640);
	}
	ember_store_close(s);

	/* a database an older Ember made world-readable is tightened on open */
	assert_int_equal(chmod(path, 0644), 0);
	s = writer(path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	ember_store_close(s);

	/* symlinks at the database or its WAL are refused, their target untouched */
	FILE *f = fopen(victim, "w");
	assert_non_null(f);
	fputs("precious", f);
	fclose(f);
	assert_int_equal(symlink(victim, path_in("link.db")), 0);
	assert_int_not_equal(ember_store_open(path_in("link.db"), &t, err, sizeof(err)), 0);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "symbolic link"));
	snprintf(side, sizeof(side), "%s-wal", path_in("w.db"));
	assert_int_equal(symlink(victim, side), 0);
	assert_int_not_equal(ember_store_open(path_in("w.db"), &t, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "-wal is a symbolic link"));
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncated_to_zero),
		cmocka_unit_test(test_truncated_then_removed),
		cmocka_unit_test(test_replaced_and_restored),
		cmocka_unit_test(test_reader_survives_truncation),
		cmocka_unit_test(test_no_sigbus_mid_read),
		cmocka_unit_test(test_second_handle_keeps_locks),
		cmocka_unit_test(test_modes_and_links),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
