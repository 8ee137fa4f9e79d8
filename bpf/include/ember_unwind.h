/*
 * ember_unwind.h - the compact unwind row, shared by the CFI compiler and the BPF unwinder.
 *
 * src/ehframe/ compiles an executable's CFI (.eh_frame, .debug_frame, Go's
 * .gopclntab) into rows sorted by pc; the BPF unwinder binary-searches them.
 * One row says, for every pc from its own up to the next row's:
 *   - how to compute the CFA (canonical frame address: the caller's sp):
 *     rsp + off, rbp + off, one of the two PLT expressions, or "none";
 *   - where the caller's rbp was saved: nowhere (unchanged), or at CFA + off;
 *   - the return address is always at CFA - 8 on x86_64.
 *
 * The compiler's row is 8 bytes: a 32-bit pc offset from the file's first
 * executable byte (ELF vaddr of the table base, see struct
 * ember_unwind_table), a 16-bit CFA offset, the rule kinds, and the rbp
 * offset in 8-byte units.  Anything that does not fit these fields becomes
 * an EMBER_CFA_UNSUPPORTED row: counted by the unwinder, never guessed.
 * In the BPF maps rows are packed to 4 bytes (see below).
 */
#ifndef EMBER_UNWIND_H
#define EMBER_UNWIND_H

#include <linux/types.h>

/* How to find the CFA (low 4 bits of kind). */
enum ember_cfa_rule {
	EMBER_CFA_END_OF_STACK = 0, /* return address undefined: outermost frame (_start, clone) */
	EMBER_CFA_RSP = 1,          /* CFA = rsp + cfa_offset */
	EMBER_CFA_RBP = 2,          /* CFA = rbp + cfa_offset */
	EMBER_CFA_PLT1 = 3,         /* CFA = rsp + 8 + ((rip & 15) >= 11 ? 8 : 0)  (.plt) */
	EMBER_CFA_PLT2 = 4,         /* CFA = rsp + 8 + ((rip & 15) >= 10 ? 8 : 0)  (.plt.sec etc.) */
	EMBER_CFA_UNSUPPORTED = 5,  /* an expression or register the unwinder cannot follow */
	EMBER_CFA_GAP = 6,          /* no FDE covers this pc (between functions) */
	EMBER_CFA_SIGNAL = 7,       /* signal trampoline (__restore_rt): registers in the ucontext */
	EMBER_CFA_RSP_X8 = 8,       /* CFA = rsp + cfa_offset * 8 (frames over 64 KiB) */
	EMBER_CFA_GO_SWITCH = 9,    /* Go stack switch: continue on the goroutine (cfa_offset:
				       enum ember_go_switch), struct ember_go_runtime */
	EMBER_CFA_GO_SIGTRAMP = 10, /* runtime.sigtramp: ucontext at CFA = rsp + cfa_offset */
};

/*
 * Go functions that leave one stack for another (EMBER_CFA_GO_SWITCH rows).
 * Go's own traceback crosses them from the system stack (g0) to the
 * goroutine that was running (m.curg); so does the unwinder, with the
 * offsets of struct ember_go_runtime.  The row's cfa_offset holds how to
 * cross (low 2 bits) and the function's own CFA offset from rsp (the rest:
 * SP-delta + 8), for samples taken before the switch:
 *   SYSTEMSTACK  runtime.systemstack, asmcgocall: curg.sched.sp points at the
 *                return address into the caller (sched.pc is the fake
 *                systemstack_switch, skipped)
 *   SCHED        runtime.mcall, morestack: curg.sched.{pc,sp,bp} are the
 *                caller's return address and registers; on g0 without a
 *                goroutine (mcall(park_m) dropped it) the root of g0
 *   VDSO         runtime.nanotime1, time.now, walltime: m.vdsoPC/vdsoSP are
 *                the caller's return address and stack pointer
 *   GOGO         runtime.gogo: still on g0, an ordinary frame; once g is the
 *                goroutine it resumes, continue at g.sched.pc (resuming)
 */
enum ember_go_switch {
	EMBER_GO_SWITCH_SYSTEMSTACK = 0,
	EMBER_GO_SWITCH_SCHED = 1,
	EMBER_GO_SWITCH_VDSO = 2,
	EMBER_GO_SWITCH_GOGO = 3,
};
#define EMBER_GO_SWITCH_HOW(off) ((off) & 3)
#define EMBER_GO_SWITCH_CFA(off) ((off) >> 2)
#define EMBER_GO_SWITCH_OFFSET(how, cfa) ((__u16)((how) | ((cfa) << 2)))

/* Where the caller's rbp is (high 4 bits of kind). */
enum ember_rbp_rule {
	EMBER_RBP_SAME = 0,        /* unchanged (same value or never saved) */
	EMBER_RBP_AT_CFA = 1,      /* saved at CFA + rbp_offset * 8 */
	EMBER_RBP_UNSUPPORTED = 2, /* saved in a way the unwinder cannot follow */
};

struct ember_unwind_row {
	__u32 pc;         /* offset from the table base */
	__u16 cfa_offset; /* for EMBER_CFA_RSP / EMBER_CFA_RBP */
	__u8 kind;        /* enum ember_cfa_rule | enum ember_rbp_rule << 4 */
	__s8 rbp_offset;  /* in units of 8 bytes, for EMBER_RBP_AT_CFA */
};

/*
 * How the tables sit in BPF maps.
 *
 *   procs     pid -> struct ember_proc: the process's executable mappings,
 *             sorted by start, binary-searched per frame.
 *   index     (file id, 64 KiB chunk of ELF vaddr) -> struct ember_index_value:
 *             where that chunk's rows are (shard, first element, count).
 *   shards    array of maps: shard id -> an array of packed row pairs.
 *   rules     rule id -> struct ember_unwind_rule, shared by every file.
 *
 * In the maps a row is 4 bytes: the pc's offset in its chunk (16 bits) and
 * the id of its rule (16 bits) in the rules table, where each distinct
 * (CFA rule, CFA offset, rbp rule, rbp offset) is stored once.  BPF arrays
 * round elements up to 8 bytes, so two rows share one u64 element (the
 * first in the low half); an odd chunk pads its last element's high half
 * with EMBER_PACKED_NONE.  A file's rows are cut at chunk boundaries so a
 * chunk's rows are contiguous in one shard, and every chunk starts with a
 * row at its first byte (a copy of the rule covering it), so a search never
 * needs the previous chunk.  Rows of a file are shared by every process that
 * maps it.  User space allocates and reclaims shard space and rule ids.
 */
#define EMBER_MAX_MAPPINGS 96          /* executable mappings per process */
#define EMBER_CHUNK_SHIFT 16           /* index granularity: 64 KiB of code */
#define EMBER_SHARD_ELEMS (256 * 1024) /* u64 elements (512k rows, 2 MiB) per shard */
#define EMBER_MAX_SHARDS 256           /* upper bound; the budget decides */
#define EMBER_BSEARCH_STEPS 15         /* 2^15 elements > the rows of a 64 KiB chunk */
#define EMBER_MAX_RULES 65536          /* 16-bit rule ids */
#define EMBER_PACKED_NONE 0xffffffffu  /* an empty half of an element */

#define EMBER_PACK_ROW(pc_in_chunk, rule) (((__u32)(pc_in_chunk) << 16) | (__u16)(rule))
#define EMBER_PACKED_PC(e) ((e) >> 16)
#define EMBER_PACKED_RULE(e) ((e) & 0xffff)

/* A row without its pc: how to unwind (same fields as struct ember_unwind_row). */
struct ember_unwind_rule {
	__u16 cfa_offset;
	__u8 kind;
	__s8 rbp_offset;
};

/* How frames in a mapping are unwound. */
#define EMBER_MAPPING_TABLE (1u << 0) /* rows in the index under exe_id */
#define EMBER_MAPPING_FP (1u << 1)    /* no table: walk by frame pointer */

struct ember_mapping {
	__u64 start, end; /* runtime addresses, end exclusive */
	__u64 bias;       /* ELF vaddr = pc - bias */
	__u32 exe_id;     /* table id, 0 when none */
	__u32 flags;      /* EMBER_MAPPING_* */
};

struct ember_proc {
	__u32 n_mappings;
	__u32 pad;
	struct ember_mapping mappings[EMBER_MAX_MAPPINGS];
};

/*
 * A file with a table, by inode: how a process the agent has not read yet
 * (no `procs` entry: just exec'd, or mapping a library) is unwound with
 * tables at once.  The kernel's VMA (bpf_find_vma) gives the file's device
 * (the kernel's dev_t: major << 20 | minor) and inode, and the mapping's
 * start and file offset; the PT_LOAD segments turn that into ELF vaddrs as
 * mapping_bias() does in user space.  Written by user space while the
 * table is placed.
 */
#define EMBER_FILE_LOADS 4

struct ember_file_key {
	__u64 dev;
	__u64 ino;
};

struct ember_file_load {
	__u64 offset, vaddr, filesz;
};

struct ember_file_table {
	__u32 exe_id;
	__u32 n_loads;
	struct ember_file_load loads[EMBER_FILE_LOADS];
};

/*
 * The code mappings of a process the agent has not read yet, noted by the
 * kernel where bpf_find_vma may be called freely (process context: the
 * exec tracepoint, the return of mmap).  A sample, in interrupt context,
 * gets one bpf_find_vma (its unlock goes through a per-CPU irq_work that
 * stays busy until the interrupt ends), too few for a stack crossing the
 * executable, libc and the loader.  A ring: the newest EMBER_EARLY_VMAS.
 */
#define EMBER_EARLY_VMAS 8 /* a power of two */

struct ember_vma {
	__u64 start, end, pgoff, dev, ino;
};

struct ember_early_vmas {
	__u32 n; /* noted so far; slot n % EMBER_EARLY_VMAS is the next */
	__u32 pad;
	struct ember_vma vmas[EMBER_EARLY_VMAS];
};

struct ember_index_key {
	__u32 exe_id;
	__u32 chunk; /* ELF vaddr >> EMBER_CHUNK_SHIFT */
};

struct ember_index_value {
	__u32 shard;
	__u32 first; /* first element in the shard */
	__u32 count; /* elements of this chunk (rows / 2, rounded up) */
	__u32 pad;
};

/*
 * Where a Go binary keeps its runtime state, for EMBER_CFA_GO_SWITCH: the
 * current g at fs_base + tls_g, and field offsets in runtime.g, runtime.m
 * and runtime.gobuf (from the binary's DWARF, or decoded from the runtime's
 * own instructions; src/symbolizer/goruntime.c).  Keyed by exe_id.
 */
struct ember_go_runtime {
	__s32 tls_g;                              /* g = *(fs_base + tls_g), -8 on linux/amd64 */
	__u16 g_m, g_sched_sp, g_sched_pc, g_sched_bp; /* g.m, g.sched.{sp,pc,bp} */
	__u16 m_g0, m_curg, m_vdso_sp, m_vdso_pc;  /* m.g0, m.curg, m.vdsoSP, m.vdsoPC */
	__u16 pad;
};

#define EMBER_ROW_CFA(row) ((row)->kind & 0x0f)
#define EMBER_ROW_RBP(row) ((row)->kind >> 4)
#define EMBER_ROW_KIND(cfa, rbp) ((__u8)((cfa) | ((rbp) << 4)))

#endif
