/*
 * debuglink.c - locate separate debug files by build-id and .gnu_debuglink
 * (see debuglink.h for the search order).
 *
 * Candidates are checked before they are trusted: a wrong debug file is
 * worse than none, because it names the wrong functions with confidence.
 * The .gnu_debuglink CRC32 covers the whole debug file, so checking it
 * reads the file once; that happens once per binary and only for
 * candidates that exist.
 */
#include "symbolizer/debuglink.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "symbolizer/elf_file.h"

int ember_debuglink_read(Elf *elf, struct ember_debuglink *link)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	link->name[0] = '\0';
	link->crc = 0;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return -ENOENT;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name || strcmp(name, ".gnu_debuglink") != 0)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			return -ENOENT;
		/* NUL-terminated name, padded to 4 bytes, then a 4-byte CRC. */
		const char *p = d->d_buf;
		size_t len = strnlen(p, d->d_size);
		size_t crc_off = (len + 4) & ~(size_t)3;
		if (len == 0 || len >= sizeof(link->name) || crc_off + 4 > d->d_size ||
		    strchr(p, '/'))
			return -ENOENT;
		memcpy(link->name, p, len + 1);
		uint32_t crc;
		memcpy(&crc, p + crc_off, 4);
		/* The CRC is stored in the file's byte order. */
		GElf_Ehdr eh;
		if (gelf_getehdr(elf, &eh) && eh.e_ident[EI_DATA] == ELFDATA2MSB)
			crc = __builtin_bswap32(crc);
		link->crc = crc;
		return 0;
	}
	return -ENOENT;
}

int ember_debuglink_crc(int fd, uint32_t *out)
{
	unsigned char buf[65536];
	uLong crc = crc32(0L, Z_NULL, 0);
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		crc = crc32(crc, buf, (uInt)n);
		off += n;
	}
	if (n < 0)
		return -errno;
	*out = (uint32_t)crc;
	return 0;
}

static bool is_regular_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool crc_matches(const char *path, uint32_t want)
{
	uint32_t crc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = ember_debuglink_crc(fd, &crc) == 0 && crc == want;
	close(fd);
	return ok;
}

/*
 * True when the ELF file at path is the binary's debug file as far as its
 * headers tell: its build-id is `want` (unless want is NULL) and its
 * PT_LOAD layout is `layout` (unless 0).
 */
static bool headers_match(const char *path, const char *want, uint64_t layout)
{
	char have[2 * EMBER_BUILD_ID_MAX + 1] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = false;

	if (fd < 0)
		return false;
	if (elf_version(EV_CURRENT) != EV_NONE) {
		Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
		if (elf && elf_kind(elf) == ELF_K_ELF) {
			if (want)
				ember_elf_read_build_id(elf, have);
			ok = (!want || strcmp(have, want) == 0) &&
			     (!layout || ember_elf_layout_hash(elf) == layout);
		}
		elf_end(elf);
	}
	close(fd);
	return ok;
}

static const char *debug_dir(void)
{
	const char *d = getenv("EMBER_DEBUG_DIR");
	return d && d[0] ? d : EMBER_DEBUG_DIR_DEFAULT;
}

static int by_build_id(const char *build_id, uint64_t layout, char *out, size_t size)
{
	size_t len = strlen(build_id);

	if (len < 4 || strspn(build_id, "0123456789abcdef") != len)
		return -ENOENT;
	if ((size_t)snprintf(out, size, "%s/.build-id/%.2s/%s.debug", debug_dir(), build_id,
			     build_id + 2) >= size)
		return -ENAMETOOLONG;
	if (is_regular_file(out) && headers_match(out, build_id, layout))
		return 0;
	return -ENOENT;
}

static int by_debuglink(const char *path, const struct ember_debuglink *link, char *out,
			size_t size)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) : 0;

	if (dlen >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	if (!slash)
		strcpy(dir, ".");

	const char *fmts[] = {"%s%s/%s", "%s%s/.debug/%s", "%s%s/%s"};
	const char *prefixes[] = {"", "", debug_dir()};
	for (int i = 0; i < 3; i++) {
		if ((size_t)snprintf(out, size, fmts[i], prefixes[i], dir, link->name) >= size)
			continue;
		/* Never take the binary itself for its debug file. */
		if (i == 0 && strcmp(out, path) == 0)
			continue;
		if (is_regular_file(out) && crc_matches(out, link->crc) &&
		    headers_match(out, NULL, link->layout))
			return 0;
	}
	return -ENOENT;
}

int ember_debuglink_find(const char *path, const struct ember_debuglink *link, char *out,
			 size_t out_size)
{
	if (link->build_id && link->build_id[0] &&
	    by_build_id(link->build_id, link->layout, out, out_size) == 0)
		return 0;
	if (link->name[0] && path && path[0])
		return by_debuglink(path, link, out, out_size);
	return -ENOENT;
}
