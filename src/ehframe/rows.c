/*
 * rows.c - from DWARF rule states to the sorted table of compact rows.
 *
 * cfi_state_to_row() decides what the BPF unwinder can follow:
 *   - return address column undefined          -> END_OF_STACK
 *   - return address anywhere but CFA-8         -> UNSUPPORTED
 *   - CFA = rsp/rbp + 0..65535                  -> RSP / RBP
 *   - CFA = one of the two PLT expressions      -> PLT1 / PLT2
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
	if (st->cfa_off < 0 || st->cfa_off > UINT16_MAX)
		return EMBER_CFA_UNSUPPORTED;
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

static bool same_rule(const struct ember_unwind_row *a, const struct ember_unwind_row *b)
{
	return a->kind == b->kind && a->cfa_offset == b->cfa_offset &&
	       a->rbp_offset == b->rbp_offset;
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

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 256;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

int cfi_builder_add_row(struct cfi_builder *b, size_t fde_first_row, uint32_t rel_pc,
			struct ember_unwind_row row)
{
	if (b->n_rows > fde_first_row && same_rule(&b->rows[b->n_rows - 1], &row))
		return 0;
	if (b->n_rows == b->cap_rows &&
	    grow((void **)&b->rows, &b->cap_rows, b->n_rows + 1, sizeof(row))) {
		b->oom = true;
		return -ENOMEM;
	}
	row.pc = rel_pc;
	b->rows[b->n_rows++] = row;
	return 0;
}

int cfi_builder_add_fde(struct cfi_builder *b, const struct cfi_fde_rec *rec)
{
	if (b->n_fdes == b->cap_fdes &&
	    grow((void **)&b->fdes, &b->cap_fdes, b->n_fdes + 1, sizeof(*rec))) {
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

static int fde_cmp(const void *pa, const void *pb)
{
	const struct cfi_fde_rec *a = pa, *b = pb;

	if (a->pc_begin != b->pc_begin)
		return a->pc_begin < b->pc_begin ? -1 : 1;
	if (a->source != b->source)
		return a->source < b->source ? -1 : 1;
	if (a->pc_end != b->pc_end)
		return a->pc_end > b->pc_end ? -1 : 1; /* longer first */
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}

static void sort_fdes(struct cfi_builder *b)
{
	for (size_t i = 1; i < b->n_fdes; i++) {
		if (fde_cmp(&b->fdes[i - 1], &b->fdes[i]) > 0) {
			qsort(b->fdes, b->n_fdes, sizeof(b->fdes[0]), fde_cmp);
			return;
		}
	}
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
		if (same_rule(last, &row))
			return;
	}
	t->rows[t->n_rows++] = row;
}

static void put_gap(struct ember_unwind_table *t, uint32_t pc)
{
	struct ember_unwind_row gap = {.kind = EMBER_ROW_KIND(EMBER_CFA_GAP, EMBER_RBP_SAME)};

	put_row(t, pc, gap);
}

static void count_rows(struct ember_unwind_table *t)
{
	struct ember_ehframe_stats *st = &t->stats;

	st->rows = t->n_rows;
	for (size_t i = 0; i < t->n_rows; i++) {
		const struct ember_unwind_row *r = &t->rows[i];
		switch (EMBER_ROW_CFA(r)) {
		case EMBER_CFA_UNSUPPORTED: st->unsupported_cfa++; break;
		case EMBER_CFA_END_OF_STACK: st->end_of_stack++; break;
		case EMBER_CFA_PLT1:
		case EMBER_CFA_PLT2: st->plt++; break;
		case EMBER_CFA_GAP: st->gaps++; break;
		}
		if (EMBER_ROW_RBP(r) == EMBER_RBP_UNSUPPORTED)
			st->unsupported_rbp++;
	}
}

int cfi_builder_finish(struct cfi_builder *b, bool has_base, uint64_t base_hint,
		       struct ember_unwind_table *out)
{
	struct ember_unwind_table t;
	uint64_t prev_end = 0;
	bool have_prev = false;

	memset(&t, 0, sizeof(t));
	t.stats = b->stats;
	memcpy(t.first_error, b->first_error, sizeof(t.first_error));
	sort_fdes(b);
	t.base = has_base ? base_hint : b->n_fdes ? b->fdes[0].pc_begin : 0;
	/* At most one gap row per FDE on top of its rows. */
	t.rows = malloc((b->n_rows + b->n_fdes + 1) * sizeof(*t.rows));
	t.fdes = malloc((b->n_fdes + 1) * sizeof(*t.fdes));
	if (!t.rows || !t.fdes) {
		free(t.rows);
		free(t.fdes);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n_fdes; i++) {
		const struct cfi_fde_rec *f = &b->fdes[i];
		if (f->pc_begin < t.base || f->pc_end - t.base > UINT32_MAX) {
			t.stats.out_of_range++;
			continue;
		}
		if (have_prev && f->pc_begin < prev_end) {
			t.stats.overlaps++;
			continue;
		}
		if (have_prev && f->pc_begin > prev_end)
			put_gap(&t, (uint32_t)(prev_end - t.base));
		uint32_t start = (uint32_t)(f->pc_begin - t.base);
		for (size_t r = 0; r < f->n_rows; r++)
			put_row(&t, start + b->rows[f->first_row + r].pc, b->rows[f->first_row + r]);
		t.fdes[t.n_fdes++] = (struct ember_fde_range){
			.pc_begin = f->pc_begin, .pc_end = f->pc_end,
			.offset = f->offset, .source = f->source};
		prev_end = f->pc_end;
		have_prev = true;
	}
	if (have_prev)
		put_gap(&t, (uint32_t)(prev_end - t.base));
	t.stats.fdes = t.n_fdes;
	count_rows(&t);
	/* Give back the slack: tables live as long as the executable is mapped. */
	if (t.n_rows) {
		void *p = realloc(t.rows, t.n_rows * sizeof(*t.rows));
		if (p)
			t.rows = p;
	}
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

void ember_unwind_table_drop_fdes(struct ember_unwind_table *t)
{
	free(t->fdes);
	t->fdes = NULL;
	t->n_fdes = 0;
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
	case EMBER_CFA_RSP: reg = "rsp"; break;
	case EMBER_CFA_RBP: reg = "rbp"; break;
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
	else
		snprintf(buf, len, "cfa=%s rbp=%s", reg, rbp);
}
