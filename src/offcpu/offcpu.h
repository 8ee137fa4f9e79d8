/*
 * offcpu.h - off-CPU profiles: where threads wait, in nanoseconds (bpf/offcpu/).
 *
 * The tracer rides on an open sampler (agent/profiler.h): it shares its
 * process filter, unwind tables and event buffer, so the sampler's poll
 * loads the tables of processes that only ever sleep too.  The sampler's
 * perf events need not be started: `ember record --type offcpu` opens the
 * sampler for its tables alone.
 *
 * ember_offcpu_drain() hands over every (pid, user stack, kernel stack)
 * with the time its threads spent blocked there since the last drain, as
 * ember_raw_sample whose count is nanoseconds.
 */
#ifndef EMBER_OFFCPU_H
#define EMBER_OFFCPU_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/profiler.h"
#include "ember_offcpu.h"

struct ember_offcpu;

struct ember_offcpu_opts {
	uint64_t min_block_ns;      /* shorter waits are not recorded (0: 1 ms) */
	unsigned max_walks_per_sec; /* stack walks per CPU per second (0: 1000) */
};

/* Load and attach to sched_switch.  On failure a negative errno and a message in err. */
int ember_offcpu_open(struct ember_profiler *pr, const struct ember_offcpu_opts *opts,
		      struct ember_offcpu **out, char *err, size_t errlen);
void ember_offcpu_close(struct ember_offcpu *oc);

/* Swap generations and pass every wait of the old one to fn (count in ns).  Returns ns drained. */
long long ember_offcpu_drain(struct ember_offcpu *oc, ember_sample_fn fn, void *arg);

struct ember_offcpu_stats {
	uint64_t counters[EMBER_OFFCPU__COUNT]; /* enum ember_offcpu_stat, summed over CPUs */
	uint64_t walk[EMBER_STAT__COUNT];       /* the walk's own (enum ember_stat) */
	uint64_t stack_gone;                    /* drained keys whose stack was evicted */
	uint64_t run_cnt, run_ns;               /* program runs and time (kernel.bpf_stats_enabled) */
};
void ember_offcpu_stats(struct ember_offcpu *oc, struct ember_offcpu_stats *st);

/* Print the counters (ember record --stats). */
void ember_offcpu_print_stats(struct ember_offcpu *oc, FILE *f);

#endif
