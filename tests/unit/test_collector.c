/*
 * test_collector.c - the collector's per-pid target cache: names are kept
 * across profiles (and past the process's exit), a pid taking another's
 * slot counts as an eviction, and forgetting a pid drops its entry, which
 * is then worked out again from /proc.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/collector.h"
#include "core/profile.h"
#include "symbolizer/symbolizer.h"

static void add_sample(struct ember_collector *c, uint32_t pid)
{
	static const uint64_t pcs[1] = {0};
	struct ember_raw_sample s = {.pid = pid, .comm = "t", .count = 1,
				     .user_depth = 1, .user_pcs = pcs};
	ember_collector_add(&s, c);
}

static void test_forget_and_evictions(void **state)
{
	struct ember_symbolizer *sym = ember_symbolizer_new();
	struct ember_collector *c = ember_collector_new(sym);
	struct ember_profile *p = ember_profile_new();
	struct ember_collector_stats st;
	uint32_t self = (uint32_t)getpid();

	assert_non_null(c);
	ember_collector_set_profile(c, p, 0);
	add_sample(c, self);
	add_sample(c, self);
	ember_collector_stats(c, &st);
	assert_int_equal(st.processes, 1);
	assert_int_equal(st.samples, 2);

	/* a pid in the same slot (8192 apart) displaces it */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	add_sample(c, (uint32_t)child);
	ember_collector_stats(c, &st);
	uint64_t evictions = st.evictions;
	add_sample(c, (uint32_t)child + 8192); /* no such process: nothing cached, nothing kept */
	add_sample(c, (uint32_t)child);        /* read again */
	ember_collector_stats(c, &st);
	assert_int_equal(st.evictions, evictions + 1);

	/* forgetting drops the entry; an unknown pid is a no-op */
	ember_collector_forget(c, (uint32_t)child);
	ember_collector_forget(c, (uint32_t)child);
	ember_collector_forget(c, 4000000);
	ember_collector_stats(c, &st);
	assert_int_equal(st.forgotten, 1);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	uint64_t processes = st.processes;
	add_sample(c, (uint32_t)child); /* gone and forgotten: counted as new, named from the sample */
	ember_collector_stats(c, &st);
	assert_int_equal(st.processes, processes + 1);

	ember_collector_free(c);
	ember_profile_free(p);
	ember_symbolizer_free(sym);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forget_and_evictions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
