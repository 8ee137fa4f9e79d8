/*
 * ember_unwind_walk.h - the user-stack walk shared by the CPU sampler and the off-CPU tracer.
 *
 * Included once by each BPF object that unwinds user stacks in the kernel:
 * bpf/unwind/profiler.bpf.c (perf_event, CPU samples) and
 * bpf/offcpu/offcpu.bpf.c (tp_btf/sched_switch, where threads block).  It
 * holds the unwind tables' maps (procs, unwind_index, shards, rules,
 * go_runtimes, written by src/agent/unwind_tables.c), the per-CPU walk
 * state, the stats map, the refresh requests to user space, and the walk
 * itself: FP and CFI rows per PC range, signal frames, Go stack switches.
 *
 * The off-CPU object shares the table maps, refresh_sent and events with
 * the sampler's by file descriptor (bpf_map__reuse_fd before load), so one
 * set of tables serves both; state_map and stats stay its own.
 *
 * The includer provides the UAPI and libbpf headers, ember_bpf_helpers.h,
 * ember_profiler.h, ember_unwind.h and kernel_types.h, and uses `ctx` only
 * to send events (bpf_perf_event_output works from both program types).
 */
#ifndef EMBER_UNWIND_WALK_H
#define EMBER_UNWIND_WALK_H

#define FRAMES_PER_STEP 8
#define MAX_STEPS (EMBER_MAX_USER_DEPTH / FRAMES_PER_STEP + 1)
#define MAX_GO_SWITCHES 3 /* per sample: more would be a loop through garbage */
#define REFRESH_INTERVAL_NS (1000ULL * 1000 * 1000) /* per pid, at most once a second */

const volatile __u32 thread_size = 16384; /* x86_64 THREAD_SIZE (no KASAN) */
const volatile __u8 have_find_vma = 0;    /* 1: bpf_find_vma exists (5.17+): file_tables used */
const volatile __u8 have_task_pt_regs = 0; /* 5.15, and the kernel built with BTF */

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

/* (dev, inode) -> the file's table: processes not in `procs` yet (user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ember_file_key);
	__type(value, struct ember_file_table);
} file_tables SEC(".maps");

/* Scratch for a mapping found through the VMA (one per CPU: walks do not nest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ember_mapping);
} vma_mapping SEC(".maps");

/*
 * tgid -> code mappings noted in process context (struct ember_early_vmas).
 * Kept past the exit, for naming the frames of a process gone before user
 * space read its maps; user space deletes the entry when it forgets the
 * pid, and LRU bounds what it never heard of.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ember_early_vmas);
} early_vmas SEC(".maps");

/* An empty entry to insert from (too large for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ember_early_vmas);
} early_vmas_blank SEC(".maps");

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

/* bpf_find_vma's callback: what the VMA holding a pc says. */
static long vma_facts(void *task, struct vm_area_struct___ember *vma, struct ember_vma *l)
{
	struct inode___ember *inode = BPF_CORE_READ(vma, vm_file, f_inode);

	l->start = BPF_CORE_READ(vma, vm_start);
	l->end = BPF_CORE_READ(vma, vm_end);
	l->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	if (inode) {
		l->ino = BPF_CORE_READ(inode, i_ino);
		l->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	}
	return 0;
}

/*
 * Note the file-backed VMA at addr among the current process's early
 * mappings (process context only: see struct ember_early_vmas).  fresh
 * starts the list over (exec: the old image's mappings are gone).
 */
static __always_inline void note_early_vma(__u32 tgid, __u64 addr, int fresh)
{
	struct ember_early_vmas *ev = fresh ? 0 : bpf_map_lookup_elem(&early_vmas, &tgid);
	struct ember_vma l = {};
	__u32 zero = 0;

	if (!have_find_vma)
		return;
	if (bpf_find_vma(bpf_get_current_task_btf(), addr, vma_facts, &l, 0) || !l.ino)
		return;
	if (!ev) {
		struct ember_early_vmas *blank = bpf_map_lookup_elem(&early_vmas_blank, &zero);
		if (!blank || bpf_map_update_elem(&early_vmas, &tgid, blank, BPF_ANY))
			return;
		ev = bpf_map_lookup_elem(&early_vmas, &tgid);
		if (!ev)
			return;
	}
	ev->vmas[ev->n & (EMBER_EARLY_VMAS - 1)] = l;
	ev->n++;
}

/* The early mapping of the process holding pc, newest first, or NULL. */
static __always_inline int find_early_vma(__u32 tgid, __u64 pc, struct ember_vma *out)
{
	const struct ember_early_vmas *ev = bpf_map_lookup_elem(&early_vmas, &tgid);

	if (!ev)
		return -1;
	for (__u32 k = 0; k < EMBER_EARLY_VMAS; k++) {
		if (k >= ev->n)
			break;
		const struct ember_vma *v = &ev->vmas[(ev->n - 1 - k) & (EMBER_EARLY_VMAS - 1)];
		if (pc >= v->start && pc < v->end) {
			*out = *v;
			return 0;
		}
	}
	return -1;
}

/*
 * The mapping of pc for a process that has no `procs` entry yet (or whose
 * entry predates the mapping), from the kernel's own VMA (as noted early,
 * or through the one bpf_find_vma a sample may make) and the table of its
 * file, if that file has one (another process maps it, or mapped it
 * lately).  NULL: frame pointers.
 */
static __always_inline const struct ember_mapping *find_vma_mapping(__u32 tgid, __u64 pc)
{
	struct ember_vma l = {};
	__u32 zero = 0;
	long err;

	if (!have_find_vma)
		return 0;
	if (find_early_vma(tgid, pc, &l) == 0) {
		count_stat(EMBER_STAT_EARLY_VMAS);
	} else {
		err = bpf_find_vma(bpf_get_current_task_btf(), pc, vma_facts, &l, 0);
		if (err == -16 /* -EBUSY */)
			count_stat(EMBER_STAT_VMA_BUSY);
		if (err || !l.ino)
			return 0;
	}
	struct ember_file_key key = {.dev = l.dev, .ino = l.ino};
	const struct ember_file_table *ft = bpf_map_lookup_elem(&file_tables, &key);
	struct ember_mapping *m = bpf_map_lookup_elem(&vma_mapping, &zero);
	if (!ft || !m)
		return 0;
	__u64 off = l.pgoff << 12;
	for (int i = 0; i < EMBER_FILE_LOADS; i++) {
		if (i >= ft->n_loads)
			break;
		const struct ember_file_load *ld = &ft->loads[i];
		if (off >= (ld->offset & ~0xfffULL) && off < ld->offset + ld->filesz) {
			m->start = l.start;
			m->end = l.end;
			m->bias = l.start - off + ld->offset - ld->vaddr;
			m->exe_id = ft->exe_id;
			m->flags = EMBER_MAPPING_TABLE;
			count_stat(EMBER_STAT_VMA_MAPPINGS);
			return m;
		}
	}
	return 0;
}

/* Unwind the frame at st->ip, leaving the caller's registers in st. */
static __always_inline enum step_result step_frame_at(void *ctx, struct unwind_state *st,
						     const struct ember_proc *proc, __u32 exact)
{
	/* A return address points after the call: look up the call itself. */
	__u64 pc = exact ? st->ip : st->ip - 1;
	const struct ember_mapping *m;

	if (!proc) {
		m = find_vma_mapping(st->key.pid, pc);
		if (!m)
			return step_frame_pointer(st);
	} else {
		m = find_mapping(proc, pc);
		if (!m) {
			/* mapped since user space wrote the entry (a library, dlopen) */
			count_stat(EMBER_STAT_NO_MAPPING);
			request_refresh(ctx, st->key.pid);
			m = find_vma_mapping(st->key.pid, pc);
			if (!m)
				return STEP_ERROR;
		}
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

/*
 * The user registers saved at kernel entry, at the top of the current
 * task's kernel stack (the task is in the kernel: a sample in kernel mode,
 * a thread about to block, a tracepoint).  NULL when they cannot be found.
 */
static __always_inline struct pt_regs___ember *task_user_regs(void)
{
	struct task_struct___ember *task = (void *)bpf_get_current_task();

	if (have_task_pt_regs)
		return (void *)bpf_task_pt_regs((void *)bpf_get_current_task_btf());
	/* x86_64: pt_regs sit at the very top of the kernel stack. */
	void *stack = BPF_CORE_READ(task, stack);
	if (!stack)
		return 0;
	return (void *)((char *)stack + thread_size) - bpf_core_type_size(struct pt_regs___ember);
}

/* The user registers into st: 0, -1 (none), or EMBER_USER_REGS_IN_EXEC. */
#define EMBER_USER_REGS_IN_EXEC 1

static __always_inline int get_task_user_regs(struct unwind_state *st)
{
	struct pt_regs___ember *regs = task_user_regs();

	if (!regs)
		return -1;
	/*
	 * Inside execve (x86_64 syscalls 59 and 322) the saved registers are
	 * the old image's and mean nothing in the new mm: kernel work only.
	 */
	long nr = BPF_CORE_READ(regs, orig_ax);
	if (nr == 59 || nr == 322)
		return EMBER_USER_REGS_IN_EXEC;
	st->ip = BPF_CORE_READ(regs, ip);
	st->sp = BPF_CORE_READ(regs, sp);
	st->bp = BPF_CORE_READ(regs, bp);
	return st->ip ? 0 : -1;
}

/*
 * Unwind up to FRAMES_PER_STEP frames of st (one tail call's share).
 * Returns 1 when the walk is over (root reached, error, depth limit), 0
 * when the caller should tail-call for more.
 */
static __always_inline int unwind_frames(void *ctx, struct unwind_state *st)
{
	const struct ember_proc *proc = bpf_map_lookup_elem(&procs, &st->key.pid);

	for (int i = 0; i < FRAMES_PER_STEP; i++) {
		if (st->stack.depth >= EMBER_MAX_USER_DEPTH)
			return 1;
		__u32 was_exact = st->exact_pc;
		st->exact_pc = 0;
		enum step_result r = step_frame_at(ctx, st, proc, was_exact);
		if (r == STEP_DONE) {
			st->stack.flags |= EMBER_STACK_COMPLETE;
			return 1;
		}
		if (r == STEP_ERROR) {
			st->stack.flags |= EMBER_STACK_ERROR;
			return 1;
		}
		if (!st->ip) { /* return address 0: the outermost frame */
			st->stack.flags |= EMBER_STACK_COMPLETE;
			return 1;
		}
		push_pc(st, st->ip);
	}
	return st->stack.depth >= EMBER_MAX_USER_DEPTH || st->steps >= MAX_STEPS;
}

#endif
