/*
 * goelf.c - the small ELF reader behind the Go table readers.
 *
 * The Go readers need section headers by name, PT_LOAD segments to follow
 * a pointer, and (for position-independent binaries, whose pointers are
 * zero in the file and filled in by R_X86_64_RELATIVE relocations) the
 * relocation addends.  That is little enough to read directly, with pread
 * (no mmap: a file truncated under us is an error, not SIGBUS) or from an
 * image in memory, and it keeps the fuzzer free of libelf.  Only ELF64
 * little-endian is accepted; every count, offset and size is checked
 * against the file size before use.
 */
#include "symbolizer/gopclntab_int.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SECTIONS 4096
#define MAX_SEGMENTS 256
#define MAX_RELOCS (64u << 20)

void goerr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int goelf_pread(const struct goelf *e, void *buf, size_t len, uint64_t off)
{
	if (off > e->size || len > e->size - off)
		return -EINVAL;
	if (e->mem) {
		memcpy(buf, e->mem + off, len);
		return 0;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(e->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int read_segments(struct goelf *e, const Elf64_Ehdr *eh)
{
	if (eh->e_phnum == 0)
		return 0;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum > MAX_SEGMENTS)
		return -EINVAL;
	Elf64_Phdr ph[MAX_SEGMENTS];
	if (goelf_pread(e, ph, eh->e_phnum * sizeof(Elf64_Phdr), eh->e_phoff))
		return -EINVAL;
	e->segs = calloc(eh->e_phnum, sizeof(*e->segs));
	if (!e->segs)
		return -ENOMEM;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		struct goelf_seg *s = &e->segs[e->n_segs++];
		s->vaddr = ph[i].p_vaddr;
		s->memsz = ph[i].p_memsz;
		s->offset = ph[i].p_offset;
		s->filesz = ph[i].p_filesz;
		s->flags = ph[i].p_flags;
		if (s->offset > e->size || s->filesz > e->size - s->offset)
			s->filesz = s->offset > e->size ? 0 : e->size - s->offset; /* truncated file */
		if (s->filesz > s->memsz)
			s->filesz = s->memsz;
	}
	return 0;
}

static int read_sections(struct goelf *e, const Elf64_Ehdr *eh)
{
	uint64_t n = eh->e_shnum;

	if (n == 0 || eh->e_shoff == 0)
		return 0; /* no section headers (sstrip'd): callers fall back on segments */
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || n > MAX_SECTIONS ||
	    eh->e_shstrndx >= n)
		return -EINVAL;
	Elf64_Shdr *sh = malloc(n * sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	int rc = goelf_pread(e, sh, n * sizeof(*sh), eh->e_shoff) ? -EINVAL : 0;
	const Elf64_Shdr *strsh = &sh[eh->e_shstrndx];
	char *names = NULL;
	uint64_t names_len = strsh->sh_size;

	if (!rc && (strsh->sh_type == SHT_NOBITS || names_len > (16u << 20)))
		rc = -EINVAL;
	if (!rc && !(names = malloc(names_len + 1)))
		rc = -ENOMEM;
	if (!rc && goelf_pread(e, names, names_len, strsh->sh_offset))
		rc = -EINVAL;
	if (!rc && !(e->secs = calloc(n, sizeof(*e->secs))))
		rc = -ENOMEM;
	for (uint64_t i = 0; !rc && i < n; i++) {
		struct goelf_sec *s = &e->secs[e->n_secs++];
		const char *nm = sh[i].sh_name < names_len ? names + sh[i].sh_name : "";
		names[names_len] = '\0';
		snprintf(s->name, sizeof(s->name), "%s", nm);
		s->type = sh[i].sh_type;
		s->flags = sh[i].sh_flags;
		s->addr = sh[i].sh_addr;
		s->offset = sh[i].sh_offset;
		s->size = sh[i].sh_size;
	}
	free(names);
	free(sh);
	return rc;
}

static int parse_headers(struct goelf *e, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	int rc;

	if (goelf_pread(e, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		goerr(err, errlen, "%s: not an ELF file", e->name);
		return -ENOEXEC;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		goerr(err, errlen, "%s: only 64-bit little-endian ELF is supported", e->name);
		return -ENOTSUP;
	}
	e->type = eh.e_type;
	e->machine = eh.e_machine;
	rc = read_segments(e, &eh);
	if (!rc)
		rc = read_sections(e, &eh);
	if (rc == -EINVAL)
		goerr(err, errlen, "%s: corrupt ELF headers", e->name);
	else if (rc)
		goerr(err, errlen, "%s: cannot read ELF headers: %s", e->name, strerror(-rc));
	return rc;
}

int goelf_open_fd(struct goelf *e, int fd, const char *name, char *err, size_t errlen)
{
	struct stat st;

	memset(e, 0, sizeof(*e));
	e->name = name;
	e->fd = fd;
	if (fstat(fd, &st) < 0) {
		goerr(err, errlen, "%s: %s", name, strerror(errno));
		return -errno;
	}
	e->size = (uint64_t)st.st_size;
	int rc = parse_headers(e, err, errlen);
	if (rc)
		goelf_close(e);
	return rc;
}

int goelf_open_mem(struct goelf *e, const void *mem, size_t len, const char *name, char *err,
		   size_t errlen)
{
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->fd = -1;
	e->mem = mem;
	e->size = len;
	int rc = parse_headers(e, err, errlen);
	if (rc)
		goelf_close(e);
	return rc;
}

void goelf_close(struct goelf *e)
{
	free(e->secs);
	free(e->segs);
	free(e->relocs);
	e->secs = NULL;
	e->segs = NULL;
	e->relocs = NULL;
	e->n_secs = e->n_segs = e->n_relocs = 0;
}

const struct goelf_sec *goelf_section(const struct goelf *e, const char *name)
{
	for (size_t i = 0; i < e->n_secs; i++)
		if (strcmp(e->secs[i].name, name) == 0)
			return &e->secs[i];
	return NULL;
}

const struct goelf_sec *goelf_section_at(const struct goelf *e, uint64_t vaddr)
{
	for (size_t i = 0; i < e->n_secs; i++) {
		const struct goelf_sec *s = &e->secs[i];
		if ((s->flags & SHF_ALLOC) && s->type != SHT_NOBITS && vaddr >= s->addr &&
		    vaddr - s->addr < s->size)
			return s;
	}
	return NULL;
}

int goelf_read_section(const struct goelf *e, const struct goelf_sec *s, uint8_t **out)
{
	*out = NULL;
	if (s->type == SHT_NOBITS || s->size > GOELF_MAX_READ || s->offset > e->size ||
	    s->size > e->size - s->offset)
		return -EINVAL;
	uint8_t *buf = malloc(s->size ? s->size : 1);
	if (!buf)
		return -ENOMEM;
	if (goelf_pread(e, buf, s->size, s->offset)) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	return 0;
}

int goelf_read_vaddr(const struct goelf *e, uint64_t vaddr, void *buf, size_t len)
{
	for (size_t i = 0; i < e->n_segs; i++) {
		const struct goelf_seg *s = &e->segs[i];
		if (vaddr < s->vaddr || vaddr - s->vaddr >= s->filesz)
			continue;
		if (len > s->filesz - (vaddr - s->vaddr))
			return -EINVAL;
		return goelf_pread(e, buf, len, s->offset + (vaddr - s->vaddr));
	}
	return -ENOENT;
}

bool goelf_exec_base(const struct goelf *e, uint64_t *base)
{
	for (size_t i = 0; i < e->n_segs; i++) {
		if (e->segs[i].flags & PF_X) {
			*base = e->segs[i].vaddr;
			return true;
		}
	}
	return false;
}

static int cmp_reloc(const void *a, const void *b)
{
	const struct goelf_reloc *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int goelf_load_relocs(struct goelf *e)
{
	size_t cap = 0;

	for (size_t i = 0; i < e->n_secs; i++) {
		const struct goelf_sec *s = &e->secs[i];
		if (s->type != SHT_RELA || !(s->flags & SHF_ALLOC))
			continue;
		uint64_t n = s->size / sizeof(Elf64_Rela);
		if (n > MAX_RELOCS || s->offset > e->size || s->size > e->size - s->offset)
			return -EINVAL;
		for (uint64_t k = 0; k < n;) {
			Elf64_Rela r[256];
			size_t batch = n - k < 256 ? (size_t)(n - k) : 256;
			if (goelf_pread(e, r, batch * sizeof(r[0]), s->offset + k * sizeof(r[0])))
				return -EIO;
			for (size_t j = 0; j < batch; j++) {
				if (ELF64_R_TYPE(r[j].r_info) != R_X86_64_RELATIVE)
					continue;
				if (e->n_relocs == cap) {
					size_t ncap = cap ? 2 * cap : 1024;
					void *p = realloc(e->relocs, ncap * sizeof(*e->relocs));
					if (!p)
						return -ENOMEM;
					e->relocs = p;
					cap = ncap;
				}
				e->relocs[e->n_relocs].offset = r[j].r_offset;
				e->relocs[e->n_relocs++].addend = (uint64_t)r[j].r_addend;
			}
			k += batch;
		}
	}
	if (e->n_relocs)
		qsort(e->relocs, e->n_relocs, sizeof(*e->relocs), cmp_reloc);
	return 0;
}

bool goelf_reloc_at(const struct goelf *e, uint64_t vaddr, uint64_t *addend)
{
	size_t lo = 0, hi = e->n_relocs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e->relocs[mid].offset < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < e->n_relocs && e->relocs[lo].offset == vaddr) {
		*addend = e->relocs[lo].addend;
		return true;
	}
	return false;
}
