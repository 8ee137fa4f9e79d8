/*
 * fuzz_ehframe.c - libFuzzer target for the CFI parser and row compiler.
 *
 * The input is a raw section image, compiled both as .eh_frame and as
 * .debug_frame.  Besides crashes and sanitizer reports, it checks the
 * table's invariants (rows strictly sorted, valid kinds, no equal
 * neighbours, a GAP row last, bounded size) and that lookups agree with
 * the rows, so a logic bug aborts too.
 *
 * FUZZ_SOURCES: src/ehframe src/core
 * FUZZ_LIBS: -lelf -lz
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ehframe/ehframe.h"

static void check(const struct ember_unwind_table *t, size_t len)
{
	if (t->n_rows > len + 1 || t->n_fdes > len)
		abort();
	for (size_t i = 0; i < t->n_rows; i++) {
		const struct ember_unwind_row *r = &t->rows[i];
		if (EMBER_ROW_CFA(r) > EMBER_CFA_GO_SIGTRAMP || EMBER_ROW_RBP(r) > EMBER_RBP_UNSUPPORTED)
			abort();
		if (i && (r[-1].pc >= r->pc ||
			  (r[-1].kind == r->kind && r[-1].cfa_offset == r->cfa_offset &&
			   r[-1].rbp_offset == r->rbp_offset)))
			abort();
		if (ember_unwind_find(t, t->base + r->pc) != r)
			abort();
	}
	if (t->n_rows && EMBER_ROW_CFA(&t->rows[t->n_rows - 1]) != EMBER_CFA_GAP)
		abort();
	for (size_t i = 1; i < t->n_fdes; i++)
		if (t->fdes[i - 1].pc_end > t->fdes[i].pc_begin)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ember_unwind_table t;
	char err[256];

	for (int debug = 0; debug <= 1; debug++) {
		if (ember_ehframe_compile_section(data, size, 0x400000, debug, EMBER_EHFRAME_KEEP_FDES,
						  &t, err, sizeof(err)))
			continue;
		check(&t, size);
		ember_unwind_table_free(&t);
	}
	return 0;
}
