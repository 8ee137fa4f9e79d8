/*
 * ehframe.c - compile the CFI of an ELF file: find the sections, pick the
 * table base, run the parser over each source, and build the table.
 *
 * Sources, in order of precedence when FDEs overlap:
 *   .eh_frame      what the C++ runtime itself unwinds with; cross-checked
 *                  against .eh_frame_hdr (its FDE count and eh_frame_ptr)
 *   .debug_frame   code built without unwind tables but with -g; taken from
 *                  the file itself, else from the separate debug file given.
 *                  SHF_COMPRESSED (and old .zdebug_frame) sections are
 *                  decompressed by libelf.
 *
 * Pointer bases: pcrel is the field's own vaddr; on x86_64 the runtime
 * (libgcc) gives .eh_frame no text or data base, so textrel/datarel FDEs
 * are malformed there; in .eh_frame_hdr datarel is relative to the header.
 * DW_EH_PE_indirect reads the word from the file through its PT_LOAD
 * segments.  The table base is the first executable segment's vaddr, so a
 * row's pc + base + load bias is a run-time address.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "ehframe/cfi.h"

#define MAX_LOADS 64

struct elf_src {
	const char *path;
	int fd;
	Elf *elf;
	size_t shstrndx;
	/* PT_LOAD segments, for DW_EH_PE_indirect */
	GElf_Phdr loads[MAX_LOADS];
	size_t n_loads;
	const char *raw;
	size_t raw_size;
};

static void src_close(struct elf_src *e)
{
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	e->elf = NULL;
	e->fd = -1;
}

static int src_open(struct elf_src *e, const char *path, char *err, size_t errlen)
{
	GElf_Ehdr eh;

	memset(e, 0, sizeof(*e));
	e->path = path;
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	elf_version(EV_CURRENT);
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF || !gelf_getehdr(e->elf, &eh)) {
		snprintf(err, errlen, "%s: not an ELF file", path);
		goto fail;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		snprintf(err, errlen, "%s: not an x86_64 ELF file", path);
		goto fail;
	}
	if (elf_getshdrstrndx(e->elf, &e->shstrndx)) {
		snprintf(err, errlen, "%s: no section header string table", path);
		goto fail;
	}
	e->raw = elf_rawfile(e->elf, &e->raw_size);
	return 0;
fail:
	src_close(e);
	return -EINVAL;
}

/* The vaddr of the first executable PT_LOAD segment; false if none. */
static bool exec_base(struct elf_src *e, uint64_t *base)
{
	size_t n = 0;
	bool found = false;

	if (elf_getphdrnum(e->elf, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (e->n_loads < MAX_LOADS)
			e->loads[e->n_loads++] = ph;
		if ((ph.p_flags & PF_X) && (!found || ph.p_vaddr < *base)) {
			*base = ph.p_vaddr;
			found = true;
		}
	}
	return found;
}

/* DW_EH_PE_indirect: the 8 bytes at vaddr, from the file image. */
static int read_word(void *ctx, uint64_t vaddr, uint64_t *out)
{
	struct elf_src *e = ctx;

	for (size_t i = 0; i < e->n_loads; i++) {
		const GElf_Phdr *ph = &e->loads[i];
		if (vaddr < ph->p_vaddr || vaddr - ph->p_vaddr > ph->p_filesz ||
		    ph->p_filesz - (vaddr - ph->p_vaddr) < 8)
			continue;
		uint64_t off = ph->p_offset + (vaddr - ph->p_vaddr);
		if (!e->raw || off > e->raw_size || e->raw_size - off < 8)
			return -1;
		memcpy(out, e->raw + off, 8);
		return 0;
	}
	return -1;
}

static Elf_Scn *find_section(struct elf_src *e, const char *name, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e->elf, scn))) {
		const char *n;
		if (!gelf_getshdr(scn, sh))
			continue;
		n = elf_strptr(e->elf, e->shstrndx, sh->sh_name);
		if (n && !strcmp(n, name))
			return scn;
	}
	return NULL;
}

/*
 * The bytes of a section into s (name, data, len, vaddr).  Returns 0,
 * 1 when the section is absent or has no bytes in this file, -1 on error.
 */
static int load_section(struct elf_src *e, const char *name, struct cfi_section *s, char *err,
			size_t errlen)
{
	GElf_Shdr sh;
	Elf_Scn *scn = find_section(e, name, &sh);
	Elf_Data *d;

	if (!scn || sh.sh_type == SHT_NOBITS)
		return 1;
	if ((sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0) {
		snprintf(err, errlen, "%s: cannot decompress %s: %s", e->path, name, elf_errmsg(-1));
		return -1;
	}
	if (!strncmp(name, ".zdebug", 7) && elf_compress_gnu(scn, 0, 0) < 0) {
		snprintf(err, errlen, "%s: cannot decompress %s: %s", e->path, name, elf_errmsg(-1));
		return -1;
	}
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf || !d->d_size)
		return 1;
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->data = d->d_buf;
	s->len = d->d_size;
	s->vaddr = sh.sh_addr;
	s->read_word = read_word;
	s->read_ctx = e;
	return 0;
}

/* .debug_frame, or the old GNU-compressed .zdebug_frame. */
static int load_debug_frame(struct elf_src *e, struct cfi_section *s, char *err, size_t errlen)
{
	int rc = load_section(e, ".debug_frame", s, err, errlen);

	if (rc == 1)
		rc = load_section(e, ".zdebug_frame", s, err, errlen);
	if (rc == 0)
		s->is_debug_frame = true;
	return rc;
}

static void read_build_id(struct elf_src *e, char *hex, size_t hexlen)
{
	Elf_Scn *scn = NULL;

	hex[0] = 0;
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || !(d = elf_getdata(scn, NULL)))
			continue;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((const char *)d->d_buf + name_off, "GNU", 4))
				continue;
			const uint8_t *id = (const uint8_t *)d->d_buf + desc_off;
			for (size_t i = 0; i < nh.n_descsz && 2 * i + 2 < hexlen; i++)
				snprintf(hex + 2 * i, 3, "%02x", id[i]);
			return;
		}
	}
}

/* The FDE count announced by .eh_frame_hdr (-1 if absent or inconsistent). */
static int64_t hdr_fde_count(struct elf_src *e, const struct cfi_section *eh)
{
	struct cfi_section h;
	struct cfi_cursor c;
	char err[8];
	const char *why;
	uint64_t eh_ptr, count;
	uint8_t version, ptr_enc, count_enc;

	if (load_section(e, ".eh_frame_hdr", &h, err, sizeof(err)))
		return -1;
	h.data_base = h.vaddr;
	cfi_cursor_init(&c, h.data, 0, h.len);
	version = cfi_u8(&c);
	ptr_enc = cfi_u8(&c);
	count_enc = cfi_u8(&c);
	cfi_u8(&c); /* table encoding */
	if (c.err || version != 1 ||
	    cfi_read_pointer(&c, &h, ptr_enc, 8, CFI_PTR_VALUE, &eh_ptr, &why) ||
	    cfi_read_pointer(&c, &h, count_enc, 8, CFI_PTR_VALUE, &count, &why)) {
		ember_warn("%s: malformed .eh_frame_hdr", e->path);
		return -1;
	}
	if (eh && eh_ptr != eh->vaddr) {
		ember_warn("%s: .eh_frame_hdr points to 0x%llx, .eh_frame is at 0x%llx", e->path,
			   (unsigned long long)eh_ptr, (unsigned long long)eh->vaddr);
		return -1;
	}
	return count > INT64_MAX ? -1 : (int64_t)count;
}

int ember_ehframe_compile_section(const uint8_t *data, size_t len, uint64_t section_vaddr,
				  bool is_debug_frame, unsigned flags,
				  struct ember_unwind_table *out, char *err, size_t errlen)
{
	struct cfi_builder b;
	struct cfi_section s = {
		.name = is_debug_frame ? ".debug_frame" : ".eh_frame",
		.data = data,
		.len = len,
		.vaddr = section_vaddr,
		.is_debug_frame = is_debug_frame,
	};
	int rc;

	memset(out, 0, sizeof(*out));
	cfi_builder_init(&b);
	if (is_debug_frame)
		b.stats.debug_frame_bytes = len;
	else
		b.stats.eh_frame_bytes = len;
	rc = cfi_parse_section(&b, &s);
	if (!rc)
		rc = cfi_builder_finish(&b, false, 0, flags, out);
	cfi_builder_free(&b);
	if (rc)
		snprintf(err, errlen, "%s: %s", s.name, strerror(-rc));
	return rc;
}

int ember_ehframe_compile_file(const char *path, const char *debug_path, unsigned flags,
			       struct ember_unwind_table *out, char *err, size_t errlen)
{
	struct elf_src main_elf, dbg_elf;
	struct cfi_section eh, df;
	struct cfi_builder b;
	uint64_t base = 0;
	bool has_base, have_eh, have_df;
	int rc;

	memset(out, 0, sizeof(*out));
	dbg_elf.elf = NULL;
	dbg_elf.fd = -1;
	rc = src_open(&main_elf, path, err, errlen);
	if (rc)
		return rc;
	cfi_builder_init(&b);
	has_base = exec_base(&main_elf, &base);

	rc = load_section(&main_elf, ".eh_frame", &eh, err, errlen);
	if (rc < 0)
		goto out;
	have_eh = rc == 0;
	rc = load_debug_frame(&main_elf, &df, err, errlen);
	if (rc < 0)
		goto out;
	have_df = rc == 0;
	if (!have_df && debug_path) {
		rc = src_open(&dbg_elf, debug_path, err, errlen);
		if (rc)
			goto out;
		rc = load_debug_frame(&dbg_elf, &df, err, errlen);
		if (rc < 0)
			goto out;
		have_df = rc == 0;
	}
	if (!have_eh && !have_df) {
		snprintf(err, errlen, "%s: no .eh_frame or .debug_frame%s", path,
			 debug_path ? " (nor in the debug file)" : "");
		rc = -ENOENT;
		goto out;
	}
	if (have_eh) {
		b.stats.eh_frame_bytes = eh.len;
		b.stats.hdr_fdes = hdr_fde_count(&main_elf, &eh);
		rc = cfi_parse_section(&b, &eh);
		if (rc)
			goto nomem;
	}
	if (have_df) {
		b.stats.debug_frame_bytes = df.len;
		rc = cfi_parse_section(&b, &df);
		if (rc)
			goto nomem;
	}
	rc = cfi_builder_finish(&b, has_base, base, flags, out);
	if (rc)
		goto nomem;
	read_build_id(&main_elf, out->build_id, sizeof(out->build_id));
	if (out->first_error[0]) /* name the file in the message */
		ember_debug("%s: %s", path, out->first_error);
	goto out;
nomem:
	snprintf(err, errlen, "%s: out of memory compiling CFI", path);
out:
	cfi_builder_free(&b);
	src_close(&dbg_elf);
	src_close(&main_elf);
	return rc;
}
