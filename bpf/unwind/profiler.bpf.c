// SPDX-License-Identifier: GPL-2.0
/*
 * profiler.bpf.c - the perf-event sampler: walks user stacks, counts them in the kernel.
 *
 * Attached to a cpu-clock perf event on every CPU.  Each run:
 *   1. skips the idle task and processes outside the pid filter;
 *   2. finds the user registers (from the sample when it hit user mode, from
 *      the task's saved registers when it hit the kernel);
 *   3. walks the user stack by frame pointer in a bounded loop into a
 *      per-CPU scratch buffer (the DWARF unwinder of bpf/unwind/ will plug
 *      into this loop), hashing the pcs as it goes;
 *   4. takes the kernel stack with bpf_get_stackid();
 *   5. bumps the count of (pid, user stack, kernel stack) in the active
 *      generation's maps (see bpf/include/ember_profiler.h).
 *
 * Kernel features: everything here exists in 5.4 except the helpers used
 * behind bpf_core_enum_value_exists() checks, which fall back to older ones.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "ember_profiler.h"
#include "kernel_types.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u8 filter_pids = 0; /* 1: only pids in the `pids` map */
const volatile __u32 thread_size = 16384; /* x86_64 THREAD_SIZE (no KASAN) */

/* Flipped by user space (0 or 1) to double-buffer the aggregation maps. */
__u32 active_gen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

#define COUNTS_MAP(name)                                                                  \
	struct {                                                                          \
		__uint(type, BPF_MAP_TYPE_HASH);                                          \
		__uint(max_entries, 16384);                                               \
		__type(key, struct ember_stack_key);                                      \
		__type(value, struct ember_count);                                        \
	} name SEC(".maps")

#define USTACKS_MAP(name)                                                                 \
	struct {                                                                          \
		__uint(type, BPF_MAP_TYPE_HASH);                                          \
		__uint(max_entries, 8192);                                                \
		__type(key, __u64);                                                       \
		__type(value, struct ember_user_stack);                                   \
	} name SEC(".maps")

#define KSTACKS_MAP(name)                                                                 \
	struct {                                                                          \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                                   \
		__uint(max_entries, 4096);                                                \
		__uint(key_size, sizeof(__u32));                                          \
		__uint(value_size, EMBER_MAX_KERNEL_DEPTH * sizeof(__u64));               \
	} name SEC(".maps")

COUNTS_MAP(counts0);
COUNTS_MAP(counts1);
USTACKS_MAP(ustacks0);
USTACKS_MAP(ustacks1);
KSTACKS_MAP(kstacks0);
KSTACKS_MAP(kstacks1);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ember_user_stack);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EMBER_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count_stat(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += 1;
}

/* bpf_probe_read_user appeared in 5.5; older kernels only have bpf_probe_read. */
static __always_inline long read_user(void *dst, __u32 size, const void *src)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_probe_read_user))
		return bpf_probe_read_user(dst, size, src);
	return bpf_probe_read(dst, size, src);
}

struct user_regs {
	__u64 ip, sp, bp;
};

/*
 * The user registers of the current task.  In user mode they are the
 * sample's registers; in kernel mode they are the ones saved at kernel
 * entry, at the top of the task's kernel stack.
 */
static __always_inline int get_user_regs(struct bpf_perf_event_data *ctx, struct user_regs *out,
					 __u32 *flags)
{
	if ((ctx->regs.cs & 3) == 3) {
		out->ip = ctx->regs.rip;
		out->sp = ctx->regs.rsp;
		out->bp = ctx->regs.rbp;
		return 0;
	}

	*flags |= EMBER_STACK_KERNEL_MODE;
	struct task_struct___ember *task = (void *)bpf_get_current_task();
	struct pt_regs___ember *regs;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		regs = (void *)bpf_task_pt_regs((void *)bpf_get_current_task_btf());
	} else {
		/* x86_64: pt_regs sit at the very top of the kernel stack. */
		void *stack = BPF_CORE_READ(task, stack);
		if (!stack)
			return -1;
		regs = (void *)((char *)stack + thread_size) - bpf_core_type_size(struct pt_regs___ember);
	}
	out->ip = BPF_CORE_READ(regs, ip);
	out->sp = BPF_CORE_READ(regs, sp);
	out->bp = BPF_CORE_READ(regs, bp);
	return out->ip ? 0 : -1;
}

/*
 * Walk the frame-pointer chain: [bp] holds the caller's bp, [bp+8] the
 * return address.  Stops at a zero bp or return address, a chain that does
 * not move up the stack, or the depth limit.  Returns the stack hash.
 */
static __always_inline __u64 walk_frame_pointers(struct ember_user_stack *st,
						 const struct user_regs *regs)
{
	__u64 hash = 0xcbf29ce484222325ULL;
	__u64 bp = regs->bp;
	__u32 depth = 1;

	st->pcs[0] = regs->ip;
	hash = (hash ^ regs->ip) * 0x100000001b3ULL;

	for (int i = 1; i < EMBER_MAX_USER_DEPTH; i++) {
		__u64 frame[2]; /* saved bp, return address */

		if (!bp)
			break;
		if (read_user(frame, sizeof(frame), (void *)bp)) {
			st->flags |= EMBER_STACK_READ_FAULT;
			break;
		}
		if (!frame[1])
			break;
		st->pcs[i] = frame[1];
		depth = i + 1;
		hash = (hash ^ frame[1]) * 0x100000001b3ULL;
		if (frame[0] <= bp)
			break;
		bp = frame[0];
		if (i == EMBER_MAX_USER_DEPTH - 1)
			st->flags |= EMBER_STACK_TRUNCATED;
	}
	st->depth = depth;
	hash ^= depth;
	return hash ? hash : 1;
}

SEC("perf_event")
int ember_profile(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	__u32 zero = 0, gen = active_gen & 1;
	struct ember_stack_key key = {.pid = tgid, .kernel_stack_id = -1};
	struct ember_user_stack *st;
	struct user_regs regs;

	count_stat(EMBER_STAT_SAMPLES);
	if (tid == 0) {
		count_stat(EMBER_STAT_IDLE);
		return 0;
	}
	if (filter_pids && !bpf_map_lookup_elem(&pids, &tgid)) {
		count_stat(EMBER_STAT_FILTERED);
		return 0;
	}

	st = bpf_map_lookup_elem(&scratch, &zero);
	if (!st)
		return 0;
	st->depth = 0;
	st->flags = 0;

	struct task_struct___ember *task = (void *)bpf_get_current_task();
	if (!BPF_CORE_READ(task, mm)) {
		count_stat(EMBER_STAT_KERNEL_THREAD);
	} else if (get_user_regs(ctx, &regs, &st->flags) == 0) {
		key.user_stack_hash = walk_frame_pointers(st, &regs);
		if (st->flags & EMBER_STACK_TRUNCATED)
			count_stat(EMBER_STAT_USER_TRUNCATED);
		if (st->flags & EMBER_STACK_READ_FAULT)
			count_stat(EMBER_STAT_USER_READ_FAULT);
	} else {
		count_stat(EMBER_STAT_NO_USER_REGS);
	}

	long kid = gen ? bpf_get_stackid(ctx, &kstacks1, 0) : bpf_get_stackid(ctx, &kstacks0, 0);
	if (kid >= 0)
		key.kernel_stack_id = (__s32)kid;
	else if (kid != -14 /* -EFAULT: no kernel stack (user-mode sample) */)
		count_stat(EMBER_STAT_KSTACK_ERROR);

	if (key.user_stack_hash) {
		void *ustacks = gen ? (void *)&ustacks1 : (void *)&ustacks0;
		if (bpf_map_update_elem(ustacks, &key.user_stack_hash, st, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(ustacks, &key.user_stack_hash)) {
			count_stat(EMBER_STAT_MAP_FULL);
			return 0;
		}
	}

	void *counts = gen ? (void *)&counts1 : (void *)&counts0;
	struct ember_count *c = bpf_map_lookup_elem(counts, &key);
	if (c) {
		__sync_fetch_and_add(&c->count, 1);
	} else {
		struct ember_count init = {.count = 1};
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		if (bpf_map_update_elem(counts, &key, &init, BPF_NOEXIST)) {
			c = bpf_map_lookup_elem(counts, &key);
			if (!c) {
				count_stat(EMBER_STAT_MAP_FULL);
				return 0;
			}
			__sync_fetch_and_add(&c->count, 1);
		}
	}
	count_stat(EMBER_STAT_RECORDED);
	return 0;
}
