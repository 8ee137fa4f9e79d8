/*
 * cfi.h - internals of the CFI compiler, shared by the files of src/ehframe/.
 *
 *   cfi_read.c   bounds-checked cursor over untrusted bytes, pointer encodings
 *   cfi_parse.c  walks a section: CIEs (cached by offset), FDE headers
 *   cfi_exec.c   the DW_CFA interpreter: one FDE's program -> rule states
 *   rows.c       rule state -> packed row; sort, gaps, merge; lookup
 *   ehframe.c    the ELF file: sections, table base, build-id
 *
 * A cfi_builder collects, per FDE, rows whose pc is relative to the FDE
 * start, in one growing array; cfi_builder_finish() sorts the FDEs and
 * writes the final table.  Nothing is allocated per row.
 */
#ifndef EMBER_EHFRAME_CFI_H
#define EMBER_EHFRAME_CFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ehframe/ehframe.h"

/* x86_64 DWARF register numbers. */
#define CFI_REG_RBP 6
#define CFI_REG_RSP 7
#define CFI_REG_RA 16

/* Nested DW_CFA_remember_state deeper than this is treated as malformed. */
#define CFI_STATE_STACK_MAX 32

/* ---- cursor ----------------------------------------------------------- */

/* Reads past end set err and return 0; callers check err once per entry. */
struct cfi_cursor {
	const uint8_t *base; /* start of the section: offsets are relative to it */
	const uint8_t *p, *end;
	bool err;
};

static inline void cfi_cursor_init(struct cfi_cursor *c, const uint8_t *base, size_t off,
				   size_t end)
{
	c->base = base;
	c->p = base + off;
	c->end = base + end;
	c->err = false;
}

static inline size_t cfi_off(const struct cfi_cursor *c)
{
	return (size_t)(c->p - c->base);
}

static inline size_t cfi_left(const struct cfi_cursor *c)
{
	return (size_t)(c->end - c->p);
}

uint64_t cfi_uleb_slow(struct cfi_cursor *c);

/* Hot readers are inline: the interpreter calls them for every byte. */
static inline bool cfi_have(struct cfi_cursor *c, uint64_t n)
{
	if (__builtin_expect(c->err || cfi_left(c) < n, 0)) {
		c->err = true;
		c->p = c->end;
		return false;
	}
	return true;
}

static inline uint8_t cfi_u8(struct cfi_cursor *c)
{
	return cfi_have(c, 1) ? *c->p++ : 0;
}

static inline uint64_t cfi_uleb(struct cfi_cursor *c)
{
	/* One-byte values are by far the most common. */
	if (__builtin_expect(c->p < c->end && !(*c->p & 0x80), 1))
		return *c->p++;
	return cfi_uleb_slow(c);
}

uint16_t cfi_u16(struct cfi_cursor *c);
uint32_t cfi_u32(struct cfi_cursor *c);
uint64_t cfi_u64(struct cfi_cursor *c);
int64_t cfi_sleb(struct cfi_cursor *c);
void cfi_skip(struct cfi_cursor *c, uint64_t n);

/* ---- sections and pointer encodings --------------------------------- */

#define DW_EH_PE_omit 0xff
#define DW_EH_PE_indirect 0x80

struct cfi_section {
	const char *name; /* for messages: ".eh_frame", ".debug_frame" */
	const uint8_t *data;
	size_t len;
	uint64_t vaddr; /* where the section is loaded (pcrel base) */
	bool is_debug_frame;
	uint64_t text_base, data_base; /* for textrel/datarel; 0 = unknown */
	/* DW_EH_PE_indirect: read the 8-byte word at vaddr; NULL if unavailable. */
	int (*read_word)(void *ctx, uint64_t vaddr, uint64_t *out);
	void *read_ctx;
};

enum cfi_ptr_mode {
	CFI_PTR_VALUE,  /* full decoding: relative bases and indirection applied */
	CFI_PTR_FORMAT, /* only the number format (an FDE's address range) */
	CFI_PTR_SKIP,   /* only step over it (personality, LSDA) */
};

/* Decode a pointer of encoding enc at the cursor.  Returns 0 or -1 with *why set. */
int cfi_read_pointer(struct cfi_cursor *c, const struct cfi_section *s, uint8_t enc,
		     uint8_t addr_size, enum cfi_ptr_mode mode, uint64_t *out, const char **why);

/* ---- rules and interpreter state ------------------------------------- */

enum cfi_reg_how {
	RULE_UNSET = 0, /* never mentioned: same value */
	RULE_UNDEF,
	RULE_SAME,
	RULE_OFFSET,     /* saved at CFA + value */
	RULE_VAL_OFFSET, /* is CFA + value */
	RULE_REGISTER,   /* in register value */
	RULE_EXPR,
	RULE_VAL_EXPR,
};

struct cfi_reg_rule {
	uint8_t how; /* enum cfi_reg_how */
	int64_t value;
};

enum cfi_cfa_how { CFA_REG_OFFSET = 0, CFA_EXPR = 1 };

struct cfi_state {
	uint8_t cfa_how;
	uint64_t cfa_reg;
	int64_t cfa_off;
	const uint8_t *cfa_expr; /* for CFA_EXPR: the expression bytes */
	uint64_t cfa_expr_len;
	struct cfi_reg_rule rbp, ra;
};

struct cfi_cie {
	uint64_t offset; /* in the section */
	uint64_t code_align;
	int64_t data_align;
	uint64_t ra_reg;
	size_t insns, insns_end; /* initial instructions, section offsets */
	uint8_t version, fde_enc, addr_size, seg_size;
	bool has_z, bad;
	struct cfi_state init; /* state after the initial instructions */
};

/* ---- the builder ------------------------------------------------------ */

struct cfi_fde_rec {
	uint64_t pc_begin;
	uint32_t pc_len;
	uint32_t first_row, n_rows; /* in cfi_builder.rows */
	uint32_t offset : 31;       /* in its section: sections are < 2 GiB */
	uint32_t source : 1;        /* enum ember_cfi_source */
};

struct cfi_builder {
	struct ember_unwind_row *rows; /* pc relative to the FDE's pc_begin */
	size_t n_rows, cap_rows;
	struct cfi_fde_rec *fdes;
	size_t n_fdes, cap_fdes;
	struct ember_ehframe_stats stats;
	char first_error[192];
	bool oom;
};

void cfi_builder_init(struct cfi_builder *b);
void cfi_builder_free(struct cfi_builder *b);
/* Record a malformed entry: counted, and the first one kept as a message. */
void cfi_error(struct cfi_builder *b, const struct cfi_section *s, size_t off, const char *fmt,
	       ...) __attribute__((format(printf, 4, 5)));

/* Parse every CIE/FDE of a section into the builder.  Returns 0 or -ENOMEM. */
int cfi_parse_section(struct cfi_builder *b, const struct cfi_section *s);

/* FDE being compiled by the interpreter. */
struct cfi_fde {
	uint64_t offset; /* of the FDE in its section */
	uint64_t pc_begin, pc_end;
	size_t insns, insns_end;
};

/*
 * Run the CIE's initial instructions into cie->init.  Returns 0 or -1
 * with a message in why (static storage).
 */
int cfi_exec_cie(const struct cfi_section *s, struct cfi_cie *cie, const char **why);
/*
 * Run an FDE's instructions from cie->init, adding its rows to the
 * builder (rows of a failed FDE are rolled back by the caller).  Returns
 * 0 or -1 with why set; on -1, *err_off is the offending instruction.
 */
int cfi_exec_fde(struct cfi_builder *b, const struct cfi_section *s, const struct cfi_cie *cie,
		 const struct cfi_fde *fde, const char **why, size_t *err_off);

/* rows.c */
struct ember_unwind_row cfi_state_to_row(const struct cfi_state *st, const struct cfi_cie *cie);
int cfi_builder_grow_rows(struct cfi_builder *b);

static inline bool cfi_same_rule(const struct ember_unwind_row *a, const struct ember_unwind_row *b)
{
	return a->kind == b->kind && a->cfa_offset == b->cfa_offset &&
	       a->rbp_offset == b->rbp_offset;
}

/* Append a row at pc_begin + rel_pc to the current FDE, merging with its previous row. */
static inline int cfi_builder_add_row(struct cfi_builder *b, size_t fde_first_row,
				      uint32_t rel_pc, struct ember_unwind_row row)
{
	if (b->n_rows > fde_first_row && cfi_same_rule(&b->rows[b->n_rows - 1], &row))
		return 0;
	if (b->n_rows == b->cap_rows && cfi_builder_grow_rows(b))
		return -1;
	row.pc = rel_pc;
	b->rows[b->n_rows++] = row;
	return 0;
}
int cfi_builder_add_fde(struct cfi_builder *b, const struct cfi_fde_rec *rec);
/*
 * Sort the FDEs, drop overlapping/out-of-range ones, insert gaps, merge,
 * count, and move the result into out.  base_hint is used as the table
 * base when has_base is set, else the lowest FDE pc is.  flags: as for
 * ember_ehframe_compile_file().
 */
int cfi_builder_finish(struct cfi_builder *b, bool has_base, uint64_t base_hint, unsigned flags,
		       struct ember_unwind_table *out);

#endif
