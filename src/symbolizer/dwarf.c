/*
 * dwarf.c - inline chains, file:line and function names from DWARF with
 * libdw (see dwarf.h for what is returned and why).
 *
 * Indexes, built lazily so a library nobody samples costs nothing:
 *
 *   per binary   every compile unit's address ranges (DW_AT_ranges or
 *                low/high pc of the unit DIE), sorted.  Only unit DIEs are
 *                read.  A unit without ranges gets its functions' ranges.
 *   per unit     every DW_TAG_subprogram with code (top level and inside
 *                namespaces), its ranges and DIE, sorted.  Built on the
 *                unit's first hit by one walk over the unit's top-level
 *                DIEs (function bodies are skipped via DW_AT_sibling).
 *   per function the scopes nested in it (lexical blocks, inlined
 *                subroutines), flattened on the function's first hit into
 *                one block: each scope's parent, depth and pc ranges.  The
 *                walk descends only into scopes and steps over every other
 *                DIE (parameters, variables, call sites) by its tag.
 *   line table   per unit, on its first hit, read by dwarf_line.c (libdw's
 *                answers at a fraction of its cost); libdw's own
 *                dwarf_getsrc_die/dwarf_getsrcfiles when that reader
 *                refuses the unit's line program.
 *
 * A lookup: unit by binary search, function by binary search, then the
 * deepest scope of the function whose ranges contain the address; it and
 * its ancestors that are inlined subroutines are the inline chain.  The
 * line comes from the line table; call sites from DW_AT_call_*.
 *
 * Hostile input: every walk is bounded (nesting depth, DIEs visited per
 * lookup and per unit, units per file, ranges per DIE), and libdw itself
 * bounds-checks DIE and attribute decoding.
 *
 * The file is mapped (ELF_C_READ_MMAP) rather than read: a large binary's
 * DWARF is hundreds of megabytes and a lookup touches a few pages of it.
 * The price is that truncating a mapped file under us raises SIGBUS;
 * executables in use are replaced by rename, not rewritten in place.
 */
#include "core/array.h"
#include "symbolizer/dwarf.h"
#include "symbolizer/dwarf_line.h"
#include "symbolizer/gopclntab.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "core/log.h"
#include "symbolizer/debuglink.h"
#include "symbolizer/elf_file.h"

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2
#endif

#define MAX_UNITS 1000000           /* compile units per file */
#define MAX_RANGES_PER_DIE 65536    /* DW_AT_ranges entries read per DIE */
#define MAX_INDEX_DIES (1u << 24)   /* DIEs visited while indexing one unit */
#define MAX_NAMESPACE_DEPTH 64      /* namespace nesting followed while indexing */
#define MAX_LOOKUP_DIES 200000      /* DIEs visited by one lookup */
#define MAX_SCOPE_DEPTH 256         /* nested scopes followed by one lookup */
#define OVERLAP_SCAN 64             /* entries scanned back for overlapping ranges */
#define ZSTD_MAX_BYTES (4ull << 30) /* decompressed zstd sections per file */

/* A function's nested scopes, flattened once (see scope_index_build). */
struct scope {
	Dwarf_Die die;
	int32_t parent; /* index in scopes, -1 for children of the function */
	uint16_t depth; /* 1 for children of the function */
	bool frame;     /* an inlined subroutine (or nested function): a frame of its own */
};

struct scope_range {
	uint64_t lo, hi;
	uint32_t scope;
};

/* One malloc'd block: this header, then the scopes, then the ranges. */
struct scope_index {
	struct scope *scopes;
	size_t n_scopes;
	struct scope_range *ranges;
	size_t n_ranges;
};

/* A function with code; all its ranges share it (hot and cold parts). */
struct func {
	Dwarf_Die die;
	struct scope_index *scopes; /* built on the first lookup in this function */
};

struct func_range {
	uint64_t lo, hi;
	uint32_t fn; /* index in cu->fns */
};

struct cu_range {
	uint64_t lo, hi;
	uint32_t cu;
};

struct cu {
	Dwarf_Die cudie;  /* line table, file names, comp_dir */
	Dwarf_Die diedie; /* the DIEs: the split unit of a skeleton, else cudie */
	const char *comp_dir;
	struct func_range *funcs;
	size_t n_funcs;
	struct func *fns;
	size_t n_fns, cap_fns;
	bool indexed;
	bool files_tried;
	Dwarf_Files *files; /* libdw's, when lines_own is false */
	size_t n_files;
	bool lines_tried;
	bool lines_own; /* lines read by dwarf_line.c, else libdw's */
	struct ember_line_table lines;
};

/* A map from one or two pointers to a string, for demangled names and joined paths. */
struct str_entry {
	const void *k1, *k2;
	char *val;
	bool owned;
};

struct str_map {
	struct str_entry *slots;
	size_t cap, n;
};

struct ember_dwarf {
	char *path;                  /* the binary */
	char *source;                /* the file the DWARF came from */
	struct ember_debuglink link; /* link.build_id points at build_id */
	char build_id[2 * EMBER_BUILD_ID_MAX + 1];
	Elf *elf;       /* the binary, when it holds DWARF itself */
	Elf *debug_elf; /* its separate debug file */
	Elf *image_elf; /* in-memory copy with zstd sections decompressed */
	void *image;
	Dwarf *dbg;
	bool loaded;
	struct ember_line_sections line_secs; /* .line == NULL: libdw reads lines */

	struct cu *cus;
	size_t n_cus, cap_cus;
	struct cu_range *ranges;
	size_t n_ranges, cap_ranges;
	struct str_map strs;
	/* scratch for scope_index_build, reused from function to function */
	struct scope *tmp_scopes;
	size_t cap_tmp_scopes;
	struct scope_range *tmp_ranges;
	size_t cap_tmp_ranges;
};

/* ---- small helpers ---- */


static void warn_file(const char *path, const char *what, const char *detail)
{
	char key[PATH_MAX + 16];

	snprintf(key, sizeof(key), "dwarf:%s", path);
	ember_warn_once(key, "symbolizer: %s: %s%s%s; using the symbol table", path, what,
			detail ? ": " : "", detail ? detail : "");
}

/* ---- string map ---- */

static size_t str_hash(const void *k1, const void *k2)
{
	uint64_t h = (uint64_t)(uintptr_t)k1 * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)(uintptr_t)k2 * 0xc2b2ae3d27d4eb4full;
	return (size_t)(h ^ (h >> 29));
}

static struct str_entry *str_find(struct str_map *m, const void *k1, const void *k2)
{
	if (!m->cap)
		return NULL;
	for (size_t i = str_hash(k1, k2) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct str_entry *e = &m->slots[i];
		if (!e->k1)
			return e; /* empty slot: where it would go */
		if (e->k1 == k1 && e->k2 == k2)
			return e;
	}
}

/* Store val for (k1, k2); takes ownership of val when owned. Returns val, or NULL on OOM. */
static const char *str_put(struct str_map *m, const void *k1, const void *k2, char *val,
			   bool owned)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct str_entry *old = m->slots;
		size_t old_cap = m->cap;
		m->slots = calloc(cap, sizeof(*m->slots));
		if (!m->slots) {
			m->slots = old;
			if (owned)
				free(val);
			return NULL;
		}
		m->cap = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].k1)
				*str_find(m, old[i].k1, old[i].k2) = old[i];
		free(old);
	}
	struct str_entry *e = str_find(m, k1, k2);
	*e = (struct str_entry){.k1 = k1, .k2 = k2, .val = val, .owned = owned};
	m->n++;
	return val;
}

static void str_map_free(struct str_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].k1 && m->slots[i].owned)
			free(m->slots[i].val);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Demangled form of a linkage name, computed once per name. */
static const char *demangled(struct ember_dwarf *d, const char *mangled)
{
	struct str_entry *e = str_find(&d->strs, mangled, NULL);

	if (e && e->k1)
		return e->val;
	char *dm = ember_demangle(mangled);
	const char *r = str_put(&d->strs, mangled, NULL, dm ? dm : (char *)mangled, dm != NULL);
	return r ? r : mangled;
}

/* A source path as llvm-symbolizer prints it: relative paths joined to comp_dir. */
static const char *full_path(struct ember_dwarf *d, const struct cu *cu, const char *p)
{
	if (!p || p[0] == '/' || !cu->comp_dir || !cu->comp_dir[0])
		return p;
	struct str_entry *e = str_find(&d->strs, cu->comp_dir, p);
	if (e && e->k1)
		return e->val;
	char *joined;
	if (asprintf(&joined, "%s/%s", cu->comp_dir, p) < 0)
		return p;
	const char *r = str_put(&d->strs, cu->comp_dir, p, joined, true);
	return r ? r : p;
}

/* ---- opening ---- */

static bool has_section(Elf *elf, const char *want1, const char *want2)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return false;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS || sh.sh_size == 0)
			continue;
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && (strcmp(name, want1) == 0 || strcmp(name, want2) == 0))
			return true;
	}
	return false;
}

/* Map the ELF file on fd so that fd can be closed. */
static Elf *map_elf(int fd)
{
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);

	if (!elf)
		return NULL;
	/* FDREAD reads what mmap did not cover and marks fd unused (FDDONE). */
	if (elf_kind(elf) != ELF_K_ELF || elf_cntl(elf, ELF_C_FDREAD) != 0) {
		elf_end(elf);
		return NULL;
	}
	return elf;
}

int ember_dwarf_open_fd(int fd, const char *path, const char *build_id,
			struct ember_dwarf **out)
{
	struct ember_dwarf *d;
	Elf *elf;

	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;
	elf = map_elf(fd);
	if (!elf)
		return -ENOEXEC;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path ? path : "?"))) {
		free(d);
		elf_end(elf);
		return -ENOMEM;
	}
	if (build_id && strlen(build_id) < sizeof(d->build_id))
		strcpy(d->build_id, build_id);
	d->link.build_id = d->build_id;
	d->link.layout = ember_elf_layout_hash(elf);
	if (has_section(elf, ".debug_info", ".zdebug_info")) {
		d->elf = elf;
	} else {
		/* Stripped: remember how to find the debug file, unmap the binary. */
		ember_debuglink_read(elf, &d->link);
		elf_end(elf);
		if (!d->link.name[0] && !d->build_id[0]) {
			ember_dwarf_free(d);
			return 0;
		}
	}
	*out = d;
	return 0;
}

/* ---- zstd-compressed sections (libdw before 0.191 cannot read them) ---- */

struct zsec {
	size_t shdr_off;        /* offset of its section header in the file */
	uint64_t data_off, data_size, out_size, align;
	uint64_t new_off;
};

/* Read section header i (native-endian ELF32 or ELF64) fields we need. */
static void shdr_get(const char *raw, size_t off, bool is64, uint64_t *flags, uint64_t *offset,
		     uint64_t *size, uint32_t *type)
{
	if (is64) {
		Elf64_Shdr sh;
		memcpy(&sh, raw + off, sizeof(sh));
		*flags = sh.sh_flags, *offset = sh.sh_offset, *size = sh.sh_size, *type = sh.sh_type;
	} else {
		Elf32_Shdr sh;
		memcpy(&sh, raw + off, sizeof(sh));
		*flags = sh.sh_flags, *offset = sh.sh_offset, *size = sh.sh_size, *type = sh.sh_type;
	}
}

static void shdr_set(char *raw, const struct zsec *z, bool is64)
{
	if (is64) {
		Elf64_Shdr sh;
		memcpy(&sh, raw + z->shdr_off, sizeof(sh));
		sh.sh_flags &= ~(uint64_t)SHF_COMPRESSED;
		sh.sh_offset = z->new_off, sh.sh_size = z->out_size, sh.sh_addralign = z->align;
		memcpy(raw + z->shdr_off, &sh, sizeof(sh));
	} else {
		Elf32_Shdr sh;
		memcpy(&sh, raw + z->shdr_off, sizeof(sh));
		sh.sh_flags &= ~(uint32_t)SHF_COMPRESSED;
		sh.sh_offset = (uint32_t)z->new_off, sh.sh_size = (uint32_t)z->out_size;
		sh.sh_addralign = (uint32_t)z->align;
		memcpy(raw + z->shdr_off, &sh, sizeof(sh));
	}
}

/* Parse the compression header of a section; true for a sane zstd one. */
static bool zstd_chdr(const char *raw, size_t size, bool is64, struct zsec *z)
{
	size_t hdr = is64 ? sizeof(Elf64_Chdr) : sizeof(Elf32_Chdr);
	uint32_t type;

	if (z->data_off > size || z->data_size > size - z->data_off || z->data_size < hdr)
		return false;
	if (is64) {
		Elf64_Chdr ch;
		memcpy(&ch, raw + z->data_off, sizeof(ch));
		type = ch.ch_type, z->out_size = ch.ch_size, z->align = ch.ch_addralign;
	} else {
		Elf32_Chdr ch;
		memcpy(&ch, raw + z->data_off, sizeof(ch));
		type = ch.ch_type, z->out_size = ch.ch_size, z->align = ch.ch_addralign;
	}
	z->data_off += hdr;
	z->data_size -= hdr;
	if (z->align == 0 || (z->align & (z->align - 1)) || z->align > 4096)
		z->align = 1;
	return type == ELFCOMPRESS_ZSTD && z->out_size <= ZSTD_MAX_BYTES;
}

/*
 * Find the zstd-compressed sections of src.  Returns their count (0 when
 * none, or the file is not native-endian), filling *zs (malloc'd).
 */
static int find_zstd_sections(Elf *src, const char *raw, size_t size, bool *is64,
			      struct zsec **zs)
{
	GElf_Ehdr eh;
	size_t shnum;
	int n = 0;

	*zs = NULL;
	if (!gelf_getehdr(src, &eh) || elf_getshdrnum(src, &shnum) != 0)
		return 0;
	*is64 = eh.e_ident[EI_CLASS] == ELFCLASS64;
	size_t entsize = *is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	bool native = (eh.e_ident[EI_DATA] == ELFDATA2LSB) ==
		      (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
	if (!native || eh.e_shentsize != entsize || eh.e_shoff > size ||
	    shnum > (size - eh.e_shoff) / entsize)
		return 0;
	for (size_t i = 1; i < shnum; i++) {
		struct zsec z = {.shdr_off = eh.e_shoff + i * entsize};
		uint64_t flags;
		uint32_t type;
		shdr_get(raw, z.shdr_off, *is64, &flags, &z.data_off, &z.data_size, &type);
		if (!(flags & SHF_COMPRESSED) || type == SHT_NOBITS ||
		    !zstd_chdr(raw, size, *is64, &z))
			continue;
		struct zsec *p = realloc(*zs, (n + 1) * sizeof(*p));
		if (!p)
			break;
		*zs = p;
		p[n++] = z;
	}
	return n;
}

/*
 * An in-memory copy of src with its zstd sections decompressed (appended
 * at the end, section headers pointed at them).  NULL when src has none
 * or they are corrupt (detail in *why).
 */
static Elf *decompress_zstd(struct ember_dwarf *d, Elf *src, const char **why)
{
	size_t size;
	const char *raw = elf_rawfile(src, &size);
	struct zsec *zs;
	bool is64;
	Elf *img = NULL;

	*why = NULL;
	if (!raw)
		return NULL;
	int n = find_zstd_sections(src, raw, size, &is64, &zs);
	if (n == 0)
		return NULL;
	uint64_t total = (size + 15) & ~(uint64_t)15;
	for (int i = 0; i < n; i++) {
		total = (total + 15) & ~(uint64_t)15;
		zs[i].new_off = total;
		total += zs[i].out_size;
		if (total > ZSTD_MAX_BYTES + (uint64_t)size) {
			*why = "zstd sections too large";
			goto out;
		}
	}
	char *image = calloc(1, total ? total : 1);
	if (!image) {
		*why = "out of memory";
		goto out;
	}
	memcpy(image, raw, size);
	for (int i = 0; i < n; i++) {
		size_t got = ZSTD_decompress(image + zs[i].new_off, zs[i].out_size,
					     raw + zs[i].data_off, zs[i].data_size);
		if (ZSTD_isError(got) || got != zs[i].out_size) {
			*why = "corrupt zstd-compressed section";
			free(image);
			goto out;
		}
		shdr_set(image, &zs[i], is64);
	}
	img = elf_memory(image, total);
	if (!img) {
		free(image);
		*why = elf_errmsg(-1);
		goto out;
	}
	d->image = image;
out:
	free(zs);
	return img;
}

/* ---- the unit index ---- */

static int add_cu_range(struct ember_dwarf *d, uint64_t lo, uint64_t hi, uint32_t cu)
{
	/* Address 0 and an all-ones end mark code the linker discarded. */
	if (lo == 0 || lo >= hi || hi == UINT64_MAX)
		return 0;
	if (ember_array_grow((void **)&d->ranges, &d->cap_ranges, d->n_ranges + 1, sizeof(*d->ranges)))
		return -ENOMEM;
	d->ranges[d->n_ranges++] = (struct cu_range){lo, hi, cu};
	return 0;
}

static int cmp_cu_range(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

static int cmp_func(const void *a, const void *b)
{
	const struct func_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Append a subprogram DIE and its code ranges to the unit's function table. */
static int add_func(struct cu *cu, size_t *cap, Dwarf_Die *die)
{
	Dwarf_Addr base, lo, hi;
	ptrdiff_t off = 0;
	int n = 0;
	uint32_t fn = (uint32_t)cu->n_fns;

	while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0 && n++ < MAX_RANGES_PER_DIE) {
		if (lo == 0 || lo >= hi || hi == UINT64_MAX)
			continue;
		if (cu->n_fns == fn) { /* the first range with code */
			if (ember_array_grow((void **)&cu->fns, &cu->cap_fns, fn + 1, sizeof(*cu->fns)))
				return -ENOMEM;
			cu->fns[cu->n_fns++] = (struct func){*die, NULL};
		}
		if (ember_array_grow((void **)&cu->funcs, cap, cu->n_funcs + 1, sizeof(*cu->funcs)))
			return -ENOMEM;
		cu->funcs[cu->n_funcs++] = (struct func_range){lo, hi, fn};
	}
	return 0;
}

/* Build cu->funcs: subprograms with code at top level and inside namespaces. */
static void index_cu(struct cu *cu)
{
	Dwarf_Die stack[MAX_NAMESPACE_DEPTH], die, next;
	size_t cap = 0, visits = 0;
	int depth = 0;

	cu->indexed = true;
	if (dwarf_child(&cu->diedie, &die) != 0)
		return;
	while (visits++ < MAX_INDEX_DIES) {
		int tag = dwarf_tag(&die);
		if (tag == DW_TAG_subprogram && add_func(cu, &cap, &die))
			break;
		if (tag == DW_TAG_namespace && depth < MAX_NAMESPACE_DEPTH &&
		    dwarf_child(&die, &next) == 0) {
			stack[depth++] = die;
			die = next;
			continue;
		}
		/* Next sibling, climbing out of finished namespaces. */
		while (dwarf_siblingof(&die, &next) != 0) {
			if (depth == 0)
				goto done;
			die = stack[--depth];
		}
		die = next;
	}
done:
	if (cu->n_funcs > 1)
		qsort(cu->funcs, cu->n_funcs, sizeof(*cu->funcs), cmp_func);
}

static void build_cu_index(struct ember_dwarf *d)
{
	Dwarf_CU *unit = NULL, *next;
	Dwarf_Half version;
	uint8_t type;
	Dwarf_Die cudie, subdie;
	size_t guard = 0;

	while (guard++ < MAX_UNITS &&
	       dwarf_get_units(d->dbg, unit, &next, &version, &type, &cudie, &subdie) == 0) {
		unit = next;
		if (type != DW_UT_compile && type != DW_UT_skeleton)
			continue; /* type and partial units hold no code of their own */
		if (ember_array_grow((void **)&d->cus, &d->cap_cus, d->n_cus + 1, sizeof(*d->cus)))
			break;
		uint32_t idx = (uint32_t)d->n_cus++;
		struct cu *cu = &d->cus[idx];
		memset(cu, 0, sizeof(*cu));
		cu->cudie = cudie;
		cu->diedie = cudie;
		if (type == DW_UT_skeleton && dwarf_tag(&subdie) == DW_TAG_compile_unit)
			cu->diedie = subdie;
		Dwarf_Attribute a;
		cu->comp_dir = dwarf_formstring(dwarf_attr(&cudie, DW_AT_comp_dir, &a));

		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;
		size_t before = d->n_ranges;
		int n = 0;
		while ((off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0 &&
		       n++ < MAX_RANGES_PER_DIE)
			add_cu_range(d, lo, hi, idx);
		if (d->n_ranges == before) {
			/* No unit ranges: index its functions now and use theirs. */
			index_cu(cu);
			for (size_t i = 0; i < cu->n_funcs; i++)
				add_cu_range(d, cu->funcs[i].lo, cu->funcs[i].hi, idx);
		}
	}
	if (d->n_ranges > 1)
		qsort(d->ranges, d->n_ranges, sizeof(*d->ranges), cmp_cu_range);
}

/* ---- loading ---- */

/*
 * The uncompressed contents of the section libdw reads as `name`
 * (".debug_line", ...), or of ".z" + name; *ok = false when that cannot be
 * told for sure (both present, still compressed), so lines go to libdw.
 */
static const uint8_t *debug_section(Elf *elf, size_t shstrndx, const char *name, size_t *size,
				    bool *ok)
{
	Elf_Scn *scn = NULL, *found = NULL;
	bool gnu = false;

	*size = 0;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!n || (strcmp(n, name) != 0 && !(n[0] == '.' && n[1] == 'z' &&
						      strcmp(n + 2, name + 1) == 0)))
			continue;
		if (found || (sh.sh_flags & SHF_COMPRESSED)) {
			*ok = false;
			return NULL;
		}
		found = scn;
		gnu = n[1] == 'z';
	}
	Elf_Data *data = found ? elf_rawdata(found, NULL) : NULL;
	if (!data || !data->d_buf)
		return NULL;
	if (gnu && data->d_size >= 4 && memcmp(data->d_buf, "ZLIB", 4) == 0) {
		*ok = false; /* libdw did not decompress it (yet) */
		return NULL;
	}
	*size = data->d_size;
	return data->d_buf;
}

/* Find what dwarf_line.c needs; without it (or big-endian), libdw reads the lines. */
static void find_line_sections(struct ember_dwarf *d)
{
	Elf *elf = dwarf_getelf(d->dbg);
	struct ember_line_sections s;
	GElf_Ehdr eh;
	size_t shstrndx;
	bool ok = true;

	if (!elf || !gelf_getehdr(elf, &eh) || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    elf_getshdrstrndx(elf, &shstrndx) != 0)
		return;
	s.line = debug_section(elf, shstrndx, ".debug_line", &s.line_size, &ok);
	s.str = debug_section(elf, shstrndx, ".debug_str", &s.str_size, &ok);
	s.line_str = debug_section(elf, shstrndx, ".debug_line_str", &s.line_str_size, &ok);
	if (ok && s.line)
		d->line_secs = s;
}

static void load(struct ember_dwarf *d)
{
	char dbg_path[PATH_MAX];
	Elf *src = d->elf;
	const char *why;

	d->loaded = true;
	if (!src) {
		if (ember_debuglink_find(d->path, &d->link, dbg_path, sizeof(dbg_path)) != 0)
			return; /* stripped, no debug file: the symbol table will do */
		int fd = open(dbg_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		d->debug_elf = src = map_elf(fd);
		close(fd);
		if (!src) {
			warn_file(dbg_path, "debug file is not a usable ELF file", NULL);
			return;
		}
		d->source = strdup(dbg_path);
	} else {
		d->source = strdup(d->path);
	}
	d->image_elf = decompress_zstd(d, src, &why);
	if (d->image_elf)
		src = d->image_elf;
	else if (why)
		warn_file(d->source ? d->source : d->path, "cannot decompress debug sections", why);
	d->dbg = dwarf_begin_elf(src, DWARF_C_READ, NULL);
	if (!d->dbg) {
		warn_file(d->source ? d->source : d->path, "unusable DWARF", dwarf_errmsg(-1));
		return;
	}
	find_line_sections(d);
	build_cu_index(d);
}

/* ---- lookup ---- */

static struct cu *find_cu(struct ember_dwarf *d, uint64_t pc)
{
	size_t lo = 0, hi = d->n_ranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->ranges[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo, steps = 0; i-- > 0 && steps < OVERLAP_SCAN; steps++)
		if (pc < d->ranges[i].hi)
			return &d->cus[d->ranges[i].cu];
	return NULL;
}

static struct func_range *find_func(struct cu *cu, uint64_t pc)
{
	size_t lo = 0, hi = cu->n_funcs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cu->funcs[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo, steps = 0; i-- > 0 && steps < OVERLAP_SCAN; steps++)
		if (pc < cu->funcs[i].hi)
			return &cu->funcs[i];
	return NULL;
}

static bool is_scope(int tag)
{
	switch (tag) {
	case DW_TAG_inlined_subroutine:
	case DW_TAG_lexical_block:
	case DW_TAG_try_block:
	case DW_TAG_catch_block:
	case DW_TAG_with_stmt:
	case DW_TAG_subprogram: /* nested functions */
		return true;
	default:
		return false;
	}
}

/* DW_AT_low_pc, DW_AT_high_pc and whether there is DW_AT_ranges: one pass over a DIE's attributes. */
struct pc_attrs {
	Dwarf_Attribute low, high;
	bool has_low, has_high, has_ranges;
};

static int pc_attr(Dwarf_Attribute *a, void *arg)
{
	struct pc_attrs *p = arg;

	switch (dwarf_whatattr(a)) {
	case DW_AT_low_pc:
		if (!p->has_low)
			p->low = *a, p->has_low = true;
		break;
	case DW_AT_high_pc:
		if (!p->has_high)
			p->high = *a, p->has_high = true;
		break;
	case DW_AT_ranges:
		p->has_ranges = true;
		break;
	}
	return DWARF_CB_OK;
}

static bool scope_range_add(struct ember_dwarf *d, size_t *n, uint64_t lo, uint64_t hi,
			    uint32_t scope)
{
	if (hi <= lo)
		return true;
	if (ember_array_grow(&d->tmp_ranges, &d->cap_tmp_ranges, *n + 1, sizeof(*d->tmp_ranges)))
		return false;
	d->tmp_ranges[(*n)++] = (struct scope_range){lo, hi, scope};
	return true;
}

/*
 * Append a scope and its pc ranges to the scratch arrays.  The ranges are
 * dwarf_ranges()'s (low_pc/high_pc first, else DW_AT_ranges), with the
 * common low_pc/high_pc case read in one pass over the attributes instead
 * of dwarf_ranges()'s three lookups.  Returns the scope's index, or -1.
 */
static int add_scope(struct ember_dwarf *d, size_t *n_scopes, size_t *n_ranges, Dwarf_Die *die,
		     int32_t parent, uint16_t depth, bool frame)
{
	struct pc_attrs pa = {0};
	Dwarf_Addr base, lo, hi;
	Dwarf_Word len;
	ptrdiff_t off = 0;
	uint32_t idx = (uint32_t)*n_scopes;

	if (ember_array_grow(&d->tmp_scopes, &d->cap_tmp_scopes, *n_scopes + 1,
			     sizeof(*d->tmp_scopes)))
		return -1;
	d->tmp_scopes[(*n_scopes)++] = (struct scope){*die, parent, depth, frame};
	if (dwarf_getattrs(die, pc_attr, &pa, 0) < 0)
		return (int)idx; /* no attributes: no ranges */
	if (pa.has_low && pa.has_high && dwarf_formaddr(&pa.low, &lo) == 0) {
		if (dwarf_formaddr(&pa.high, &hi) == 0)
			return scope_range_add(d, n_ranges, lo, hi, idx) ? (int)idx : -1;
		if (dwarf_formudata(&pa.high, &len) == 0)
			return scope_range_add(d, n_ranges, lo, lo + len, idx) ? (int)idx : -1;
	}
	if (!pa.has_ranges)
		return (int)idx;
	for (int n = 0; n < 4096 && (off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0; n++)
		if (!scope_range_add(d, n_ranges, lo, hi, idx))
			return -1;
	return (int)idx;
}

/* Copy the scratch arrays into one exactly sized block. */
static struct scope_index *scope_index_copy(const struct ember_dwarf *d, size_t n_scopes,
					    size_t n_ranges)
{
	size_t scopes_bytes = n_scopes * sizeof(struct scope);
	struct scope_index *x =
		malloc(sizeof(*x) + scopes_bytes + n_ranges * sizeof(struct scope_range));

	if (!x)
		return NULL;
	x->scopes = (struct scope *)(x + 1);
	x->n_scopes = n_scopes;
	x->ranges = (struct scope_range *)((char *)x->scopes + scopes_bytes);
	x->n_ranges = n_ranges;
	if (n_scopes)
		memcpy(x->scopes, d->tmp_scopes, scopes_bytes);
	if (n_ranges)
		memcpy(x->ranges, d->tmp_ranges, n_ranges * sizeof(struct scope_range));
	return x;
}

/*
 * Flatten the scopes nested in a function (inlined subroutines, lexical
 * blocks, ...) into a list of pc ranges, each knowing its scope's parent
 * and depth.  Walking libdw's DIE tree costs about as much per address as
 * all of this does once per function, and a profile or a batch resolves
 * many addresses of each function.  Only scopes are descended into; other
 * DIEs (parameters, variables, call sites) are stepped over by tag.  The
 * index is built in scratch arrays reused across functions, then copied
 * into one block of its exact size.
 */
/* Add the scopes among parent's children.  Returns false when a bound or OOM stops the walk. */
static bool add_child_scopes(struct ember_dwarf *d, Dwarf_Die *parent, int32_t parent_idx,
			     uint16_t depth, size_t *visits, size_t *n_scopes, size_t *n_ranges)
{
	Dwarf_Die child, next;

	if (dwarf_child(parent, &child) != 0)
		return true;
	for (;;) {
		if (++*visits > MAX_LOOKUP_DIES)
			return false; /* keep what was found so far */
		int tag = dwarf_tag(&child);
		if (is_scope(tag)) {
			bool frame = tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram;
			if (add_scope(d, n_scopes, n_ranges, &child, parent_idx, depth, frame) < 0)
				return false;
		}
		if (dwarf_siblingof(&child, &next) != 0)
			return true;
		child = next;
	}
}

/*
 * Flatten func's scopes breadth first: the function's children, then the
 * children of each scope found, in the order found.  tmp_scopes is the
 * work list, so any number of siblings at any level is walked; nesting
 * deeper than MAX_SCOPE_DEPTH and more than MAX_LOOKUP_DIES DIEs are not.
 */
static struct scope_index *scope_index_build(struct ember_dwarf *d, Dwarf_Die *func)
{
	size_t visits = 0, n_scopes = 0, n_ranges = 0;

	if (add_child_scopes(d, func, -1, 1, &visits, &n_scopes, &n_ranges)) {
		for (size_t i = 0; i < n_scopes; i++) {
			Dwarf_Die die = d->tmp_scopes[i].die; /* tmp_scopes may move */
			uint16_t depth = d->tmp_scopes[i].depth;
			if (depth >= MAX_SCOPE_DEPTH || dwarf_haschildren(&die) <= 0)
				continue;
			if (!add_child_scopes(d, &die, (int32_t)i, (uint16_t)(depth + 1), &visits,
					      &n_scopes, &n_ranges))
				break;
		}
	}
	return scope_index_copy(d, n_scopes, n_ranges);
}

static void scope_index_free(struct scope_index *x)
{
	free(x); /* one block */
}

/*
 * chain[0] = the function, then each inlined subroutine containing pc,
 * outermost to innermost.  Returns the chain length (>= 1).
 */
static int inline_chain(struct ember_dwarf *d, struct func *f, uint64_t pc, Dwarf_Die *chain,
			int max)
{
	int32_t path[MAX_SCOPE_DEPTH];
	int n = 0, k = 0;

	chain[n++] = f->die;
	if (!f->scopes && !(f->scopes = scope_index_build(d, &f->die)))
		return n;
	const struct scope_index *x = f->scopes;
	/* the deepest scope whose ranges hold pc; its ancestors hold pc too */
	int32_t best = -1;
	for (size_t i = 0; i < x->n_ranges; i++) {
		const struct scope_range *r = &x->ranges[i];
		if (pc >= r->lo && pc < r->hi &&
		    (best < 0 || x->scopes[r->scope].depth > x->scopes[best].depth))
			best = (int32_t)r->scope;
	}
	for (int32_t s = best; s >= 0 && k < MAX_SCOPE_DEPTH; s = x->scopes[s].parent)
		path[k++] = s;
	while (k-- > 0 && n < max)
		if (x->scopes[path[k]].frame)
			chain[n++] = x->scopes[path[k]].die;
	return n;
}

static const char *attr_string(Dwarf_Die *die, int name)
{
	Dwarf_Attribute a;
	return dwarf_attr_integrate(die, name, &a) ? dwarf_formstring(&a) : NULL;
}

static const char *function_name(struct ember_dwarf *d, Dwarf_Die *die)
{
	const char *s = attr_string(die, DW_AT_linkage_name);

	if (!s)
		s = attr_string(die, DW_AT_MIPS_linkage_name);
	if (s)
		return demangled(d, s);
	return attr_string(die, DW_AT_name);
}

/* Read the unit's line table ourselves on first use; libdw's if we cannot. */
static void cu_lines(struct ember_dwarf *d, struct cu *cu)
{
	Dwarf_Attribute a;
	Dwarf_Word off;
	uint8_t addr_size;

	if (cu->lines_tried)
		return;
	cu->lines_tried = true;
	if (!d->line_secs.line || !dwarf_attr(&cu->cudie, DW_AT_stmt_list, &a) ||
	    dwarf_formudata(&a, &off) != 0 ||
	    !dwarf_diecu(&cu->cudie, &(Dwarf_Die){0}, &addr_size, NULL))
		return;
	cu->lines_own = ember_line_table_read(&d->line_secs, off, addr_size, cu->comp_dir,
					      &cu->lines) == 0;
}

static void line_of(struct ember_dwarf *d, struct cu *cu, uint64_t pc, struct ember_sym_frame *f)
{
	int line = 0, col = 0;

	cu_lines(d, cu);
	if (cu->lines_own) {
		const struct ember_line_row *r = ember_line_table_find(&cu->lines, pc);
		if (!r)
			return;
		if (r->file < cu->lines.n_files)
			f->file = full_path(d, cu, cu->lines.files[r->file]);
		f->line = r->line > 0 ? (uint32_t)r->line : 0;
		f->column = r->column;
		return;
	}
	Dwarf_Line *l = dwarf_getsrc_die(&cu->cudie, pc);
	if (!l)
		return;
	f->file = full_path(d, cu, dwarf_linesrc(l, NULL, NULL));
	if (dwarf_lineno(l, &line) == 0 && line > 0)
		f->line = (uint32_t)line;
	if (dwarf_linecol(l, &col) == 0 && col > 0)
		f->column = (uint32_t)col;
}

static uint32_t attr_udata(Dwarf_Die *die, int name, bool *ok)
{
	Dwarf_Attribute a;
	Dwarf_Word w;

	*ok = dwarf_attr(die, name, &a) && dwarf_formudata(&a, &w) == 0;
	return *ok && w <= UINT32_MAX ? (uint32_t)w : 0;
}

/* Where inlined subroutine `inl` was called: into f. */
static void call_site(struct ember_dwarf *d, struct cu *cu, Dwarf_Die *inl,
		      struct ember_sym_frame *f)
{
	bool ok;
	uint32_t file = attr_udata(inl, DW_AT_call_file, &ok);

	if (ok) {
		cu_lines(d, cu);
		if (cu->lines_own) {
			if (file < cu->lines.n_files)
				f->file = full_path(d, cu, cu->lines.files[file]);
		} else {
			if (!cu->files_tried) {
				cu->files_tried = true;
				if (dwarf_getsrcfiles(&cu->cudie, &cu->files, &cu->n_files) != 0)
					cu->files = NULL, cu->n_files = 0;
			}
			if (cu->files && file < cu->n_files)
				f->file = full_path(d, cu, dwarf_filesrc(cu->files, file, NULL, NULL));
		}
	}
	f->line = attr_udata(inl, DW_AT_call_line, &ok);
	f->column = attr_udata(inl, DW_AT_call_column, &ok);
}

int ember_dwarf_lookup(struct ember_dwarf *d, uint64_t pc, struct ember_sym_frame *out,
		       int max_out)
{
	struct ember_sym_frame frames[EMBER_DWARF_MAX_CHAIN];
	Dwarf_Die chain[EMBER_DWARF_MAX_CHAIN];
	int depth = 0, n;

	if (!d || max_out <= 0)
		return 0;
	if (!d->loaded)
		load(d);
	if (!d->dbg)
		return 0;
	struct cu *cu = find_cu(d, pc);
	if (!cu)
		return 0;
	if (!cu->indexed)
		index_cu(cu);
	struct func_range *func = find_func(cu, pc);
	if (func)
		depth = inline_chain(d, &cu->fns[func->fn], pc, chain, EMBER_DWARF_MAX_CHAIN);

	n = depth ? depth : 1;
	memset(frames, 0, n * sizeof(frames[0]));
	for (int k = 0; k < depth; k++) {
		int decl = 0;
		frames[k].function = function_name(d, &chain[depth - 1 - k]);
		/* through DW_AT_abstract_origin/specification, as inlined copies need */
		if (dwarf_decl_line(&chain[depth - 1 - k], &decl) == 0 && decl > 0)
			frames[k].start_line = (uint32_t)decl;
	}
	line_of(d, cu, pc, &frames[0]);
	for (int k = 1; k < n; k++)
		call_site(d, cu, &chain[depth - k], &frames[k]);
	if (!depth && !frames[0].file)
		return 0;

	/* Too deep for the caller: keep the innermost frames and the outermost. */
	if (n <= max_out) {
		memcpy(out, frames, n * sizeof(*out));
		return n;
	}
	memcpy(out, frames, (max_out - 1) * sizeof(*out));
	out[max_out - 1] = frames[n - 1];
	return max_out;
}

const char *ember_dwarf_source(const struct ember_dwarf *d)
{
	return d && d->dbg ? d->source : NULL;
}

int ember_elf_symbolize(struct ember_elf *e, uint64_t vaddr, struct ember_sym_frame *out,
			int max_out)
{
	const struct ember_elf_symbol *sym;
	int n;

	if (!e || max_out <= 0)
		return 0;
	/*
	 * Go code: .gopclntab first.  It is what Go's own tracebacks use, it
	 * survives -ldflags='-s -w', and it keeps stripped and unstripped
	 * builds symbolizing alike.  cgo's C functions have no Go file: DWARF
	 * or the symbol table name those.
	 */
	if (e->go) {
		struct ember_go_frame go[EMBER_DWARF_MAX_CHAIN];
		int g = ember_gopclntab_lookup(e->go, vaddr, go,
					       max_out < EMBER_DWARF_MAX_CHAIN ? max_out
									: EMBER_DWARF_MAX_CHAIN);
		if (g > 0 && strcmp(go[g - 1].file, "?") != 0) {
			for (int i = 0; i < g; i++)
				out[i] = (struct ember_sym_frame){
					.function = go[i].name,
					.file = go[i].file,
					.line = (uint32_t)go[i].line,
					.start_line = go[i].start_line > 0 ? (uint32_t)go[i].start_line
									   : 0};
			return g;
		}
	}
	n = ember_dwarf_lookup(e->dwarf, vaddr, out, max_out);
	sym = ember_elf_lookup(e, vaddr, NULL);
	if (n <= 0) {
		if (!sym)
			return 0;
		out[0] = (struct ember_sym_frame){.function = ember_elf_sym_display_name(e, sym)};
		return 1;
	}
	if (sym)
		out[n - 1].function = ember_elf_sym_display_name(e, sym);
	return n;
}

void ember_dwarf_free(struct ember_dwarf *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_cus; i++) {
		for (size_t j = 0; j < d->cus[i].n_fns; j++)
			scope_index_free(d->cus[i].fns[j].scopes);
		free(d->cus[i].fns);
		free(d->cus[i].funcs);
		ember_line_table_free(&d->cus[i].lines);
	}
	free(d->cus);
	free(d->ranges);
	free(d->tmp_scopes);
	free(d->tmp_ranges);
	str_map_free(&d->strs);
	if (d->dbg)
		dwarf_end(d->dbg);
	if (d->image_elf)
		elf_end(d->image_elf);
	free(d->image);
	if (d->debug_elf)
		elf_end(d->debug_elf);
	if (d->elf)
		elf_end(d->elf);
	free(d->source);
	free(d->path);
	free(d);
}
