/*
 * gopclntab_rows.c - unwind rows for Go code from the .gopclntab SP-delta
 * (pcsp) tables, for the BPF unwinder (struct ember_unwind_row).
 *
 * Go's compiler records, for every pc of every function, spdelta = the
 * number of bytes the function has pushed below the return address.  The
 * Go runtime unwinds with exactly that table, so it is right in frameless
 * leaves, prologues and epilogues where frame-pointer walking loses the
 * caller.  On amd64 the return address is at CFA-8 and
 *     CFA = rsp + spdelta + 8                                (EMBER_CFA_RSP).
 *
 * Where is the caller's rbp?  The amd64 back end (cmd/internal/obj/x86,
 * preprocess) gives every function with a frame (frame size > 0, not
 * NOFRAME) a base-pointer slot just below the return address, i.e. at
 * CFA-16, and stores rbp there in the prologue.  Two prologue shapes exist:
 *     Go <= 1.20:  SUBQ $d, SP ; MOVQ BP, d-8(SP) ; LEAQ d-8(SP), BP
 *     newer:       PUSHQ BP ; MOVQ SP, BP ; SUBQ $d-8, SP
 * and the epilogues undo them (MOVQ d-8(SP), BP ; ADDQ $d, SP  or
 * ADDQ ; POPQ BP) without touching the saved copy before the final SP
 * adjustment, so "rbp at CFA-16" holds from the store up to the instruction
 * that brings spdelta back to 0.  The pcsp table alone cannot say whether a
 * frame saved rbp: a frameless assembly function may PUSHQ another register
 * (spdelta 8, but CFA-16 is not rbp), and in the SUBQ shape the store comes
 * one instruction after spdelta changes.  So we look at the code where the
 * pcsp table first leaves 0 (pc P, new spdelta d):
 *     d == 8 and the byte before P is 0x55 (PUSHQ BP)        -> saved from P
 *     at P: 48 89 6c 24 <d-8>        (MOVQ BP, disp8(SP))    -> saved from P+5
 *     at P: 48 89 ac 24 <d-8 le32>   (MOVQ BP, disp32(SP))   -> saved from P+8
 *     anything else: the function does not save rbp        -> EMBER_RBP_SAME
 * and emit EMBER_RBP_AT_CFA with offset -2 (8-byte units) for pcs from that
 * point on where spdelta >= 8; pcs with spdelta 0 (prologue before the
 * adjustment, the morestack call block, after the epilogue) keep
 * EMBER_RBP_SAME.  Without the code (ember_gopclntab_parse) every row says
 * EMBER_RBP_SAME: unwinding Go frames needs only the CFA.
 *
 * The roots of Go's stacks end the walk (EMBER_CFA_END_OF_STACK): the
 * functions flagged TOPFRAME, runtime.goexit at the root of every goroutine
 * (its return address is what a goroutine's first frame returns to) and
 * runtime.mstart and runtime.rt0_go at the root of the system stacks.
 * Go 1.16 has no flag byte, so those three are also matched by name.
 * Functions flagged SPWRITE are assembly that moves SP to another stack:
 * past that instruction their spdelta describes nothing.  The ones Go's own
 * traceback crosses get an EMBER_CFA_GO_SWITCH row saying how
 * (runtime.systemstack and asmcgocall, mcall and morestack, and time.now
 * and nanotime1 around their vDSO calls): the unwinder continues on the
 * goroutine with the offsets of goruntime.c.  runtime.sigtramp gets
 * EMBER_CFA_GO_SIGTRAMP rows (the interrupted context is at its CFA)
 * instead of being a root, and its restorer runtime.sigreturn (sigreturn__sigaction
 * in newer releases) gets EMBER_CFA_SIGNAL rows like glibc's __restore_rt.
 * The other SPWRITE functions get
 * EMBER_CFA_UNSUPPORTED rows -- the stack is reported as cut short, never
 * guessed.
 *
 * Functions without an SP-delta table are the C functions of a cgo binary
 * (externally linked): they are described by .eh_frame, and get GAP rows.
 *
 * Rows are sorted, identical neighbours merged, and a function's range
 * ends with an EMBER_CFA_GAP row unless the next function starts there
 * (Go pads functions to 32 bytes with int3).
 */
#include "symbolizer/gopclntab_int.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ehframe/ehframe.h"

#define RBP_SLOT (-2) /* the caller's rbp is at CFA - 16 */

struct rowbuf {
	struct ember_unwind_row *rows;
	size_t n, cap;
	uint64_t base;
	struct ember_ehframe_stats *st;
};

static bool same_rule(const struct ember_unwind_row *a, const struct ember_unwind_row *b)
{
	return a->kind == b->kind && a->cfa_offset == b->cfa_offset && a->rbp_offset == b->rbp_offset;
}

/* Append the rule that starts at pc (callers emit in increasing pc order). */
static int emit(struct rowbuf *b, uint64_t pc, uint8_t cfa, uint16_t cfa_off, uint8_t rbp)
{
	struct ember_unwind_row r = {
		.pc = (uint32_t)(pc - b->base),
		.cfa_offset = cfa == EMBER_CFA_RSP || cfa == EMBER_CFA_GO_SWITCH ||
					      cfa == EMBER_CFA_GO_SIGTRAMP
				      ? cfa_off
				      : 0,
		.kind = EMBER_ROW_KIND(cfa, rbp),
		.rbp_offset = rbp == EMBER_RBP_AT_CFA ? RBP_SLOT : 0,
	};

	if (b->n && b->rows[b->n - 1].pc == r.pc) {
		b->n--; /* an empty range: the new rule replaces it */
		if (b->n && same_rule(&b->rows[b->n - 1], &r))
			return 0;
	} else if (b->n && same_rule(&b->rows[b->n - 1], &r)) {
		return 0;
	}
	if (b->n == b->cap) {
		size_t ncap = b->cap ? 2 * b->cap : 4096;
		void *p = realloc(b->rows, ncap * sizeof(*b->rows));
		if (!p)
			return -ENOMEM;
		b->rows = p;
		b->cap = ncap;
	}
	b->rows[b->n++] = r;
	return 0;
}

/* ---- the code, for the prologue check ---- */

static int code_byte(const struct gobytes *code, uint64_t vaddr)
{
	if (!code->data || vaddr < code->vaddr || vaddr - code->vaddr >= code->len)
		return -1;
	return code->data[vaddr - code->vaddr];
}

static bool code_matches(const struct gobytes *code, uint64_t at, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (code_byte(code, at + i) != want[i])
			return false;
	return true;
}

/* First pc where rbp is saved at CFA-16, given the first spdelta step (P, d); 0 if never. */
static uint64_t rbp_saved_from(const struct gobytes *code, uint64_t p, int32_t d)
{
	if (d == 8 && code_byte(code, p - 1) == 0x55)
		return p; /* PUSHQ BP */
	if (d < 16)
		return 0;
	uint32_t disp = (uint32_t)d - 8;
	if (disp <= 127) {
		const uint8_t mov8[] = {0x48, 0x89, 0x6c, 0x24, (uint8_t)disp};
		return code_matches(code, p, mov8, sizeof(mov8)) ? p + sizeof(mov8) : 0;
	}
	const uint8_t mov32[] = {0x48, 0x89, 0xac, 0x24, (uint8_t)disp, (uint8_t)(disp >> 8),
				 (uint8_t)(disp >> 16), (uint8_t)(disp >> 24)};
	return code_matches(code, p, mov32, sizeof(mov32)) ? p + sizeof(mov32) : 0;
}

/*
 * The code of the Go functions: the copy kept in image mode, or read again
 * from the file (gotab_read_code).  *owned is set when the caller must free
 * code->data.
 */
static void get_code(const struct ember_gopclntab *g, struct gobytes *code, bool *owned)
{
	uint64_t lo, hi, dummy;

	*owned = false;
	*code = g->code;
	if (code->data || !g->path || gotab_func_bounds(g, 0, &lo, &dummy) ||
	    gotab_func_bounds(g, g->nfunc - 1, &dummy, &hi) || hi <= lo || hi - lo > GOELF_MAX_READ)
		return;
	uint8_t *buf = malloc(hi - lo);
	if (buf && gotab_read_code(g, lo, buf, hi - lo) == 0) {
		code->data = buf;
		code->len = hi - lo;
		code->vaddr = lo;
		*owned = true;
	} else {
		free(buf);
	}
}

/* ---- one function ---- */

static bool is_stack_root(const char *name, const struct gofunc *f)
{
	static const char *const roots[] = {"runtime.goexit", "runtime.mstart", "runtime.rt0_go"};

	if (f->flag & GO_FUNCFLAG_TOPFRAME)
		return true;
	for (size_t i = 0; name && i < sizeof(roots) / sizeof(roots[0]); i++)
		if (strcmp(name, roots[i]) == 0)
			return true;
	return false;
}

/*
 * The runtime functions that switch stacks and how the unwinder crosses
 * them (enum ember_go_switch, bpf/include/ember_unwind.h); -1 for others.
 */
static int go_switch_kind(const char *name)
{
	static const struct {
		const char *name;
		int kind;
	} switches[] = {
		{"runtime.systemstack", EMBER_GO_SWITCH_SYSTEMSTACK},
		{"runtime.asmcgocall", EMBER_GO_SWITCH_SYSTEMSTACK},
		{"runtime.mcall", EMBER_GO_SWITCH_SCHED},
		{"runtime.morestack", EMBER_GO_SWITCH_SCHED},
		{"runtime.nanotime1", EMBER_GO_SWITCH_VDSO},
		{"runtime.walltime", EMBER_GO_SWITCH_VDSO},
		{"runtime.walltime1", EMBER_GO_SWITCH_VDSO},
		{"time.now", EMBER_GO_SWITCH_VDSO},
		{"runtime.gogo", EMBER_GO_SWITCH_GOGO},
		{"gogo", EMBER_GO_SWITCH_GOGO},
	};

	for (size_t i = 0; name && i < sizeof(switches) / sizeof(switches[0]); i++)
		if (strcmp(name, switches[i].name) == 0)
			return switches[i].kind;
	return -1;
}

/*
 * Rows of a function the unwinder handles specially, per SP-delta range:
 *   runtime.sigtramp   EMBER_CFA_GO_SIGTRAMP, cfa_offset = CFA offset: the
 *                      kernel's ucontext is at the CFA, so the unwinder
 *                      continues in the interrupted code (Go marks sigtramp
 *                      TOPFRAME, a root: its traceback reads the context from
 *                      the handler's arguments)
 *   stack switches     EMBER_CFA_GO_SWITCH, cfa_offset = how | CFA offset << 2
 *                      (bpf/include/ember_unwind.h)
 */
static int compile_special(const struct ember_gopclntab *g, const struct gofunc *f,
			   uint64_t next, struct rowbuf *b, uint64_t *end, uint8_t kind, int how)
{
	struct gopcvalue it;
	bool bad = false;
	int32_t max = kind == EMBER_CFA_GO_SWITCH ? (0xffff >> 2) - 8 : 0xffff - 8;

	*end = f->entry;
	if (gopcvalue_init(g, f->pcsp, f->entry, &it)) {
		while (gopcvalue_next(&it, &bad) && it.pc < next) {
			uint64_t stop = it.next_pc < next ? it.next_pc : next;
			if (stop <= it.pc)
				continue;
			uint16_t cfa = (uint16_t)(it.value + 8);
			int rc = it.value < 0 || it.value > max
					 ? emit(b, it.pc, EMBER_CFA_UNSUPPORTED, 0, EMBER_RBP_SAME)
				 : kind == EMBER_CFA_GO_SWITCH
					 ? emit(b, it.pc, kind, EMBER_GO_SWITCH_OFFSET(how, cfa),
						EMBER_RBP_SAME)
					 : emit(b, it.pc, kind, cfa, EMBER_RBP_SAME);
			if (rc)
				return rc;
			*end = stop;
		}
	}
	if (bad || *end == f->entry) {
		b->st->errors += bad;
		*end = next;
		return emit(b, f->entry, EMBER_CFA_UNSUPPORTED, 0, EMBER_RBP_SAME);
	}
	return 0;
}

/* The rule for one pcsp range [a, b) with spdelta v. */
static int emit_range(struct rowbuf *b, uint64_t a, uint64_t end, int32_t v, uint64_t saved_from)
{
	if (v < 0 || v > 0xffff - 8) {
		return emit(b, a, EMBER_CFA_UNSUPPORTED, 0, EMBER_RBP_SAME);
	}
	uint16_t off = (uint16_t)(v + 8);
	if (!saved_from || v < 8 || end <= saved_from)
		return emit(b, a, EMBER_CFA_RSP, off, EMBER_RBP_SAME);
	if (a < saved_from) { /* the store of rbp is inside this range */
		int rc = emit(b, a, EMBER_CFA_RSP, off, EMBER_RBP_SAME);
		if (rc)
			return rc;
		a = saved_from;
	}
	return emit(b, a, EMBER_CFA_RSP, off, EMBER_RBP_AT_CFA);
}

/* Rows for function i, which spans [entry, next). *end gets where its code ends. */
static int compile_func(const struct ember_gopclntab *g, const struct gobytes *code,
			const struct gofunc *f, uint64_t next, struct rowbuf *b, uint64_t *end)
{
	struct gopcvalue it;
	bool bad = false;
	uint64_t first_pc = 0;
	int32_t first_d = 0;

	*end = next;
	if (f->pcsp == 0) {
		/* no SP table: C code of a cgo binary (it has .eh_frame): leave a gap */
		*end = f->entry;
		return 0;
	}
	const char *name = gotab_name(g, f->nameoff);
	int sw = go_switch_kind(name);
	if (sw >= 0)
		return compile_special(g, f, next, b, end, EMBER_CFA_GO_SWITCH, sw);
	if (name && strcmp(name, "runtime.sigtramp") == 0)
		return compile_special(g, f, next, b, end, EMBER_CFA_GO_SIGTRAMP, 0);
	if (name && (strcmp(name, "runtime.sigreturn") == 0 ||
		     strcmp(name, "runtime.sigreturn__sigaction") == 0))
		return emit(b, f->entry, EMBER_CFA_SIGNAL, 0, EMBER_RBP_SAME); /* the restorer */
	if (is_stack_root(name, f))
		return emit(b, f->entry, EMBER_CFA_END_OF_STACK, 0, EMBER_RBP_SAME);
	if (f->flag & GO_FUNCFLAG_SPWRITE)
		return emit(b, f->entry, EMBER_CFA_UNSUPPORTED, 0, EMBER_RBP_SAME);
	if (!gopcvalue_init(g, f->pcsp, f->entry, &it)) {
		b->st->errors++;
		return emit(b, f->entry, EMBER_CFA_UNSUPPORTED, 0, EMBER_RBP_SAME);
	}
	/* pass 1: where the frame is first set up, and where the code ends */
	uint64_t last = f->entry;
	while (gopcvalue_next(&it, &bad) && it.pc < next) {
		if (!first_pc && it.value > 0 && it.next_pc > it.pc) {
			first_pc = it.pc;
			first_d = it.value;
		}
		last = it.next_pc < next ? it.next_pc : next;
	}
	uint64_t saved_from = first_pc ? rbp_saved_from(code, first_pc, first_d) : 0;

	/* pass 2: the rows */
	gopcvalue_init(g, f->pcsp, f->entry, &it);
	while (gopcvalue_next(&it, &bad) && it.pc < next) {
		uint64_t stop = it.next_pc < next ? it.next_pc : next;
		if (stop <= it.pc)
			continue;
		int rc = emit_range(b, it.pc, stop, it.value, saved_from);
		if (rc)
			return rc;
	}
	if (bad) { /* a malformed table: the rest of the function is unknown */
		b->st->errors++;
		int rc = emit(b, last, EMBER_CFA_UNSUPPORTED, 0, EMBER_RBP_SAME);
		last = next;
		if (rc)
			return rc;
	}
	if (last > f->entry)
		*end = last;
	return 0;
}

static void count_kinds(struct ember_unwind_table *t)
{
	t->stats.rows = t->n_rows;
	for (size_t i = 0; i < t->n_rows; i++) {
		const struct ember_unwind_row *r = &t->rows[i];
		t->stats.unsupported_cfa += EMBER_ROW_CFA(r) == EMBER_CFA_UNSUPPORTED;
		t->stats.end_of_stack += EMBER_ROW_CFA(r) == EMBER_CFA_END_OF_STACK;
		t->stats.gaps += EMBER_ROW_CFA(r) == EMBER_CFA_GAP;
	}
}

int ember_gopclntab_compile_rows(const struct ember_gopclntab *g, struct ember_unwind_table *out,
				 char *err, size_t errlen)
{
	struct rowbuf b = {0};
	struct gobytes code;
	bool owned;
	uint64_t prev_end = 0, entry, next;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->stats.hdr_fdes = -1;
	b.st = &out->stats;
	if (g->machine != EM_X86_64) {
		goerr(err, errlen, "%s: Go unwind rows are for x86-64 only (e_machine %u)", g->name,
		      g->machine);
		return -ENOTSUP;
	}
	if (gotab_func_bounds(g, 0, &entry, &next)) {
		goerr(err, errlen, "%s: .gopclntab: bad first function", g->name);
		return -EINVAL;
	}
	b.base = g->has_exec_base ? g->exec_base : entry;
	out->base = b.base;
	get_code(g, &code, &owned);

	for (uint64_t i = 0; i < g->nfunc && !rc; i++) {
		struct gofunc f;
		uint64_t end = 0;
		if (gotab_func_bounds(g, i, &entry, &next) || gotab_func(g, i, &f) ||
		    entry < prev_end) {
			out->stats.errors++;
			continue;
		}
		if (entry < b.base || next - b.base > UINT32_MAX) {
			out->stats.out_of_range++;
			continue;
		}
		if (b.n && prev_end < entry)
			rc = emit(&b, prev_end, EMBER_CFA_GAP, 0, EMBER_RBP_SAME);
		if (!rc)
			rc = compile_func(g, &code, &f, next, &b, &end);
		out->stats.fdes++;
		prev_end = end;
	}
	if (!rc && b.n)
		rc = emit(&b, prev_end, EMBER_CFA_GAP, 0, EMBER_RBP_SAME);
	if (owned)
		free(code.data);
	if (rc) {
		free(b.rows);
		memset(out, 0, sizeof(*out));
		goerr(err, errlen, "%s: out of memory compiling Go unwind rows", g->name);
		return rc;
	}
	out->rows = b.rows;
	out->n_rows = b.n;
	count_kinds(out);
	return 0;
}
