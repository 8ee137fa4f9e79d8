/*
 * ember_offcpu.h - structures shared by the off-CPU tracer (bpf/offcpu/) and user space.
 *
 * A thread that blocks (leaves the CPU asleep, interruptible or not) has
 * its user stack walked by the same unwinder as the CPU samples
 * (ember_unwind_walk.h) and its kernel stack taken; when it runs again, the
 * time it was away is added, in nanoseconds, to the key (pid, user stack,
 * kernel stack) in the active generation's counts map.  User space flips
 * the generation and drains the old one, as for the CPU samples.
 *
 * Stacks are not double-buffered: a thread may sleep across any number of
 * drains, so its stacks must outlive them.  They sit in LRU hash maps
 * under a 64-bit hash of their pcs, stored when the thread blocks and
 * looked up (and so kept recent) when it wakes; user space reads them at
 * the drain and never deletes them.  One evicted before its drain leaves
 * its time attributed to the process alone, counted (stack_gone).
 */
#ifndef EMBER_BPF_OFFCPU_H
#define EMBER_BPF_OFFCPU_H

#include <linux/types.h>

#include "ember_profiler.h"

#define EMBER_OFFCPU_MIN_BLOCK_NS 1000000ULL /* default: waits under 1 ms are not recorded */
#define EMBER_OFFCPU_MAX_WALKS 1000          /* default: stack walks per second per CPU */

/* Key flags. */
#define EMBER_OFFCPU_NOT_WALKED (1u << 0) /* stacks skipped by the walk rate limit */
#define EMBER_OFFCPU_PREDICTED_SHORT (1u << 1) /* not walked: the thread's last waits were short */

struct ember_offcpu_key {
	__u32 pid;          /* tgid */
	__u32 flags;        /* EMBER_OFFCPU_* */
	__u64 user_hash;    /* key in the offcpu ustacks map, 0 = none */
	__u64 kernel_hash;  /* key in the offcpu kstacks map, 0 = none */
};

struct ember_offcpu_value {
	__u64 ns;    /* time off the CPU */
	__u64 waits; /* blocks counted */
	char comm[EMBER_COMM_LEN];
};

struct ember_kernel_stack {
	__u32 depth;
	__u32 pad;
	__u64 pcs[EMBER_MAX_KERNEL_DEPTH]; /* leaf first */
};

/* Counters in the per-CPU offcpu_stats map. */
enum ember_offcpu_stat {
	EMBER_OFFCPU_SWITCHES,      /* sched_switch events seen */
	EMBER_OFFCPU_BLOCKS,        /* selected user threads that left the CPU asleep */
	EMBER_OFFCPU_WALKS,         /* stacks walked */
	EMBER_OFFCPU_RATE_LIMITED,  /* blocks not walked (rate limit) */
	EMBER_OFFCPU_RATE_LIMITED_NS, /* their time, recorded without stacks */
	EMBER_OFFCPU_RECORDED,      /* waits added to a counts map */
	EMBER_OFFCPU_RECORDED_NS,   /* their time */
	EMBER_OFFCPU_SHORT,         /* waits under the minimum block time, not recorded */
	EMBER_OFFCPU_SHORT_NS,      /* their time */
	EMBER_OFFCPU_PREEMPTED,     /* selected threads preempted while runnable (CPU contention) */
	EMBER_OFFCPU_PREEMPTED_NS,  /* time they waited for a CPU */
	EMBER_OFFCPU_KERNEL_THREADS, /* blocks of kernel threads, not recorded */
	EMBER_OFFCPU_FILTERED,      /* blocks of processes not selected */
	EMBER_OFFCPU_PENDING_FULL,  /* a blocked thread could not be noted (map full) */
	EMBER_OFFCPU_MAP_FULL,      /* counts map full: the wait's time is lost */
	EMBER_OFFCPU_STACK_FAILED,  /* a stack could not be stored (map full) */
	EMBER_OFFCPU_PREDICTED, /* blocks not walked: the thread's last two waits were short */
	EMBER_OFFCPU_MISPREDICTED_NS, /* time of those that were long after all (no stacks) */
	EMBER_OFFCPU__COUNT,
};

#ifndef __BPF__
static const char *const ember_offcpu_stat_names[EMBER_OFFCPU__COUNT] = {
	"switches",  "blocks",          "walks",        "rate_limited", "rate_limited_ns",
	"recorded",  "recorded_ns",     "short",        "short_ns",     "preempted",
	"preempted_ns", "kernel_threads", "filtered",   "pending_full", "map_full",
	"stack_failed", "predicted_short", "mispredicted_ns",
};
#endif

#endif
