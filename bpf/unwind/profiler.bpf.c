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

char LICENSE[] SEC("license") = "GPL";

#define FRAMES_PER_STEP 8
#define MAX_STEPS (EMBER_MAX_USER_DEPTH / FRAMES_PER_STEP + 1)
#define MAX_GO_SWITCHES 3 /* per sample: more would be a loop through garbage */
#define REFRESH_INTERVAL_NS (1000ULL * 1000 * 1000) /* per pid, at most once a second */

/* Set by user space before load. */
const volatile __u8 filter_pids = 0;      /* 1: only pids in the `pids` map */
const volatile __u32 thread_size = 16384; /* x86_64 THREAD_SIZE (no KASAN) */
const volatile __u32 snapshot_every = 0;  /* validation: snapshot every Nth sample, 0 = off */
const volatile __u8 have_task_pt_regs = 0;    /* 5.15, and the kernel built with BTF */

/* Flipped by user space (0 or 1) to double-buffer the aggregation maps. */
__u32 active_gen = 0;

/* ---- maps ---------------------------------------------------------------- */

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

/* Per-process executable mappings; written by user space, read here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048); /* preallocated: 5.x perf-event programs require it */
	__type(key, __u32);
	__type(value, struct ember_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ember_index_key);
	__type(value, struct ember_index_value);
} unwind_index SEC(".maps");

/* One shard: user space creates them with this shape and puts them in `shards`. */
struct shard {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE); /* user space memcpy()s rows in */
	__uint(max_entries, EMBER_SHARD_ELEMS);
	__type(key, __u32);
	__type(value, __u64); /* two packed rows */
} shard0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, EMBER_MAX_SHARDS);
	__type(key, __u32);
	__array(values, struct shard);
} shards SEC(".maps") = {
	.values = {[0] = &shard0},
};

/* Rule id -> rule, shared by every file (written by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EMBER_MAX_RULES);
	__type(key, __u32);
	__type(value, struct ember_unwind_rule);
} rules SEC(".maps");

/* exe_id -> where that Go binary keeps g, m and the saved registers (user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct ember_go_runtime);
} go_runtimes SEC(".maps");

struct unwind_state {
	__u64 ip, sp, bp;    /* registers of the frame being unwound */
	__u64 fs_base;       /* the thread's fs base (Go's g is below it), 0 = not read yet */
	__u32 go_switched;   /* Go stack switches crossed (a vDSO call inside systemstack: 2) */
	__u32 pad;
	__u64 ip0, sp0, bp0; /* registers at the sample (validation) */
	__u64 hash;          /* running hash of the pcs */
	struct ember_stack_key key;
	__u32 steps;         /* tail calls taken */
	__u32 exact_pc;      /* ip is exact (leaf, interrupted by a signal), not a return address */
	__u32 gen;
	__u8 comm[EMBER_COMM_LEN];
	struct ember_user_stack stack;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_state);
} state_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ember_stack_snapshot);
} snapshot_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EMBER_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/*
 * pid -> time of the last refresh request, so requests are rate-limited.
 * It also lists the pids user space was told about (refresh or exec: 0
 * then), whose exits are reported even when they are not in `procs` yet:
 * the agent holds state for them.  An exit removes the pid; LRU bounds the
 * rest (a pid pushed out still has its exit found by the agent's sweep).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} refresh_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

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

static __always_inline void count_stat(__u32 which)
{
	ember_count(&stats, which);
}

static __always_inline void send_event(void *ctx, __u32 type, __u32 pid)
{
	struct ember_event ev = {.type = type, .pid = pid};

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &ev, sizeof(ev));
}

/*
 * Ask user space to (re)load a process's mappings, at most once a second
 * unless `now_please` (the process just mapped code: the request that
 * matters most, rare).
 */
static __always_inline void refresh(void *ctx, __u32 pid, int now_please)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&refresh_sent, &pid);

	if (!now_please && last && now - *last < REFRESH_INTERVAL_NS)
		return;
	bpf_map_update_elem(&refresh_sent, &pid, &now, BPF_ANY);
	send_event(ctx, EMBER_EVENT_REFRESH, pid);
}

static __always_inline void request_refresh(void *ctx, __u32 pid)
{
	refresh(ctx, pid, 0);
}

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
	struct task_struct___ember *task = (void *)bpf_get_current_task();
	struct pt_regs___ember *regs;

	if (have_task_pt_regs) {
		regs = (void *)bpf_task_pt_regs((void *)bpf_get_current_task_btf());
	} else {
		/* x86_64: pt_regs sit at the very top of the kernel stack. */
		void *stack = BPF_CORE_READ(task, stack);
		if (!stack)
			return -1;
		regs = (void *)((char *)stack + thread_size) - bpf_core_type_size(struct pt_regs___ember);
	}
	st->ip = BPF_CORE_READ(regs, ip);
	st->sp = BPF_CORE_READ(regs, sp);
	st->bp = BPF_CORE_READ(regs, bp);
	return st->ip ? 0 : -1;
}

static __always_inline const struct ember_mapping *find_mapping(const struct ember_proc *proc,
								  __u64 pc)
{
	/* 64-bit indices: 32-bit ones are zero-extended, which hides their
	 * bounds checks from the verifier */
	__u64 lo = 0, hi = proc->n_mappings;

	if (hi > EMBER_MAX_MAPPINGS)
		return 0;
	/* Largest i with mappings[i].start <= pc; 7 steps cover 96 mappings. */
	for (int i = 0; i < 7 && lo < hi; i++) {
		__u64 mid = (lo + hi) / 2;
		/* opaque to the compiler, so the bound the verifier needs stays */
		asm volatile("" : "+r"(mid));
		if (mid >= EMBER_MAX_MAPPINGS)
			return 0;
		if (proc->mappings[mid].start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	asm volatile("" : "+r"(lo));
	if (lo == 0 || lo > EMBER_MAX_MAPPINGS)
		return 0;
	const struct ember_mapping *m = &proc->mappings[lo - 1];
	return pc < m->end ? m : 0;
}

/* The rule covering ELF address `vaddr`, or NULL (stat counted). */
static __always_inline const struct ember_unwind_rule *find_rule(const struct ember_mapping *m,
								 __u64 vaddr)
{
	struct ember_index_key ik = {.exe_id = m->exe_id,
				     .chunk = (__u32)(vaddr >> EMBER_CHUNK_SHIFT)};
	struct ember_index_value *iv = bpf_map_lookup_elem(&unwind_index, &ik);

	if (!iv) {
		count_stat(EMBER_STAT_NO_ROW);
		return 0;
	}
	__u32 shard_id = iv->shard;
	void *shard = bpf_map_lookup_elem(&shards, &shard_id);
	if (!shard) {
		count_stat(EMBER_STAT_NO_SHARD);
		return 0;
	}
	__u32 off = (__u32)(vaddr & ((1u << EMBER_CHUNK_SHIFT) - 1));
	__u32 first = iv->first;
	__u32 lo = first, hi = first + iv->count;

	/* Elements are pairs of rows; find the first whose low row starts after off. */
	for (int i = 0; i < EMBER_BSEARCH_STEPS && lo < hi; i++) {
		__u32 mid = lo + (hi - lo) / 2;
		const __u64 *el = bpf_map_lookup_elem(shard, &mid);
		if (!el)
			return 0;
		if (EMBER_PACKED_PC((__u32)*el) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == first) {
		count_stat(EMBER_STAT_NO_ROW);
		return 0;
	}
	lo -= 1;
	const __u64 *el = bpf_map_lookup_elem(shard, &lo);
	if (!el)
		return 0;
	__u32 low = (__u32)*el, high = (__u32)(*el >> 32);
	__u32 rule_id = high != EMBER_PACKED_NONE && EMBER_PACKED_PC(high) <= off
				? EMBER_PACKED_RULE(high)
				: EMBER_PACKED_RULE(low);
	return bpf_map_lookup_elem(&rules, &rule_id);
}

enum step_result { STEP_NEXT, STEP_DONE, STEP_ERROR };

/* One frame by frame pointer: [bp] = caller's bp, [bp + 8] = return address. */
static __always_inline enum step_result step_frame_pointer(struct unwind_state *st)
{
	__u64 frame[2];

	if (!st->bp)
		return STEP_DONE;
	if (read_user(frame, sizeof(frame), (void *)st->bp)) {
		count_stat(EMBER_STAT_USER_READ_FAULT);
		return STEP_ERROR;
	}
	if (frame[0] && frame[0] <= st->bp) /* must move up the stack */
		return STEP_ERROR;
	st->sp = st->bp + 16;
	st->ip = frame[1];
	st->bp = frame[0];
	count_stat(EMBER_STAT_FP_FRAMES);
	return STEP_NEXT;
}

/*
 * A signal frame (__restore_rt): the interrupted registers are in the
 * ucontext the kernel pushed, at fixed offsets from rsp on x86_64
 * (uc_mcontext: rbp at +120, rsp at +160, rip at +168).
 */
static __always_inline enum step_result step_signal_frame(struct unwind_state *st)
{
	__u64 regs[7]; /* rbp .. rip: offsets 120 to 168 */

	if (read_user(regs, sizeof(regs), (void *)(st->sp + 120))) {
		count_stat(EMBER_STAT_USER_READ_FAULT);
		return STEP_ERROR;
	}
	st->bp = regs[0];
	st->sp = regs[5];
	st->ip = regs[6];
	st->exact_pc = 1; /* the interrupted pc is not a return address */
	count_stat(EMBER_STAT_CFI_FRAMES);
	return STEP_NEXT;
}

/* Read a pointer-sized Go runtime field; 0 when unreadable. */
static __always_inline __u64 go_read(__u64 base, __u32 off)
{
	__u64 v = 0;

	if (!base || read_user(&v, sizeof(v), (void *)(base + off)))
		return 0;
	return v;
}

/* An ordinary frame at CFA = rsp + cfa: the return address is at CFA - 8. */
static __always_inline enum step_result step_rsp_frame(struct unwind_state *st, __u64 cfa)
{
	__u64 ra;

	if (read_user(&ra, sizeof(ra), (void *)(cfa - 8))) {
		count_stat(EMBER_STAT_USER_READ_FAULT);
		return STEP_ERROR;
	}
	st->ip = ra;
	st->sp = cfa;
	count_stat(EMBER_STAT_CFI_FRAMES);
	return STEP_NEXT;
}

/*
 * A Go function that switches stacks (enum ember_go_switch,
 * bpf/include/ember_unwind.h): continue where Go's traceback does, on the
 * goroutine that was running (m.curg), or at the caller saved before a
 * vDSO call.  A sample taken before the switch is an ordinary frame at the
 * row's CFA offset.
 */
static __always_inline enum step_result step_go_switch(struct unwind_state *st, __u32 exe_id,
						       __u16 off, __u32 exact)
{
	const struct ember_go_runtime *rt = bpf_map_lookup_elem(&go_runtimes, &exe_id);
	__u32 how = EMBER_GO_SWITCH_HOW(off);
	__u64 frame_cfa = st->sp + EMBER_GO_SWITCH_CFA(off);

	if (!rt || st->go_switched >= MAX_GO_SWITCHES)
		goto fail;
	if (!st->fs_base) {
		struct task_struct___ember *task = (void *)bpf_get_current_task();
		st->fs_base = BPF_CORE_READ(task, thread.fsbase);
	}
	__u64 g = 0;
	if (!st->fs_base ||
	    read_user(&g, sizeof(g), (void *)(st->fs_base + (__s64)rt->tls_g)))
		goto fail;
	__u64 m = go_read(g, rt->g_m);
	if (!m)
		goto fail;
	if (how == EMBER_GO_SWITCH_VDSO) {
		__u64 sp = go_read(m, rt->m_vdso_sp);
		__u64 pc = go_read(m, rt->m_vdso_pc);
		if (sp && pc) {
			st->sp = sp;
			st->ip = pc;
			goto crossed;
		}
		/* not in the vDSO call: the prologue or epilogue, where rbp tells */
		if (exact && st->bp > st->sp && st->bp - st->sp <= 64)
			return step_frame_pointer(st);
		return step_rsp_frame(st, frame_cfa);
	}
	/*
	 * On the system stack?  Decided by where rsp is, not by which g the
	 * thread-local slot holds: in a signal handler that is gsignal, while
	 * the interrupted frames we are walking may be g0's or the goroutine's.
	 * g.stack {lo, hi} is the first field of every Go release's runtime.g.
	 */
	__u64 curg = go_read(m, rt->m_curg);
	__u64 g0 = go_read(m, rt->m_g0);
	__u64 lo = go_read(g0, 0), hi = go_read(g0, 8);
	int on_g0 = lo && st->sp >= lo && st->sp <= hi;
	if (how == EMBER_GO_SWITCH_GOGO) {
		if (on_g0)
			return step_rsp_frame(st, frame_cfa);
		/*
		 * gogo has moved to the goroutine it resumes (g, now in the
		 * thread-local slot) at g.sched.pc: rsp and rbp are loaded
		 * from g.sched, which is then cleared.  The pc is a resume
		 * point, looked up as is.
		 */
		__u64 sp = go_read(g, rt->g_sched_sp);
		if (sp) {
			st->bp = go_read(g, rt->g_sched_bp);
			st->sp = sp;
		}
		st->ip = go_read(g, rt->g_sched_pc);
		if (!st->ip)
			goto fail;
		st->exact_pc = 1;
		goto crossed;
	}
	if (!on_g0)
		return step_rsp_frame(st, frame_cfa);
	if (!curg)
		return STEP_DONE; /* no goroutine (mcall(park_m) dropped it): g0's root */
	__u64 sp = go_read(curg, rt->g_sched_sp);
	if (!sp)
		goto fail;
	st->bp = go_read(curg, rt->g_sched_bp);
	if (how == EMBER_GO_SWITCH_SYSTEMSTACK) {
		/* sched.pc is the fake systemstack_switch; sp points at the real return address */
		if (read_user(&st->ip, sizeof(st->ip), (void *)sp))
			goto fail;
		st->sp = sp + 8;
	} else {
		st->ip = go_read(curg, rt->g_sched_pc);
		st->sp = sp;
	}
crossed:
	st->go_switched++;
	count_stat(EMBER_STAT_GO_SWITCHES);
	return STEP_NEXT;
fail:
	count_stat(EMBER_STAT_GO_SWITCH_FAILED);
	return STEP_ERROR;
}

/*
 * runtime.sigtramp, Go's signal handler entry: the kernel's ucontext sits at
 * its CFA (just above the restorer's address), so the interrupted registers
 * are read from there, as for __restore_rt.
 */
static __always_inline enum step_result step_go_sigtramp(struct unwind_state *st, __u16 cfa_off)
{
	st->sp += cfa_off; /* the ucontext, where step_signal_frame expects it */
	count_stat(EMBER_STAT_GO_SWITCHES);
	return step_signal_frame(st);
}

/* One frame from a CFI rule. */
static __always_inline enum step_result step_row(struct unwind_state *st,
						 const struct ember_unwind_rule *row, __u32 exe_id,
						 __u32 exact)
{
	__u64 cfa, ra;

	switch (EMBER_ROW_CFA(row)) {
	case EMBER_CFA_END_OF_STACK:
		return STEP_DONE;
	case EMBER_CFA_RSP:
		cfa = st->sp + row->cfa_offset;
		break;
	case EMBER_CFA_RBP:
		cfa = st->bp + row->cfa_offset;
		break;
	case EMBER_CFA_RSP_X8:
		cfa = st->sp + (__u64)row->cfa_offset * 8;
		break;
	case EMBER_CFA_PLT1:
		cfa = st->sp + 8 + ((st->ip & 15) >= 11 ? 8 : 0);
		break;
	case EMBER_CFA_PLT2:
		cfa = st->sp + 8 + ((st->ip & 15) >= 10 ? 8 : 0);
		break;
	case EMBER_CFA_SIGNAL:
		return step_signal_frame(st);
	case EMBER_CFA_GO_SWITCH:
		return step_go_switch(st, exe_id, row->cfa_offset, exact);
	case EMBER_CFA_GO_SIGTRAMP:
		return step_go_sigtramp(st, row->cfa_offset);
	case EMBER_CFA_GAP:
		count_stat(EMBER_STAT_NO_ROW);
		return STEP_ERROR;
	default:
		count_stat(EMBER_STAT_UNSUPPORTED);
		return STEP_ERROR;
	}
	if (read_user(&ra, sizeof(ra), (void *)(cfa - 8))) {
		count_stat(EMBER_STAT_USER_READ_FAULT);
		return STEP_ERROR;
	}
	switch (EMBER_ROW_RBP(row)) {
	case EMBER_RBP_AT_CFA:
		if (read_user(&st->bp, sizeof(st->bp), (void *)(cfa + (__s64)row->rbp_offset * 8))) {
			count_stat(EMBER_STAT_USER_READ_FAULT);
			return STEP_ERROR;
		}
		break;
	case EMBER_RBP_SAME:
		break;
	default:
		st->bp = 0; /* unknown from here on: an rbp-based CFA would be wrong */
		break;
	}
	st->sp = cfa;
	st->ip = ra;
	count_stat(EMBER_STAT_CFI_FRAMES);
	return STEP_NEXT;
}

/* Unwind the frame at st->ip, leaving the caller's registers in st. */
static __always_inline enum step_result step_frame_at(void *ctx, struct unwind_state *st,
						     const struct ember_proc *proc, __u32 exact)
{
	if (!proc)
		return step_frame_pointer(st);

	/* A return address points after the call: look up the call itself. */
	__u64 pc = exact ? st->ip : st->ip - 1;
	const struct ember_mapping *m = find_mapping(proc, pc);
	if (!m) {
		count_stat(EMBER_STAT_NO_MAPPING);
		request_refresh(ctx, st->key.pid);
		return STEP_ERROR;
	}
	if (!(m->flags & EMBER_MAPPING_TABLE))
		return step_frame_pointer(st);
	const struct ember_unwind_rule *rule = find_rule(m, pc - m->bias);
	if (!rule)
		return STEP_ERROR;
	return step_row(st, rule, m->exe_id, exact);
}

static __always_inline void push_pc(struct unwind_state *st, __u64 pc)
{
	__u32 d = st->stack.depth;

	if (d >= EMBER_MAX_USER_DEPTH)
		return;
	st->stack.pcs[d] = pc;
	st->stack.depth = d + 1;
	st->hash = (st->hash ^ pc) * 0x100000001b3ULL;
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
	const struct ember_proc *proc = bpf_map_lookup_elem(&procs, &st->key.pid);
	int done = 0;

	for (int i = 0; i < FRAMES_PER_STEP; i++) {
		if (st->stack.depth >= EMBER_MAX_USER_DEPTH)
			break;
		__u32 was_exact = st->exact_pc;
		st->exact_pc = 0;
		enum step_result r = step_frame_at(ctx, st, proc, was_exact);
		if (r == STEP_DONE) {
			st->stack.flags |= EMBER_STACK_COMPLETE;
			done = 1;
			break;
		}
		if (r == STEP_ERROR) {
			st->stack.flags |= EMBER_STACK_ERROR;
			done = 1;
			break;
		}
		if (!st->ip) { /* return address 0: the outermost frame */
			st->stack.flags |= EMBER_STACK_COMPLETE;
			done = 1;
			break;
		}
		push_pc(st, st->ip);
	}

	if (!done && st->stack.depth < EMBER_MAX_USER_DEPTH && st->steps < MAX_STEPS) {
		st->steps++;
		count_stat(EMBER_STAT_TAIL_CALLS);
		bpf_tail_call(ctx, &progs, 0);
		/* tail call failed: record what we have */
	}
	record_sample(ctx, st);
	return 0;
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
	if (filter_pids && !bpf_map_lookup_elem(&pids, &tgid)) {
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
	if (get_user_regs(ctx, st)) {
		count_stat(EMBER_STAT_NO_USER_REGS);
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
	refresh(ctx, pid_tgid >> 32, 1);
	return 0;
}

