/*
 * elf_file.h - what the symbolizer needs from one ELF file.
 *
 * An ember_elf is loaded once per binary (the symbolizer shares it between
 * every process that maps the file) and holds:
 *   - its build-id (elf_identity.h: the GNU build-id, else derived from
 *     Go's build ID, else from a content hash) and the hash of its content,
 *     which together key the symbolizer's caches;
 *   - the PT_LOAD segments, to turn a file offset into an ELF virtual
 *     address (the address space symbols, DWARF and llvm-symbolizer use);
 *   - the function symbols of .symtab (or .dynsym when the file is
 *     stripped), sorted by address for binary search, plus one "NAME@plt"
 *     symbol per PLT entry (x86-64: .plt, .plt.sec, .plt.got), as perf,
 *     objdump and llvm-symbolizer name them.
 * Names are copied out of the file and the file is closed after loading,
 * so holding many ember_elf objects costs memory, not descriptors.
 *
 * It also carries the file's DWARF handle (dwarf.h): the file is mapped
 * and parsed on the first lookup, from the file itself or from its separate
 * debug file (.gnu_debuglink, /usr/lib/debug/.build-id/).
 *
 * Every parser here bounds-checks the file: a truncated or garbage file
 * yields -ENOEXEC (not ELF / unusable) or -EINVAL (corrupt), never a crash.
 */
#ifndef EMBER_SYMBOLIZER_ELF_FILE_H
#define EMBER_SYMBOLIZER_ELF_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/elf_identity.h"

struct ember_elf_segment {
	uint64_t vaddr, memsz;   /* p_vaddr, p_memsz */
	uint64_t offset, filesz; /* p_offset, p_filesz */
	uint32_t flags;          /* p_flags (PF_X, PF_W, PF_R) */
};

struct ember_elf_symbol {
	uint64_t addr; /* st_value: ELF virtual address */
	uint64_t size; /* st_size, 0 when unknown */
	uint64_t end;  /* addr+size; for size 0: end of its section (bounded by the next symbol) */
	uint32_t name; /* offset of the (mangled) name in ember_elf.names */
	uint8_t bind;  /* STB_GLOBAL, STB_WEAK, STB_LOCAL */
	uint8_t type;  /* STT_FUNC or STT_GNU_IFUNC */
};

struct ember_elf {
	char *path;                               /* name used in messages */
	char build_id[2 * EMBER_BUILD_ID_MAX + 1]; /* lower-case hex (elf_identity.h) */
	char gnu_build_id[2 * EMBER_BUILD_ID_MAX + 1]; /* the GNU note's, "" if none */
	enum ember_build_id_kind build_id_kind;
	uint8_t content_hash[EMBER_HASH_BYTES];   /* ember_elf_content_hash */
	uint16_t type;                            /* ET_EXEC or ET_DYN */
	struct ember_elf_segment *loads;          /* PT_LOAD, in file order */
	size_t n_loads;
	struct ember_elf_symbol *syms;            /* sorted by addr, one per address */
	size_t n_syms;
	uint64_t *max_end;                        /* max_end[i] = max(syms[0..i].end) */
	char *names;                              /* NUL-terminated names, back to back */
	size_t names_len;
	char **demangled;                         /* lazily filled, parallel to syms */
	bool from_dynsym;                         /* symbols came from .dynsym */
	struct ember_dwarf *dwarf;                /* DWARF (dwarf.h), NULL when none */
	struct ember_gopclntab *go;               /* Go's .gopclntab, NULL when not Go */
};

struct ember_dwarf;
struct ember_gopclntab;
struct Elf;

/*
 * Load the ELF file open on fd (the fd is not closed and may be closed right
 * after), naming it `name` in messages.  Returns 0 and *out, or -ENOEXEC
 * (not an ELF file, no PT_LOAD), -EINVAL (corrupt), -ENOMEM.
 */
int ember_elf_open_fd(int fd, const char *name, struct ember_elf **out);

/* Same, opening path. Returns -errno when it cannot be opened. */
int ember_elf_open(const char *path, struct ember_elf **out);

void ember_elf_free(struct ember_elf *e);

/*
 * Translate a file offset (pc - mapping start + mapping pgoff) into an ELF
 * virtual address through the PT_LOAD segment that maps that offset.
 * Returns 0, or -ENOENT when no segment covers it.
 */
int ember_elf_offset_to_vaddr(const struct ember_elf *e, uint64_t file_offset,
			      uint64_t *vaddr);

/*
 * The function symbol covering vaddr, or NULL.  A sized symbol covers
 * [addr, addr+size); a zero-size symbol covers up to the next symbol (and
 * the end of its section).  *offset (if not NULL) gets vaddr - addr.
 */
const struct ember_elf_symbol *ember_elf_lookup(const struct ember_elf *e, uint64_t vaddr,
						uint64_t *offset);

/* The raw (mangled) name of a symbol. */
static inline const char *ember_elf_sym_name(const struct ember_elf *e,
					     const struct ember_elf_symbol *s)
{
	return e->names + s->name;
}

/*
 * The display name of a symbol: demangled for C++ (cached in e), else the
 * raw name.  Never NULL.
 */
const char *ember_elf_sym_display_name(struct ember_elf *e, const struct ember_elf_symbol *s);

/*
 * Demangle a C++ (Itanium ABI, "_Z...") name with the C++ runtime.
 * Returns a malloc'd string, or NULL when name is not mangled or invalid.
 */
char *ember_demangle(const char *name);

#endif
