/*
 * ember_profiler.h - structures shared by the profiler BPF program and user space.
 *
 * One definition, included by bpf/unwind/profiler.bpf.c and by src/agent/.
 * Only fixed-width types: the layout must be identical on both sides.
 *
 * Aggregation happens in the kernel.  A sample becomes a key
 * (pid, user stack hash, kernel stack id) whose count is bumped in the
 * counts map of the active generation; the user stack itself is stored once
 * per generation under its hash.  User space flips the generation, waits
 * for in-flight programs to finish, then drains and clears the inactive
 * generation's maps: double buffering, so nothing is lost while draining.
 */
#ifndef EMBER_BPF_PROFILER_H
#define EMBER_BPF_PROFILER_H

#include <linux/types.h>

#define EMBER_MAX_USER_DEPTH 128   /* frames per user stack */
#define EMBER_MAX_KERNEL_DEPTH 127 /* PERF_MAX_STACK_DEPTH */
#define EMBER_COMM_LEN 16

/* Flags on a user stack. */
#define EMBER_STACK_TRUNCATED (1u << 0)  /* depth limit hit: not the whole stack */
#define EMBER_STACK_READ_FAULT (1u << 1) /* a frame could not be read */
#define EMBER_STACK_KERNEL_MODE (1u << 2) /* sample landed in the kernel */

struct ember_stack_key {
	__u32 pid;            /* tgid: the process */
	__s32 kernel_stack_id; /* id in the kstacks map, < 0 when none */
	__u64 user_stack_hash; /* key in the ustacks map, 0 when none */
};

struct ember_user_stack {
	__u32 depth;
	__u32 flags;
	__u64 pcs[EMBER_MAX_USER_DEPTH]; /* pcs[0] is the leaf; callers are return addresses */
};

struct ember_count {
	__u64 count;
	char comm[EMBER_COMM_LEN]; /* thread name at the last sample */
};

/* Counters in the per-CPU stats map, indexed by this enum. */
enum ember_stat {
	EMBER_STAT_SAMPLES,        /* program runs */
	EMBER_STAT_IDLE,           /* samples of the idle task, not recorded */
	EMBER_STAT_FILTERED,       /* samples of processes not selected */
	EMBER_STAT_RECORDED,       /* samples counted in a map */
	EMBER_STAT_KERNEL_THREAD,  /* samples of kernel threads (kernel stack only) */
	EMBER_STAT_USER_TRUNCATED, /* user stacks cut at EMBER_MAX_USER_DEPTH */
	EMBER_STAT_USER_READ_FAULT,/* frame-pointer chain hit unreadable memory */
	EMBER_STAT_NO_USER_REGS,   /* user registers unavailable */
	EMBER_STAT_KSTACK_ERROR,   /* bpf_get_stackid failed (other than no kernel stack) */
	EMBER_STAT_MAP_FULL,       /* counts or stacks map full: sample dropped */
	EMBER_STAT__COUNT,
};

#ifndef __BPF__
static const char *const ember_stat_names[EMBER_STAT__COUNT] = {
	"samples",        "idle",           "filtered",      "recorded",
	"kernel_thread",  "user_truncated", "user_read_fault", "no_user_regs",
	"kstack_error",   "map_full",
};
#endif

#endif
