/*
 * test_ehframe.c - the CFI compiler (src/ehframe/): hand-made CIE/FDE bytes
 * for every opcode family, pointer encodings, augmentations and malformed
 * input; then real binaries compared row by row with
 * `readelf --debug-dump=frames-interp`: a program gcc builds here, libc,
 * and a .debug_frame-only program (plain, compressed, split debug file).
 */
#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "ehframe/ehframe.h"

#define SEC 0x2000 /* vaddr of the hand-made .eh_frame sections */

/* ---- a tiny byte builder for CIEs and FDEs ------------------------------ */

struct bb {
	uint8_t b[8192];
	size_t n;
};

static void put(struct bb *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->b));
	memcpy(b->b + b->n, p, n);
	b->n += n;
}
static void u8(struct bb *b, uint8_t v) { put(b, &v, 1); }
static void u16(struct bb *b, uint16_t v) { put(b, &v, 2); }
static void u32(struct bb *b, uint32_t v) { put(b, &v, 4); }
static void u64(struct bb *b, uint64_t v) { put(b, &v, 8); }

static void uleb(struct bb *b, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		u8(b, c | (v ? 0x80 : 0));
	} while (v);
}

static void sleb(struct bb *b, int64_t v)
{
	for (;;) {
		uint8_t c = v & 0x7f;
		v >>= 7;
		if ((v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40))) {
			u8(b, c);
			return;
		}
		u8(b, c | 0x80);
	}
}

/* An entry: a 4-byte length patched by end(). */
static size_t begin(struct bb *b)
{
	size_t at = b->n;
	u32(b, 0);
	return at;
}

static void end(struct bb *b, size_t at)
{
	uint32_t len = (uint32_t)(b->n - at - 4);
	memcpy(b->b + at, &len, 4);
}

/* The x86_64 CIE initial instructions: CFA = rsp+8, ra at CFA-8. */
static const uint8_t x86_init[] = {0x0c, 0x07, 0x08, 0x90, 0x01};

/* An .eh_frame CIE with augmentation "zR" (or aug as given, R data = enc). */
static size_t eh_cie_full(struct bb *b, uint8_t enc, int64_t data_align, const uint8_t *init,
			  size_t ninit)
{
	size_t at = begin(b);
	u32(b, 0);       /* CIE id */
	u8(b, 1);        /* version */
	put(b, "zR", 3); /* augmentation */
	uleb(b, 1);      /* code alignment */
	sleb(b, data_align);
	u8(b, 16); /* return address column */
	uleb(b, 1);
	u8(b, enc);
	put(b, init, ninit);
	end(b, at);
	return at;
}

static size_t eh_cie(struct bb *b)
{
	return eh_cie_full(b, 0x1b, -8, x86_init, sizeof(x86_init));
}

/* pcrel|sdata4 pointer to target, at the current position. */
static void pcrel4(struct bb *b, uint64_t target)
{
	u32(b, (uint32_t)(target - (SEC + b->n)));
}

/* An FDE for a "zR" CIE with encoding 0x1b. */
static size_t eh_fde(struct bb *b, size_t cie, uint64_t pc, uint32_t len, const uint8_t *insns,
		     size_t n)
{
	size_t at = begin(b);
	u32(b, (uint32_t)(b->n - cie)); /* CIE pointer: back from this field */
	pcrel4(b, pc);
	u32(b, len);
	uleb(b, 0); /* augmentation data */
	put(b, insns, n);
	end(b, at);
	return at;
}

#define FDE(b, cie, pc, len, ...)                                                           \
	do {                                                                                \
		const uint8_t ins_[] = {__VA_ARGS__};                                      \
		eh_fde(b, cie, pc, len, ins_, sizeof(ins_));                               \
	} while (0)

static void compile(const struct bb *b, bool debug, struct ember_unwind_table *t)
{
	char err[256];

	assert_int_equal(ember_ehframe_compile_section(b->b, b->n, SEC, debug, EMBER_EHFRAME_KEEP_FDES,
						       t, err, sizeof(err)),
			 0);
}

/* The row covering pc, formatted like `ember ehframe` prints it. */
static const char *row_at(const struct ember_unwind_table *t, uint64_t pc)
{
	static char buf[64];
	const struct ember_unwind_row *r = ember_unwind_find(t, pc);

	if (!r)
		return "none";
	ember_unwind_row_format(r, buf, sizeof(buf));
	return buf;
}

#define assert_row(t, pc, want) assert_string_equal(row_at(t, pc), want)

/* Rows strictly increasing, kinds valid, no two equal neighbours. */
static void check_invariants(const struct ember_unwind_table *t)
{
	for (size_t i = 0; i < t->n_rows; i++) {
		const struct ember_unwind_row *r = &t->rows[i];
		assert_true(EMBER_ROW_CFA(r) <= EMBER_CFA_GO_SIGTRAMP);
		assert_true(EMBER_ROW_RBP(r) <= EMBER_RBP_UNSUPPORTED);
		if (i) {
			const struct ember_unwind_row *p = r - 1;
			assert_true(p->pc < r->pc);
			assert_false(p->kind == r->kind && p->cfa_offset == r->cfa_offset &&
				     p->rbp_offset == r->rbp_offset);
		}
	}
	if (t->n_rows)
		assert_int_equal(EMBER_ROW_CFA(&t->rows[t->n_rows - 1]), EMBER_CFA_GAP);
}

/* ---- opcode families ---------------------------------------------------- */

static void test_prologue_rows(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b);

	FDE(&b, cie, 0x1000, 0x30,
	    0x41,             /* advance_loc 1 */
	    0x0e, 16,         /* def_cfa_offset 16 */
	    0x86, 2,          /* offset r6 at cfa-16 */
	    0x43,             /* advance_loc 3 */
	    0x0d, 6,          /* def_cfa_register rbp */
	    0x02, 0x20,       /* advance_loc1 0x20 */
	    0x0c, 7, 8,       /* def_cfa rsp+8 */
	    0xc6,             /* restore rbp */
	    0x00, 0x00);      /* nops */
	compile(&b, false, &t);
	check_invariants(&t);
	assert_int_equal(t.base, 0x1000);
	assert_int_equal(t.n_rows, 5);
	assert_row(&t, 0xfff, "none");
	assert_row(&t, 0x1000, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1001, "cfa=rsp+16 rbp=cfa-16");
	assert_row(&t, 0x1003, "cfa=rsp+16 rbp=cfa-16");
	assert_row(&t, 0x1004, "cfa=rbp+16 rbp=cfa-16");
	assert_row(&t, 0x1024, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1030, "gap");
	assert_row(&t, 0x9000, "gap");
	assert_int_equal(t.stats.fdes, 1);
	assert_int_equal(t.stats.cies, 1);
	assert_int_equal(t.stats.errors, 0);
	assert_int_equal(t.stats.gaps, 1);
	assert_int_equal(t.rows[1].pc, 1);
	assert_int_equal(t.rows[1].cfa_offset, 16);
	assert_int_equal(t.rows[1].rbp_offset, -2);
	assert_int_equal(t.rows[1].kind, EMBER_ROW_KIND(EMBER_CFA_RSP, EMBER_RBP_AT_CFA));
	ember_unwind_table_free(&t);
}

static void test_advance_forms(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b), at;

	/* advance_loc1/2/4, set_loc (pcrel sdata4 like the FDE), MIPS advance_loc8 */
	at = begin(&b);
	u32(&b, (uint32_t)(b.n - cie));
	pcrel4(&b, 0x10000);
	u32(&b, 0x20000);
	uleb(&b, 0);
	u8(&b, 0x02), u8(&b, 0x10);                 /* advance_loc1 -> 0x10010 */
	u8(&b, 0x0e), u8(&b, 16);
	u8(&b, 0x03), u16(&b, 0x100);               /* advance_loc2 -> 0x10110 */
	u8(&b, 0x0e), u8(&b, 24);
	u8(&b, 0x04), u32(&b, 0x1000);              /* advance_loc4 -> 0x11110 */
	u8(&b, 0x0e), u8(&b, 32);
	u8(&b, 0x01), pcrel4(&b, 0x12000);          /* set_loc 0x12000 */
	u8(&b, 0x0e), u8(&b, 40);
	u8(&b, 0x1d), u64(&b, 0x100);               /* advance_loc8 -> 0x12100 */
	u8(&b, 0x0e), uleb(&b, 1000);
	end(&b, at);
	compile(&b, false, &t);
	check_invariants(&t);
	assert_int_equal(t.stats.errors, 0);
	assert_row(&t, 0x1000f, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x10010, "cfa=rsp+16 rbp=same");
	assert_row(&t, 0x10110, "cfa=rsp+24 rbp=same");
	assert_row(&t, 0x11110, "cfa=rsp+32 rbp=same");
	assert_row(&t, 0x12000, "cfa=rsp+40 rbp=same");
	assert_row(&t, 0x120ff, "cfa=rsp+40 rbp=same");
	assert_row(&t, 0x12100, "cfa=rsp+1000 rbp=same");
	assert_row(&t, 0x30000, "gap");
	assert_int_equal(t.n_rows, 7);
	ember_unwind_table_free(&t);
}

static void test_offset_forms(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b);

	FDE(&b, cie, 0x1000, 0x100,
	    0x12, 7, 0x7e,    /* def_cfa_sf rsp, -2 * -8 = 16 */
	    0x05, 6, 2,       /* offset_extended rbp, 2 * -8 */
	    0x41,
	    0x13, 0x7d,       /* def_cfa_offset_sf -3 * -8 = 24 */
	    0x11, 6, 3,       /* offset_extended_sf rbp, 3 * -8 */
	    0x41,
	    0x2f, 6, 2,       /* GNU_negative_offset_extended rbp: -(2 * -8) = +16 */
	    0x2e, 0x10,       /* GNU_args_size */
	    0x41,
	    0x06, 6,          /* restore_extended rbp */
	    0x41,
	    0x14, 6, 1,       /* val_offset rbp */
	    0x41,
	    0x15, 6, 0x7f,    /* val_offset_sf rbp */
	    0x41,
	    0x86, 0x80, 0x02, /* offset rbp, 256 * -8 = -2048: out of s8 range */
	    0x41,
	    0x86, 0x80, 0x01, /* offset rbp, 128 * -8 = -1024: just fits */
	    0x41,
	    0x83, 5,          /* offset rbx: not tracked */
	    0x0c, 7, 0x90, 0x80, 0x04, /* def_cfa rsp+65552: over u16, in 8-byte units */
	    0x41,
	    0x0c, 0, 8);      /* def_cfa rax+8 */
	compile(&b, false, &t);
	check_invariants(&t);
	assert_int_equal(t.stats.errors, 0);
	assert_row(&t, 0x1000, "cfa=rsp+16 rbp=cfa-16");
	assert_row(&t, 0x1001, "cfa=rsp+24 rbp=cfa-24");
	assert_row(&t, 0x1002, "cfa=rsp+24 rbp=cfa+16");
	assert_row(&t, 0x1003, "cfa=rsp+24 rbp=same");
	assert_row(&t, 0x1004, "cfa=rsp+24 rbp=unsupported");
	assert_row(&t, 0x1005, "cfa=rsp+24 rbp=unsupported");
	assert_row(&t, 0x1006, "cfa=rsp+24 rbp=unsupported");
	assert_row(&t, 0x1007, "cfa=rsp+24 rbp=cfa-1024");
	assert_row(&t, 0x1008, "cfa=rsp+65552 rbp=cfa-1024");
	assert_row(&t, 0x1009, "unsupported");
	assert_int_equal(t.stats.unsupported_cfa, 1); /* rax+8 */
	assert_int_equal(t.stats.unsupported_rbp, 1); /* 0x1004..0x1006 merged */
	ember_unwind_table_free(&t);
}

static void test_rbp_offset_not_multiple_of_8(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	const uint8_t init[] = {0x0c, 0x07, 0x08, 0x90, 0x02}; /* ra at 2 * -4 */
	size_t cie = eh_cie_full(&b, 0x1b, -4, init, sizeof(init));

	FDE(&b, cie, 0x1000, 0x10, 0x86, 3, 0x41, 0x86, 4);
	compile(&b, false, &t);
	assert_row(&t, 0x1000, "cfa=rsp+8 rbp=unsupported"); /* cfa-12 */
	assert_row(&t, 0x1001, "cfa=rsp+8 rbp=cfa-16");
	ember_unwind_table_free(&t);
}

static void test_remember_restore_state(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b);
	uint8_t deep[80];
	size_t n = 0;

	/* push rbp; ...; remember; pop; ret; restore (CFA included) */
	FDE(&b, cie, 0x1000, 0x20,
	    0x41, 0x0e, 16, 0x86, 2,
	    0x44, 0x0a,             /* remember_state */
	    0x0e, 8, 0xc6,          /* def_cfa_offset 8, restore rbp */
	    0x41, 0x0b,             /* restore_state */
	    0x41, 0x0a, 0x0a, 0x0e, 32, 0x0b, 0x0b); /* nested */
	/* overflow: 33 nested remember_state */
	for (n = 0; n < 33; n++)
		deep[n] = 0x0a;
	eh_fde(&b, cie, 0x2000, 0x10, deep, n);
	/* underflow */
	FDE(&b, cie, 0x3000, 0x10, 0x0a, 0x0b, 0x0b);
	compile(&b, false, &t);
	check_invariants(&t);
	assert_row(&t, 0x1001, "cfa=rsp+16 rbp=cfa-16");
	assert_row(&t, 0x1005, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1006, "cfa=rsp+16 rbp=cfa-16");
	assert_row(&t, 0x1007, "cfa=rsp+16 rbp=cfa-16");
	assert_row(&t, 0x2000, "gap");
	assert_row(&t, 0x3000, "gap");
	assert_int_equal(t.stats.fdes, 1);
	assert_int_equal(t.stats.errors, 2);
	assert_non_null(strstr(t.first_error, "remember_state"));
	ember_unwind_table_free(&t);
}

static void test_register_rules(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b);

	FDE(&b, cie, 0x1000, 0x10,
	    0x86, 2, 0x41,
	    0x08, 6, 0x41,          /* same_value rbp */
	    0x07, 6, 0x41,          /* undefined rbp */
	    0x09, 6, 3, 0x41,       /* register rbp in rbx */
	    0x09, 6, 6, 0x41,       /* register rbp in rbp */
	    0x09, 16, 5, 0x41,      /* return address in rdi */
	    0x05, 16, 2, 0x41,      /* return address at cfa-16 */
	    0x90, 1, 0x07, 3, 0x41, /* back to cfa-8; undefined rbx (ignored) */
	    0x07, 16);              /* undefined return address: outermost */
	compile(&b, false, &t);
	check_invariants(&t);
	assert_row(&t, 0x1000, "cfa=rsp+8 rbp=cfa-16");
	assert_row(&t, 0x1001, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1002, "cfa=rsp+8 rbp=unsupported");
	assert_row(&t, 0x1003, "cfa=rsp+8 rbp=unsupported");
	assert_row(&t, 0x1004, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1005, "unsupported");
	assert_row(&t, 0x1006, "unsupported");
	assert_row(&t, 0x1007, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1008, "end-of-stack");
	assert_int_equal(t.stats.end_of_stack, 1);
	ember_unwind_table_free(&t);
}

static void test_expressions(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b);

	FDE(&b, cie, 0x1000, 0x10,
	    0x0f, 11, 0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22, /* .plt */
	    0x41,
	    0x0f, 11, 0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3a, 0x2a, 0x33, 0x24, 0x22, /* lit10 */
	    0x41,
	    0x0f, 11, 0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x39, 0x2a, 0x33, 0x24, 0x22, /* lit9 */
	    0x41,
	    0x0f, 3, 0x77, 8, 0x06,  /* breg7 8; deref: not the signal frame's offset */
	    0x41,
	    0x0f, 4, 0x77, 0xa0, 0x01, 0x06, /* breg7 160; deref: __restore_rt */
	    0x41,
	    0x0c, 7, 16,             /* back to rsp+16 */
	    0x10, 3, 2, 0x77, 0,     /* expression for rbx: ignored */
	    0x41,
	    0x10, 6, 2, 0x77, 0,     /* expression for rbp */
	    0x41,
	    0x16, 6, 2, 0x77, 0,     /* val_expression for rbp */
	    0x41,
	    0x0e, 0xc0, 0xa9, 0x09); /* def_cfa_offset 152768: a frame over 64 KiB */
	compile(&b, false, &t);
	check_invariants(&t);
	assert_int_equal(t.stats.errors, 0);
	assert_row(&t, 0x1000, "cfa=plt1 rbp=same");
	assert_row(&t, 0x1001, "cfa=plt2 rbp=same");
	assert_row(&t, 0x1002, "unsupported");
	assert_row(&t, 0x1003, "unsupported");
	assert_row(&t, 0x1004, "signal-frame");
	assert_row(&t, 0x1005, "cfa=rsp+16 rbp=same");
	assert_row(&t, 0x1006, "cfa=rsp+16 rbp=unsupported");
	assert_row(&t, 0x1007, "cfa=rsp+16 rbp=unsupported");
	assert_row(&t, 0x1008, "cfa=rsp+152768 rbp=unsupported");
	assert_int_equal(t.stats.plt, 2);
	ember_unwind_table_free(&t);
}

/* ---- several FDEs: sorting, gaps, merging, overlaps ---------------------- */

static void test_gaps_merge_sort_overlap(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b);

	FDE(&b, cie, 0x1040, 0x10, 0x41, 0x0e, 16);   /* C, out of order */
	FDE(&b, cie, 0x1000, 0x10, 0x00);             /* A */
	FDE(&b, cie, 0x1010, 0x10, 0x00);             /* B: adjacent, same rule as A's end */
	FDE(&b, cie, 0x1008, 0x10, 0x0e, 64);         /* D overlaps A and B: dropped */
	FDE(&b, cie, 0x1030, 0, 0x0e, 64);            /* empty range: ignored */
	compile(&b, false, &t);
	check_invariants(&t);
	assert_int_equal(t.stats.fdes, 3);
	assert_int_equal(t.stats.overlaps, 1);
	assert_int_equal(t.stats.eh_frame_fdes, 5);
	assert_int_equal(t.n_rows, 5);
	assert_row(&t, 0x1000, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x101f, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1020, "gap");
	assert_row(&t, 0x1040, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x1041, "cfa=rsp+16 rbp=same");
	assert_row(&t, 0x1050, "gap");
	/* the FDE list serves `ember ehframe --pc` */
	assert_int_equal(t.n_fdes, 3);
	assert_non_null(ember_unwind_find_fde(&t, 0x1015));
	assert_int_equal(ember_unwind_find_fde(&t, 0x1015)->pc_begin, 0x1010);
	assert_null(ember_unwind_find_fde(&t, 0x1020));
	ember_unwind_table_free(&t);
}

/* ---- augmentations and pointer encodings ------------------------------- */

static void test_augmentations(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie, at;

	/* "zPLR": personality indirect|pcrel|sdata4, LSDA pcrel|sdata4 */
	cie = begin(&b);
	u32(&b, 0), u8(&b, 1), put(&b, "zPLR", 5), uleb(&b, 1), sleb(&b, -8), u8(&b, 16);
	uleb(&b, 7), u8(&b, 0x9b), u32(&b, 0x1234), u8(&b, 0x1b), u8(&b, 0x1b);
	put(&b, x86_init, sizeof(x86_init));
	end(&b, cie);
	at = begin(&b);
	u32(&b, (uint32_t)(b.n - cie)), pcrel4(&b, 0x1000), u32(&b, 0x10);
	uleb(&b, 4), u32(&b, 0x999); /* LSDA pointer */
	u8(&b, 0x41), u8(&b, 0x0e), u8(&b, 16);
	end(&b, at);
	/* "zRS" (signal frame) and "zRX" (unknown letter after the known ones) */
	cie = begin(&b);
	u32(&b, 0), u8(&b, 3), put(&b, "zRS", 4), uleb(&b, 1), sleb(&b, -8), uleb(&b, 16);
	uleb(&b, 1), u8(&b, 0x1b), put(&b, x86_init, sizeof(x86_init));
	end(&b, cie);
	FDE(&b, cie, 0x2000, 0x10, 0x0e, 24);
	cie = begin(&b);
	u32(&b, 0), u8(&b, 1), put(&b, "zRX", 4), uleb(&b, 1), sleb(&b, -8), u8(&b, 16);
	uleb(&b, 3), u8(&b, 0x1b), u8(&b, 0xaa), u8(&b, 0xbb), put(&b, x86_init, sizeof(x86_init));
	end(&b, cie);
	FDE(&b, cie, 0x3000, 0x10, 0x0e, 32);
	/* "eh" (pre-z GCC) is not supported: its FDEs are errors */
	cie = begin(&b);
	u32(&b, 0), u8(&b, 1), put(&b, "eh", 3), u64(&b, 0), uleb(&b, 1), sleb(&b, -8), u8(&b, 16);
	end(&b, cie);
	FDE(&b, cie, 0x4000, 0x10, 0x00);
	compile(&b, false, &t);
	check_invariants(&t);
	assert_row(&t, 0x1001, "cfa=rsp+16 rbp=same");
	assert_row(&t, 0x2000, "cfa=rsp+24 rbp=same");
	assert_row(&t, 0x3000, "cfa=rsp+32 rbp=same");
	assert_row(&t, 0x4000, "gap");
	assert_int_equal(t.stats.fdes, 3);
	assert_int_equal(t.stats.errors, 2); /* the "eh" CIE and its FDE */
	assert_non_null(strstr(t.first_error, "augmentation"));
	ember_unwind_table_free(&t);
}

/* One CIE with FDE pointer encoding enc and an FDE at pc 0x1000 (written by put_pc). */
static void one_fde_with_encoding(uint8_t enc, void (*put_pc)(struct bb *), size_t range_size,
				  struct ember_unwind_table *t)
{
	struct bb b = {0};
	size_t cie = eh_cie_full(&b, enc, -8, x86_init, sizeof(x86_init)), at;

	at = begin(&b);
	u32(&b, (uint32_t)(b.n - cie));
	put_pc(&b);
	if (range_size == 1)
		uleb(&b, 0x10);
	else if (range_size == 2)
		u16(&b, 0x10);
	else if (range_size == 4)
		u32(&b, 0x10);
	else
		u64(&b, 0x10);
	uleb(&b, 0);
	u8(&b, 0x41), u8(&b, 0x0e), u8(&b, 16);
	end(&b, at);
	compile(&b, false, t);
}

static void pc_udata2(struct bb *b) { u16(b, 0x1000); }
static void pc_udata4(struct bb *b) { u32(b, 0x1000); }
static void pc_udata8(struct bb *b) { u64(b, 0x1000); }
static void pc_uleb(struct bb *b) { uleb(b, 0x1000); }
static void pc_sleb_pcrel(struct bb *b) { sleb(b, (int64_t)0x1000 - (int64_t)(SEC + b->n)); }
static void pc_sdata2_pcrel(struct bb *b) { u16(b, (uint16_t)(0x1000 - (SEC + b->n))); }
static void pc_sdata8_pcrel(struct bb *b) { u64(b, 0x1000 - (SEC + b->n)); }
static void pc_aligned(struct bb *b)
{
	while ((SEC + b->n) % 8)
		u8(b, 0xee);
	u64(b, 0x1000);
}

static void test_pointer_encodings(void **state)
{
	static const struct {
		uint8_t enc;
		void (*put_pc)(struct bb *);
		size_t range_size;
	} ok[] = {
		{0x02, pc_udata2, 2},       {0x03, pc_udata4, 4},       {0x04, pc_udata8, 8},
		{0x00, pc_udata8, 8},       {0x01, pc_uleb, 1},         {0x19, pc_sleb_pcrel, 1},
		{0x1a, pc_sdata2_pcrel, 2}, {0x1c, pc_sdata8_pcrel, 8}, {0x50, pc_aligned, 8},
	};
	struct ember_unwind_table t;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		one_fde_with_encoding(ok[i].enc, ok[i].put_pc, ok[i].range_size, &t);
		if (t.stats.errors)
			fail_msg("encoding 0x%02x: %s", ok[i].enc, t.first_error);
		assert_row(&t, 0x1000, "cfa=rsp+8 rbp=same");
		assert_row(&t, 0x1001, "cfa=rsp+16 rbp=same");
		assert_row(&t, 0x1010, "gap");
		ember_unwind_table_free(&t);
	}
	/* datarel and indirect need the ELF file; omit and unknown formats are malformed */
	const uint8_t bad[] = {0x3b, 0x9b, 0xff, 0x07, 0x4b};
	for (size_t i = 0; i < sizeof(bad); i++) {
		one_fde_with_encoding(bad[i], pc_udata4, 4, &t);
		assert_int_equal(t.n_rows, 0);
		assert_true(t.stats.errors >= 1);
		ember_unwind_table_free(&t);
	}
}

/* ---- .debug_frame ------------------------------------------------------- */

static void test_debug_frame(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie32, cie64, at;

	/* DWARF32: CIE id 0xffffffff, version 3, no augmentation */
	cie32 = begin(&b);
	u32(&b, 0xffffffff), u8(&b, 3), u8(&b, 0), uleb(&b, 1), sleb(&b, -8), uleb(&b, 16);
	put(&b, x86_init, sizeof(x86_init));
	end(&b, cie32);
	at = begin(&b);
	u32(&b, (uint32_t)cie32); /* CIE pointer: offset from the section start */
	u64(&b, 0x5000), u64(&b, 0x20);
	u8(&b, 0x41), u8(&b, 0x0e), u8(&b, 16);
	end(&b, at);
	/* DWARF64: 0xffffffff escape, 8-byte id, version 4 with address size */
	cie64 = b.n;
	u32(&b, 0xffffffff);
	size_t len_at = b.n;
	u64(&b, 0);
	u64(&b, ~0ull), u8(&b, 4), u8(&b, 0), u8(&b, 8), u8(&b, 0), uleb(&b, 1), sleb(&b, -8);
	uleb(&b, 16), put(&b, x86_init, sizeof(x86_init));
	uint64_t len = b.n - len_at - 8;
	memcpy(b.b + len_at, &len, 8);
	u32(&b, 0xffffffff);
	len_at = b.n;
	u64(&b, 0);
	u64(&b, cie64), u64(&b, 0x5020), u64(&b, 0x20);
	u8(&b, 0x42), u8(&b, 0x0e), u8(&b, 24);
	len = b.n - len_at - 8;
	memcpy(b.b + len_at, &len, 8);
	compile(&b, true, &t);
	check_invariants(&t);
	if (t.stats.errors)
		fail_msg("%s", t.first_error);
	assert_int_equal(t.stats.debug_frame_fdes, 2);
	assert_int_equal(t.stats.cies, 2);
	assert_row(&t, 0x5000, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x5001, "cfa=rsp+16 rbp=same");
	assert_row(&t, 0x5020, "cfa=rsp+8 rbp=same");
	assert_row(&t, 0x5022, "cfa=rsp+24 rbp=same");
	assert_row(&t, 0x5040, "gap");
	ember_unwind_table_free(&t);
	/* the same bytes as .eh_frame: id 0xffffffff is a CIE pointer there, out of range */
	compile(&b, false, &t);
	assert_int_equal(t.n_rows, 0);
	assert_true(t.stats.errors >= 2);
	ember_unwind_table_free(&t);
}

/* ---- malformed input -------------------------------------------------- */

static void build_sample(struct bb *b)
{
	size_t cie = eh_cie(b);

	FDE(b, cie, 0x1000, 0x40, 0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6, 0x0a, 0x50, 0x0c, 7, 8,
	    0x41, 0x0b);
	FDE(b, cie, 0x1040, 0x10, 0x41, 0x0e, 16);
	u32(b, 0); /* terminator */
}

static void test_malformed_entries(void **state)
{
	struct bb b = {0};
	struct ember_unwind_table t;
	size_t cie = eh_cie(&b), at, first_fde = b.n;

	FDE(&b, cie, 0x1000, 0x10, 0x41, 0x3f, 0x41);   /* unknown opcode 0x3f */
	FDE(&b, cie, 0x1010, 0x10, 0x41, 0x0e, 16);     /* fine */
	FDE(&b, cie, 0x1020, 0x10, 0x02, 0x20);         /* advance past the end */
	FDE(&b, cie, 0x1030, 0x10, 0x0e);               /* operand missing */
	FDE(&b, cie, 0x1040, 0x10, 0x0f, 0x40, 0x77);   /* expression longer than the FDE */
	at = begin(&b);                                 /* CIE pointer out of range */
	u32(&b, 0x7fffff00), pcrel4(&b, 0x1050), u32(&b, 0x10), uleb(&b, 0);
	end(&b, at);
	at = begin(&b);                                 /* CIE pointer to an FDE */
	u32(&b, (uint32_t)(b.n - first_fde)), pcrel4(&b, 0x1060), u32(&b, 0x10), uleb(&b, 0);
	end(&b, at);
	u32(&b, 0);                                     /* a terminator in the middle */
	u32(&b, 2), u16(&b, 0);                         /* entry too short for an id */
	FDE(&b, cie, 0x1070, 0x10, 0x0e, 32);           /* still compiled */
	u32(&b, 0x7fffffff);                            /* bad length: the walk stops */
	FDE(&b, cie, 0x1080, 0x10, 0x00);
	compile(&b, false, &t);
	check_invariants(&t);
	assert_non_null(strstr(t.first_error, "unknown DW_CFA opcode"));
	assert_non_null(strstr(t.first_error, "0x3f"));
	assert_int_equal(t.stats.fdes, 2);
	assert_int_equal(t.stats.errors, 8);
	assert_row(&t, 0x1000, "none");
	assert_row(&t, 0x1011, "cfa=rsp+16 rbp=same");
	assert_row(&t, 0x1020, "gap");
	assert_row(&t, 0x1070, "cfa=rsp+32 rbp=same");
	assert_row(&t, 0x1080, "gap");
	ember_unwind_table_free(&t);
}

static void test_truncations_and_mutations(void **state)
{
	struct bb b = {0}, m;
	struct ember_unwind_table t;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	build_sample(&b);
	compile(&b, false, &t);
	assert_int_equal(t.stats.errors, 0);
	assert_int_equal(t.stats.fdes, 2);
	ember_unwind_table_free(&t);
	/* every prefix: no crash, sane table, a counted error when an entry is cut */
	for (size_t n = 0; n < b.n; n++) {
		m = b;
		m.n = n;
		compile(&m, n & 1, &t);
		check_invariants(&t);
		assert_true(t.n_rows <= 2 * b.n);
		ember_unwind_table_free(&t);
	}
	/* random byte changes: still no crash and a sane table */
	for (int i = 0; i < 3000; i++) {
		m = b;
		for (int k = 0; k < 1 + i % 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			m.b[x % m.n] = (uint8_t)(x >> 32);
		}
		compile(&m, i & 1, &t);
		check_invariants(&t);
		assert_true(t.n_rows <= 2 * b.n);
		ember_unwind_table_free(&t);
	}
}

/* ---- real binaries against readelf ------------------------------------- */

struct expect {
	uint8_t cfa[3]; /* acceptable CFA rules (0xff = unused) */
	uint16_t cfa_offset;
	uint8_t rbp;
	int8_t rbp_offset;
	bool check_rbp;
};

/* What readelf's CFA/rbp/ra cells ("" when the column is absent) mean for a row. */
static void expect_from_readelf(const char *cfa, const char *rbp, const char *ra,
				struct expect *e)
{
	long off;
	char reg[16];

	memset(e, 0, sizeof(*e));
	memset(e->cfa, 0xff, sizeof(e->cfa));
	if (!strcmp(ra, "u")) {
		e->cfa[0] = EMBER_CFA_END_OF_STACK;
		return;
	}
	e->cfa[0] = EMBER_CFA_UNSUPPORTED;
	/* readelf hides expressions; the signal trampoline's is checked by test_expressions */
	if (!strcmp(cfa, "exp") && !strcmp(ra, "exp")) {
		e->cfa[1] = EMBER_CFA_SIGNAL;
		return;
	}
	if (ra[0] && strcmp(ra, "c-8"))
		return;
	if (!strcmp(cfa, "exp")) {
		e->cfa[1] = EMBER_CFA_PLT1;
		e->cfa[2] = EMBER_CFA_PLT2;
		e->check_rbp = false;
		return;
	}
	if (sscanf(cfa, "%15[a-z0-9]%ld", reg, &off) != 2 || off < 0)
		return;
	if (off > 65535) { /* big frames: rsp in 8-byte units, to 512 KiB */
		if (strcmp(reg, "rsp") || off % 8 || off / 8 > 65535)
			return;
		e->cfa[0] = EMBER_CFA_RSP_X8;
		off /= 8;
	} else if (!strcmp(reg, "rsp"))
		e->cfa[0] = EMBER_CFA_RSP;
	else if (!strcmp(reg, "rbp"))
		e->cfa[0] = EMBER_CFA_RBP;
	else
		return;
	e->cfa_offset = (uint16_t)off;
	e->check_rbp = true;
	e->rbp = EMBER_RBP_UNSUPPORTED;
	if (!rbp[0] || !strcmp(rbp, "u") || !strcmp(rbp, "s") || !strcmp(rbp, "r6 (rbp)")) {
		e->rbp = EMBER_RBP_SAME;
	} else if (rbp[0] == 'c' && sscanf(rbp + 1, "%ld", &off) == 1 && off % 8 == 0 &&
		   off >= -1024 && off <= 1016) {
		e->rbp = EMBER_RBP_AT_CFA;
		e->rbp_offset = (int8_t)(off / 8);
	}
}

static bool row_matches(const struct ember_unwind_row *r, const struct expect *e)
{
	uint8_t cfa = EMBER_ROW_CFA(r);

	if (cfa != e->cfa[0] && cfa != e->cfa[1] && cfa != e->cfa[2])
		return false;
	if ((cfa == EMBER_CFA_RSP || cfa == EMBER_CFA_RBP) && r->cfa_offset != e->cfa_offset)
		return false;
	if (e->check_rbp && cfa != EMBER_CFA_UNSUPPORTED) {
		if (EMBER_ROW_RBP(r) != e->rbp)
			return false;
		if (e->rbp == EMBER_RBP_AT_CFA && r->rbp_offset != e->rbp_offset)
			return false;
	}
	return true;
}

struct readelf_cmp {
	size_t rows, agree, expr_rows;
	char first_bad[256];
};

struct cells {
	char cfa[32], rbp[32], ra[32];
	bool valid;
};

static void check_one(const struct ember_unwind_table *t, uint64_t loc, const struct cells *c,
		      struct readelf_cmp *r)
{
	struct expect e;
	const struct ember_unwind_row *row = ember_unwind_find(t, loc);
	char got[64] = "none";

	expect_from_readelf(c->cfa, c->rbp, c->ra, &e);
	r->rows++;
	r->expr_rows += !strcmp(c->cfa, "exp");
	if (row && row_matches(row, &e)) {
		r->agree++;
		return;
	}
	if (row)
		ember_unwind_row_format(row, got, sizeof(got));
	if (!r->first_bad[0])
		snprintf(r->first_bad, sizeof(r->first_bad),
			 "at 0x%llx readelf says cfa=%s rbp=%s ra=%s, ember says %s",
			 (unsigned long long)loc, c->cfa, c->rbp[0] ? c->rbp : "-",
			 c->ra[0] ? c->ra : "-", got);
}

/* Split a readelf table line into cells; "r6 (rbp)" stays one cell. */
static int split_cells(char *line, char cells[][32], int max)
{
	int n = 0;

	for (char *tok = strtok(line, " \n"); tok && n < max; tok = strtok(NULL, " \n")) {
		if (tok[0] == '(' && n > 0) {
			size_t l = strlen(cells[n - 1]);
			snprintf(cells[n - 1] + l, 32 - l, " %s", tok);
			continue;
		}
		snprintf(cells[n++], 32, "%s", tok);
	}
	return n;
}

#define MAX_CIES 4096

/* Run readelf on path and check every row it prints against the table. */
static void compare_with_readelf(const char *path, const struct ember_unwind_table *t,
				 struct readelf_cmp *r)
{
	char cmd[600], line[1024], cols[64][32], cells[64][32];
	int ncols = 0;
	FILE *p;
	/* per CIE: its initial row, used by FDEs that print no table */
	static struct {
		unsigned long off;
		struct cells c;
	} cies[MAX_CIES];
	size_t ncies = 0;
	long cur_cie = -1; /* index in cies while reading a CIE's table */
	bool in_fde = false, fde_pending = false;
	unsigned long fde_cie = 0, pc_begin = 0, pc_end = 0;
	struct cells last;

	memset(r, 0, sizeof(*r));
	snprintf(cmd, sizeof(cmd), "readelf --debug-dump=frames-interp '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p) || (line[0] = 0, false) || fde_pending) {
		unsigned long off, len, id, a, z, cie;
		bool header = false;

		if (!line[0] || sscanf(line, "%lx %lx %lx FDE cie=%lx pc=%lx..%lx", &off, &len, &id,
				       &cie, &a, &z) == 6 ||
		    strstr(line, " CIE") || strstr(line, "ZERO terminator") ||
		    strstr(line, "Contents of"))
			header = true;
		if (header && fde_pending && pc_begin < pc_end) {
			for (size_t i = 0; i < ncies; i++)
				if (cies[i].off == fde_cie && cies[i].c.valid)
					check_one(t, pc_begin, &cies[i].c, r);
			fde_pending = false;
		}
		if (!line[0])
			break;
		if (!header && !(line[0] == ' ' && strstr(line, "LOC")) &&
		    !(isxdigit((unsigned char)line[0]) && strchr(line, ' ')))
			continue;
		if (header) {
			if (strstr(line, "Contents of"))
				ncies = 0; /* CIE offsets are per section */
			in_fde = false;
			cur_cie = -1;
			fde_pending = false;
			if (sscanf(line, "%lx %lx %lx FDE cie=%lx pc=%lx..%lx", &off, &len, &id, &cie,
				   &a, &z) == 6) {
				in_fde = true;
				fde_pending = true;
				fde_cie = cie;
				pc_begin = a;
				pc_end = z;
			} else if (strstr(line, " CIE") && sscanf(line, "%lx", &off) == 1 &&
				   ncies < MAX_CIES) {
				cur_cie = (long)ncies;
				cies[ncies].off = off;
				cies[ncies++].c.valid = false;
			}
			continue;
		}
		if (strstr(line, "LOC")) {
			ncols = split_cells(line, cols, 64);
			continue;
		}
		int n = split_cells(line, cells, 64);
		memset(&last, 0, sizeof(last));
		last.valid = true;
		for (int i = 1; i < n && i < ncols; i++) {
			if (!strcmp(cols[i], "CFA"))
				snprintf(last.cfa, sizeof(last.cfa), "%s", cells[i]);
			else if (!strcmp(cols[i], "rbp"))
				snprintf(last.rbp, sizeof(last.rbp), "%s", cells[i]);
			else if (!strcmp(cols[i], "ra"))
				snprintf(last.ra, sizeof(last.ra), "%s", cells[i]);
		}
		if (cur_cie >= 0) {
			cies[cur_cie].c = last;
		} else if (in_fde) {
			unsigned long loc = strtoul(cells[0], NULL, 16);
			fde_pending = false;
			if (loc >= pc_begin && loc < pc_end)
				check_one(t, loc, &last, r);
		}
	}
	pclose(p);
}

static bool have_tool(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static const char test_program[] =
	"#include <alloca.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
	"__attribute__((noinline)) long leaf(long a, long b) { return a * b + 7; }\n"
	"__attribute__((noinline)) long saves(long *v, int n) {\n"
	"  long a = 0, b = 1, c = 2, d = 3, e = 4, f = 5;\n"
	"  for (int i = 0; i < n; i++) { a += v[i] * b; b ^= a; c += b; d -= c; e += d * a; f ^= e;"
	" v[i] = leaf(a, f); }\n  return a + b + c + d + e + f; }\n"
	"__attribute__((noinline)) long vla(int n) {\n"
	"  char *p = alloca(n + 16); memset(p, n, n + 16);\n"
	"  long s = 0; for (int i = 0; i < n; i++) s += p[i] * leaf(i, n); return s; }\n"
	"__attribute__((noinline)) long early(long *v, int n) {\n"
	"  if (n < 3) return leaf(n, 1);\n"
	"  long s = saves(v, n); if (s & 1) return s; return s + vla(n); }\n"
	"__attribute__((noinline)) long rec(int d) { if (d <= 0) return leaf(d, 3);"
	" long x = rec(d - 1); return x * 3 + rec(d - 2); }\n"
	"int main(int argc, char **argv) {\n"
	"  long v[64]; for (int i = 0; i < 64; i++) v[i] = i * argc;\n"
	"  printf(\"%ld %ld\\n\", early(v, argc * 40), rec(argc + 10));\n"
	"  return 0; }\n";

/* A scratch directory with prog.c; returns false (test skipped) without gcc. */
static bool make_program(char *dir, size_t dirlen)
{
	FILE *f;
	char path[512];

	if (!have_tool("gcc") || !have_tool("readelf") || !have_tool("objcopy"))
		return false;
	snprintf(dir, dirlen, "/tmp/ember-ehframe-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/prog.c", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(test_program, f);
	fclose(f);
	return true;
}

static void compile_and_compare(const char *path, const char *debug, struct ember_unwind_table *t,
				struct readelf_cmp *cmp)
{
	char err[512];
	int rc = ember_ehframe_compile_file(path, debug, 0, t, err, sizeof(err));

	if (rc)
		fail_msg("%s", err);
	check_invariants(t);
	compare_with_readelf(debug ? debug : path, t, cmp);
	if (cmp->agree != cmp->rows)
		fail_msg("%s: %zu of %zu readelf rows agree; first mismatch %s", path, cmp->agree,
			 cmp->rows, cmp->first_bad);
}

static void test_gcc_program_matches_readelf(void **state)
{
	char dir[64], prog[128];
	struct ember_unwind_table t;
	struct readelf_cmp cmp;
	bool rbp_cfa = false, rbp_saved = false;

	if (!make_program(dir, sizeof(dir)))
		skip();
	snprintf(prog, sizeof(prog), "%s/prog", dir);
	assert_int_equal(test_sh("gcc -O2 -fomit-frame-pointer -fasynchronous-unwind-tables "
			     "-o %s %s/prog.c", prog, dir), 0);
	compile_and_compare(prog, NULL, &t, &cmp);
	assert_true(cmp.rows > 20);
	assert_int_equal(t.stats.errors, 0);
	assert_int_equal(t.stats.hdr_fdes, (int64_t)t.stats.eh_frame_fdes);
	assert_non_null(ember_unwind_find(&t, t.base + t.rows[0].pc));
	for (size_t i = 0; i < t.n_rows; i++) {
		rbp_cfa |= EMBER_ROW_CFA(&t.rows[i]) == EMBER_CFA_RBP;
		rbp_saved |= EMBER_ROW_RBP(&t.rows[i]) == EMBER_RBP_AT_CFA;
	}
	assert_true(rbp_cfa);   /* vla() keeps a frame pointer for alloca */
	assert_true(rbp_saved); /* saves() pushes rbp as a callee-saved register */
	ember_unwind_table_free(&t);
	test_sh("rm -rf %s", dir);
}

static void test_libc_matches_readelf(void **state)
{
	const char *libc = "/lib/x86_64-linux-gnu/libc.so.6";
	struct ember_unwind_table t;
	struct readelf_cmp cmp;

	if (access(libc, R_OK) || !have_tool("readelf"))
		skip();
	compile_and_compare(libc, NULL, &t, &cmp);
	print_message("libc: %zu readelf rows, %zu agree (100%%), %zu with CFA expressions; "
		      "%llu rows, %llu unsupported, %llu plt\n",
		      cmp.rows, cmp.agree, cmp.expr_rows, (unsigned long long)t.stats.rows,
		      (unsigned long long)t.stats.unsupported_cfa, (unsigned long long)t.stats.plt);
	assert_true(cmp.rows > 10000);
	assert_int_equal(t.stats.errors, 0);
	assert_int_equal(t.stats.hdr_fdes, (int64_t)t.stats.eh_frame_fdes);
	assert_true(t.stats.plt >= 1);
	assert_true(t.stats.end_of_stack >= 1); /* clone/thread start */
	assert_string_not_equal(t.build_id, "");
	ember_unwind_table_free(&t);
}

static bool same_rows(const struct ember_unwind_table *a, const struct ember_unwind_table *b)
{
	return a->n_rows == b->n_rows && a->base == b->base &&
	       !memcmp(a->rows, b->rows, a->n_rows * sizeof(a->rows[0]));
}

static void test_debug_frame_files(void **state)
{
	char dir[64], prog[128], z[160], stripped[160], dbg[160], err[256];
	struct ember_unwind_table t, tz, ts;
	struct readelf_cmp cmp;

	if (!make_program(dir, sizeof(dir)) || !have_tool("strip"))
		skip();
	snprintf(prog, sizeof(prog), "%s/prog", dir);
	snprintf(z, sizeof(z), "%s/prog.z", dir);
	snprintf(stripped, sizeof(stripped), "%s/prog.stripped", dir);
	snprintf(dbg, sizeof(dbg), "%s/prog.debug", dir);
	assert_int_equal(test_sh("gcc -O2 -g -fomit-frame-pointer -fno-asynchronous-unwind-tables "
			     "-fno-unwind-tables -o %s %s/prog.c", prog, dir), 0);
	compile_and_compare(prog, NULL, &t, &cmp);
	assert_true(t.stats.debug_frame_fdes >= 5);
	assert_int_equal(t.stats.errors, 0);
	assert_true(cmp.rows > 10);
	/* compressed .debug_frame */
	assert_int_equal(test_sh("objcopy --compress-debug-sections=zlib %s %s", prog, z), 0);
	assert_int_equal(ember_ehframe_compile_file(z, NULL, 0, &tz, err, sizeof(err)), 0);
	assert_true(same_rows(&t, &tz));
	/* .debug_frame in a separate debug file */
	assert_int_equal(test_sh("objcopy --only-keep-debug %s %s && strip -g -o %s %s", prog, dbg,
			     stripped, prog), 0);
	assert_int_equal(ember_ehframe_compile_file(stripped, dbg, 0, &ts, err, sizeof(err)), 0);
	assert_true(same_rows(&t, &ts));
	ember_unwind_table_free(&t);
	ember_unwind_table_free(&tz);
	ember_unwind_table_free(&ts);
	test_sh("rm -rf %s", dir);
}

static void test_file_errors(void **state)
{
	struct ember_unwind_table t;
	char err[256];

	assert_int_equal(ember_ehframe_compile_file("/nonexistent/x", NULL, 0, &t, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x"));
	assert_int_equal(ember_ehframe_compile_file("/etc/passwd", NULL, 0, &t, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "/etc/passwd: not an ELF file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prologue_rows),
		cmocka_unit_test(test_advance_forms),
		cmocka_unit_test(test_offset_forms),
		cmocka_unit_test(test_rbp_offset_not_multiple_of_8),
		cmocka_unit_test(test_remember_restore_state),
		cmocka_unit_test(test_register_rules),
		cmocka_unit_test(test_expressions),
		cmocka_unit_test(test_gaps_merge_sort_overlap),
		cmocka_unit_test(test_augmentations),
		cmocka_unit_test(test_pointer_encodings),
		cmocka_unit_test(test_debug_frame),
		cmocka_unit_test(test_malformed_entries),
		cmocka_unit_test(test_truncations_and_mutations),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_gcc_program_matches_readelf),
		cmocka_unit_test(test_libc_matches_readelf),
		cmocka_unit_test(test_debug_frame_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
