/*
 * cfi_exec.c - the DW_CFA interpreter: runs a CIE's initial instructions and
 * an FDE's program, producing the rule state at every location.
 *
 * Only three things matter to the x86_64 unwinder: the CFA rule, the rule
 * of rbp (DWARF register 6) and the rule of the return-address column.
 * Every other register's instructions are decoded (to stay in sync) and
 * ignored.  Each time the location advances, the state so far becomes a
 * row (rows.c packs and merges it).
 *
 * Malformed programs fail the FDE with a reason: unknown opcodes, operands
 * past the end, remember/restore stack overflow or underflow, locations
 * that move backwards or past the FDE's end, offsets that overflow.  The
 * loop consumes at least one byte per instruction, so it always ends.
 */
#include <string.h>

#include "ehframe/cfi.h"

struct exec {
	const struct cfi_section *s;
	const struct cfi_cie *cie;
	struct cfi_builder *b; /* NULL while running a CIE */
	size_t first_row;
	struct cfi_cursor c;
	struct cfi_state st;
	struct cfi_state stack[CFI_STATE_STACK_MAX];
	int depth;
	uint64_t loc, pc_begin, pc_end;
	const char *why;
};

static int fail(struct exec *x, const char *why)
{
	x->why = why;
	return -1;
}

/* The rule of a register the unwinder cares about, NULL for the others. */
static struct cfi_reg_rule *rule_for(struct exec *x, uint64_t reg)
{
	if (reg == x->cie->ra_reg)
		return &x->st.ra;
	if (reg == CFI_REG_RBP)
		return &x->st.rbp;
	return NULL;
}

static const struct cfi_reg_rule *initial_rule(struct exec *x, uint64_t reg)
{
	static const struct cfi_reg_rule unset = {RULE_UNSET, 0};

	if (!x->b) /* restore inside a CIE: there is no initial rule yet */
		return &unset;
	if (reg == x->cie->ra_reg)
		return &x->cie->init.ra;
	if (reg == CFI_REG_RBP)
		return &x->cie->init.rbp;
	return &unset;
}

static void set_rule(struct exec *x, uint64_t reg, uint8_t how, int64_t value)
{
	struct cfi_reg_rule *r = rule_for(x, reg);

	if (r) {
		r->how = how;
		r->value = value;
	}
}

/* A factored offset: operand * data alignment factor. */
static int factored(struct exec *x, int64_t v, int64_t *out)
{
	if (__builtin_mul_overflow(v, x->cie->data_align, out))
		return fail(x, "factored offset overflows");
	return 0;
}

static int factored_u(struct exec *x, uint64_t v, int64_t *out)
{
	if (v > INT64_MAX)
		return fail(x, "factored offset overflows");
	return factored(x, (int64_t)v, out);
}

static int emit_row(struct exec *x)
{
	struct ember_unwind_row row = cfi_state_to_row(&x->st, x->cie);

	if (cfi_builder_add_row(x->b, x->first_row, (uint32_t)(x->loc - x->pc_begin), row))
		return fail(x, "out of memory");
	return 0;
}

static int move_to(struct exec *x, uint64_t loc)
{
	if (!x->b)
		return fail(x, "location advance in a CIE's initial instructions");
	if (loc < x->loc)
		return fail(x, "location moves backwards");
	if (loc > x->pc_end)
		return fail(x, "location advances past the end of the FDE");
	if (loc > x->loc) {
		if (emit_row(x))
			return -1;
		x->loc = loc;
	}
	return 0;
}

static int advance(struct exec *x, uint64_t delta)
{
	uint64_t d, loc;

	if (__builtin_mul_overflow(delta, x->cie->code_align, &d) ||
	    __builtin_add_overflow(x->loc, d, &loc))
		return fail(x, "location advance overflows");
	return move_to(x, loc);
}

/* A DW_FORM_block operand: uleb128 length, then the bytes. */
static int read_block(struct exec *x, const uint8_t **p, uint64_t *len)
{
	*len = cfi_uleb(&x->c);
	*p = x->c.p;
	cfi_skip(&x->c, *len);
	return x->c.err ? fail(x, "expression runs past the end of the entry") : 0;
}

static int def_cfa(struct exec *x, uint64_t reg, int64_t off)
{
	x->st.cfa_how = CFA_REG_OFFSET;
	x->st.cfa_reg = reg;
	x->st.cfa_off = off;
	return 0;
}

static int remember_state(struct exec *x)
{
	if (x->depth >= CFI_STATE_STACK_MAX)
		return fail(x, "DW_CFA_remember_state nested too deep");
	x->stack[x->depth++] = x->st;
	return 0;
}

static int restore_state(struct exec *x)
{
	if (x->depth <= 0)
		return fail(x, "DW_CFA_restore_state without DW_CFA_remember_state");
	x->st = x->stack[--x->depth];
	return 0;
}

/* One instruction with an extended (low 6 bits zero) opcode. */
static int exec_extended(struct exec *x, uint8_t op)
{
	struct cfi_cursor *c = &x->c;
	uint64_t reg, u, len;
	int64_t off;
	const uint8_t *expr;

	switch (op) {
	case 0x00: /* DW_CFA_nop */
		return 0;
	case 0x01: { /* DW_CFA_set_loc */
		const char *why = NULL;
		uint64_t loc;
		if (cfi_read_pointer(c, x->s, x->cie->fde_enc, x->cie->addr_size, CFI_PTR_VALUE,
				     &loc, &why))
			return fail(x, why);
		return move_to(x, loc);
	}
	case 0x02: /* DW_CFA_advance_loc1 */
		u = cfi_u8(c);
		return c->err ? 0 : advance(x, u);
	case 0x03: /* DW_CFA_advance_loc2 */
		u = cfi_u16(c);
		return c->err ? 0 : advance(x, u);
	case 0x04: /* DW_CFA_advance_loc4 */
		u = cfi_u32(c);
		return c->err ? 0 : advance(x, u);
	case 0x1d: /* DW_CFA_MIPS_advance_loc8 */
		u = cfi_u64(c);
		return c->err ? 0 : advance(x, u);
	case 0x05: /* DW_CFA_offset_extended */
		reg = cfi_uleb(c);
		if (factored_u(x, cfi_uleb(c), &off))
			return -1;
		set_rule(x, reg, RULE_OFFSET, off);
		return 0;
	case 0x11: /* DW_CFA_offset_extended_sf */
		reg = cfi_uleb(c);
		if (factored(x, cfi_sleb(c), &off))
			return -1;
		set_rule(x, reg, RULE_OFFSET, off);
		return 0;
	case 0x2f: /* DW_CFA_GNU_negative_offset_extended */
		reg = cfi_uleb(c);
		if (factored_u(x, cfi_uleb(c), &off) || off == INT64_MIN)
			return fail(x, "factored offset overflows");
		set_rule(x, reg, RULE_OFFSET, -off);
		return 0;
	case 0x14: /* DW_CFA_val_offset */
		reg = cfi_uleb(c);
		if (factored_u(x, cfi_uleb(c), &off))
			return -1;
		set_rule(x, reg, RULE_VAL_OFFSET, off);
		return 0;
	case 0x15: /* DW_CFA_val_offset_sf */
		reg = cfi_uleb(c);
		if (factored(x, cfi_sleb(c), &off))
			return -1;
		set_rule(x, reg, RULE_VAL_OFFSET, off);
		return 0;
	case 0x06: { /* DW_CFA_restore_extended */
		reg = cfi_uleb(c);
		struct cfi_reg_rule *r = rule_for(x, reg);
		if (r)
			*r = *initial_rule(x, reg);
		return 0;
	}
	case 0x07: /* DW_CFA_undefined */
		set_rule(x, cfi_uleb(c), RULE_UNDEF, 0);
		return 0;
	case 0x08: /* DW_CFA_same_value */
		set_rule(x, cfi_uleb(c), RULE_SAME, 0);
		return 0;
	case 0x09: /* DW_CFA_register */
		reg = cfi_uleb(c);
		u = cfi_uleb(c);
		set_rule(x, reg, RULE_REGISTER, (int64_t)(u > INT64_MAX ? INT64_MAX : u));
		return 0;
	case 0x0a: /* DW_CFA_remember_state */
		return remember_state(x);
	case 0x0b: /* DW_CFA_restore_state */
		return restore_state(x);
	case 0x0c: /* DW_CFA_def_cfa */
		reg = cfi_uleb(c);
		u = cfi_uleb(c);
		if (u > INT64_MAX)
			return fail(x, "CFA offset overflows");
		return def_cfa(x, reg, (int64_t)u);
	case 0x12: /* DW_CFA_def_cfa_sf */
		reg = cfi_uleb(c);
		if (factored(x, cfi_sleb(c), &off))
			return -1;
		return def_cfa(x, reg, off);
	case 0x0d: /* DW_CFA_def_cfa_register: keeps the offset */
		x->st.cfa_reg = cfi_uleb(c);
		x->st.cfa_how = CFA_REG_OFFSET;
		return 0;
	case 0x0e: /* DW_CFA_def_cfa_offset: keeps the register */
		u = cfi_uleb(c);
		if (u > INT64_MAX)
			return fail(x, "CFA offset overflows");
		x->st.cfa_off = (int64_t)u;
		return 0;
	case 0x13: /* DW_CFA_def_cfa_offset_sf */
		if (factored(x, cfi_sleb(c), &off))
			return -1;
		x->st.cfa_off = off;
		return 0;
	case 0x0f: /* DW_CFA_def_cfa_expression */
		if (read_block(x, &expr, &len))
			return -1;
		x->st.cfa_how = CFA_EXPR;
		x->st.cfa_expr = expr;
		x->st.cfa_expr_len = len;
		return 0;
	case 0x10: /* DW_CFA_expression */
		reg = cfi_uleb(c);
		if (read_block(x, &expr, &len))
			return -1;
		set_rule(x, reg, RULE_EXPR, 0);
		return 0;
	case 0x16: /* DW_CFA_val_expression */
		reg = cfi_uleb(c);
		if (read_block(x, &expr, &len))
			return -1;
		set_rule(x, reg, RULE_VAL_EXPR, 0);
		return 0;
	case 0x2e: /* DW_CFA_GNU_args_size */
		cfi_uleb(c);
		return 0;
	default:
		return fail(x, "unknown DW_CFA opcode");
	}
}

static int exec_one(struct exec *x)
{
	uint8_t op = cfi_u8(&x->c);
	int64_t off;

	switch (op >> 6) {
	case 1: /* DW_CFA_advance_loc */
		return advance(x, op & 0x3f);
	case 2: /* DW_CFA_offset */
		if (factored_u(x, cfi_uleb(&x->c), &off))
			return -1;
		set_rule(x, op & 0x3f, RULE_OFFSET, off);
		return 0;
	case 3: { /* DW_CFA_restore */
		struct cfi_reg_rule *r = rule_for(x, op & 0x3f);
		if (r)
			*r = *initial_rule(x, op & 0x3f);
		return 0;
	}
	default:
		return exec_extended(x, op);
	}
}

/* Run instructions [insns, insns_end) of the section; *err_off is the failing one. */
static int run(struct exec *x, size_t insns, size_t insns_end, size_t *err_off)
{
	cfi_cursor_init(&x->c, x->s->data, insns, insns_end);
	while (x->c.p < x->c.end) {
		*err_off = cfi_off(&x->c);
		if (exec_one(x))
			return -1;
		if (x->c.err)
			return fail(x, "instruction runs past the end of the entry");
	}
	return 0;
}

int cfi_exec_cie(const struct cfi_section *s, struct cfi_cie *cie, const char **why)
{
	struct exec x;
	size_t err_off = 0;

	memset(&x.st, 0, sizeof(x.st));
	x.st.cfa_reg = UINT64_MAX; /* no CFA rule until the CIE defines one */
	x.s = s;
	x.cie = cie;
	x.b = NULL;
	x.depth = 0;
	x.loc = x.pc_begin = x.pc_end = 0;
	x.why = NULL;
	if (run(&x, cie->insns, cie->insns_end, &err_off)) {
		*why = x.why;
		return -1;
	}
	if (x.depth) {
		*why = "DW_CFA_remember_state left open in a CIE";
		return -1;
	}
	cie->init = x.st;
	return 0;
}

int cfi_exec_fde(struct cfi_builder *b, const struct cfi_section *s, const struct cfi_cie *cie,
		 const struct cfi_fde *fde, const char **why, size_t *err_off)
{
	struct exec x;

	x.s = s;
	x.cie = cie;
	x.b = b;
	x.first_row = b->n_rows;
	x.st = cie->init;
	x.depth = 0;
	x.loc = x.pc_begin = fde->pc_begin;
	x.pc_end = fde->pc_end;
	x.why = NULL;
	*err_off = fde->insns;
	if (run(&x, fde->insns, fde->insns_end, err_off) ||
	    (x.loc < x.pc_end && emit_row(&x))) {
		*why = x.why;
		return -1;
	}
	return 0;
}
