/*
 * test_procmaps.c - /proc/PID/maps parsing: well-formed lines, special and
 * deleted paths, paths with spaces, escapes and malformed input, plus the
 * live maps of this very process.
 */
#include "testutil.h"

#include <errno.h>
#include <unistd.h>

#include "agent/procmaps.h"

static const char sample[] =
	"55d0c1a00000-55d0c1a02000 r--p 00000000 08:01 1311 /usr/bin/cat\n"
	"55d0c1a02000-55d0c1a07000 r-xp 00002000 08:01 1311 /usr/bin/cat\n"
	"55d0c2f4c000-55d0c2f6d000 rw-p 00000000 00:00 0                          [heap]\n"
	"7f1e2a000000-7f1e2a021000 rw-p 00000000 00:00 0 \n"
	"7f1e2a200000-7f1e2a3a0000 r-xp 00026000 fd:00 4242 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f1e2b000000-7f1e2b001000 r-xs 00001000 103:02 77 /tmp/my lib v2.so (deleted)\n"
	"7ffd6c1f2000-7ffd6c1f4000 r-xp 00000000 00:00 0                          [vdso]\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

static void test_parse_normal(void **state)
{
	struct ember_maps m = {0};

	assert_int_equal(ember_maps_parse(sample, strlen(sample), EMBER_MAPS_ALL, &m), 0);
	assert_int_equal(m.n, 8);
	assert_int_equal(m.malformed, 0);

	const struct ember_map_entry *e = &m.entries[1];
	assert_true(e->start == 0x55d0c1a02000ULL && e->end == 0x55d0c1a07000ULL);
	assert_int_equal(e->pgoff, 0x2000);
	assert_int_equal(e->perms, EMBER_MAP_READ | EMBER_MAP_EXEC | EMBER_MAP_PRIVATE);
	assert_int_equal(e->dev_major, 8);
	assert_int_equal(e->dev_minor, 1);
	assert_int_equal(e->inode, 1311);
	assert_string_equal(e->path, "/usr/bin/cat");
	assert_false(e->deleted);

	assert_string_equal(m.entries[2].path, "[heap]");
	assert_true(ember_map_is_special(&m.entries[2]));
	assert_string_equal(m.entries[3].path, ""); /* anonymous, trailing space */
	assert_int_equal(m.entries[4].dev_major, 0xfd);
	assert_int_equal(m.entries[4].pgoff, 0x26000);

	/* Shared mapping, hex device numbers, spaces in the path, deleted file. */
	e = &m.entries[5];
	assert_int_equal(e->perms, EMBER_MAP_READ | EMBER_MAP_EXEC);
	assert_int_equal(e->dev_major, 0x103);
	assert_int_equal(e->dev_minor, 2);
	assert_string_equal(e->path, "/tmp/my lib v2.so");
	assert_true(e->deleted);

	assert_string_equal(m.entries[6].path, "[vdso]");
	assert_true(m.entries[7].start == 0xffffffffff600000ULL);
	assert_int_equal(m.entries[7].perms, EMBER_MAP_EXEC | EMBER_MAP_PRIVATE);
	ember_maps_free(&m);
	assert_null(m.entries);
	assert_int_equal(m.n, 0);
}

static void test_exec_filter_and_find(void **state)
{
	struct ember_maps m = {0};

	assert_int_equal(ember_maps_parse(sample, strlen(sample), EMBER_MAPS_EXEC_ONLY, &m), 0);
	assert_int_equal(m.n, 5);
	for (size_t i = 0; i < m.n; i++)
		assert_true(m.entries[i].perms & EMBER_MAP_EXEC);

	const struct ember_map_entry *e = ember_maps_find(&m, 0x7f1e2a200000ULL + 0x1234);
	assert_non_null(e);
	assert_string_equal(e->path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
	assert_ptr_equal(ember_maps_find(&m, 0x55d0c1a02000ULL), &m.entries[0]);
	assert_null(ember_maps_find(&m, 0x55d0c1a07000ULL)); /* end is exclusive */
	assert_null(ember_maps_find(&m, 0x1000));
	assert_null(ember_maps_find(&m, UINT64_MAX));
	ember_maps_free(&m);
}

static void test_malformed_lines(void **state)
{
	static const char bad[] =
		"garbage\n"
		"\n"
		"1000-2000 r-xp 00000000 08:01 12 /ok/one\n"
		"2000-1000 r-xp 00000000 08:01 12 /end/before/start\n"
		"3000-4000 rwzp 00000000 08:01 12 /bad/perms\n"
		"3000-4000 r-xq 00000000 08:01 12 /bad/share\n"
		"11111111111111111-4000 r-xp 00000000 08:01 12 /too/many/digits\n"
		"3000-4000 r-xp 00000000 0801 12 /no/colon\n"
		"3000-4000 r-xp 00000000 08:01\n"
		"3000-4000 r-xp 00000000 08:01 99999999999999999999999 /inode/overflow\n"
		"3000-4000 r-xp 00000000 08:01 12x /junk/after/inode\n"
		"3000-4000 r-x\n"
		"3000-\n"
		"5000-6000 r-xp 00001000 08:01 13 /ok/two\n"
		"7000-8000 r-xp"; /* truncated at the end of the buffer */
	struct ember_maps m = {0};

	assert_int_equal(ember_maps_parse(bad, strlen(bad), EMBER_MAPS_ALL, &m), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.malformed, 12);
	assert_string_equal(m.entries[0].path, "/ok/one");
	assert_string_equal(m.entries[1].path, "/ok/two");
	ember_maps_free(&m);
}

static void test_empty_and_odd_input(void **state)
{
	struct ember_maps m = {0};

	assert_int_equal(ember_maps_parse("", 0, EMBER_MAPS_ALL, &m), 0);
	assert_int_equal(m.n, 0);
	assert_int_equal(m.malformed, 0);

	/* Not NUL-terminated: the parser must stop at len. */
	char buf[] = {'1', '0', '-', '2', '0', ' ', 'r', '-', 'x', 'p', ' ', '0', ' ', '0', ':',
		      '0', ' ', '0', ' ', '/', 'x'};
	assert_int_equal(ember_maps_parse(buf, sizeof(buf), EMBER_MAPS_ALL, &m), 0);
	assert_int_equal(m.n, 1);
	assert_string_equal(m.entries[0].path, "/x");

	/* Embedded NUL bytes are just malformed lines. */
	static const char nul[] = "1000-2000 r-xp 0 0:0 0 /a\n\0\0\0\n3000-4000 r-xp 0 0:0 0 /b\n";
	assert_int_equal(ember_maps_parse(nul, sizeof(nul) - 1, EMBER_MAPS_ALL, &m), 0);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.malformed, 1);
	ember_maps_free(&m);
}

static void test_escapes_long_paths_and_order(void **state)
{
	struct ember_maps m = {0};
	char *text;
	size_t text_len;
	size_t long_len = 6000;
	char *long_path = malloc(long_len + 2);

	assert_non_null(long_path);
	long_path[0] = '/';
	memset(long_path + 1, 'a', long_len);
	long_path[long_len + 1] = '\0';

	text = malloc(long_len + 512);
	assert_non_null(text);
	text_len = (size_t)sprintf(text,
				   "9000-a000 r-xp 00000000 08:01 5 /dir/new\\012line.so\n"
				   "1000-2000 r-xp 00000000 08:01 6 %s\n"
				   "5000-6000 r-xp 00000000 08:01 7 /odd\\path (deleted)\n",
				   long_path);
	assert_int_equal(ember_maps_parse(text, text_len, EMBER_MAPS_ALL, &m), 0);
	assert_int_equal(m.n, 3);
	/* Sorted by start even though the input was not. */
	assert_int_equal(m.entries[0].start, 0x1000);
	assert_int_equal(m.entries[1].start, 0x5000);
	assert_int_equal(m.entries[2].start, 0x9000);
	assert_string_equal(m.entries[0].path, long_path);
	assert_string_equal(m.entries[1].path, "/odd\\path");
	assert_true(m.entries[1].deleted);
	assert_string_equal(m.entries[2].path, "/dir/new\nline.so");
	assert_non_null(ember_maps_find(&m, 0x9abc));
	ember_maps_free(&m);
	free(text);
	free(long_path);
}

__attribute__((noinline)) static int maps_probe(int x)
{
	return x * 3 + 1;
}

static void test_read_own_pid(void **state)
{
	struct ember_maps m = {0};
	int (*volatile fn)(int) = maps_probe;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	assert_true(n > 0);
	exe[n] = '\0';
	assert_int_equal(fn(1), 4);
	assert_int_equal(ember_maps_read_pid((uint32_t)getpid(), EMBER_MAPS_EXEC_ONLY, &m), 0);
	assert_true(m.n >= 2);
	const struct ember_map_entry *e = ember_maps_find(&m, (uint64_t)(uintptr_t)fn);
	assert_non_null(e);
	assert_true(e->perms & EMBER_MAP_EXEC);
	assert_string_equal(e->path, exe);
	assert_true(e->inode != 0);
	ember_maps_free(&m);

	/* pid_max is at most 2^22: this pid cannot exist. */
	assert_int_equal(ember_maps_read_pid(99999999u, EMBER_MAPS_ALL, &m), -ESRCH);
	assert_int_equal(m.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_normal),
		cmocka_unit_test(test_exec_filter_and_find),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_empty_and_odd_input),
		cmocka_unit_test(test_escapes_long_paths_and_order),
		cmocka_unit_test(test_read_own_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
