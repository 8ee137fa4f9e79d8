/*
 * gopclntab.h - Go binaries without .symtab or DWARF: names, file:line,
 * inline chains and unwind rows from the Go runtime's own tables.
 *
 * Every Go binary carries the table its runtime uses for tracebacks,
 * .gopclntab ("pc-line table"), and keeps it when built with -ldflags='-s -w'.
 * It maps each function's pc range to its name, an SP-delta table (pcsp),
 * file and line tables, and PCDATA/FUNCDATA such as the inline tree, so a
 * stripped binary symbolizes exactly like an unstripped one, inlined frames
 * included.  .go.buildinfo holds the Go version and the module build info.
 *
 * Supported pclntab formats (the magic at the start of the table):
 *   0xfffffffa  Go 1.16 - 1.17
 *   0xfffffff0  Go 1.18 - 1.19
 *   0xfffffff1  Go 1.20 and later
 *   0xfffffffb  Go 1.2 - 1.15: recognised and rejected with -ENOTSUP.
 * Build info: Go 1.18+ (inline strings) and the older pointer format.
 * Only little-endian 64-bit ELF files are read; unwind rows are x86-64 only
 * (-ENOTSUP for other machines).
 *
 * Everything read from the file is bounds-checked: a truncated or hostile
 * table gives an error or fewer frames, never a crash or an endless loop.
 * Sections are read with pread into memory (no mmap, so a file truncated
 * under us is a read error, not SIGBUS); the file is closed after opening.
 */
#ifndef EMBER_SYMBOLIZER_GOPCLNTAB_H
#define EMBER_SYMBOLIZER_GOPCLNTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ember_gopclntab;
struct ember_unwind_table; /* ehframe/ehframe.h */

/* One frame of an address's chain.  Strings point into the table (valid until free). */
struct ember_go_frame {
	const char *name;   /* "main.(*T).Method", "pkg.func1", ... */
	const char *file;   /* absolute source path as recorded by the compiler, "?" if unknown */
	int32_t line;       /* 0 if unknown */
	int32_t start_line; /* line of the func keyword (Go 1.20+ tables), 0 if unknown */
	uint64_t entry;     /* entry vaddr of the physical function holding pc */
	bool inlined;       /* inlined into the next frame of the chain */
};

/* Go version and module info from .go.buildinfo. */
struct ember_gobuild_setting {
	const char *key, *value; /* "vcs.revision", "abc123..."; "-compiler", "gc" */
};
struct ember_gobuildinfo {
	const char *go_version;   /* "go1.19.8" */
	const char *path;         /* package path of the main package, "" if none */
	const char *main_path;    /* main module path, "" if none */
	const char *main_version; /* "(devel)", "v1.2.3", "" if none */
	const char *main_sum;     /* "h1:..." or "" */
	struct ember_gobuild_setting *settings; /* the "build" lines, in file order */
	size_t n_settings;
	size_t n_deps;            /* "dep" lines */
	char *strings;            /* owns every string above */
};

/*
 * Open the Go tables of the ELF file at path.  Returns 0 and *out, or a
 * negative errno with a message naming the file in err:
 *   -ENOENT   no .gopclntab (not a Go binary)
 *   -ENOTSUP  a pclntab format this reader does not handle (Go <= 1.15, big-endian, 32-bit)
 *   -EINVAL   malformed table;  -ENOEXEC not a usable ELF file;  -ENOMEM; -errno of open/read.
 */
int ember_gopclntab_open(const char *path, struct ember_gopclntab **out, char *err,
			 size_t errlen);

/*
 * Same over an ELF image in memory.  The image is copied where needed and
 * may be freed after the call.
 */
int ember_gopclntab_open_image(const void *image, size_t len, const char *name,
			       struct ember_gopclntab **out, char *err, size_t errlen);

/*
 * Parse a bare .gopclntab section image loaded at vaddr (tests, fuzzing):
 * names and file:line work; no inline frames (the inline trees live outside
 * the section), no build info, and rows assume no saved rbp.
 */
int ember_gopclntab_parse(const uint8_t *data, size_t len, uint64_t vaddr,
			  struct ember_gopclntab **out, char *err, size_t errlen);

void ember_gopclntab_free(struct ember_gopclntab *g);

/*
 * The chain of frames at ELF vaddr pc, innermost first: the inlined
 * functions, then the physical function.  Writes up to max frames and
 * returns how many (>= 1), 0 when no Go function covers pc, or a negative
 * errno (-EINVAL) when the function's tables are malformed.  For a return
 * address, pass the address minus one (the call instruction).
 */
int ember_gopclntab_lookup(const struct ember_gopclntab *g, uint64_t pc,
			   struct ember_go_frame *frames, int max);

/* Build info, or NULL when the file has none (or it is unreadable). */
const struct ember_gobuildinfo *ember_gopclntab_buildinfo(const struct ember_gopclntab *g);

/* The value of build setting key ("vcs.revision", "GOARCH", ...), NULL if absent. */
const char *ember_gobuildinfo_setting(const struct ember_gobuildinfo *bi, const char *key);

/*
 * Parse .go.buildinfo from an ELF file on its own (the symbolizer uses
 * ember_gopclntab_buildinfo; this is for callers that only want the
 * version).  *out is freed with ember_gobuildinfo_free.
 */
int ember_gobuildinfo_read(const char *path, struct ember_gobuildinfo **out, char *err,
			   size_t errlen);
void ember_gobuildinfo_free(struct ember_gobuildinfo *bi);

/* Facts about the table, for `ember` diagnostics and tests. */
struct ember_gopclntab_info {
	uint32_t magic;
	int go_min;          /* lowest Go minor version of this format: 16, 18 or 20 */
	uint64_t nfunc;      /* functions in the table */
	uint64_t nfiles;
	uint64_t text_start; /* vaddr of the first function */
	uint64_t text_end;   /* end of the last function */
	bool inline_trees;   /* FUNCDATA can be followed (inline frames available) */
	bool has_code;       /* rows can inspect prologues (rbp rules available) */
};
void ember_gopclntab_info(const struct ember_gopclntab *g, struct ember_gopclntab_info *info);

/* Enumerate functions: name and [entry, end) of function i < nfunc; -EINVAL if malformed. */
int ember_gopclntab_func(const struct ember_gopclntab *g, uint64_t i, const char **name,
			 uint64_t *entry, uint64_t *end);

/*
 * Unwind rows for the BPF unwinder from every function's SP-delta table, in
 * the format of .eh_frame's (struct ember_unwind_table, ehframe/ehframe.h;
 * free with ember_unwind_table_free): base = vaddr of the first executable
 * PT_LOAD, rows sorted, identical neighbours merged, GAP between functions
 * and after the last one.  Per pc range:
 *   CFA = rsp + spdelta + 8                          (EMBER_CFA_RSP)
 *   rbp saved at CFA-16 once the prologue stored it (EMBER_RBP_AT_CFA, -2)
 *   stack roots (runtime.goexit, mstart, rt0_go: TOPFRAME) (EMBER_CFA_END_OF_STACK)
 *   stack-switching assembly (SPWRITE), frames over 64 KiB (EMBER_CFA_UNSUPPORTED)
 * See gopclntab_rows.c for how rbp is decided.  Returns 0 or a negative errno.
 */
int ember_gopclntab_compile_rows(const struct ember_gopclntab *g, struct ember_unwind_table *out,
				 char *err, size_t errlen);

/*
 * Where the binary's Go runtime keeps g, m and the registers a stack switch
 * saved (struct ember_go_runtime, bpf/include/ember_unwind.h), for the BPF
 * unwinder to cross runtime.systemstack, mcall, morestack and vDSO calls.
 * From the DWARF of dwarf_path when it has runtime.g/m/gobuf (pass NULL to
 * skip), else decoded from the runtime's own code (goruntime.c).  Returns 0,
 * -ENOENT when neither source gives them, -ENOTSUP off x86-64.
 */
struct ember_go_runtime;
enum ember_go_runtime_source {
	EMBER_GO_RUNTIME_NONE,
	EMBER_GO_RUNTIME_DWARF,
	EMBER_GO_RUNTIME_CODE,
};
int ember_gopclntab_runtime(const struct ember_gopclntab *g, const char *dwarf_path,
			    struct ember_go_runtime *out, enum ember_go_runtime_source *source);

#endif
