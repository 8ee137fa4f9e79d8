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

#define EMBER_MAX_USER_DEPTH 256   /* frames per user stack */
#define EMBER_MAX_KERNEL_DEPTH 127 /* PERF_MAX_STACK_DEPTH */
#define EMBER_COMM_LEN 16

/* Flags on a user stack. */
#define EMBER_STACK_TRUNCATED (1u << 0)  /* depth limit hit: not the whole stack */
#define EMBER_STACK_READ_FAULT (1u << 1) /* a frame could not be read */
#define EMBER_STACK_KERNEL_MODE (1u << 2) /* sample landed in the kernel */
#define EMBER_STACK_COMPLETE (1u << 3)    /* reached the root (end-of-stack rule or ra 0) */
#define EMBER_STACK_FP_ONLY (1u << 4)     /* process has no tables yet: frame pointers only */
#define EMBER_STACK_ERROR (1u << 5)       /* stopped on an error (see the stats) */

/* Events from the kernel to the agent (perf buffer "events"). */
enum ember_event_type {
	EMBER_EVENT_REFRESH = 1, /* unknown process or pc outside its known mappings */
	EMBER_EVENT_EXIT = 2,    /* process exited */
	EMBER_EVENT_EXEC = 3,    /* process replaced its image */
};

struct ember_event {
	__u32 type;
	__u32 pid;
};

struct ember_stack_key {
	__u32 pid;            /* tgid: the process */
	__s32 kernel_stack_id; /* id in the kstacks map, < 0 when none */
	__u64 user_stack_hash; /* key in the ustacks map, 0 when none */
	__u64 req_id;         /* request the thread was serving (ember_spans.h), 0 = none */
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

/*
 * Validation mode: for a sample, the BPF program also sends user space the
 * user registers and a copy of the top of the user stack, with the pcs it
 * unwound itself, so a test can unwind the same snapshot with libunwind
 * and compare frame by frame.
 */
#define EMBER_SNAPSHOT_STACK 16384 /* bytes of stack copied from sp upward */

struct ember_stack_snapshot {
	__u32 pid, tid;
	__u64 ip, sp, bp;          /* user registers at the sample */
	__u32 stack_len;           /* bytes valid in stack[] (copy stops at a fault) */
	__u32 depth;               /* pcs[] entries Ember unwound */
	__u32 flags;               /* EMBER_STACK_* of Ember's unwind */
	__u32 pad;
	__u64 pcs[EMBER_MAX_USER_DEPTH]; /* Ember's frames, leaf first */
	__u8 stack[EMBER_SNAPSHOT_STACK]; /* memory at [sp, sp + stack_len) */
};

/*
 * `record --pid` filter, first level: a direct-mapped array indexed by
 * pid % EMBER_PID_SLOTS holding the wanted pid, 0 (no wanted pid there:
 * the sample is dropped with one inlined array load) or
 * EMBER_PID_SLOT_SHARED (several wanted pids share the slot: the `pids`
 * hash decides).
 */
#define EMBER_PID_SLOTS 4096
#define EMBER_PID_SLOT_SHARED 0xffffffffu

/* Counters in the per-CPU stats map, indexed by this enum. */
enum ember_stat {
	EMBER_STAT_SAMPLES,        /* program runs */
	EMBER_STAT_IDLE,           /* samples of the idle task, not recorded */
	EMBER_STAT_FILTERED,       /* samples of processes not selected */
	EMBER_STAT_RECORDED,       /* samples counted in a map */
	EMBER_STAT_KERNEL_THREAD,  /* samples of kernel threads (kernel stack only) */
	EMBER_STAT_USER_TRUNCATED, /* user stacks cut at EMBER_MAX_USER_DEPTH */
	EMBER_STAT_USER_READ_FAULT,/* a frame could not be read from user memory */
	EMBER_STAT_NO_USER_REGS,   /* user registers unavailable */
	EMBER_STAT_KSTACK_ERROR,   /* bpf_get_stackid failed (other than no kernel stack) */
	EMBER_STAT_MAP_FULL,       /* counts or stacks map full: sample dropped */
	EMBER_STAT_NO_PROC,        /* process without tables yet: frame pointers used */
	EMBER_STAT_NO_MAPPING,     /* pc outside the process's known mappings */
	EMBER_STAT_NO_ROW,         /* pc in a mapping with a table but no row (gap, index) */
	EMBER_STAT_UNSUPPORTED,    /* row with a rule the unwinder cannot follow */
	EMBER_STAT_NO_SHARD,       /* index points to a missing shard (space exhausted) */
	EMBER_STAT_FP_FRAMES,      /* frames unwound by frame pointer */
	EMBER_STAT_CFI_FRAMES,     /* frames unwound from tables */
	EMBER_STAT_COMPLETE,       /* stacks that reached the root */
	EMBER_STAT_TAIL_CALLS,     /* tail calls taken */
	EMBER_STAT_SNAPSHOTS,      /* validation snapshots sent */
	EMBER_STAT_GO_SWITCHES,    /* Go stack switches crossed (g0 -> goroutine, vDSO, signal) */
	EMBER_STAT_GO_SWITCH_FAILED, /* a Go stack switch that could not be crossed */
	EMBER_STAT_CODE_MAPPED,    /* files mapped executable: tables loaded at once */
	EMBER_STAT_IN_EXEC,        /* samples inside execve (no user image yet: kernel stack only) */
	EMBER_STAT_VMA_MAPPINGS,   /* frames of processes without `procs` entry unwound by file table */
	EMBER_STAT_EARLY_VMAS,     /* of those, found in the code mappings noted at exec and mmap */
	EMBER_STAT_VMA_BUSY,       /* bpf_find_vma refused (once per interrupt: irq_work busy) */
	EMBER_STAT__COUNT,
};

#ifndef __BPF__
static const char *const ember_stat_names[EMBER_STAT__COUNT] = {
	"samples",        "idle",           "filtered",        "recorded",
	"kernel_thread",  "user_truncated", "user_read_fault", "no_user_regs",
	"kstack_error",   "map_full",       "no_proc",         "no_mapping",
	"no_row",         "unsupported",    "no_shard",        "fp_frames",
	"cfi_frames",     "complete",       "tail_calls",      "snapshots",
	"go_switches",    "go_switch_failed", "code_mapped",     "in_exec",
	"vma_mappings",   "early_vmas",     "vma_busy",
};
#endif

#endif
