/*
 * test_safefile.c - core/safefile.c: files are written through fresh
 * temporaries renamed into place, never through anything planted at the
 * final or a temporary-looking path; modes are not world-readable; files
 * updated in place are checked; directories are made with their mode.
 *
 * The oracle is the file system itself (lstat, the victim file's bytes).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/safefile.h"

static char dir[256];

static const char *path_in(const char *name)
{
	return test_path(dir, name);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Entries in dir other than . and .. */
static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static int setup(void **state)
{
	umask(022);
	return test_mkdtemp(dir, sizeof(dir), "/tmp", "safefile");
}

static int teardown(void **state)
{
	return test_rmtree(dir);
}

static void test_write_mode_and_content(void **state)
{
	struct stat st;
	const char *p = path_in("report.html");

	assert_int_equal(ember_safefile_write(p, "hello", 5, EMBER_FILE_MODE, true), 0);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_string_equal(slurp(p), "hello");
	/* replaced whole, nothing left behind */
	assert_int_equal(ember_safefile_write(p, "bye", 3, 0600, false), 0);
	assert_string_equal(slurp(p), "bye");
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(entries(), 1);
	unlink(p);
}

/* A symlink at the final path and at the temporary names older code used. */
static void test_planted_symlinks_not_followed(void **state)
{
	char victim[512], out[512];
	const char *planted[] = {"X.tmp", ".X.tmp", "X.1.tmp", ".X.tmp.1"};
	struct stat st;

	snprintf(victim, sizeof(victim), "%s", path_in("victim"));
	snprintf(out, sizeof(out), "%s", path_in("X"));
	put(victim, "precious");
	for (size_t i = 0; i < sizeof(planted) / sizeof(planted[0]); i++)
		assert_int_equal(symlink(victim, path_in(planted[i])), 0);
	assert_int_equal(symlink(victim, out), 0);

	assert_int_equal(ember_safefile_write(out, "report", 6, EMBER_FILE_MODE, true), 0);
	assert_string_equal(slurp(victim), "precious");
	assert_int_equal(lstat(out, &st), 0);
	assert_true(S_ISREG(st.st_mode)); /* the symlink itself was replaced */
	assert_string_equal(slurp(out), "report");
	for (size_t i = 0; i < sizeof(planted) / sizeof(planted[0]); i++) {
		assert_int_equal(lstat(path_in(planted[i]), &st), 0);
		assert_true(S_ISLNK(st.st_mode));
		unlink(path_in(planted[i]));
	}
	/* a hard link at the final path is replaced too, not written through */
	unlink(out);
	assert_int_equal(link(victim, out), 0);
	assert_int_equal(ember_safefile_write(out, "again", 5, EMBER_FILE_MODE, true), 0);
	assert_string_equal(slurp(victim), "precious");
	assert_string_equal(slurp(out), "again");
	unlink(out);
	unlink(victim);
	assert_int_equal(entries(), 0);
}

static void test_stream_commit_and_abort(void **state)
{
	struct ember_safefile f;
	const char *p = path_in("folded.txt");
	FILE *fp;

	assert_int_equal(ember_safefile_begin(&f, p, EMBER_FILE_MODE), 0);
	fp = ember_safefile_stream(&f);
	assert_non_null(fp);
	fprintf(fp, "a;b 3\n");
	assert_int_equal(access(p, F_OK), -1); /* not there before the commit */
	assert_int_equal(ember_safefile_commit(&f, true), 0);
	assert_string_equal(slurp(p), "a;b 3\n");

	assert_int_equal(ember_safefile_begin(&f, p, EMBER_FILE_MODE), 0);
	fp = ember_safefile_stream(&f);
	fprintf(fp, "partial");
	ember_safefile_abort(&f);
	ember_safefile_abort(&f); /* twice is harmless */
	assert_string_equal(slurp(p), "a;b 3\n");
	unlink(p);
	assert_int_equal(entries(), 0);

	/* a path naming a directory, or in a missing one, fails with a code */
	assert_int_equal(ember_safefile_begin(&f, path_in("nodir/x"), 0600), -ENOENT);
	assert_int_equal(ember_safefile_begin(&f, "", 0600), -EISDIR);
}

static void test_check_in_place_files(void **state)
{
	const char *victim = path_in("victim"), *db = path_in("db"), *lnk = path_in("db-wal");
	const char *hard = path_in("db-shm"), *fifo = path_in("fifo");
	struct stat st;

	assert_int_equal(ember_safefile_create_excl(db, EMBER_FILE_MODE), 0);
	assert_int_equal(ember_safefile_create_excl(db, EMBER_FILE_MODE), -EEXIST);
	assert_int_equal(stat(db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	/* a world-readable file of ours is tightened */
	assert_int_equal(chmod(db, 0644), 0);
	assert_int_equal(ember_safefile_check(db, EMBER_FILE_MODE), 0);
	assert_int_equal(stat(db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	put(victim, "precious");
	assert_int_equal(symlink(victim, lnk), 0);
	assert_int_equal(ember_safefile_check(lnk, EMBER_FILE_MODE), -ELOOP);
	assert_int_equal(ember_safefile_create_excl(lnk, EMBER_FILE_MODE), -EEXIST);
	assert_int_equal(link(victim, hard), 0);
	assert_int_equal(ember_safefile_check(hard, EMBER_FILE_MODE), -EMLINK);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(ember_safefile_check(fifo, EMBER_FILE_MODE), -EINVAL);
	assert_int_equal(ember_safefile_check(path_in("none"), EMBER_FILE_MODE), -ENOENT);
	assert_string_equal(slurp(victim), "precious");
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644); /* not ours to change through a link */
	unlink(db);
	unlink(lnk);
	unlink(hard);
	unlink(fifo);
	unlink(victim);
}

static void test_mkdirs(void **state)
{
	const char *deep = path_in("a/b/c");
	char parent_of[600];
	struct stat st;

	assert_int_equal(ember_mkdirs(deep, EMBER_DIR_MODE), 0);
	assert_int_equal(ember_mkdirs(deep, EMBER_DIR_MODE), 0); /* exists: fine */
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0750);
	assert_int_equal(stat(path_in("a"), &st), 0);
	assert_int_equal(st.st_mode & 0007, 0);
	snprintf(parent_of, sizeof(parent_of), "%s/d/e/file.db", dir);
	assert_int_equal(ember_mkdirs_parent(parent_of, 0700), 0);
	assert_int_equal(stat(path_in("d/e"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* a file in the way */
	put(path_in("f"), "x");
	assert_int_equal(ember_mkdirs(path_in("f"), EMBER_DIR_MODE), -ENOTDIR);
	/* another user's symlink to a directory is not followed (root only) */
	if (geteuid() == 0) {
		assert_int_equal(symlink("/etc", path_in("evil")), 0);
		assert_int_equal(lchown(path_in("evil"), 65534, 65534), 0);
		assert_int_equal(ember_mkdirs(path_in("evil"), EMBER_DIR_MODE), -ELOOP);
		assert_int_equal(symlink(path_in("a"), path_in("mine")), 0);
		assert_int_equal(ember_mkdirs(path_in("mine"), EMBER_DIR_MODE), 0);
	} else {
		print_message("not root: the foreign symlink case is not checked\n");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_mode_and_content),
		cmocka_unit_test(test_planted_symlinks_not_followed),
		cmocka_unit_test(test_stream_commit_and_abort),
		cmocka_unit_test(test_check_in_place_files),
		cmocka_unit_test(test_mkdirs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
