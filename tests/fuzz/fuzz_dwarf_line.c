/*
 * fuzz_dwarf_line.c - libFuzzer target for the .debug_line reader.
 *
 * The input's first byte picks the address size (4 or 8) and how the rest
 * is split: .debug_line, then .debug_str and .debug_line_str (the string
 * forms of DWARF 5 file tables point into them).  The unit at offset 0 is
 * read, and when it reads, every row's address and its neighbours are
 * looked up.  Besides sanitizer reports, the target aborts when a lookup
 * returns an end of sequence or a row above the address asked for.
 *
 * FUZZ_SOURCES: src/core/array.c src/symbolizer/dwarf_line.c
 * FUZZ_LIBS:
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/dwarf_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ember_line_sections s = {0};
	struct ember_line_table t;

	if (size < 1)
		return 0;
	unsigned addr_size = data[0] & 1 ? 8 : 4;
	size_t rest = size - 1, strs = (data[0] >> 1) % 8 * rest / 16;
	s.line = data + 1;
	s.line_size = rest - strs;
	s.str = s.line + s.line_size;
	s.str_size = strs / 2;
	s.line_str = s.str + s.str_size;
	s.line_str_size = strs - strs / 2;
	if (ember_line_table_read(&s, 0, addr_size, data[0] & 2 ? "/comp" : NULL, &t) != 0)
		return 0;
	for (size_t i = 0; i < t.n_rows; i++)
		for (uint64_t pc = t.rows[i].addr - 1; pc != t.rows[i].addr + 2; pc++) {
			const struct ember_line_row *r = ember_line_table_find(&t, pc);
			if (r && (r->file == EMBER_LINE_END || r->addr > pc))
				abort();
		}
	for (size_t i = 0; i < t.n_files; i++)
		if (!t.files[i])
			abort();
	ember_line_table_free(&t);
	return 0;
}
