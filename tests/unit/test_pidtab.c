/*
 * test_pidtab.c - the pid -> value index: against a plain array as the
 * oracle under random inserts, overwrites and deletes (deletion shifts
 * probe runs back, the part that is easy to get wrong), growth, pid 0.
 */
#include "testutil.h"

#include <errno.h>

#include "agent/pidtab.h"

#define SPACE 5000 /* pids 1..SPACE-1: dense enough for long probe runs */

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void check_all(const struct ember_pidtab *t, const int64_t *oracle, size_t expect_n)
{
	size_t n = 0;

	for (uint32_t pid = 1; pid < SPACE; pid++) {
		uint32_t v;
		bool got = ember_pidtab_get(t, pid, &v);
		assert_int_equal(got, oracle[pid] >= 0);
		if (got) {
			assert_int_equal(v, (uint32_t)oracle[pid]);
			n++;
		}
	}
	assert_int_equal(n, expect_n);
	assert_int_equal(t->n, expect_n);
}

static void test_random_against_array(void **state)
{
	struct ember_pidtab t = {0};
	static int64_t oracle[SPACE];
	size_t n = 0;

	for (size_t i = 0; i < SPACE; i++)
		oracle[i] = -1;
	for (int round = 0; round < 200000; round++) {
		uint32_t pid = 1 + rnd() % (SPACE - 1), op = rnd() % 3;
		if (op < 2) {
			uint32_t v = rnd();
			assert_int_equal(ember_pidtab_set(&t, pid, v), 0);
			if (oracle[pid] < 0)
				n++;
			oracle[pid] = v;
		} else {
			bool had = oracle[pid] >= 0;
			assert_int_equal(ember_pidtab_del(&t, pid), had);
			if (had)
				n--;
			oracle[pid] = -1;
		}
		if (round % 20000 == 0)
			check_all(&t, oracle, n);
	}
	check_all(&t, oracle, n);
	/* never more than 3/4 full */
	assert_true(t.n * 4 <= (t.mask + 1) * 3);
	ember_pidtab_free(&t);
	assert_int_equal(t.n, 0);
}

static void test_empty_and_pid_zero(void **state)
{
	struct ember_pidtab t = {0};
	uint32_t v;

	assert_false(ember_pidtab_get(&t, 7, &v));
	assert_false(ember_pidtab_del(&t, 7));
	assert_int_equal(ember_pidtab_set(&t, 0, 1), -EINVAL);
	assert_false(ember_pidtab_get(&t, 0, &v));
	assert_int_equal(ember_pidtab_set(&t, 7, 70), 0);
	assert_int_equal(ember_pidtab_set(&t, 7, 71), 0); /* overwrite, not a second key */
	assert_int_equal(t.n, 1);
	assert_true(ember_pidtab_get(&t, 7, &v));
	assert_int_equal(v, 71);
	ember_pidtab_free(&t);
}

/* Churn: a window of live pids sliding over a million pids keeps the table small. */
static void test_sliding_window(void **state)
{
	struct ember_pidtab t = {0};
	const uint32_t window = 1000;

	for (uint32_t pid = 1; pid < 1000000; pid++) {
		assert_int_equal(ember_pidtab_set(&t, pid, pid ^ 0x5a5a), 0);
		if (pid > window)
			assert_true(ember_pidtab_del(&t, pid - window));
	}
	assert_int_equal(t.n, window);
	assert_true(t.mask + 1 <= 4096); /* sized by what is held, not by what passed */
	for (uint32_t pid = 1000000 - window; pid < 1000000; pid++) {
		uint32_t v;
		assert_true(ember_pidtab_get(&t, pid, &v));
		assert_int_equal(v, pid ^ 0x5a5a);
	}
	ember_pidtab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_array),
		cmocka_unit_test(test_empty_and_pid_zero),
		cmocka_unit_test(test_sliding_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
