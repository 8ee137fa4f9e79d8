/*
 * gopclntab_int.h - internals shared by gopclntab.c (table and lookups),
 * gopclntab_rows.c (unwind rows), gobuildinfo.c (build info) and
 * goelf.c (the small bounds-checked ELF reader they use).  Not an API.
 */
#ifndef EMBER_SYMBOLIZER_GOPCLNTAB_INT_H
#define EMBER_SYMBOLIZER_GOPCLNTAB_INT_H

#include <stdarg.h>
#include <sys/types.h>

#include "symbolizer/gopclntab.h"

/* ---- goelf.c: just enough ELF64 little-endian reading, with pread or from memory ---- */

struct goelf_sec {
	char name[32];
	uint32_t type;
	uint64_t flags, addr, offset, size;
};

struct goelf_seg {
	uint64_t vaddr, memsz, offset, filesz;
	uint32_t flags;
};

struct goelf_reloc { /* an R_X86_64_RELATIVE relocation: *(u64 *)offset = addend (+ load bias) */
	uint64_t offset, addend;
};

struct goelf {
	const char *name; /* for messages */
	int fd;           /* -1 when reading from mem */
	const uint8_t *mem;
	uint64_t size;    /* file size */
	uint16_t type, machine;
	struct goelf_sec *secs;
	size_t n_secs;
	struct goelf_seg *segs;
	size_t n_segs;
	struct goelf_reloc *relocs; /* sorted by offset */
	size_t n_relocs;
};

/* Upper bound on any one section we copy, against files crafted to exhaust memory. */
#define GOELF_MAX_READ (1ull << 30)

int goelf_open_fd(struct goelf *e, int fd, const char *name, char *err, size_t errlen);
int goelf_open_mem(struct goelf *e, const void *mem, size_t len, const char *name, char *err,
		   size_t errlen);
void goelf_close(struct goelf *e);
const struct goelf_sec *goelf_section(const struct goelf *e, const char *name);
/* The allocated, file-backed section holding vaddr, NULL if none. */
const struct goelf_sec *goelf_section_at(const struct goelf *e, uint64_t vaddr);
/* Read exactly len bytes at file offset off.  0 or -EIO/-EINVAL. */
int goelf_pread(const struct goelf *e, void *buf, size_t len, uint64_t off);
/* malloc'd copy of a section's bytes (len = size).  0 or negative errno. */
int goelf_read_section(const struct goelf *e, const struct goelf_sec *s, uint8_t **out);
/* Read len bytes at vaddr through the PT_LOAD segments (file bytes only). */
int goelf_read_vaddr(const struct goelf *e, uint64_t vaddr, void *buf, size_t len);
/* vaddr of the first executable PT_LOAD; false if none. */
bool goelf_exec_base(const struct goelf *e, uint64_t *base);
/* Load the R_X86_64_RELATIVE relocations (position-independent binaries). */
int goelf_load_relocs(struct goelf *e);
/* The addend of the RELATIVE relocation at vaddr, if one exists. */
bool goelf_reloc_at(const struct goelf *e, uint64_t vaddr, uint64_t *addend);

/* ---- the table ---- */

/* A copy of some bytes of the file, with the vaddr they were loaded at. */
struct gobytes {
	uint8_t *data;
	size_t len;
	uint64_t vaddr;
};

/* Byte ranges of the pclntab's sub-tables, as offsets into pcln.data. */
struct gorange {
	size_t off, len;
};

struct ember_gopclntab {
	char *name;        /* file name for messages */
	uint32_t magic;
	int go_min;        /* 16, 18 or 20 */
	uint8_t ptrsize;   /* always 8 here */
	uint8_t quantum;   /* minLC: pc quantum (1 on amd64) */
	uint64_t nfunc, nfiles;
	uint64_t text_start;     /* 1.18+: base of entry offsets */
	struct gobytes pcln;     /* the .gopclntab section */
	struct gorange funcnames, cutab, filetab, pctab, functab_sec; /* sub-tables */
	size_t functab_off;      /* == functab_sec.off */
	size_t ftab_entry;       /* bytes per functab entry: 8 (1.18+) or 16 */
	size_t func_size;        /* sizeof(_func): 44, 40 or 44 */
	struct gobytes funcdata; /* section holding the inline trees (go:func.*), may be empty */
	uint64_t gofunc;         /* 1.18+: base of FUNCDATA offsets, 0 if unknown */
	struct ember_gobuildinfo *bi;
	/* code, for the rbp analysis of compile_rows */
	uint16_t machine;        /* e_machine, EM_X86_64 when parsed without ELF */
	uint64_t exec_base;      /* vaddr of the first executable PT_LOAD */
	bool has_exec_base;
	char *path;              /* path mode: re-read the code from here ... */
	dev_t dev;
	ino_t ino;
	off_t fsize;
	int64_t mtime_ns;        /* ... if it is still the same file */
	struct gobytes code;     /* image mode: copy of the text range */
};

/* A function's _func record, decoded. */
struct gofunc {
	uint64_t entry;
	size_t off;           /* of the _func in pcln.data */
	int32_t nameoff;
	uint32_t pcsp, pcfile, pcln, npcdata, cu_offset;
	int32_t start_line;   /* 1.20+ */
	uint8_t funcid, flag, nfuncdata;
};

/* Go's funcFlag bits (1.17+). */
#define GO_FUNCFLAG_TOPFRAME 0x1
#define GO_FUNCFLAG_SPWRITE 0x2

/* Function i of the functab: entry and the next function's entry. 0 or -EINVAL. */
int gotab_func_bounds(const struct ember_gopclntab *g, uint64_t i, uint64_t *entry,
		      uint64_t *next);
/* Decode function i. 0 or -EINVAL. */
int gotab_func(const struct ember_gopclntab *g, uint64_t i, struct gofunc *f);
/*
 * Copy len bytes of code at vaddr: from the image-mode copy, or read again
 * from the file in path mode if it is still the file that was opened (same
 * device, inode, size and mtime).  0, or a negative errno.
 */
int gotab_read_code(const struct ember_gopclntab *g, uint64_t vaddr, uint8_t *buf, size_t len);
/* NUL-terminated name at funcnametab+off, NULL if out of bounds. */
const char *gotab_name(const struct ember_gopclntab *g, int64_t off);

/* Iterator over a pc-value table: value v holds for pc in [pc, next_pc). */
struct gopcvalue {
	const uint8_t *p, *end;
	uint64_t pc;      /* start of the current range */
	uint64_t next_pc; /* end of the current range */
	int32_t value;
	bool first;
	unsigned quantum;
};
/* Start iterating the table at pctab offset off for a function at entry. false if off is bad. */
bool gopcvalue_init(const struct ember_gopclntab *g, uint32_t off, uint64_t entry,
		    struct gopcvalue *it);
/* Advance to the next range; false at the end of the table (or on malformed bytes, *bad set). */
bool gopcvalue_next(struct gopcvalue *it, bool *bad);

/* gobuildinfo.c: parse .go.buildinfo of an open ELF.  -ENOENT if absent. */
int gobuildinfo_from_elf(const struct goelf *e, struct ember_gobuildinfo **out, char *err,
			 size_t errlen);

void goerr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
