/*
 * dwarf.h - function, file:line and the whole inline chain of an address,
 * from DWARF through libdw.
 *
 * An ember_dwarf belongs to one ember_elf (one binary).  Opening it is
 * cheap: the file is mapped and its section headers read; the DWARF is
 * parsed on the first lookup, from the file itself or from its separate
 * debug file (debuglink.h).  Then, once per binary, a table of every
 * compile unit's address ranges is built, and once per compile unit, on
 * its first hit, a sorted table of its functions' address ranges.  A
 * lookup is then two binary searches, a walk down the DIEs of one function
 * to the innermost inlined subroutine containing the address, and a line
 * table search: no scan of the whole .debug_info per address.
 *
 * Results follow `llvm-symbolizer --inlining --demangle`: frames innermost
 * first; the innermost frame's location is the line table row of the
 * address; every outer frame's location is the call site (DW_AT_call_file,
 * DW_AT_call_line, DW_AT_call_column) of the frame inlined into it; names
 * are the demangled linkage name (DW_AT_linkage_name through
 * DW_AT_abstract_origin/DW_AT_specification), else DW_AT_name; relative
 * source paths are joined to the compile unit's DW_AT_comp_dir.
 *
 * Compressed debug sections: SHF_COMPRESSED zlib and .zdebug are handled
 * by libdw.  elfutils 0.188 (Debian 12) cannot decompress
 * ELFCOMPRESS_ZSTD sections, so for such files we decompress them
 * ourselves (libzstd) into a private in-memory copy of the file.
 *
 * Strings returned (function and file names) are owned by the ember_dwarf
 * and live until ember_dwarf_free().  Malformed DWARF yields fewer or no
 * frames, never a crash: walks are bounded in depth and in DIEs visited.
 */
#ifndef EMBER_SYMBOLIZER_DWARF_H
#define EMBER_SYMBOLIZER_DWARF_H

#include <stdint.h>

struct ember_elf;
struct ember_dwarf;

/* Longest inline chain reported (deeper chains keep innermost and outermost). */
#define EMBER_DWARF_MAX_CHAIN 64

/* One frame of an inline chain. */
struct ember_sym_frame {
	const char *function; /* demangled name, NULL when unknown */
	const char *file;     /* source path, NULL when unknown */
	uint32_t line;        /* 0 when unknown */
	uint32_t column;      /* 0 when unknown */
	uint32_t start_line;  /* line where the function is declared, 0 when unknown */
};

/*
 * Prepare DWARF symbolization for the ELF file open on fd (fd may be
 * closed afterwards).  `path` names the file in messages and is where a
 * .gnu_debuglink debug file is looked for; build_id (the GNU build-id in
 * hex, may be "") finds /usr/lib/debug/.build-id/ files.  A debug file is
 * used only when its PT_LOAD layout is the binary's (debuglink.h).  Returns 0 and *out, with *out == NULL
 * when the file has neither DWARF nor a way to find a debug file; or a
 * negative errno.
 */
int ember_dwarf_open_fd(int fd, const char *path, const char *build_id,
			struct ember_dwarf **out);

void ember_dwarf_free(struct ember_dwarf *d);

/*
 * The inline chain of ELF virtual address vaddr, innermost first, into
 * out[0..max_out).  Returns the number of frames, 0 when the DWARF does not
 * describe vaddr (or there is no usable DWARF).  Frame 0 may lack a
 * function (line table only) and outer frames a location.
 */
int ember_dwarf_lookup(struct ember_dwarf *d, uint64_t vaddr, struct ember_sym_frame *out,
		       int max_out);

/* Path of the file the DWARF came from, NULL before the first lookup or without DWARF. */
const char *ember_dwarf_source(const struct ember_dwarf *d);

/*
 * Everything Ember knows about vaddr in e: the DWARF inline chain, with the
 * outermost frame named from the symbol table when it has a symbol there
 * (as llvm-symbolizer does: it carries clone suffixes such as
 * "[clone .cold]"), else the symbol table alone (one frame, no file).
 * Returns the number of frames written, 0 when nothing is known.
 */
int ember_elf_symbolize(struct ember_elf *e, uint64_t vaddr, struct ember_sym_frame *out,
			int max_out);

#endif
