/*
 * test_proctrack.c - the process tracker: a pid is forgotten exactly once,
 * only at a collect (after the drain that carries its last samples),
 * whether its exit was reported or found by the life-check sweep; the
 * sweep's budget and recheck interval; CLOCK eviction when full; a flood
 * of exits; a pid reused by a new process.  Life and forgetting are fakes
 * the test controls.
 */
#include "testutil.h"

#include <errno.h>

#include "agent/proctrack.h"

#define NPIDS 64

struct world {
	bool dead[NPIDS];      /* what the fake alive() answers */
	unsigned forgets[NPIDS];
	unsigned checks;
};

static bool fake_alive(uint32_t pid, void *arg)
{
	struct world *w = arg;
	w->checks++;
	return !w->dead[pid];
}

static void fake_forget(uint32_t pid, void *arg)
{
	struct world *w = arg;
	w->forgets[pid]++;
}

/* One drain: the generation flips, samples are handed out, then the collect. */
static void drain(struct ember_proctrack *pt, int64_t now)
{
	ember_proctrack_drain_begins(pt);
	ember_proctrack_collect(pt, now);
}

static struct ember_proctrack *make(struct world *w, size_t max, size_t checks)
{
	struct ember_proctrack_opts o = {.max_pids = max,
					 .recheck_ns = 1000,
					 .checks_per_sweep = checks,
					 .alive = fake_alive,
					 .forget = fake_forget,
					 .arg = w};
	struct ember_proctrack *pt;
	assert_int_equal(ember_proctrack_new(&o, &pt), 0);
	return pt;
}

static void test_reported_exit_forgotten_once_at_collect(void **state)
{
	struct world w = {0};
	struct ember_proctrack *pt = make(&w, 16, 100);
	struct ember_proctrack_stats st;

	for (uint32_t pid = 1; pid <= 5; pid++)
		assert_int_equal(ember_proctrack_seen(pt, pid, true, 0), 0);
	ember_proctrack_exited(pt, 3);
	ember_proctrack_exited(pt, 3);  /* twice: still once */
	ember_proctrack_exited(pt, 42); /* never seen: ignored */
	assert_int_equal(w.forgets[3], 0); /* not before the drain */
	/* its last samples, drained after the exit, do not bring it back */
	ember_proctrack_seen(pt, 3, false, 10);
	drain(pt, 10);
	assert_int_equal(w.forgets[3], 1);
	assert_false(ember_proctrack_has(pt, 3));
	drain(pt, 20);
	assert_int_equal(w.forgets[3], 1);
	for (uint32_t pid = 1; pid <= 5; pid++)
		if (pid != 3)
			assert_int_equal(w.forgets[pid], 0);
	ember_proctrack_stats(pt, &st);
	assert_int_equal(st.tracked, 4);
	assert_int_equal(st.exits_reported, 1);
	assert_int_equal(st.forgotten, 1);
	assert_int_equal(st.reaped, 0);
	ember_proctrack_free(pt);
}

static void test_sweep_finds_unreported_exits(void **state)
{
	struct world w = {0};
	struct ember_proctrack *pt = make(&w, 16, 100);
	struct ember_proctrack_stats st;

	for (uint32_t pid = 1; pid <= 8; pid++)
		ember_proctrack_seen(pt, pid, true, 0);
	w.dead[2] = w.dead[7] = true; /* exited; the kernel said nothing */
	drain(pt, 5000);
	/* found dead now, forgotten at the next collect (after the next drain) */
	assert_int_equal(w.forgets[2] + w.forgets[7], 0);
	assert_int_equal(w.checks, 8);
	drain(pt, 5001); /* within recheck_ns: nothing checked again */
	assert_int_equal(w.forgets[2], 1);
	assert_int_equal(w.forgets[7], 1);
	assert_int_equal(w.checks, 8);
	drain(pt, 7000); /* recheck_ns passed: the 6 live ones again */
	assert_int_equal(w.checks, 14);
	ember_proctrack_stats(pt, &st);
	assert_int_equal(st.reaped, 2);
	assert_int_equal(st.tracked, 6);
	ember_proctrack_free(pt);
}

static void test_sweep_budget_covers_everyone_in_turn(void **state)
{
	struct world w = {0};
	struct ember_proctrack *pt = make(&w, 64, 5);

	for (uint32_t pid = 1; pid < 21; pid++)
		ember_proctrack_seen(pt, pid, true, 0);
	for (uint32_t pid = 1; pid < 21; pid++)
		w.dead[pid] = true;
	/* 20 dead pids, 5 checks a collect: all found within 4 collects, forgotten at the 5th */
	for (int i = 0; i < 4; i++) {
		unsigned before = w.checks;
		drain(pt, 5000 + i);
		assert_int_equal(w.checks - before, 5);
	}
	drain(pt, 6000);
	for (uint32_t pid = 1; pid < 21; pid++)
		assert_int_equal(w.forgets[pid], 1);
	assert_false(ember_proctrack_has(pt, 1));
	ember_proctrack_free(pt);
}

static void test_clock_eviction_spares_recently_seen(void **state)
{
	struct world w = {0};
	struct ember_proctrack *pt = make(&w, 4, 100);
	struct ember_proctrack_stats st;

	for (uint32_t pid = 1; pid <= 4; pid++)
		ember_proctrack_seen(pt, pid, true, 0);
	ember_proctrack_seen(pt, 5, true, 0); /* full: one goes (all were seen once: the oldest) */
	ember_proctrack_seen(pt, 2, false, 0); /* 2 is sampled again */
	ember_proctrack_seen(pt, 6, true, 0);  /* full again: 2 is spared, 3 goes */
	drain(pt, 0);
	assert_int_equal(w.forgets[1], 1);
	assert_int_equal(w.forgets[3], 1);
	assert_int_equal(w.forgets[2] + w.forgets[4] + w.forgets[5] + w.forgets[6], 0);
	ember_proctrack_stats(pt, &st);
	assert_int_equal(st.evicted, 2);
	assert_int_equal(st.tracked, 4);
	assert_int_equal(st.max, 4);
	ember_proctrack_free(pt);
}

static void test_exit_flood_is_bounded(void **state)
{
	struct world w = {0};
	struct ember_proctrack *pt = make(&w, 4, 100);
	struct ember_proctrack_stats st;

	/* 60 processes start and exit between two collects */
	for (uint32_t pid = 1; pid < 61; pid++) {
		ember_proctrack_seen(pt, pid, true, 0);
		ember_proctrack_exited(pt, pid);
		ember_proctrack_stats(pt, &st);
		assert_true(st.tracked <= 2 * 4); /* live + waiting, each at most max */
	}
	drain(pt, 0);
	for (uint32_t pid = 1; pid < 61; pid++)
		assert_int_equal(w.forgets[pid], 1);
	ember_proctrack_stats(pt, &st);
	assert_int_equal(st.tracked, 0);
	assert_int_equal(st.forgotten, 60);
	ember_proctrack_free(pt);
}

static void test_reused_pid_cancels_pending_exit(void **state)
{
	struct world w = {0};
	struct ember_proctrack *pt = make(&w, 8, 100);

	ember_proctrack_seen(pt, 9, true, 0);
	ember_proctrack_exited(pt, 9);
	ember_proctrack_seen(pt, 9, true, 0); /* exec of a new process with that pid */
	drain(pt, 0);
	assert_int_equal(w.forgets[9], 0);
	assert_true(ember_proctrack_has(pt, 9));
	ember_proctrack_free(pt);
}

static void test_exit_learnt_during_a_drain_waits(void **state)
{
	struct world w = {0};
	struct ember_proctrack *pt = make(&w, 8, 100);

	ember_proctrack_seen(pt, 4, true, 0);
	ember_proctrack_drain_begins(pt);
	ember_proctrack_exited(pt, 4); /* handled while the drain runs */
	ember_proctrack_collect(pt, 0);
	assert_int_equal(w.forgets[4], 0); /* samples after the flip are in the next drain */
	drain(pt, 0);
	assert_int_equal(w.forgets[4], 1);
	ember_proctrack_free(pt);
}

static void test_bad_options(void **state)
{
	struct ember_proctrack *pt;
	struct ember_proctrack_opts o = {0};

	assert_int_equal(ember_proctrack_new(&o, &pt), -EINVAL); /* forget is required */
	assert_int_equal(ember_proctrack_new(NULL, &pt), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reported_exit_forgotten_once_at_collect),
		cmocka_unit_test(test_sweep_finds_unreported_exits),
		cmocka_unit_test(test_sweep_budget_covers_everyone_in_turn),
		cmocka_unit_test(test_clock_eviction_spares_recently_seen),
		cmocka_unit_test(test_exit_flood_is_bounded),
		cmocka_unit_test(test_reused_pid_cancels_pending_exit),
		cmocka_unit_test(test_exit_learnt_during_a_drain_waits),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
