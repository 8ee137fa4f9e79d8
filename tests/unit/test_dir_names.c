/*
 * test_dir_names.c - the cached directory listing: the names match what
 * ls would say (the oracle is the file system as the test made it), sorted
 * prefix search, a re-read only when the directory changed, and a change
 * made right after a listing is not missed.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dir_names.h"

static void touch(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
}

/* Push the directory's mtime into the past so the listing is not "racy". */
static void age_dir(const char *dir, time_t secs)
{
	struct timespec times[2] = {{.tv_sec = time(NULL) - secs}, {.tv_sec = time(NULL) - secs}};
	assert_int_equal(utimensat(AT_FDCWD, dir, times, 0), 0);
}

static bool has(const struct ember_dir_names *d, const char *name)
{
	size_t i = ember_dir_names_lower_bound(d, name);
	return i < d->n && strcmp(d->names[i], name) == 0;
}

static void test_listing_and_prefix(void **state)
{
	char dir[4096];
	struct ember_dir_names d;

	assert_int_equal(test_mkdtemp(dir, sizeof(dir), "/tmp", "dirnames"), 0);
	touch(dir, "bbb-2.rows.zst");
	touch(dir, "aaa-1.rows.zst");
	touch(dir, "bbb-1.rows.zst");
	touch(dir, ".bbb-3.rows.zst.0123.tmp"); /* a temporary being written: not a name */
	touch(dir, "ccc-1.rows.zst");
	age_dir(dir, 100);

	assert_int_equal(ember_dir_names_init(&d, dir), 0);
	assert_int_equal(ember_dir_names_refresh(&d), 0);
	assert_int_equal(d.n, 4);
	for (size_t i = 1; i < d.n; i++)
		assert_true(strcmp(d.names[i - 1], d.names[i]) < 0);
	size_t i = ember_dir_names_lower_bound(&d, "bbb-");
	assert_string_equal(d.names[i], "bbb-1.rows.zst");
	assert_string_equal(d.names[i + 1], "bbb-2.rows.zst");
	assert_int_equal(ember_dir_names_lower_bound(&d, "zzz"), d.n);
	assert_int_equal(ember_dir_names_lower_bound(&d, ""), 0);

	/* unchanged: no second walk */
	assert_int_equal(ember_dir_names_refresh(&d), 0);
	assert_int_equal(ember_dir_names_refresh(&d), 0);
	assert_int_equal(d.reads, 1);

	/* a new file moves the mtime: seen at the next refresh */
	touch(dir, "bbb-9.rows.zst");
	assert_int_equal(ember_dir_names_refresh(&d), 0);
	assert_true(has(&d, "bbb-9.rows.zst"));
	assert_int_equal(d.reads, 2);

	/*
	 * Just changed: the listing is racy (a name created in the same clock
	 * tick would not move mtime), so it is read again even though the
	 * mtime stays the same.  Simulate the missed tick: add a name, then
	 * put the mtime back to what the listing saw.
	 */
	assert_true(d.racy);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	struct timespec seen[2] = {st.st_mtim, st.st_mtim};
	touch(dir, "ddd-1.rows.zst");
	assert_int_equal(utimensat(AT_FDCWD, dir, seen, 0), 0);
	assert_int_equal(ember_dir_names_refresh(&d), 0);
	assert_true(has(&d, "ddd-1.rows.zst"));

	/* a removed directory is an error, not stale names */
	assert_int_equal(test_sh("rm -rf '%s'", dir), 0);
	assert_int_equal(ember_dir_names_refresh(&d), -ENOENT);
	assert_false(d.valid);
	ember_dir_names_free(&d);
	(void)state;
}

static void test_missing_directory(void **state)
{
	struct ember_dir_names d;

	assert_int_equal(ember_dir_names_init(&d, "/nonexistent/ember-dir-names"), 0);
	assert_int_equal(ember_dir_names_refresh(&d), -ENOENT);
	assert_int_equal(d.n, 0);
	assert_int_equal(ember_dir_names_lower_bound(&d, "x"), 0);
	ember_dir_names_free(&d);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listing_and_prefix),
		cmocka_unit_test(test_missing_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
