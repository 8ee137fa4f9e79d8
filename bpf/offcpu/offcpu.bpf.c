// SPDX-License-Identifier: GPL-2.0
/*
 * offcpu.bpf.c - where threads wait: stacks of blocked threads, weighted by the time away.
 *
 * Attached to the sched_switch tracepoint (tp_btf: the task pointers and
 * prev_state come as arguments, and bpf_task_pt_regs is allowed).  At a
 * switch the previous task is still current, on its own kernel stack and
 * address space, so its user stack is walked right there:
 *
 *   ember_offcpu_switch  first closes the wait of `next` (if it was noted
 *                        blocked: now - start is added, in ns, to its key
 *                        in the active generation's counts map, unless
 *                        under min_block_ns); then, if `prev` leaves the
 *                        CPU asleep (not preempted, state interruptible or
 *                        uninterruptible), takes its kernel stack, its user
 *                        registers from its pt_regs, and tail-calls
 *   ember_offcpu_step    which unwinds FRAMES_PER_STEP frames per call with
 *                        the shared walk (ember_unwind_walk.h), then stores
 *                        the stacks and notes the thread in `pending`.
 *
 * Preempted threads are runnable, not waiting: their time until they run
 * again is CPU contention, counted apart (preempted, preempted_ns) and not
 * part of the profile.
 *
 * Bounded cost: at most max_walks_per_sec walks per CPU per second; a
 * block over the budget is noted without stacks and its time recorded under
 * the process alone (EMBER_OFFCPU_NOT_WALKED) and counted, not lost.  The
 * two tail-call programs are of the same type and attach point, as a
 * tracing program's prog array requires.
 *
 * The unwind tables, refresh_sent and events are the CPU sampler's maps,
 * shared by file descriptor before load (src/offcpu/offcpu.c).
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "ember_bpf_helpers.h"
#include "ember_offcpu.h"
#include "ember_profiler.h"
#include "ember_unwind.h"
#include "kernel_types.h"
#include "ember_unwind_walk.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_INTERRUPTIBLE_ 0x1
#define TASK_UNINTERRUPTIBLE_ 0x2

extern int LINUX_KERNEL_VERSION __kconfig;

/* Set by user space before load. */
const volatile __u8 filter_pids = 0;
const volatile __u64 min_block_ns = EMBER_OFFCPU_MIN_BLOCK_NS;
const volatile __u32 max_walks_per_sec = EMBER_OFFCPU_MAX_WALKS;

/* Flipped by user space (0 or 1) to double-buffer the counts maps. */
__u32 active_gen = 0;

/* The sampler's process filter (shared). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

#define OFFCPU_COUNTS_MAP(name)                                                           \
	struct {                                                                          \
		__uint(type, BPF_MAP_TYPE_HASH);                                          \
		__uint(max_entries, 16384);                                               \
		__type(key, struct ember_offcpu_key);                                     \
		__type(value, struct ember_offcpu_value);                                 \
	} name SEC(".maps")

OFFCPU_COUNTS_MAP(offcpu_counts0);
OFFCPU_COUNTS_MAP(offcpu_counts1);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct ember_user_stack);
} offcpu_ustacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct ember_kernel_stack);
} offcpu_kstacks SEC(".maps");

enum pending_state { PENDING_NONE, PENDING_BLOCKED, PENDING_PREEMPTED };

/* A thread off the CPU: since when, why, and where its time goes. */
struct pending {
	__u64 start_ns;
	__u32 state;        /* enum pending_state */
	__u32 short_streak; /* blocked waits in a row under min_block_ns */
	struct ember_offcpu_key key;
	char comm[EMBER_COMM_LEN];
};

/* tid -> its wait; LRU bounds threads that exit while away. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct pending);
} pending SEC(".maps");

/* Per CPU: the kernel stack being taken, and the walk budget's window. */
struct offcpu_scratch {
	struct ember_kernel_stack kstack;
	__u64 kernel_hash; /* of the stack being walked, 0 = none */
	__u64 window_ns;
	__u32 walks;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct offcpu_scratch);
} offcpu_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EMBER_OFFCPU__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} offcpu_stats SEC(".maps");

/* Slot 0: ember_offcpu_step (filled by user space after load). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} offcpu_progs SEC(".maps");

static __always_inline void offcpu_stat(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&offcpu_stats, &which);

	if (v)
		__sync_fetch_and_add(v, n);
}

/* Add a finished wait to the active generation. */
static __always_inline void record_wait(const struct pending *p, __u64 ns)
{
	void *counts = (active_gen & 1) ? (void *)&offcpu_counts1 : (void *)&offcpu_counts0;
	struct ember_offcpu_value *v = bpf_map_lookup_elem(counts, &p->key);

	if (!v) {
		struct ember_offcpu_value init = {0};
		__builtin_memcpy(init.comm, p->comm, sizeof(init.comm));
		bpf_map_update_elem(counts, &p->key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(counts, &p->key);
		if (!v) {
			offcpu_stat(EMBER_OFFCPU_MAP_FULL, 1);
			return;
		}
	}
	__sync_fetch_and_add(&v->ns, ns);
	__sync_fetch_and_add(&v->waits, 1);
	offcpu_stat(EMBER_OFFCPU_RECORDED, 1);
	offcpu_stat(EMBER_OFFCPU_RECORDED_NS, ns);
	if (p->key.flags & EMBER_OFFCPU_NOT_WALKED)
		offcpu_stat(EMBER_OFFCPU_RATE_LIMITED_NS, ns);
	if (p->key.flags & EMBER_OFFCPU_PREDICTED_SHORT)
		offcpu_stat(EMBER_OFFCPU_MISPREDICTED_NS, ns);
	/* keep the stacks recent in their LRU maps until they are drained */
	if (p->key.user_hash)
		bpf_map_lookup_elem(&offcpu_ustacks, &p->key.user_hash);
	if (p->key.kernel_hash)
		bpf_map_lookup_elem(&offcpu_kstacks, &p->key.kernel_hash);
}

/* `next` runs again: close its wait. */
static __always_inline void wake(__u32 tid, __u64 now)
{
	struct pending *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p || p->state == PENDING_NONE)
		return;
	__u64 ns = now > p->start_ns ? now - p->start_ns : 0;
	if (p->state == PENDING_PREEMPTED) {
		offcpu_stat(EMBER_OFFCPU_PREEMPTED_NS, ns);
	} else if (ns < min_block_ns) {
		offcpu_stat(EMBER_OFFCPU_SHORT, 1);
		offcpu_stat(EMBER_OFFCPU_SHORT_NS, ns);
		p->short_streak++;
	} else {
		record_wait(p, ns);
		p->short_streak = 0;
	}
	p->state = PENDING_NONE;
}

/*
 * Note the current thread as away from now on, for `state`, with key.
 * The thread's entry is updated in place (only the thread itself writes
 * it, at its own switches; its wake-up reads it at the next switch that
 * runs it): an LRU map update per switch costs more than the rest of the
 * program.  comm is read for a new entry only (and by the walk).
 */
static __always_inline void note_away(__u32 state, const struct ember_offcpu_key *key,
				      const char *comm)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &tid);

	if (p) {
		p->key = *key;
		if (comm)
			__builtin_memcpy(p->comm, comm, sizeof(p->comm));
		p->start_ns = bpf_ktime_get_ns();
		p->state = state;
		return;
	}
	struct pending n = {.state = state, .key = *key, .short_streak = 0};
	if (comm)
		__builtin_memcpy(n.comm, comm, sizeof(n.comm));
	else
		bpf_get_current_comm(n.comm, sizeof(n.comm));
	n.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&pending, &tid, &n, BPF_ANY))
		offcpu_stat(EMBER_OFFCPU_PENDING_FULL, 1);
}

/* Hash of a kernel stack (as the user stack's: FNV-1a over the pcs). */
static __always_inline __u64 kstack_hash(const struct ember_kernel_stack *k)
{
	__u64 h = 0xcbf29ce484222325ULL;

	for (int i = 0; i < EMBER_MAX_KERNEL_DEPTH; i++) {
		if (i >= k->depth)
			break;
		h = (h ^ k->pcs[i]) * 0x100000001b3ULL;
	}
	h ^= k->depth;
	return h ? h : 1;
}

/* The walk is over: store the stacks, note the thread blocked. */
static __always_inline void finish_block(struct unwind_state *st)
{
	__u32 zero = 0;
	struct offcpu_scratch *sc = bpf_map_lookup_elem(&offcpu_scratch, &zero);
	struct ember_offcpu_key key = {.pid = st->key.pid, .kernel_hash = sc ? sc->kernel_hash : 0};

	if (st->stack.depth >= EMBER_MAX_USER_DEPTH && !(st->stack.flags & EMBER_STACK_COMPLETE)) {
		st->stack.flags |= EMBER_STACK_TRUNCATED;
		count_stat(EMBER_STAT_USER_TRUNCATED);
	}
	if (st->stack.flags & EMBER_STACK_COMPLETE)
		count_stat(EMBER_STAT_COMPLETE);
	if (st->stack.depth) {
		__u64 h = st->hash ^ st->stack.depth ^ ((__u64)st->stack.flags << 56);
		key.user_hash = h ? h : 1;
		if (bpf_map_update_elem(&offcpu_ustacks, &key.user_hash, &st->stack, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&offcpu_ustacks, &key.user_hash)) {
			offcpu_stat(EMBER_OFFCPU_STACK_FAILED, 1);
			key.user_hash = 0;
		}
	}
	note_away(PENDING_BLOCKED, &key, (const char *)st->comm);
}

SEC("tp_btf/sched_switch")
int ember_offcpu_step(__u64 *ctx)
{
	__u32 zero = 0;
	struct unwind_state *st = bpf_map_lookup_elem(&state_map, &zero);

	if (!st)
		return 0;
	if (!unwind_frames(ctx, st)) {
		st->steps++;
		count_stat(EMBER_STAT_TAIL_CALLS);
		bpf_tail_call(ctx, &offcpu_progs, 0);
		/* tail call failed: record what we have */
	}
	finish_block(st);
	return 0;
}

/*
 * The state prev leaves in: the tracepoint's fourth argument since 5.18;
 * before, read from the task (`__state` since 5.14, `state` before).  The
 * verifier knows LINUX_KERNEL_VERSION and never sees the branch that does
 * not apply (ctx[3] does not exist before 5.18).
 */
static __always_inline __u32 prev_state_of(__u64 *ctx, struct task_struct___ember *prev)
{
	if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 18, 0))
		return (__u32)ctx[3];
	if (bpf_core_field_exists(prev->__state))
		return BPF_CORE_READ(prev, __state);
	return (__u32)BPF_CORE_READ((struct task_struct___ember_old *)prev, state);
}

/* The walk budget of this CPU: 1 when a walk may start now. */
static __always_inline int may_walk(struct offcpu_scratch *sc, __u64 now)
{
	if (now - sc->window_ns >= 1000000000ULL) {
		sc->window_ns = now;
		sc->walks = 0;
	}
	if (sc->walks >= max_walks_per_sec)
		return 0;
	sc->walks++;
	return 1;
}

SEC("tp_btf/sched_switch")
int ember_offcpu_switch(__u64 *ctx)
{
	int preempt = (int)ctx[0];
	struct task_struct___ember *prev = (void *)ctx[1];
	struct task_struct___ember *next = (void *)ctx[2];
	__u32 prev_state = prev_state_of(ctx, prev);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0;

	offcpu_stat(EMBER_OFFCPU_SWITCHES, 1);
	__u32 next_tid = BPF_CORE_READ(next, pid);
	if (next_tid)
		wake(next_tid, now);

	if (tid == 0)
		return 0; /* the idle task */
	if (filter_pids && !bpf_map_lookup_elem(&pids, &tgid))
		return 0;
	struct ember_offcpu_key key = {.pid = tgid};
	if (preempt || !(prev_state & (TASK_INTERRUPTIBLE_ | TASK_UNINTERRUPTIBLE_))) {
		/* runnable: it waits for a CPU, not for an event */
		offcpu_stat(EMBER_OFFCPU_PREEMPTED, 1);
		note_away(PENDING_PREEMPTED, &key, 0);
		return 0;
	}
	struct task_struct___ember *task = (void *)bpf_get_current_task();
	if (!BPF_CORE_READ(task, mm)) {
		offcpu_stat(EMBER_OFFCPU_KERNEL_THREADS, 1);
		return 0;
	}
	offcpu_stat(EMBER_OFFCPU_BLOCKS, 1);

	struct offcpu_scratch *sc = bpf_map_lookup_elem(&offcpu_scratch, &zero);
	struct unwind_state *st = bpf_map_lookup_elem(&state_map, &zero);
	if (!sc || !st)
		return 0;
	/*
	 * A thread whose last two waits were short (a ping-pong, a busy lock)
	 * most likely waits briefly again: its walk would be spent on a wait
	 * that is not recorded.  Not walked; if it is long after all, its time
	 * is kept without stacks (mispredicted_ns) and the next one is walked.
	 */
	struct pending *prevp = bpf_map_lookup_elem(&pending, &tid);
	if (prevp && prevp->short_streak >= 2) {
		offcpu_stat(EMBER_OFFCPU_PREDICTED, 1);
		key.flags = EMBER_OFFCPU_PREDICTED_SHORT;
		note_away(PENDING_BLOCKED, &key, 0);
		return 0;
	}
	if (!may_walk(sc, now)) {
		offcpu_stat(EMBER_OFFCPU_RATE_LIMITED, 1);
		key.flags = EMBER_OFFCPU_NOT_WALKED;
		note_away(PENDING_BLOCKED, &key, 0);
		return 0;
	}
	offcpu_stat(EMBER_OFFCPU_WALKS, 1);

	/* the kernel stack: where and why it waits */
	sc->kernel_hash = 0;
	long n = bpf_get_stack(ctx, sc->kstack.pcs, sizeof(sc->kstack.pcs), 0);
	if (n > 0) {
		sc->kstack.depth = (__u32)(n / sizeof(__u64));
		__u64 kh = kstack_hash(&sc->kstack);
		if (bpf_map_update_elem(&offcpu_kstacks, &kh, &sc->kstack, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&offcpu_kstacks, &kh))
			offcpu_stat(EMBER_OFFCPU_STACK_FAILED, 1);
		else
			sc->kernel_hash = kh;
	} else {
		count_stat(EMBER_STAT_KSTACK_ERROR);
	}

	st->key.pid = tgid;
	st->steps = 0;
	st->exact_pc = 1; /* the saved ip: a resume point or a faulting instruction */
	st->hash = 0xcbf29ce484222325ULL;
	st->stack.depth = 0;
	st->stack.flags = EMBER_STACK_KERNEL_MODE;
	st->fs_base = 0;
	st->go_switched = 0;
	bpf_get_current_comm(st->comm, sizeof(st->comm));
	int regs = get_task_user_regs(st);
	if (regs) {
		count_stat(regs == EMBER_USER_REGS_IN_EXEC ? EMBER_STAT_IN_EXEC
							   : EMBER_STAT_NO_USER_REGS);
		finish_block(st);
		return 0;
	}
	push_pc(st, st->ip);
	if (!bpf_map_lookup_elem(&procs, &tgid)) {
		st->stack.flags |= EMBER_STACK_FP_ONLY;
		count_stat(EMBER_STAT_NO_PROC);
		request_refresh(ctx, tgid);
	}
	bpf_tail_call(ctx, &offcpu_progs, 0);
	finish_block(st);
	return 0;
}
