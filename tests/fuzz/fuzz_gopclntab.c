/*
 * fuzz_gopclntab.c - libFuzzer target for the Go .gopclntab reader.
 *
 * Two input modes, chosen by the first byte:
 *   bit 7 set:   the rest is a raw .gopclntab image;
 *   bit 7 clear: a valid hand-built table (tests/unit/gopclntab_synth.h) in
 *                the Go 1.16, 1.18 or 1.20 layout (byte 0 % 3), cut to
 *                byte 1 / 256 of its length (0: whole), then patched by
 *                3-byte records (16-bit position, new byte) -- so mutations
 *                reach the function records, pc-value tables and names
 *                instead of dying at the magic.
 * Each table that parses is looked up at every pc around its text,
 * enumerated, and compiled to unwind rows; besides sanitizer reports the
 * target aborts when an invariant breaks (chain length, names, rows sorted
 * and merged, a GAP row last).
 *
 * src/symbolizer/ also holds libdw-based code, so instead of linking that
 * folder this file includes the four .c files of the Go reader; they need
 * nothing else (no FUZZ_SOURCES).
 *
 * FUZZ_LIBS:
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/gobuildinfo.c"
#include "symbolizer/goelf.c"
#include "symbolizer/gopclntab.c"
#include "symbolizer/gopclntab_rows.c"

#include "../unit/gopclntab_synth.h"

static void check_rows(const struct ember_unwind_table *t)
{
	for (size_t i = 0; i < t->n_rows; i++) {
		const struct ember_unwind_row *r = &t->rows[i];
		if (EMBER_ROW_CFA(r) > EMBER_CFA_GO_SIGTRAMP || EMBER_ROW_RBP(r) > EMBER_RBP_UNSUPPORTED)
			abort();
		if (i && (r[-1].pc >= r->pc || (r[-1].kind == r->kind &&
						  r[-1].cfa_offset == r->cfa_offset &&
						  r[-1].rbp_offset == r->rbp_offset)))
			abort();
	}
	if (t->n_rows && EMBER_ROW_CFA(&t->rows[t->n_rows - 1]) != EMBER_CFA_GAP)
		abort();
}

static void exercise(struct ember_gopclntab *g)
{
	struct ember_gopclntab_info info;
	struct ember_go_frame fr[8];
	struct ember_unwind_table t;
	char err[128];

	ember_gopclntab_info(g, &info);
	for (uint64_t pc = info.text_start - 4; pc < info.text_start + 0x48; pc++) {
		int n = ember_gopclntab_lookup(g, pc, fr, 8);
		if (n > 8)
			abort();
		for (int k = 0; k < n; k++)
			if (!fr[k].name || !fr[k].file || (k < n - 1 && !fr[k].inlined))
				abort();
		if (n > 0 && n < 8 && fr[n - 1].inlined) /* the physical function comes last */
			abort();
	}
	for (uint64_t i = 0; i < info.nfunc && i < 256; i++) {
		const char *name;
		uint64_t entry, end;
		if (ember_gopclntab_func(g, i, &name, &entry, &end) == 0 && (!name || end <= entry))
			abort();
	}
	if (ember_gopclntab_compile_rows(g, &t, err, sizeof(err)) == 0) {
		check_rows(&t);
		free(t.rows);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t tab[1024];
	struct ember_gopclntab *g;
	char err[128];
	size_t len;

	if (size < 1)
		return 0;
	if (data[0] & 0x80) {
		if (ember_gopclntab_parse(data + 1, size - 1, 0x4b0000, &g, err, sizeof(err)) == 0) {
			exercise(g);
			ember_gopclntab_free(g);
		}
		return 0;
	}
	static const int vers[] = {16, 18, 20};
	len = synth_pclntab(tab, sizeof(tab), vers[data[0] % 3]);
	if (len > sizeof(tab))
		abort();
	if (size > 1 && data[1])
		len = len * data[1] / 256;
	for (size_t i = 2; len && i + 2 < size; i += 3)
		tab[(data[i] | (size_t)data[i + 1] << 8) % len] = data[i + 2];
	if (ember_gopclntab_parse(tab, len, 0x4b0000, &g, err, sizeof(err)) == 0) {
		exercise(g);
		ember_gopclntab_free(g);
	}
	return 0;
}
