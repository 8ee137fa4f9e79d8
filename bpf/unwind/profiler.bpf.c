// SPDX-License-Identifier: GPL-2.0
/*
 * profiler.bpf.c - the perf-event sampler: unwinds user stacks, counts them in the kernel.
 *
 * Attached to a cpu-clock perf event on every CPU.  A sample goes through:
 *
 *   ember_profile       skips idle and unselected processes, finds the user
 *                       registers (the sample's in user mode, the task's
 *                       saved ones in kernel mode), takes the kernel stack,
 *                       puts the unwind state in a per-CPU scratch map and
 *                       tail-calls
 *   ember_unwind_step   which unwinds up to FRAMES_PER_STEP user frames and
 *                       tail-calls itself until the stack ends, the depth
 *                       limit is reached or the tail-call budget is spent;
 *                       then it counts (pid, user stack, kernel stack) in
 *                       the active generation's maps.
 *
 * Each frame is unwound one of two ways, chosen per PC range:
 *   - from the compiled CFI rows (bpf/include/ember_unwind.h): find the
 *     mapping of the pc in the process's sorted mappings, the chunk's rows
 *     through the index map, the row by a bounded binary search, then
 *     compute the CFA, read the return address at CFA-8 and restore rbp;
 *   - by frame pointer, where the mapping has no table (or the process has
 *     no tables yet: then the whole stack, and user space is told).
 *
 * Kernel features: everything here exists in 5.4 (bounded loops, tail
 * calls, map-in-map, perf buffers) except two helpers, used only when user
 * space found them working (src/agent/kfeatures.c) and said so in
 * read-only flags; the verifier treats those as constants and never looks
 * at the branch not taken, so a kernel without the helper (or, for
 * bpf_task_pt_regs, without BTF) still accepts the program.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "ember_bpf_helpers.h"
#include "ember_profiler.h"
#include "ember_spans.h"
#include "ember_unwind.h"
#include "kernel_types.h"
#include "ember_unwind_walk.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u8 filter_pids = 0;      /* 1: only pids in the `pids` map */
const volatile __u32 snapshot_every = 0;  /* validation: snapshot every Nth sample, 0 = off */

/* Flipped by user space (0 or 1) to double-buffer the aggregation maps. */
__u32 active_gen = 0;

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

/* pid % EMBER_PID_SLOTS -> wanted pid (ember_profiler.h): the filter's fast path */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EMBER_PID_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} pid_slots SEC(".maps");

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
		__uint(max_entries, 4096);                                                \
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
	__type(value, struct ember_stack_snapshot);
} snapshot_map SEC(".maps");



struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} snapshots SEC(".maps");

/*
 * Per-endpoint CPU (bpf/spans/, ember_spans.h): the request a thread is
 * serving goes into the sample's key; user space finds the request's
 * endpoint when it drains the sample, by then parsed.  Both are the span
 * object's maps, shared by file descriptor (bpf_map__reuse_fd) before load;
 * unshared, they stay empty.
 */
EMBER_SPAN_SHARED_MAPS;

/* Slot 0: ember_unwind_step (filled by user space after load). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} progs SEC(".maps");

/* ---- helpers ------------------------------------------------------------- */

/*
 * The user registers of the current task.  In user mode they are the
 * sample's registers; in kernel mode they are the ones saved at kernel
 * entry, at the top of the task's kernel stack.
 */
static __always_inline int get_user_regs(struct bpf_perf_event_data *ctx, struct unwind_state *st)
{
	if ((ctx->regs.cs & 3) == 3) {
		st->ip = ctx->regs.rip;
		st->sp = ctx->regs.rsp;
		st->bp = ctx->regs.rbp;
		return 0;
	}

	st->stack.flags |= EMBER_STACK_KERNEL_MODE;
	return get_task_user_regs(st);
}

/* ---- the end of a sample: snapshot (validation) and counting ---------------- */

static __always_inline void send_snapshot(void *ctx, struct unwind_state *st)
{
	__u32 zero = 0;
	struct ember_stack_snapshot *snap = bpf_map_lookup_elem(&snapshot_map, &zero);

	if (!snap)
		return;
	snap->pid = st->key.pid;
	snap->tid = (__u32)bpf_get_current_pid_tgid();
	snap->ip = st->ip0;
	snap->sp = st->sp0;
	snap->bp = st->bp0;
	snap->depth = st->stack.depth;
	snap->flags = st->stack.flags;
	snap->stack_len = 0;
	for (int i = 0; i < EMBER_MAX_USER_DEPTH; i++)
		snap->pcs[i] = st->stack.pcs[i];
	/*
	 * Copy up to the next page boundary, then whole pages until one
	 * faults: the top of the stack ends a page, and a piece straddling it
	 * would fault whole and lose the bytes below it.
	 */
	__u64 head = 4096 - (st->sp0 & 4095); /* 1..4096 */
	__u64 len = 0;
	if (head <= 4096 && read_user(snap->stack, head, (void *)st->sp0) == 0)
		len = head;
	for (int i = 0; i < EMBER_SNAPSHOT_STACK / 4096 - 1 && len; i++) {
		asm volatile("" : "+r"(len)); /* keep the bound below for the verifier */
		if (len > EMBER_SNAPSHOT_STACK - 4096)
			break;
		if (read_user(snap->stack + len, 4096, (void *)(st->sp0 + len)))
			break;
		len += 4096;
	}
	snap->stack_len = (__u32)len;
	bpf_perf_event_output(ctx, &snapshots, BPF_F_CURRENT_CPU, snap, sizeof(*snap));
	count_stat(EMBER_STAT_SNAPSHOTS);
}

static __always_inline void record_sample(void *ctx, struct unwind_state *st)
{
	struct ember_stack_key key = st->key;
	__u32 gen = st->gen;

	if (st->stack.depth >= EMBER_MAX_USER_DEPTH && !(st->stack.flags & EMBER_STACK_COMPLETE)) {
		st->stack.flags |= EMBER_STACK_TRUNCATED;
		count_stat(EMBER_STAT_USER_TRUNCATED);
	}
	if (st->stack.flags & EMBER_STACK_COMPLETE)
		count_stat(EMBER_STAT_COMPLETE);
	if (snapshot_every && st->stack.depth &&
	    bpf_get_prandom_u32() % snapshot_every == 0)
		send_snapshot(ctx, st);

	if (st->stack.depth) {
		__u64 h = st->hash ^ st->stack.depth ^ ((__u64)st->stack.flags << 56);
		key.user_stack_hash = h ? h : 1;
		void *ustacks = gen ? (void *)&ustacks1 : (void *)&ustacks0;
		if (bpf_map_update_elem(ustacks, &key.user_stack_hash, &st->stack, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(ustacks, &key.user_stack_hash)) {
			count_stat(EMBER_STAT_MAP_FULL);
			return;
		}
	}

	void *counts = gen ? (void *)&counts1 : (void *)&counts0;
	struct ember_count *c = bpf_map_lookup_elem(counts, &key);
	if (c) {
		__sync_fetch_and_add(&c->count, 1);
	} else {
		struct ember_count init = {.count = 1};
		__builtin_memcpy(init.comm, st->comm, sizeof(init.comm));
		if (bpf_map_update_elem(counts, &key, &init, BPF_NOEXIST)) {
			c = bpf_map_lookup_elem(counts, &key);
			if (!c) {
				count_stat(EMBER_STAT_MAP_FULL);
				return;
			}
			__sync_fetch_and_add(&c->count, 1);
		}
	}
	count_stat(EMBER_STAT_RECORDED);
}

/* ---- the programs --------------------------------------------------------- */

SEC("perf_event")
int ember_unwind_step(struct bpf_perf_event_data *ctx)
{
	__u32 zero = 0;
	struct unwind_state *st = bpf_map_lookup_elem(&state_map, &zero);

	if (!st)
		return 0;
	if (!unwind_frames(ctx, st)) {
		st->steps++;
		count_stat(EMBER_STAT_TAIL_CALLS);
		bpf_tail_call(ctx, &progs, 0);
		/* tail call failed: record what we have */
	}
	record_sample(ctx, st);
	return 0;
}

/* The `record --pid` filter: the direct-mapped slots, the hash on a shared slot. */
static __always_inline int pid_wanted(__u32 tgid)
{
	__u32 slot = tgid & (EMBER_PID_SLOTS - 1);
	__u32 *v = bpf_map_lookup_elem(&pid_slots, &slot);

	if (!v || *v == 0)
		return 0;
	if (*v == tgid)
		return 1;
	return *v == EMBER_PID_SLOT_SHARED && bpf_map_lookup_elem(&pids, &tgid);
}

SEC("perf_event")
int ember_profile(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	__u32 zero = 0;
	struct unwind_state *st;

	count_stat(EMBER_STAT_SAMPLES);
	if (tid == 0) {
		count_stat(EMBER_STAT_IDLE);
		return 0;
	}
	/*
	 * Before anything else: a process `record --pid` does not want costs
	 * an inlined array load here, not a hash lookup (let alone an unwind).
	 */
	if (filter_pids && !pid_wanted(tgid)) {
		count_stat(EMBER_STAT_FILTERED);
		return 0;
	}
	st = bpf_map_lookup_elem(&state_map, &zero);
	if (!st)
		return 0;

	st->gen = active_gen & 1;
	st->key.pid = tgid;
	st->key.kernel_stack_id = -1;
	st->key.user_stack_hash = 0;
	__u64 *req = bpf_map_lookup_elem(&span_threads, &tid);
	st->key.req_id = req ? *req : 0; /* its endpoint is looked up when drained */
	st->steps = 0;
	st->exact_pc = 1;
	st->hash = 0xcbf29ce484222325ULL;
	st->stack.depth = 0;
	st->stack.flags = 0;
	st->fs_base = 0;
	st->go_switched = 0;
	bpf_get_current_comm(st->comm, sizeof(st->comm));

	long kid = st->gen ? bpf_get_stackid(ctx, &kstacks1, 0) : bpf_get_stackid(ctx, &kstacks0, 0);
	if (kid >= 0)
		st->key.kernel_stack_id = (__s32)kid;
	else if (kid != -14 /* -EFAULT: no kernel stack (user-mode sample) */)
		count_stat(EMBER_STAT_KSTACK_ERROR);

	struct task_struct___ember *task = (void *)bpf_get_current_task();
	if (!BPF_CORE_READ(task, mm)) {
		count_stat(EMBER_STAT_KERNEL_THREAD);
		record_sample(ctx, st);
		return 0;
	}
	/*
	 * Inside execve the user registers still hold the old image's, which
	 * mean nothing in the new mm: the exec is kernel work, not a stack.
	 */
	if (bpf_core_field_exists(task->in_execve) &&
	    BPF_CORE_READ_BITFIELD_PROBED(task, in_execve)) {
		count_stat(EMBER_STAT_IN_EXEC);
		record_sample(ctx, st);
		return 0;
	}
	int regs = get_user_regs(ctx, st);
	if (regs) {
		count_stat(regs == EMBER_USER_REGS_IN_EXEC ? EMBER_STAT_IN_EXEC
							   : EMBER_STAT_NO_USER_REGS);
		record_sample(ctx, st);
		return 0;
	}
	st->ip0 = st->ip;
	st->sp0 = st->sp;
	st->bp0 = st->bp;
	push_pc(st, st->ip);
	if (!bpf_map_lookup_elem(&procs, &tgid)) {
		st->stack.flags |= EMBER_STACK_FP_ONLY;
		count_stat(EMBER_STAT_NO_PROC);
		request_refresh(ctx, tgid);
	}
	bpf_tail_call(ctx, &progs, 0);
	/* no unwinder in the program array: the leaf alone */
	record_sample(ctx, st);
	return 0;
}

/* ---- process lifetime ------------------------------------------------------ */

SEC("raw_tracepoint/sched_process_exit")
int ember_process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if ((__u32)pid_tgid != (__u32)(pid_tgid >> 32))
		return 0; /* a thread, not the process */
	__u32 pid = pid_tgid >> 32;
	/* delete first: its result says whether user space heard of the pid */
	int told = bpf_map_delete_elem(&refresh_sent, &pid) == 0;
	if (!told && !bpf_map_lookup_elem(&procs, &pid))
		return 0;
	send_event(ctx, EMBER_EVENT_EXIT, pid);
	return 0;
}

/*
 * The new image's first mappings, made by the kernel during exec: the
 * executable's code and, where there is one, the loader's (whose entry is
 * where the new image starts).  Libraries follow at mmap's return.
 */
static __always_inline void note_exec_vmas(__u32 pid)
{
	struct task_struct___ember *task = (void *)bpf_get_current_task();
	__u64 code = BPF_CORE_READ(task, mm, start_code);
	__u64 code_end = BPF_CORE_READ(task, mm, end_code);
	struct pt_regs___ember *regs = task_user_regs();
	__u64 entry = regs ? BPF_CORE_READ(regs, ip) : 0; /* set by exec already */

	note_early_vma(pid, code, 1);
	if (entry && (entry < code || entry >= code_end))
		note_early_vma(pid, entry, 0);
}

SEC("raw_tracepoint/sched_process_exec")
int ember_process_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (filter_pids && !bpf_map_lookup_elem(&pids, &pid))
		return 0;
	/*
	 * The new image's libraries are mapped after exec: the first pc in
	 * one of them must get its refresh at once, not wait out a rate limit
	 * run down by the process before exec (the forking parent's copy).
	 * Time 0 clears the limit and keeps the pid listed as told.
	 */
	__u64 never = 0;
	bpf_map_update_elem(&refresh_sent, &pid, &never, BPF_ANY);
	/*
	 * The entry describes the image before exec (the forking parent's
	 * copy): until user space reloads it, the new image is unwound
	 * through its files' tables (find_vma_mapping), not through those.
	 */
	bpf_map_delete_elem(&procs, &pid);
	note_exec_vmas(pid);
	send_event(ctx, EMBER_EVENT_EXEC, pid);
	return 0;
}

/*
 * Code mapped from a file (the dynamic loader mapping libraries after exec,
 * dlopen): user space loads the new mapping's table right away, so the
 * process's first milliseconds are unwound by table too.  The enter side
 * notes the thread when prot has PROT_EXEC and a file backs the mapping;
 * the exit side asks for the refresh once the mapping exists.  Attached
 * where syscall tracepoints exist (tracefs); otherwise the first sample
 * outside the known mappings asks for it (REFRESH_INTERVAL_NS).
 */
struct syscall_enter_args {
	__u64 common;
	long id;
	unsigned long args[6];
};

struct syscall_exit_args {
	__u64 common;
	long id;
	long ret;
};

#define PROT_EXEC_ 0x4

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} mapping_code SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_mmap")
int ember_mmap_enter(struct syscall_enter_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, pid = pid_tgid >> 32;
	__u8 one = 1;

	if (!(ctx->args[2] & PROT_EXEC_) || (int)ctx->args[4] < 0)
		return 0;
	if (filter_pids && !bpf_map_lookup_elem(&pids, &pid))
		return 0;
	bpf_map_update_elem(&mapping_code, &tid, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int ember_mmap_exit(struct syscall_exit_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;

	if (bpf_map_delete_elem(&mapping_code, &tid) != 0)
		return 0;
	if (ctx->ret < 0 && ctx->ret > -4096)
		return 0; /* the mmap failed */
	count_stat(EMBER_STAT_CODE_MAPPED);
	note_early_vma(pid_tgid >> 32, ctx->ret, 0);
	refresh(ctx, pid_tgid >> 32, 1);
	return 0;
}

