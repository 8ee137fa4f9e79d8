/*
 * test_units.c - core/units.c: the durations and sizes options take.
 */
#include "testutil.h"

#include <errno.h>

#include "core/units.h"

#define SEC 1000000000LL

static void test_durations(void **state)
{
	int64_t ns;

	assert_int_equal(ember_parse_duration("14d", &ns), 0);
	assert_true(ns == 14 * 86400 * SEC);
	assert_int_equal(ember_parse_duration("48h", &ns), 0);
	assert_true(ns == 48 * 3600 * SEC);
	assert_int_equal(ember_parse_duration("90m", &ns), 0);
	assert_true(ns == 5400 * SEC);
	assert_int_equal(ember_parse_duration("2w", &ns), 0);
	assert_true(ns == 14 * 86400 * SEC);
	assert_int_equal(ember_parse_duration("0s", &ns), 0);
	assert_true(ns == 0);
	assert_int_equal(ember_parse_duration("14", &ns), -EINVAL);
	assert_int_equal(ember_parse_duration("d", &ns), -EINVAL);
	assert_int_equal(ember_parse_duration("1dd", &ns), -EINVAL);
	assert_int_equal(ember_parse_duration("-1d", &ns), -EINVAL);
	assert_int_equal(ember_parse_duration("1.5d", &ns), -EINVAL);
	assert_int_equal(ember_parse_duration("", &ns), -EINVAL);
	assert_int_equal(ember_parse_duration(NULL, &ns), -EINVAL);
	assert_int_equal(ember_parse_duration("36600d", &ns), 0);
	assert_int_equal(ember_parse_duration("36601000d", &ns), -ERANGE);
	assert_int_equal(ember_parse_duration("9999999999999999999999s", &ns), -ERANGE);
}

static void test_sizes(void **state)
{
	uint64_t b;

	assert_int_equal(ember_parse_size("2G", &b), 0);
	assert_true(b == 2ULL << 30);
	assert_int_equal(ember_parse_size("512MiB", &b), 0);
	assert_true(b == 512ULL << 20);
	assert_int_equal(ember_parse_size("100KB", &b), 0);
	assert_true(b == 102400);
	assert_int_equal(ember_parse_size("4096", &b), 0);
	assert_true(b == 4096);
	assert_int_equal(ember_parse_size("0", &b), 0);
	assert_true(b == 0);
	assert_int_equal(ember_parse_size("2X", &b), -EINVAL);
	assert_int_equal(ember_parse_size("G", &b), -EINVAL);
	assert_int_equal(ember_parse_size("1Gx", &b), -EINVAL);
	assert_int_equal(ember_parse_size("2097152T", &b), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
