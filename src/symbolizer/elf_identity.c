/*
 * elf_identity.c - build-ids (GNU, Go, content) and the content hashes
 * that key Ember's caches (see elf_identity.h).
 *
 * Notes are read with libelf (gelf_getnote bounds-checks each one); file
 * bytes are read with pread, clamped to the file's size, so headers that
 * point past the end only shorten what is hashed.  Section and header
 * counts are capped, so a crafted file cannot make hashing slow beyond
 * reading the file once.
 */
#include "symbolizer/elf_identity.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/array.h"

#ifndef NT_GNU_BUILD_ID
#define NT_GNU_BUILD_ID 3
#endif
#define NT_GO_BUILD_ID 4  /* Go's note: owner "Go", type 4 (cmd/link) */
#define GO_MARKER_SCAN (32u << 10) /* the marker starts the text: look this far */
#define MAX_SECTIONS 65536
#define READ_CHUNK (64u << 10)

static const char go_marker[] = "\xff Go build ID: \"";
static const char go_marker_end[] = "\"\n \xff";

const char *ember_build_id_kind_name(enum ember_build_id_kind kind)
{
	switch (kind) {
	case EMBER_BUILD_ID_GNU:
		return "gnu";
	case EMBER_BUILD_ID_GO:
		return "go";
	case EMBER_BUILD_ID_CONTENT:
		return "content";
	case EMBER_BUILD_ID_NONE:
		break;
	}
	return "none";
}

void ember_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- notes ---- */

static bool all_nul(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * The first note of `owner` and `type` in a note data block: its
 * descriptor is copied to desc (at most size bytes).  Returns the
 * descriptor's length, -ENOSPC when larger than size, -ENOENT when absent.
 */
static int note_in_data(Elf_Data *data, const char *owner, uint32_t type, void *desc,
			size_t size)
{
	size_t off = 0, next, name_off, desc_off, olen = strlen(owner) + 1;
	GElf_Nhdr nh;

	if (!data || !data->d_buf)
		return -ENOENT;
	while (off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		if (next <= off)
			break; /* no progress: corrupt */
		off = next;
		/* the owner, NUL-terminated, maybe NUL-padded (Go writes "Go\0\0") */
		if (nh.n_type != type || nh.n_namesz < olen || nh.n_namesz > 8 ||
		    name_off > data->d_size || nh.n_namesz > data->d_size - name_off ||
		    desc_off > data->d_size || nh.n_descsz > data->d_size - desc_off ||
		    memcmp((const char *)data->d_buf + name_off, owner, olen) != 0 ||
		    !all_nul((const char *)data->d_buf + name_off + olen, nh.n_namesz - olen))
			continue;
		if (nh.n_descsz == 0 || nh.n_descsz > size)
			return -ENOSPC;
		memcpy(desc, (const char *)data->d_buf + desc_off, nh.n_descsz);
		return (int)nh.n_descsz;
	}
	return -ENOENT;
}

/* Sections first (SHT_NOTE), then PT_NOTE segments for section-less files. */
static int find_note(Elf *elf, const char *owner, uint32_t type, void *desc, size_t size)
{
	Elf_Scn *scn = NULL;
	size_t phnum = 0;
	int n, seen = 0;

	while ((scn = elf_nextscn(elf, scn)) != NULL && seen++ < MAX_SECTIONS) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		if ((n = note_in_data(elf_getdata(scn, NULL), owner, type, desc, size)) != -ENOENT)
			return n;
	}
	if (elf_getphdrnum(elf, &phnum) != 0 || phnum > 65535)
		return -ENOENT;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE || ph.p_filesz == 0)
			continue;
		Elf_Type t = ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR;
		Elf_Data *d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz, t);
		if ((n = note_in_data(d, owner, type, desc, size)) != -ENOENT)
			return n;
	}
	return -ENOENT;
}

bool ember_elf_read_build_id(Elf *elf, char *out)
{
	uint8_t id[EMBER_BUILD_ID_MAX];
	int n = find_note(elf, "GNU", NT_GNU_BUILD_ID, id, sizeof(id));

	out[0] = '\0';
	if (n <= 0)
		return false;
	ember_hex_encode(id, (size_t)n, out);
	return true;
}

/* ---- Go's build ID ---- */

/* Go build IDs are base64url pieces joined by '/'. */
static bool go_id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '/' || c == '+' || c == '=' || c == '.';
}

static int go_id_copy(const char *id, size_t len, char *out, size_t size)
{
	if (len == 0 || len >= size || len > EMBER_GO_BUILD_ID_MAX)
		return -ENOENT;
	for (size_t i = 0; i < len; i++)
		if (!go_id_char((unsigned char)id[i]))
			return -ENOENT;
	memcpy(out, id, len);
	out[len] = '\0';
	return (int)len;
}

int ember_go_build_id_scan(const void *buf, size_t len, char *out, size_t size)
{
	const size_t mlen = sizeof(go_marker) - 1, elen = sizeof(go_marker_end) - 1;
	const char *p = buf, *end = p + len;

	while (p && (size_t)(end - p) >= mlen) {
		const char *m = memmem(p, (size_t)(end - p), go_marker, mlen);
		if (!m)
			break;
		const char *id = m + mlen;
		size_t room = (size_t)(end - id);
		size_t max = room < EMBER_GO_BUILD_ID_MAX + elen ? room : EMBER_GO_BUILD_ID_MAX + elen;
		const char *q = memmem(id, max, go_marker_end, elen);
		if (q && go_id_copy(id, (size_t)(q - id), out, size) > 0)
			return (int)(q - id);
		p = m + 1;
	}
	return -ENOENT;
}

int ember_go_build_id(Elf *elf, int fd, char *out, size_t size)
{
	char note[EMBER_GO_BUILD_ID_MAX];
	int n = elf ? find_note(elf, "Go", NT_GO_BUILD_ID, note, sizeof(note)) : -ENOENT;

	if (n > 0)
		return go_id_copy(note, (size_t)n, out, size);
	char *buf = malloc(GO_MARKER_SCAN);
	if (!buf)
		return -ENOMEM;
	ssize_t got = pread(fd, buf, GO_MARKER_SCAN, 0);
	n = got > 0 ? ember_go_build_id_scan(buf, (size_t)got, out, size) : -ENOENT;
	free(buf);
	return n;
}

/* ---- hashing ---- */

struct hasher {
	EVP_MD_CTX *ctx;
	int fd;
	uint64_t file_size;
	uint8_t *buf;
	int err;
};

static int hasher_init(struct hasher *h, int fd)
{
	struct stat st;

	memset(h, 0, sizeof(*h));
	h->fd = fd;
	if (fstat(fd, &st) != 0)
		return -errno;
	h->file_size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	h->ctx = EVP_MD_CTX_new();
	h->buf = malloc(READ_CHUNK);
	if (!h->ctx || !h->buf || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(h->ctx);
		free(h->buf);
		return -ENOMEM;
	}
	return 0;
}

static void hash_bytes(struct hasher *h, const void *p, size_t n)
{
	if (!h->err && !EVP_DigestUpdate(h->ctx, p, n))
		h->err = -EIO;
}

static void hash_u64(struct hasher *h, uint64_t v)
{
	hash_bytes(h, &v, sizeof(v));
}

/* Hash file bytes [off, off+len), clamped to the file. */
static void hash_bytes_at(struct hasher *h, uint64_t off, uint64_t len)
{
	while (len > 0 && !h->err) {
		size_t want = len < READ_CHUNK ? (size_t)len : READ_CHUNK;
		ssize_t got = pread(h->fd, h->buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			h->err = got < 0 ? -errno : -EIO; /* shrank under us */
			break;
		}
		hash_bytes(h, h->buf, (size_t)got);
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
}

static uint64_t clamp_len(const struct hasher *h, uint64_t *off, uint64_t len)
{
	if (*off > h->file_size)
		*off = h->file_size;
	return len > h->file_size - *off ? h->file_size - *off : len;
}

/* Hash a part of the file: its clamped length, then its bytes (unambiguous). */
static void hash_range(struct hasher *h, uint64_t off, uint64_t len)
{
	len = clamp_len(h, &off, len);
	hash_u64(h, len);
	hash_bytes_at(h, off, len);
}

static int hasher_finish(struct hasher *h, uint8_t out[EMBER_HASH_BYTES])
{
	unsigned int n = 0;
	int err = h->err;

	if (!err && (!EVP_DigestFinal_ex(h->ctx, out, &n) || n != EMBER_HASH_BYTES))
		err = -EIO;
	EVP_MD_CTX_free(h->ctx);
	free(h->buf);
	return err;
}

struct range {
	uint64_t off, end;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static bool is_dwarf_section(const char *name)
{
	return name && (strncmp(name, ".debug_", 7) == 0 || strncmp(name, ".zdebug_", 8) == 0);
}

int ember_elf_content_hash(Elf *elf, int fd, uint8_t out[EMBER_HASH_BYTES])
{
	struct hasher h;
	struct range *skip = NULL;
	size_t n_skip = 0, shstrndx;
	int err = hasher_init(&h, fd);

	if (err)
		return err;
	if (h.file_size > EMBER_CONTENT_HASH_FULL_MAX && elf &&
	    elf_getshdrstrndx(elf, &shstrndx) == 0) {
		Elf_Scn *scn = NULL;
		size_t cap = 0;
		while ((scn = elf_nextscn(elf, scn)) != NULL && n_skip < MAX_SECTIONS) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS ||
			    !is_dwarf_section(elf_strptr(elf, shstrndx, sh.sh_name)) ||
			    sh.sh_offset >= h.file_size)
				continue;
			if (ember_array_grow(&skip, &cap, n_skip + 1, sizeof(*skip))) {
				free(skip);
				hasher_finish(&h, out);
				return -ENOMEM;
			}
			uint64_t end = sh.sh_size > h.file_size - sh.sh_offset ? h.file_size
									       : sh.sh_offset + sh.sh_size;
			skip[n_skip++] = (struct range){sh.sh_offset, end};
		}
		qsort(skip, n_skip, sizeof(*skip), cmp_range);
	}
	/* the kept bytes in file order, then what was left out (none: sha256sum's) */
	uint64_t pos = 0;
	for (size_t i = 0; i < n_skip && !h.err; i++) {
		if (skip[i].off > pos)
			hash_bytes_at(&h, pos, skip[i].off - pos);
		if (skip[i].end > pos)
			pos = skip[i].end;
	}
	hash_bytes_at(&h, pos, h.file_size - pos);
	if (n_skip) {
		hash_u64(&h, h.file_size);
		for (size_t i = 0; i < n_skip; i++) {
			hash_u64(&h, skip[i].off);
			hash_u64(&h, skip[i].end);
		}
	}
	free(skip);
	return hasher_finish(&h, out);
}

/* Sections the unwind compiler reads besides the headers. */
static bool is_unwind_input(const char *name, bool *go)
{
	static const char *const cfi[] = {".eh_frame", ".eh_frame_hdr", ".debug_frame",
					  ".zdebug_frame"};

	if (!name)
		return false;
	if (!strcmp(name, ".gopclntab") || !strcmp(name, ".data.rel.ro.gopclntab")) {
		*go = true;
		return true;
	}
	for (size_t i = 0; i < sizeof(cfi) / sizeof(cfi[0]); i++)
		if (!strcmp(name, cfi[i]))
			return true;
	return false;
}

int ember_elf_unwind_hash(Elf *elf, int fd, uint8_t out[EMBER_HASH_BYTES])
{
	struct hasher h;
	GElf_Ehdr eh;
	size_t shnum = 0, shstrndx = 0, phnum = 0;
	bool go = false;
	int err = hasher_init(&h, fd);

	if (err)
		return err;
	if (!elf || !gelf_getehdr(elf, &eh)) {
		hasher_finish(&h, out);
		return -ENOEXEC;
	}
	/*
	 * Only what the compiler reads, so that a stripped copy (other section
	 * headers, no .symtab) shares its original's table.
	 */
	hash_bytes(&h, "ember-unwind-1", 14);
	hash_bytes(&h, eh.e_ident, EI_NIDENT);
	hash_u64(&h, eh.e_type);
	hash_u64(&h, eh.e_machine);
	if (elf_getphdrnum(elf, &phnum) != 0 || phnum > 65535)
		phnum = 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph))
			continue;
		uint64_t v[7] = {ph.p_type, ph.p_flags, ph.p_offset, ph.p_vaddr,
				 ph.p_filesz, ph.p_memsz, ph.p_align};
		hash_bytes(&h, v, sizeof(v));
	}
	if (elf_getshdrnum(elf, &shnum) != 0 || shnum > MAX_SECTIONS)
		shnum = 0;
	if (shnum && elf_getshdrstrndx(elf, &shstrndx) == 0) {
		Elf_Scn *scn = NULL;
		while ((scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr sh;
			const char *name;
			if (!gelf_getshdr(scn, &sh) ||
			    !is_unwind_input(name = elf_strptr(elf, shstrndx, sh.sh_name), &go))
				continue;
			uint64_t v[4] = {sh.sh_type, sh.sh_flags, sh.sh_addr, sh.sh_size};
			hash_bytes(&h, name, strlen(name) + 1);
			hash_bytes(&h, v, sizeof(v));
			if (sh.sh_type != SHT_NOBITS)
				hash_range(&h, sh.sh_offset, sh.sh_size);
		}
	}
	/* Go rows read the code (prologues) and relocations; without sections, anything. */
	if (go || shnum == 0) {
		for (size_t i = 0; i < phnum; i++) {
			GElf_Phdr ph;
			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
				hash_range(&h, ph.p_offset, ph.p_filesz);
		}
	}
	return hasher_finish(&h, out);
}

/* ---- the build-id Ember uses ---- */

static void derived_id(const uint8_t hash[EMBER_HASH_BYTES], char *out)
{
	ember_hex_encode(hash, EMBER_DERIVED_BUILD_ID_BYTES, out);
}

enum ember_build_id_kind ember_elf_build_id(Elf *elf, int fd, const char *gnu,
					    const uint8_t *content, char *out)
{
	char go[EMBER_GO_BUILD_ID_MAX + 1];
	uint8_t hash[EMBER_HASH_BYTES];

	if (gnu && gnu[0]) {
		snprintf(out, 2 * EMBER_BUILD_ID_MAX + 1, "%s", gnu);
		return EMBER_BUILD_ID_GNU;
	}
	int n = ember_go_build_id(elf, fd, go, sizeof(go));
	if (n > 0) {
		if (EVP_Digest(go, (size_t)n, hash, NULL, EVP_sha256(), NULL)) {
			derived_id(hash, out);
			return EMBER_BUILD_ID_GO;
		}
	}
	if (content) {
		derived_id(content, out);
		return EMBER_BUILD_ID_CONTENT;
	}
	out[0] = '\0';
	return EMBER_BUILD_ID_NONE;
}

uint64_t ember_elf_layout_hash(Elf *elf)
{
	size_t phnum = 0;
	uint64_t h = 0xcbf29ce484222325ull;
	bool any = false;

	if (elf_getphdrnum(elf, &phnum) != 0 || phnum > 65535)
		return 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		uint64_t v[3] = {ph.p_vaddr, ph.p_memsz, ph.p_flags};
		for (int k = 0; k < 3; k++)
			h = (h ^ v[k]) * 0x100000001b3ull, h ^= h >> 29;
		any = true;
	}
	return any ? (h | 1) : 0;
}
