/*
 * debuglink.h - find the separate debug file of a stripped ELF file.
 *
 * Distributions and careful build systems strip binaries and ship their
 * DWARF in a second file, found either by the binary's GNU build-id or by
 * the name and CRC32 in its .gnu_debuglink section.  The places searched
 * are those GDB and elfutils use, in this order:
 *
 *   DEBUGDIR/.build-id/xx/yyyy.debug      (xx = first build-id byte in hex)
 *   DIR/NAME                              (DIR = directory of the binary,
 *   DIR/.debug/NAME                        NAME from .gnu_debuglink)
 *   DEBUGDIR/DIR/NAME
 *
 * DEBUGDIR is /usr/lib/debug, or the directory named by the environment
 * variable EMBER_DEBUG_DIR (tests; offline symbolization with a copy of
 * the debug files).  A .gnu_debuglink candidate is accepted only when its
 * CRC32 matches; a build-id candidate only when it is an ELF file whose
 * own build-id matches (when the caller knows it).  Either must also have
 * the binary's PT_LOAD layout (when the caller knows it): a build-id can
 * be copied into another program, the layout of the code it describes
 * comes with the code (objcopy --only-keep-debug keeps the program
 * headers).
 */
#ifndef EMBER_SYMBOLIZER_DEBUGLINK_H
#define EMBER_SYMBOLIZER_DEBUGLINK_H

#include <stddef.h>
#include <stdint.h>

#define EMBER_DEBUG_DIR_DEFAULT "/usr/lib/debug"

/* What the binary itself says about its debug file. */
struct ember_debuglink {
	char name[256];       /* .gnu_debuglink file name, "" when absent */
	uint32_t crc;         /* its CRC32 */
	const char *build_id; /* lower-case GNU build-id, NULL or "" when none */
	uint64_t layout;      /* ember_elf_layout_hash of the binary, 0 = not checked */
};

struct Elf; /* libelf */

/*
 * Read the .gnu_debuglink section of elf into link->name/crc (link->build_id
 * is left alone).  Returns 0, or -ENOENT when there is none or it is malformed.
 */
int ember_debuglink_read(struct Elf *elf, struct ember_debuglink *link);

/*
 * Find the debug file of the binary at `path` (the path as the host sees
 * it).  Writes the chosen file's path to out and returns 0, or returns
 * -ENOENT when no candidate qualifies (-ENAMETOOLONG when paths are too long).
 */
int ember_debuglink_find(const char *path, const struct ember_debuglink *link, char *out,
			 size_t out_size);

/* CRC32 of the whole file open on fd (zlib polynomial, as .gnu_debuglink uses). */
int ember_debuglink_crc(int fd, uint32_t *crc);

#endif
