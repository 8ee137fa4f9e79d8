/*
 * elf_file.c - load build-id, PT_LOAD segments and function symbols of an
 * ELF file with libelf (see elf_file.h).
 *
 * libelf is opened with ELF_C_READ, which reads headers and section data
 * with pread on demand: unlike ELF_C_READ_MMAP, a file truncated under us
 * gives a read error instead of SIGBUS.  libelf bounds-checks section
 * data, notes (gelf_getnote) and symbol entries (gelf_getsym); on top of
 * that we validate counts, string offsets and sizes before trusting them.
 *
 * Symbol table: STT_FUNC and STT_GNU_IFUNC symbols that are defined (not
 * SHN_UNDEF) with a non-empty name, from .symtab, or from .dynsym when
 * .symtab is absent or has no functions (stripped binaries).  Several
 * symbols at one address (aliases: getpid/__getpid, C1/C2 constructors)
 * collapse to the best one: sized over zero-size, global over weak over
 * local, then fewer leading underscores, then the shorter name.
 */
#include "symbolizer/elf_file.h"
#include "symbolizer/elf_plt.h"
#include "symbolizer/gopclntab.h"
#include "symbolizer/dwarf.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/array.h"
#include "core/log.h"

/* Provided by the C++ runtime (libstdc++), which Ember links. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

/* Upper bound on copied symbol names, against files crafted to blow up memory. */
#define NAMES_MAX_BYTES (256u << 20)
/* How far lookup walks back to find a sized symbol enclosing a nested one. */
#define ENCLOSING_SCAN_MAX 64

/* ---- segments ---- */

static int read_loads(Elf *elf, struct ember_elf *e, size_t phnum)
{
	size_t n = 0;

	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
			n++;
	}
	if (n == 0)
		return -ENOEXEC;
	e->loads = calloc(n, sizeof(*e->loads));
	if (!e->loads)
		return -ENOMEM;
	for (size_t i = 0; i < phnum && e->n_loads < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset + ph.p_filesz < ph.p_offset ||
		    ph.p_vaddr + ph.p_memsz < ph.p_vaddr)
			return -EINVAL;
		e->loads[e->n_loads++] = (struct ember_elf_segment){
			.vaddr = ph.p_vaddr, .memsz = ph.p_memsz,
			.offset = ph.p_offset, .filesz = ph.p_filesz, .flags = ph.p_flags,
		};
	}
	return 0;
}

int ember_elf_offset_to_vaddr(const struct ember_elf *e, uint64_t off, uint64_t *vaddr)
{
	/* Exact: the offset lies in a segment's file image. */
	for (size_t i = 0; i < e->n_loads; i++) {
		const struct ember_elf_segment *s = &e->loads[i];
		if (off >= s->offset && off - s->offset < s->filesz) {
			*vaddr = off - s->offset + s->vaddr;
			return 0;
		}
	}
	/* Page padding: mappings start at the page below p_offset. */
	for (size_t i = 0; i < e->n_loads; i++) {
		const struct ember_elf_segment *s = &e->loads[i];
		uint64_t lo = s->offset & ~(uint64_t)4095;
		if (off >= lo && off < s->offset + s->filesz + 4096) {
			*vaddr = s->vaddr + (off - s->offset);
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- symbols ---- */

struct sym_builder {
	struct ember_elf_symbol *syms;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
};

static int add_name(struct sym_builder *b, const char *name, uint32_t *off)
{
	size_t len = strlen(name) + 1;

	if (b->names_len + len > NAMES_MAX_BYTES)
		return -EFBIG;
	if (b->names_len + len > b->names_cap) {
		size_t cap = b->names_cap ? b->names_cap : 65536;
		while (cap < b->names_len + len)
			cap *= 2;
		char *p = realloc(b->names, cap);
		if (!p)
			return -ENOMEM;
		b->names = p;
		b->names_cap = cap;
	}
	memcpy(b->names + b->names_len, name, len);
	*off = (uint32_t)b->names_len;
	b->names_len += len;
	return 0;
}

/* Room for one more symbol in b. */
static int sym_reserve(struct sym_builder *b)
{
	return ember_array_grow(&b->syms, &b->cap, b->n + 1, sizeof(*b->syms));
}

/* End of the section holding a zero-size symbol; UINT64_MAX when unknown. */
static uint64_t section_end(Elf *elf, size_t shndx)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elf_getscn(elf, shndx);

	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_addr + sh.sh_size < sh.sh_addr)
		return UINT64_MAX;
	return sh.sh_addr + sh.sh_size;
}

/* Read the function symbols of one SHT_SYMTAB/SHT_DYNSYM section into b. */
static int read_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, struct sym_builder *b)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t entsize = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);

	if (!data || entsize == 0)
		return -EINVAL;
	size_t count = data->d_size / entsize;
	if (count > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym sym;
		if (!gelf_getsym(data, (int)i, &sym))
			return -EINVAL;
		int type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
		    sym.st_name == 0)
			continue;
		const char *name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !name[0])
			continue;
		int err = sym_reserve(b);
		if (err)
			return err;
		struct ember_elf_symbol *s = &b->syms[b->n];
		if ((err = add_name(b, name, &s->name)))
			return err;
		s->addr = sym.st_value;
		s->size = sym.st_size;
		if (s->size && s->addr + s->size > s->addr)
			s->end = s->addr + s->size;
		else if (sym.st_shndx < SHN_LORESERVE)
			s->end = section_end(elf, sym.st_shndx), s->size = 0;
		else
			s->end = UINT64_MAX, s->size = 0;
		s->bind = (uint8_t)GELF_ST_BIND(sym.st_info);
		s->type = (uint8_t)type;
		b->n++;
	}
	return 0;
}

static int leading_underscores(const char *s)
{
	int n = 0;
	while (s[n] == '_')
		n++;
	return n;
}

static int bind_rank(uint8_t bind)
{
	return bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0;
}

/* Negative when a is the better name for their (shared) address. */
static int prefer(const struct ember_elf_symbol *a, const struct ember_elf_symbol *b,
		  const char *names)
{
	const char *na = names + a->name, *nb = names + b->name;
	int d;

	if ((a->size > 0) != (b->size > 0))
		return a->size > 0 ? -1 : 1;
	if ((d = bind_rank(b->bind) - bind_rank(a->bind)) != 0)
		return d;
	if ((d = leading_underscores(na) - leading_underscores(nb)) != 0)
		return d;
	size_t la = strlen(na), lb = strlen(nb);
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(na, nb);
}

static int cmp_sym(const void *pa, const void *pb, void *names)
{
	const struct ember_elf_symbol *a = pa, *b = pb;

	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	return prefer(a, b, names);
}

/* Sort, keep the best symbol per address, and compute max_end. */
static int finish_symbols(struct ember_elf *e, struct sym_builder *b)
{
	size_t n = 0;

	if (b->n > 1)
		qsort_r(b->syms, b->n, sizeof(*b->syms), cmp_sym, b->names);
	for (size_t i = 0; i < b->n; i++) {
		if (n > 0 && b->syms[n - 1].addr == b->syms[i].addr)
			continue; /* the first of a run is the preferred one */
		b->syms[n++] = b->syms[i];
	}
	e->syms = b->syms;
	e->n_syms = n;
	e->names = b->names;
	e->names_len = b->names_len;
	b->syms = NULL;
	b->names = NULL;
	if (n == 0)
		return 0;
	e->max_end = malloc(n * sizeof(*e->max_end));
	if (!e->max_end)
		return -ENOMEM;
	uint64_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (e->syms[i].size > 0 && e->syms[i].end > m)
			m = e->syms[i].end;
		e->max_end[i] = m;
	}
	return 0;
}

/* One "NAME@plt" stub (elf_plt.h): a local function symbol of the stub's size. */
static int add_plt_symbol(void *arg, uint64_t addr, uint64_t size, const char *name)
{
	struct sym_builder *b = arg;
	struct ember_elf_symbol *s;
	int err = sym_reserve(b);

	if (err)
		return err;
	s = &b->syms[b->n];
	if ((err = add_name(b, name, &s->name)))
		return err;
	s->addr = addr;
	s->size = size;
	s->end = addr + size;
	s->bind = STB_LOCAL;
	s->type = STT_FUNC;
	b->n++;
	return 0;
}

static int read_symbols(Elf *elf, struct ember_elf *e)
{
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh, symtab_sh, dynsym_sh;
	struct sym_builder b = {0};
	int err = 0;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB && !symtab)
			symtab = scn, symtab_sh = sh;
		else if (sh.sh_type == SHT_DYNSYM && !dynsym)
			dynsym = scn, dynsym_sh = sh;
	}
	if (symtab)
		err = read_symtab(elf, symtab, &symtab_sh, &b);
	/* Stripped, empty or corrupt .symtab: use .dynsym instead. */
	if ((!symtab || err || b.n == 0) && dynsym) {
		b.n = 0;
		b.names_len = 0;
		err = read_symtab(elf, dynsym, &dynsym_sh, &b);
		e->from_dynsym = true;
	}
	if (!err)
		err = ember_elf_plt_symbols(elf, add_plt_symbol, &b);
	if (!err)
		err = finish_symbols(e, &b);
	free(b.syms);
	free(b.names);
	return err;
}

/* ---- lookup ---- */

const struct ember_elf_symbol *ember_elf_lookup(const struct ember_elf *e, uint64_t vaddr,
						uint64_t *offset)
{
	const struct ember_elf_symbol *hit = NULL;
	size_t lo = 0, hi = e->n_syms;

	/* Find the last symbol with addr <= vaddr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	size_t i = lo - 1;
	const struct ember_elf_symbol *s = &e->syms[i];

	if (s->size > 0 && vaddr < s->end) {
		hit = s;
	} else {
		/* A sized symbol further back may enclose vaddr (nested symbols). */
		if (i > 0 && e->max_end[i - 1] > vaddr) {
			for (size_t j = i, steps = 0; j-- > 0 && steps < ENCLOSING_SCAN_MAX; steps++) {
				if (e->syms[j].size > 0 && vaddr < e->syms[j].end) {
					hit = &e->syms[j];
					break;
				}
			}
		}
		/* Else a zero-size symbol covers up to the next one (and its section end). */
		if (!hit && s->size == 0 && vaddr < s->end)
			hit = s;
	}
	if (hit && offset)
		*offset = vaddr - hit->addr;
	return hit;
}

/* ---- demangling ---- */

char *ember_demangle(const char *name)
{
	int status = -1;
	char *out;

	if (!name || name[0] != '_' || name[1] != 'Z')
		return NULL;
	out = __cxa_demangle(name, NULL, NULL, &status);
	if (status != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ember_demangle, also for PLT stubs: "_Z3fooi@plt" -> "foo(int)@plt". */
static char *demangle_symbol(const char *raw)
{
	size_t len = strlen(raw);

	if (len <= 4 || strcmp(raw + len - 4, "@plt") != 0)
		return ember_demangle(raw);
	char *mangled = strndup(raw, len - 4), *d = mangled ? ember_demangle(mangled) : NULL;
	char *out = NULL;
	free(mangled);
	if (d && asprintf(&out, "%s@plt", d) < 0)
		out = NULL;
	free(d);
	return out;
}

const char *ember_elf_sym_display_name(struct ember_elf *e, const struct ember_elf_symbol *s)
{
	size_t i = (size_t)(s - e->syms);
	const char *raw = e->names + s->name;

	if (i >= e->n_syms)
		return raw;
	if (!e->demangled) {
		e->demangled = calloc(e->n_syms, sizeof(*e->demangled));
		if (!e->demangled)
			return raw;
	}
	if (!e->demangled[i]) {
		char *d = demangle_symbol(raw);
		/* Unmangled or invalid names point at the raw name (not freed). */
		e->demangled[i] = d ? d : (char *)raw;
	}
	return e->demangled[i];
}

/* ---- open / free ---- */

/*
 * Build-id and content hash (elf_identity.h).  A file that cannot be
 * read to the end (truncated under us) fails: it must not be shared.
 */
static int read_identity(Elf *elf, int fd, struct ember_elf *e)
{
	int err = ember_elf_content_hash(elf, fd, e->content_hash);

	if (err)
		return err == -ENOMEM ? err : -EINVAL;
	ember_elf_read_build_id(elf, e->gnu_build_id);
	e->build_id_kind = ember_elf_build_id(elf, fd, e->gnu_build_id, e->content_hash,
					      e->build_id);
	return 0;
}

int ember_elf_open_fd(int fd, const char *name, struct ember_elf **out)
{
	struct ember_elf *e;
	GElf_Ehdr eh;
	size_t phnum;
	Elf *elf;
	int err;

	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return -ENOEXEC;
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) {
		elf_end(elf);
		return -ENOEXEC;
	}
	/* libelf clamps phnum to what the file can hold; refuse absurd tables anyway. */
	if (elf_getphdrnum(elf, &phnum) != 0 || phnum > 65535) {
		elf_end(elf);
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(name ? name : "?"))) {
		free(e);
		elf_end(elf);
		return -ENOMEM;
	}
	e->type = eh.e_type;
	err = read_loads(elf, e, phnum);
	if (!err)
		err = read_symbols(elf, e);
	if (!err)
		err = read_identity(elf, fd, e);
	elf_end(elf);
	/* No DWARF is not an error: the symbol table still names functions. */
	if (!err && ember_dwarf_open_fd(fd, e->path, e->gnu_build_id, &e->dwarf) == -ENOMEM)
		err = -ENOMEM;
	/* Go binaries carry names, lines and inline trees in .gopclntab, even stripped */
	if (!err) {
		char fdpath[64], goerr[256];
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
		int rc = ember_gopclntab_open(fdpath, &e->go, goerr, sizeof(goerr));
		if (rc && rc != -ENOENT)
			ember_warn_once(e->path, "cannot read the Go symbol table of %s: %s", e->path,
					goerr);
	}
	if (err) {
		ember_elf_free(e);
		return err;
	}
	*out = e;
	return 0;
}

int ember_elf_open(const char *path, struct ember_elf **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err;

	*out = NULL;
	if (fd < 0)
		return -errno;
	err = ember_elf_open_fd(fd, path, out);
	close(fd);
	return err;
}

void ember_elf_free(struct ember_elf *e)
{
	if (!e)
		return;
	if (e->demangled) {
		for (size_t i = 0; i < e->n_syms; i++) {
			char *d = e->demangled[i];
			if (d && !(d >= e->names && d < e->names + e->names_len))
				free(d);
		}
		free(e->demangled);
	}
	ember_dwarf_free(e->dwarf);
	ember_gopclntab_free(e->go);
	free(e->max_end);
	free(e->syms);
	free(e->names);
	free(e->loads);
	free(e->path);
	free(e);
}
