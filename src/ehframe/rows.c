/*
 * rows.c - from DWARF rule states to the sorted table of compact rows.
 *
 * cfi_state_to_row() decides what the BPF unwinder can follow:
 *   - return address column undefined          -> END_OF_STACK
 *   - return address anywhere but CFA-8         -> UNSUPPORTED
 *   - CFA = rsp/rbp + 0..65535                  -> RSP / RBP
 *   - CFA = one of the two PLT expressions      -> PLT1 / PLT2
 *   - CFA = *(rsp + 160) (signal trampoline)    -> SIGNAL
 *   - any other CFA rule                        -> UNSUPPORTED
 *   - rbp unset or same value                   -> RBP_SAME
 *   - rbp saved at CFA + 8*k, -128 <= k <= 127  -> RBP_AT_CFA
 *   - any other rbp rule                        -> RBP_UNSUPPORTED
 * Rows that say nothing about rbp or the CFA offset keep those fields 0,
 * so equal rules always pack to equal bytes and merge.
 *
 * cfi_builder_finish() sorts the FDEs by pc, drops overlapping ones (the
 * one starting first wins; on a tie .eh_frame beats .debug_frame, then the
 * longer one), closes every function with a GAP row unless the next one
 * starts at its end, and merges identical neighbours as it writes: one
 * pass, one allocation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "ehframe/cfi.h"

/* DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_lit11 (or lit10);
 * DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus -- binutils' .plt / .plt.sec CFA. */
static const uint8_t plt_expr[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a,
				   0x00, 0x2a, 0x33, 0x24, 0x22};
#define PLT_LIT_AT 6
#define DW_OP_lit10 0x3a
#define DW_OP_lit11 0x3b

static uint8_t plt_rule(const uint8_t *e, uint64_t len)
{
	if (len != sizeof(plt_expr) || memcmp(e, plt_expr, PLT_LIT_AT) ||
	    memcmp(e + PLT_LIT_AT + 1, plt_expr + PLT_LIT_AT + 1, len - PLT_LIT_AT - 1))
		return EMBER_CFA_UNSUPPORTED;
	if (e[PLT_LIT_AT] == DW_OP_lit11)
		return EMBER_CFA_PLT1;
	if (e[PLT_LIT_AT] == DW_OP_lit10)
		return EMBER_CFA_PLT2;
	return EMBER_CFA_UNSUPPORTED;
}

/*
 * DW_OP_breg7 160; DW_OP_deref -- the CFA of the x86_64 Linux signal
 * trampoline (glibc's __restore_rt, CIE augmentation "zRS"): the interrupted
 * rsp saved in the ucontext on the stack.  Its registers are all
 * expressions into that ucontext; the unwinder reads them at their fixed
 * offsets (EMBER_CFA_SIGNAL), so the row needs no more than the kind.
 */
static const uint8_t signal_cfa_expr[] = {0x77, 0xa0, 0x01, 0x06};

static bool is_signal_frame(const struct cfi_state *st)
{
	return st->cfa_how == CFA_EXPR && st->cfa_expr_len == sizeof(signal_cfa_expr) &&
	       memcmp(st->cfa_expr, signal_cfa_expr, sizeof(signal_cfa_expr)) == 0;
}

static bool ra_at_cfa_minus_8(const struct cfi_state *st, const struct cfi_cie *cie)
{
	if (cie->ra_reg != CFI_REG_RA)
		return false;
	/* Unset: a call pushed it at CFA-8, which is what x86_64 CIEs say anyway. */
	return st->ra.how == RULE_UNSET || (st->ra.how == RULE_OFFSET && st->ra.value == -8);
}

static uint8_t cfa_rule(const struct cfi_state *st, uint16_t *offset)
{
	*offset = 0;
	if (st->cfa_how == CFA_EXPR)
		return plt_rule(st->cfa_expr, st->cfa_expr_len);
	if (st->cfa_reg != CFI_REG_RSP && st->cfa_reg != CFI_REG_RBP)
		return EMBER_CFA_UNSUPPORTED;
	if (st->cfa_off < 0)
		return EMBER_CFA_UNSUPPORTED;
	if (st->cfa_off > UINT16_MAX) {
		/* a frame over 64 KiB (a big stack buffer): 8-byte units fit to 512 KiB */
		if (st->cfa_reg != CFI_REG_RSP || st->cfa_off % 8 || st->cfa_off / 8 > UINT16_MAX)
			return EMBER_CFA_UNSUPPORTED;
		*offset = (uint16_t)(st->cfa_off / 8);
		return EMBER_CFA_RSP_X8;
	}
	*offset = (uint16_t)st->cfa_off;
	return st->cfa_reg == CFI_REG_RSP ? EMBER_CFA_RSP : EMBER_CFA_RBP;
}

static uint8_t rbp_rule(const struct cfi_reg_rule *r, int8_t *offset)
{
	*offset = 0;
	switch (r->how) {
	case RULE_UNSET:
	case RULE_SAME:
		return EMBER_RBP_SAME;
	case RULE_REGISTER:
		return r->value == CFI_REG_RBP ? EMBER_RBP_SAME : EMBER_RBP_UNSUPPORTED;
	case RULE_OFFSET:
		if (r->value % 8 || r->value < -128 * 8 || r->value > 127 * 8)
			return EMBER_RBP_UNSUPPORTED;
		*offset = (int8_t)(r->value / 8);
		return EMBER_RBP_AT_CFA;
	default: /* undefined, val_offset, expression, val_expression */
		return EMBER_RBP_UNSUPPORTED;
	}
}

struct ember_unwind_row cfi_state_to_row(const struct cfi_state *st, const struct cfi_cie *cie)
{
	struct ember_unwind_row row = {0};
	uint8_t cfa, rbp;

	if (st->ra.how == RULE_UNDEF && cie->ra_reg == CFI_REG_RA) {
		row.kind = EMBER_ROW_KIND(EMBER_CFA_END_OF_STACK, EMBER_RBP_SAME);
		return row;
	}
	if (is_signal_frame(st)) {
		row.kind = EMBER_ROW_KIND(EMBER_CFA_SIGNAL, EMBER_RBP_SAME);
		return row;
	}
	cfa = ra_at_cfa_minus_8(st, cie) ? cfa_rule(st, &row.cfa_offset) : EMBER_CFA_UNSUPPORTED;
	if (cfa == EMBER_CFA_UNSUPPORTED) {
		row.cfa_offset = 0;
		row.kind = EMBER_ROW_KIND(EMBER_CFA_UNSUPPORTED, EMBER_RBP_SAME);
		return row;
	}
	rbp = rbp_rule(&st->rbp, &row.rbp_offset);
	row.kind = EMBER_ROW_KIND(cfa, rbp);
	return row;
}

/* ---- builder ------------------------------------------------------------ */

void cfi_builder_init(struct cfi_builder *b)
{
	memset(b, 0, sizeof(*b));
	b->stats.hdr_fdes = -1;
}

void cfi_builder_free(struct cfi_builder *b)
{
	free(b->rows);
	free(b->fdes);
	b->rows = NULL;
	b->fdes = NULL;
	b->n_rows = b->cap_rows = b->n_fdes = b->cap_fdes = 0;
}


int cfi_builder_grow_rows(struct cfi_builder *b)
{
	if (ember_array_grow((void **)&b->rows, &b->cap_rows, b->n_rows + 1, sizeof(b->rows[0]))) {
		b->oom = true;
		return -ENOMEM;
	}
	return 0;
}

int cfi_builder_add_fde(struct cfi_builder *b, const struct cfi_fde_rec *rec)
{
	if (b->n_fdes == b->cap_fdes &&
	    ember_array_grow((void **)&b->fdes, &b->cap_fdes, b->n_fdes + 1, sizeof(*rec))) {
		b->oom = true;
		return -ENOMEM;
	}
	b->fdes[b->n_fdes++] = *rec;
	return 0;
}

void cfi_error(struct cfi_builder *b, const struct cfi_section *s, size_t off, const char *fmt,
	       ...)
{
	va_list ap;
	int n;

	b->stats.errors++;
	if (b->first_error[0])
		return;
	n = snprintf(b->first_error, sizeof(b->first_error), "%s+0x%zx: ", s->name, off);
	if (n < 0 || (size_t)n >= sizeof(b->first_error))
		return;
	va_start(ap, fmt);
	vsnprintf(b->first_error + n, sizeof(b->first_error) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* ---- finishing: sort, drop, gaps, merge -------------------------------- */

/*
 * FDEs are sorted through an array of their indexes: by pc_begin, then
 * .eh_frame before .debug_frame, then the longer first, then parse order.
 * Linkers emit FDEs in runs of increasing pc (one run per input object),
 * so a natural merge sort does little work: a sorted table costs one scan.
 */
static inline bool fde_less(const struct cfi_fde_rec *f, uint32_t a, uint32_t b)
{
	const struct cfi_fde_rec *x = &f[a], *y = &f[b];

	if (x->pc_begin != y->pc_begin)
		return x->pc_begin < y->pc_begin;
	if (x->source != y->source)
		return x->source < y->source;
	if (x->pc_len != y->pc_len)
		return x->pc_len > y->pc_len;
	return a < b;
}

static void merge_runs(const struct cfi_fde_rec *f, const uint32_t *src, uint32_t *dst,
		       size_t lo, size_t mid, size_t hi)
{
	size_t i = lo, j = mid, k = lo;

	while (i < mid && j < hi)
		dst[k++] = fde_less(f, src[j], src[i]) ? src[j++] : src[i++];
	memcpy(dst + k, src + i, (mid - i) * sizeof(*src));
	k += mid - i;
	memcpy(dst + k, src + j, (hi - j) * sizeof(*src));
}

/* The FDE indexes in sorted order (malloc'd), NULL on ENOMEM. */
static uint32_t *sorted_fdes(const struct cfi_builder *b)
{
	size_t n = b->n_fdes, nruns = 0;
	uint32_t *idx = malloc((n + 1) * sizeof(*idx)), *tmp = NULL, *runs = NULL, *src, *dst;

	if (!idx)
		return NULL;
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	for (size_t i = 1; i < n; i++)
		if (fde_less(b->fdes, (uint32_t)i, (uint32_t)(i - 1)))
			nruns++;
	if (!nruns)
		return idx; /* already sorted: the common case */
	tmp = malloc(n * sizeof(*tmp));
	runs = malloc((nruns + 2) * sizeof(*runs));
	if (!tmp || !runs) {
		free(idx);
		free(tmp);
		free(runs);
		return NULL;
	}
	/* runs[0..nruns) are run starts, runs[nruns] the end */
	nruns = 0;
	runs[nruns++] = 0;
	for (size_t i = 1; i < n; i++)
		if (fde_less(b->fdes, (uint32_t)i, (uint32_t)(i - 1)))
			runs[nruns++] = (uint32_t)i;
	runs[nruns] = (uint32_t)n;
	src = idx;
	dst = tmp;
	while (nruns > 1) {
		size_t out = 0;
		for (size_t r = 0; r < nruns; r += 2) {
			/* Merge run r with run r + 1; an odd last run is copied over. */
			size_t lo = runs[r], mid = runs[r + 1];
			size_t hi = r + 2 <= nruns ? runs[r + 2] : mid;
			merge_runs(b->fdes, src, dst, lo, mid, hi);
			runs[out++] = (uint32_t)lo;
		}
		runs[out] = (uint32_t)n;
		nruns = out;
		uint32_t *t = src;
		src = dst;
		dst = t;
	}
	free(runs);
	free(dst);
	return src;
}

/* Append to the final table, merging with the last row. */
static void put_row(struct ember_unwind_table *t, uint32_t pc, struct ember_unwind_row row)
{
	row.pc = pc;
	if (t->n_rows) {
		struct ember_unwind_row *last = &t->rows[t->n_rows - 1];
		if (last->pc == pc) { /* an empty range: the new rule replaces it */
			t->n_rows--;
			put_row(t, pc, row);
			return;
		}
		if (cfi_same_rule(last, &row))
			return;
	}
	t->rows[t->n_rows++] = row;
}

static void put_gap(struct ember_unwind_table *t, uint32_t pc)
{
	struct ember_unwind_row gap = {.kind = EMBER_ROW_KIND(EMBER_CFA_GAP, EMBER_RBP_SAME)};

	put_row(t, pc, gap);
}

/* Copy one FDE's rows: only its first row can merge with what precedes. */
static void put_fde_rows(struct ember_unwind_table *t, const struct ember_unwind_row *rows,
			 uint32_t n, uint32_t start)
{
	struct ember_unwind_row *out;

	if (!n)
		return;
	put_row(t, start + rows[0].pc, rows[0]);
	out = t->rows + t->n_rows;
	for (uint32_t i = 1; i < n; i++) {
		out[i - 1] = rows[i];
		out[i - 1].pc += start;
	}
	t->n_rows += n - 1;
}

static void count_rows(struct ember_unwind_table *t)
{
	struct ember_ehframe_stats *st = &t->stats;
	uint64_t by_cfa[16] = {0};

	st->rows = t->n_rows;
	for (size_t i = 0; i < t->n_rows; i++) {
		by_cfa[EMBER_ROW_CFA(&t->rows[i])]++;
		st->unsupported_rbp += EMBER_ROW_RBP(&t->rows[i]) == EMBER_RBP_UNSUPPORTED;
	}
	st->unsupported_cfa = by_cfa[EMBER_CFA_UNSUPPORTED];
	st->end_of_stack = by_cfa[EMBER_CFA_END_OF_STACK];
	st->plt = by_cfa[EMBER_CFA_PLT1] + by_cfa[EMBER_CFA_PLT2];
	st->gaps = by_cfa[EMBER_CFA_GAP];
}

int cfi_builder_finish(struct cfi_builder *b, bool has_base, uint64_t base_hint, unsigned flags,
		       struct ember_unwind_table *out)
{
	struct ember_unwind_table t;
	uint32_t *order;
	uint64_t prev_end = 0;
	bool have_prev = false, keep_fdes = flags & EMBER_EHFRAME_KEEP_FDES;

	memset(&t, 0, sizeof(t));
	t.stats = b->stats;
	memcpy(t.first_error, b->first_error, sizeof(t.first_error));
	order = sorted_fdes(b);
	/* At most one gap row per FDE on top of its rows. */
	t.rows = malloc((b->n_rows + b->n_fdes + 1) * sizeof(*t.rows));
	if (keep_fdes)
		t.fdes = malloc((b->n_fdes + 1) * sizeof(*t.fdes));
	if (!order || !t.rows || (keep_fdes && !t.fdes)) {
		free(order);
		free(t.rows);
		free(t.fdes);
		return -ENOMEM;
	}
	t.base = has_base ? base_hint : b->n_fdes ? b->fdes[order[0]].pc_begin : 0;
	for (size_t i = 0; i < b->n_fdes; i++) {
		const struct cfi_fde_rec *f = &b->fdes[order[i]];
		uint64_t end = f->pc_begin + f->pc_len;
		if (f->pc_begin < t.base || end - t.base > UINT32_MAX) {
			t.stats.out_of_range++;
			continue;
		}
		if (have_prev && f->pc_begin < prev_end) {
			t.stats.overlaps++;
			continue;
		}
		if (have_prev && f->pc_begin > prev_end)
			put_gap(&t, (uint32_t)(prev_end - t.base));
		put_fde_rows(&t, b->rows + f->first_row, f->n_rows, (uint32_t)(f->pc_begin - t.base));
		if (keep_fdes)
			t.fdes[t.n_fdes] = (struct ember_fde_range){
				.pc_begin = f->pc_begin, .pc_end = end,
				.offset = f->offset, .source = f->source};
		t.n_fdes++;
		prev_end = end;
		have_prev = true;
	}
	if (have_prev)
		put_gap(&t, (uint32_t)(prev_end - t.base));
	free(order);
	t.stats.fdes = t.n_fdes;
	if (!keep_fdes)
		t.n_fdes = 0;
	count_rows(&t);
	*out = t;
	return 0;
}

/* ---- lookup ------------------------------------------------------------- */

const struct ember_unwind_row *ember_unwind_find(const struct ember_unwind_table *t,
						 uint64_t vaddr)
{
	size_t lo = 0, hi;
	uint64_t off;

	if (!t->n_rows || vaddr < t->base || vaddr - t->base > UINT32_MAX)
		return NULL;
	off = vaddr - t->base;
	hi = t->n_rows;
	/* Find the last row with pc <= off. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->rows[mid].pc <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &t->rows[lo - 1] : NULL;
}

const struct ember_fde_range *ember_unwind_find_fde(const struct ember_unwind_table *t,
						    uint64_t vaddr)
{
	size_t lo = 0, hi = t->n_fdes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->fdes[mid].pc_begin <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && vaddr < t->fdes[lo - 1].pc_end)
		return &t->fdes[lo - 1];
	return NULL;
}

void ember_unwind_table_free(struct ember_unwind_table *t)
{
	free(t->rows);
	free(t->fdes);
	t->rows = NULL;
	t->fdes = NULL;
	t->n_rows = t->n_fdes = 0;
}

void ember_unwind_row_format(const struct ember_unwind_row *row, char *buf, size_t len)
{
	const char *reg = NULL;
	char rbp[32];

	switch (EMBER_ROW_CFA(row)) {
	case EMBER_CFA_END_OF_STACK: snprintf(buf, len, "end-of-stack"); return;
	case EMBER_CFA_GAP: snprintf(buf, len, "gap"); return;
	case EMBER_CFA_UNSUPPORTED: snprintf(buf, len, "unsupported"); return;
	case EMBER_CFA_SIGNAL: snprintf(buf, len, "signal-frame"); return;
	case EMBER_CFA_GO_SWITCH: {
		static const char *const how[] = {"systemstack", "sched", "vdso", "gogo"};
		snprintf(buf, len, "go-switch-%s cfa=rsp+%u", how[EMBER_GO_SWITCH_HOW(row->cfa_offset)],
			 EMBER_GO_SWITCH_CFA(row->cfa_offset));
		return;
	}
	case EMBER_CFA_GO_SIGTRAMP:
		snprintf(buf, len, "go-sigtramp ucontext=rsp+%u", row->cfa_offset);
		return;
	case EMBER_CFA_RSP: reg = "rsp"; break;
	case EMBER_CFA_RBP: reg = "rbp"; break;
	case EMBER_CFA_RSP_X8: reg = "rsp"; break;
	case EMBER_CFA_PLT1: reg = "plt1"; break;
	case EMBER_CFA_PLT2: reg = "plt2"; break;
	default: snprintf(buf, len, "bad-kind-0x%02x", row->kind); return;
	}
	switch (EMBER_ROW_RBP(row)) {
	case EMBER_RBP_SAME: snprintf(rbp, sizeof(rbp), "same"); break;
	case EMBER_RBP_AT_CFA: snprintf(rbp, sizeof(rbp), "cfa%+d", row->rbp_offset * 8); break;
	case EMBER_RBP_UNSUPPORTED: snprintf(rbp, sizeof(rbp), "unsupported"); break;
	default: snprintf(rbp, sizeof(rbp), "bad-0x%x", EMBER_ROW_RBP(row)); break;
	}
	if (EMBER_ROW_CFA(row) == EMBER_CFA_RSP || EMBER_ROW_CFA(row) == EMBER_CFA_RBP)
		snprintf(buf, len, "cfa=%s+%u rbp=%s", reg, row->cfa_offset, rbp);
	else if (EMBER_ROW_CFA(row) == EMBER_CFA_RSP_X8)
		snprintf(buf, len, "cfa=%s+%u rbp=%s", reg, row->cfa_offset * 8u, rbp);
	else
		snprintf(buf, len, "cfa=%s rbp=%s", reg, rbp);
}
