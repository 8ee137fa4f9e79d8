/*
 * gobuildinfo.c - the Go version and module build info of a Go binary,
 * from its .go.buildinfo section (what `go version -m` prints).
 *
 * The section starts with a 32-byte header: "\xff Go buildinf:", the
 * pointer size, and flags (bit 0: big-endian, bit 1: strings inline).
 *   Go 1.18+ (inline): two varint-length-prefixed strings follow the
 *     header: the Go version and the module info.
 *   Go 1.13-1.17: two pointers at offset 16, each to a Go string header
 *     {data pointer, length} elsewhere in the file.
 * The module info is framed by 16 sentinel bytes on each side and holds
 * tab-separated lines: "path P", "mod PATH VERSION SUM", "dep ...",
 * "=> ..." (replacement) and "build KEY=VALUE" (settings such as
 * vcs.revision; values with spaces or quotes are Go-quoted).
 *
 * Without section headers the header is looked for, 16-byte aligned, in
 * the first 64 KiB of the first writable segment, as debug/buildinfo does.
 */
#include "symbolizer/gopclntab_int.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char bi_magic[] = "\xff Go buildinf:";
#define BI_MAGIC_LEN 14
#define BI_HEADER 32
#define BI_SCAN (64 * 1024)
#define BI_MAX_STRING (1u << 20)
#define BI_MAX_SETTINGS 4096

static uint64_t rd64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Go's binary.Uvarint, bounded by end. */
static bool uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return false;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* A varint-prefixed string at *p: pointer and length. */
static bool inline_string(const uint8_t **p, const uint8_t *end, const uint8_t **s, size_t *len)
{
	uint64_t n;

	if (!uvarint(p, end, &n) || n > (uint64_t)(end - *p) || n > BI_MAX_STRING)
		return false;
	*s = *p;
	*len = (size_t)n;
	*p += n;
	return true;
}

/* A Go string whose header {ptr, len} is at vaddr hdr: copied into *out (malloc'd). */
static bool pointer_string(const struct goelf *e, uint64_t hdr, char **out, size_t *len)
{
	uint8_t h[16];

	if (goelf_read_vaddr(e, hdr, h, sizeof(h)))
		return false;
	uint64_t ptr = rd64le(h), n = rd64le(h + 8);
	if (n > BI_MAX_STRING || !(*out = malloc(n + 1)))
		return false;
	if (n && goelf_read_vaddr(e, ptr, *out, n)) {
		free(*out);
		*out = NULL;
		return false;
	}
	*len = (size_t)n;
	return true;
}

/* Undo strconv.Quote for the escapes `go` writes in build settings, in place. */
static void unquote(char *s)
{
	size_t n = strlen(s), w = 0;

	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return;
	for (size_t r = 1; r < n - 1; r++) {
		char c = s[r];
		if (c == '\\' && r + 1 < n - 1) {
			c = s[++r];
			c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
		}
		s[w++] = c;
	}
	s[w] = '\0';
}

/* Split the tab-separated fields of one line (in place); returns the count. */
static int fields(char *line, char **f, int max)
{
	int n = 0;

	while (n < max) {
		f[n++] = line;
		char *tab = strchr(line, '\t');
		if (!tab)
			break;
		*tab = '\0';
		line = tab + 1;
	}
	return n;
}

static int parse_modinfo(struct ember_gobuildinfo *bi, char *mod)
{
	size_t cap = 0;

	for (char *line = mod, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		char *f[4] = {NULL, NULL, NULL, NULL};
		int n = fields(line, f, 4);
		if (n >= 2 && strcmp(f[0], "path") == 0) {
			bi->path = f[1];
		} else if (n >= 3 && strcmp(f[0], "mod") == 0) {
			bi->main_path = f[1];
			bi->main_version = f[2];
			if (n >= 4)
				bi->main_sum = f[3];
		} else if (n >= 2 && strcmp(f[0], "dep") == 0) {
			bi->n_deps++;
		} else if (n >= 2 && strcmp(f[0], "build") == 0) {
			char *eq = f[1][0] == '"' ? NULL : strchr(f[1], '=');
			if (!eq || bi->n_settings >= BI_MAX_SETTINGS)
				continue;
			*eq = '\0';
			unquote(eq + 1);
			if (bi->n_settings == cap) {
				size_t ncap = cap ? 2 * cap : 16;
				void *p = realloc(bi->settings, ncap * sizeof(*bi->settings));
				if (!p)
					return -ENOMEM;
				bi->settings = p;
				cap = ncap;
			}
			bi->settings[bi->n_settings].key = f[1];
			bi->settings[bi->n_settings++].value = eq + 1;
		}
	}
	return 0;
}

/* Build the result from the two raw strings. */
static int make_info(const void *vers, size_t vlen, const void *mod, size_t mlen,
		     struct ember_gobuildinfo **out)
{
	struct ember_gobuildinfo *bi = calloc(1, sizeof(*bi));

	if (!bi || !(bi->strings = malloc(vlen + mlen + 2))) {
		free(bi);
		return -ENOMEM;
	}
	/* strip the sentinels around the module info; keep none if they are not there */
	if (mlen >= 33 && ((const char *)mod)[mlen - 17] == '\n') {
		mod = (const char *)mod + 16;
		mlen -= 32;
	} else {
		mlen = 0;
	}
	memcpy(bi->strings, vers, vlen);
	bi->strings[vlen] = '\0';
	char *m = bi->strings + vlen + 1;
	memcpy(m, mod, mlen);
	m[mlen] = '\0';
	bi->go_version = bi->strings;
	bi->path = bi->main_path = bi->main_version = bi->main_sum = "";
	if (memchr(bi->strings, '\0', vlen) || parse_modinfo(bi, m)) {
		ember_gobuildinfo_free(bi);
		return -EINVAL;
	}
	*out = bi;
	return 0;
}

/* Where the header is: the section, or a 16-aligned scan of the first writable segment. */
static bool find_header(const struct goelf *e, uint8_t *hdr, uint64_t *vaddr)
{
	const struct goelf_sec *s = goelf_section(e, ".go.buildinfo");

	if (s) {
		*vaddr = s->addr;
		return s->size >= BI_HEADER && goelf_read_vaddr(e, s->addr, hdr, BI_HEADER) == 0 &&
		       memcmp(hdr, bi_magic, BI_MAGIC_LEN) == 0;
	}
	for (size_t i = 0; i < e->n_segs; i++) {
		const struct goelf_seg *seg = &e->segs[i];
		if (!(seg->flags & PF_W))
			continue;
		uint64_t n = seg->filesz < BI_SCAN ? seg->filesz : BI_SCAN;
		uint8_t *buf = malloc(n + 1);
		bool found = false;
		if (buf && goelf_read_vaddr(e, seg->vaddr, buf, n) == 0) {
			for (uint64_t off = (16 - seg->vaddr % 16) % 16; off + BI_HEADER <= n;
			     off += 16) {
				if (memcmp(buf + off, bi_magic, BI_MAGIC_LEN) == 0) {
					memcpy(hdr, buf + off, BI_HEADER);
					*vaddr = seg->vaddr + off;
					found = true;
					break;
				}
			}
		}
		free(buf);
		return found; /* only the first writable segment */
	}
	return false;
}

int gobuildinfo_from_elf(const struct goelf *e, struct ember_gobuildinfo **out, char *err,
			 size_t errlen)
{
	uint8_t hdr[BI_HEADER];
	uint64_t at;
	int rc = -EINVAL;

	*out = NULL;
	if (!find_header(e, hdr, &at)) {
		goerr(err, errlen, "%s: no Go build info", e->name);
		return -ENOENT;
	}
	if (hdr[14] != 8 || (hdr[15] & 1)) {
		goerr(err, errlen, "%s: Go build info for %u-byte pointers%s is not supported",
		      e->name, hdr[14], hdr[15] & 1 ? ", big-endian" : "");
		return -ENOTSUP;
	}
	if (hdr[15] & 2) { /* Go 1.18+: inline strings after the header */
		size_t blen = 2 * (BI_MAX_STRING + 10);
		const struct goelf_sec *s = goelf_section(e, ".go.buildinfo");
		if (s && s->size - BI_HEADER < blen)
			blen = s->size - BI_HEADER;
		uint8_t *buf = malloc(blen);
		/* the segment may end sooner than our bound: shrink until it reads */
		while (buf && blen && goelf_read_vaddr(e, at + BI_HEADER, buf, blen))
			blen /= 2;
		const uint8_t *p = buf, *end = buf + blen, *v, *m;
		size_t vlen, mlen;
		if (buf && blen && inline_string(&p, end, &v, &vlen) &&
		    inline_string(&p, end, &m, &mlen))
			rc = make_info(v, vlen, m, mlen, out);
		free(buf);
	} else { /* Go 1.13-1.17: pointers to string headers */
		char *v = NULL, *m = NULL;
		size_t vlen = 0, mlen = 0;
		if (pointer_string(e, rd64le(hdr + 16), &v, &vlen) &&
		    pointer_string(e, rd64le(hdr + 24), &m, &mlen))
			rc = make_info(v, vlen, m, mlen, out);
		free(v);
		free(m);
	}
	if (rc == -EINVAL)
		goerr(err, errlen, "%s: malformed Go build info", e->name);
	return rc;
}

int ember_gobuildinfo_read(const char *path, struct ember_gobuildinfo **out, char *err,
			   size_t errlen)
{
	struct goelf e;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goerr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	rc = goelf_open_fd(&e, fd, path, err, errlen);
	if (!rc) {
		rc = gobuildinfo_from_elf(&e, out, err, errlen);
		goelf_close(&e);
	}
	close(fd);
	return rc;
}

void ember_gobuildinfo_free(struct ember_gobuildinfo *bi)
{
	if (!bi)
		return;
	free(bi->settings);
	free(bi->strings);
	free(bi);
}

const char *ember_gobuildinfo_setting(const struct ember_gobuildinfo *bi, const char *key)
{
	for (size_t i = 0; bi && i < bi->n_settings; i++)
		if (strcmp(bi->settings[i].key, key) == 0)
			return bi->settings[i].value;
	return NULL;
}
