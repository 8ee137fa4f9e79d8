/*
 * dwarf_line.h - a compile unit's line table and file names, read
 * straight from .debug_line (DWARF 2 to 5).
 *
 * libdw 0.188 builds a unit's line table with one malloc per row, keeps a
 * 48-byte Dwarf_Line per row and sorts them all with qsort; on a large C++
 * unit that is most of a cold symbolization's time.  This reader keeps
 * 16-byte rows and orders whole sequences, and gives exactly libdw's
 * answers: the same rows in the same order (libdw's order: by address, an
 * end of sequence before a row at the same address, else program order),
 * the last row marked as an end of sequence, the same row found for an
 * address (dwarf_getsrc_die's search) and the same file names (a relative
 * name joined to its directory; directory 0 of DWARF < 5 is comp_dir).
 *
 * It reads only what GCC and Clang write and refuses the rest (returns -1):
 * another byte order, VLIW op_index, DW_LNE_define_file, vendor extended
 * opcodes, string forms other than inline, strp and line_strp, values
 * beyond what libdw stores, anything malformed.  The caller then asks
 * libdw, so every input gets libdw's answer either way.
 */
#ifndef EMBER_SYMBOLIZER_DWARF_LINE_H
#define EMBER_SYMBOLIZER_DWARF_LINE_H

#include <stddef.h>
#include <stdint.h>

/* The sections a line program refers to (size 0 when absent). */
struct ember_line_sections {
	const uint8_t *line, *str, *line_str;
	size_t line_size, str_size, line_str_size;
};

#define EMBER_LINE_END UINT16_MAX /* file of a row that ends a sequence */

struct ember_line_row {
	uint64_t addr;
	int32_t line;
	uint16_t column;
	uint16_t file; /* index into files, EMBER_LINE_END for an end of sequence */
};

/* A run of rows in address order: a sequence of the line program. */
struct ember_line_seq {
	size_t start, n;
};

struct ember_line_table {
	struct ember_line_row *rows; /* each sequence sorted as libdw sorts rows */
	size_t n_rows;
	struct ember_line_seq *seqs; /* libdw's order of all rows: these runs, one after another */
	size_t n_seqs;
	const char **files; /* as dwarf_filesrc() names them */
	size_t n_files;
	char *names; /* storage of the joined names */
};

/*
 * Read the line program at offset off of .debug_line for a unit with
 * addresses of addr_size bytes and DW_AT_comp_dir comp_dir (may be NULL).
 * Returns 0, or -1 (t left empty) when the program is malformed or uses
 * something this reader leaves to libdw, or on OOM.
 */
int ember_line_table_read(const struct ember_line_sections *s, uint64_t off,
			  unsigned addr_size, const char *comp_dir, struct ember_line_table *t);

/* The row describing pc (dwarf_getsrc_die's), NULL when none does. */
const struct ember_line_row *ember_line_table_find(const struct ember_line_table *t, uint64_t pc);

void ember_line_table_free(struct ember_line_table *t);

#endif
