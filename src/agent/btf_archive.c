/*
 * btf_archive.c - read a BTF archive's index, find a kernel's entry, decompress it.
 *
 * The index is copied once and cut in place: each entry's strings point
 * into that copy.  Every field is checked before use: a release is what
 * uname -r can hold (no blanks, no '/'), a build what uname -v can hold,
 * a file a relative path without "..", sizes are bounded.  Matching is
 * exact on both release and build: two builds of one release may lay out
 * kernel structures differently (Debian rebuilds a release with a new
 * build string), and a wrong offset read silently is worse than a refusal.
 * The one exception is an entry whose build is "*": BTFHub keys its files
 * by release alone, so an entry made from one says "any build".
 */
#include "agent/btf_archive.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define UTS_FIELD_MAX 64 /* struct utsname fields are 65 bytes */
#define FILE_MAX 255
#define ORIGIN_MAX 512
#define MAX_FIELDS 6

static bool release_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > UTS_FIELD_MAX)
		return false;
	for (; *s; s++)
		if (!isgraph((unsigned char)*s) || *s == '/')
			return false;
	return true;
}

static bool printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!isprint((unsigned char)*s))
			return false;
	return true;
}

static bool file_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FILE_MAX || s[0] == '/')
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._+-/~", *p))
			return false;
	/* no ".." component */
	for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return false;
	return true;
}

static bool hash_ok(const char *s)
{
	if (strlen(s) != EMBER_BTF_HASH_LEN)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
			return false;
	return true;
}

static int parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 10)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v == 0 || v > EMBER_BTF_MAX_RAW)
		return -1;
	*out = v;
	return 0;
}

/* Split line at tabs into at most MAX_FIELDS fields; returns the count. */
static int split_tabs(char *line, char *fields[MAX_FIELDS])
{
	int n = 0;

	fields[n++] = line;
	for (char *p = line; *p; p++) {
		if (*p != '\t')
			continue;
		if (n == MAX_FIELDS)
			return MAX_FIELDS + 1;
		*p = '\0';
		fields[n++] = p + 1;
	}
	return n;
}

void ember_btf_archive_free(struct ember_btf_archive *a)
{
	free(a->entries);
	free(a->text);
	memset(a, 0, sizeof(*a));
}

int ember_btf_archive_parse(const char *text, size_t len, struct ember_btf_archive *out,
			    char *err, size_t errlen)
{
	struct ember_btf_archive a = {0};
	bool have_magic = false;
	size_t cap = 0, lineno = 0;

	memset(out, 0, sizeof(*out));
	a.text = malloc(len + 1);
	if (!a.text)
		return -ENOMEM;
	memcpy(a.text, text, len);
	a.text[len] = '\0';
	if (strlen(a.text) != len) {
		snprintf(err, errlen, "index contains a NUL byte");
		goto bad;
	}

	char *save = NULL;
	for (char *line = a.text; line; line = save) {
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		if (line[0] == '\0' || line[0] == '#')
			continue;
		char *f[MAX_FIELDS];
		int n = split_tabs(line, f);

		if (!have_magic) {
			if (n != 2 || strcmp(f[0], "ember-btf-archive") || strcmp(f[1], "1")) {
				snprintf(err, errlen, "line %zu: not an ember BTF archive index (format 1)",
					 lineno);
				goto bad;
			}
			have_magic = true;
		} else if (!strcmp(f[0], "objects")) {
			if (n != 2 || !hash_ok(f[1])) {
				snprintf(err, errlen, "line %zu: objects: expected a sha256 in hex", lineno);
				goto bad;
			}
			memcpy(a.objects, f[1], EMBER_BTF_HASH_LEN + 1);
		} else if (!strcmp(f[0], "entry")) {
			struct ember_btf_entry e = {0};
			if (n != 6) {
				snprintf(err, errlen, "line %zu: entry: expected 5 tab-separated fields",
					 lineno);
				goto bad;
			}
			if (!release_ok(f[1]) || !printable(f[2], UTS_FIELD_MAX) || !file_ok(f[3]) ||
			    parse_size(f[4], &e.raw_size) || !printable(f[5], ORIGIN_MAX)) {
				snprintf(err, errlen,
					 "line %zu: entry: bad release, build, file, size or origin",
					 lineno);
				goto bad;
			}
			if (a.n_entries == EMBER_BTF_MAX_ENTRIES) {
				snprintf(err, errlen, "line %zu: more than %d entries", lineno,
					 EMBER_BTF_MAX_ENTRIES);
				goto bad;
			}
			e.release = f[1];
			e.version = f[2];
			e.file = f[3];
			e.origin = f[5];
			if (a.n_entries == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				void *p = realloc(a.entries, ncap * sizeof(*a.entries));
				if (!p) {
					ember_btf_archive_free(&a);
					return -ENOMEM;
				}
				a.entries = p;
				cap = ncap;
			}
			a.entries[a.n_entries++] = e;
		} else {
			snprintf(err, errlen, "line %zu: unknown record '%.32s'", lineno, f[0]);
			goto bad;
		}
	}
	if (!have_magic) {
		snprintf(err, errlen, "empty index");
		goto bad;
	}
	if (!a.objects[0]) {
		snprintf(err, errlen, "index has no objects line");
		goto bad;
	}
	*out = a;
	return 0;
bad:
	ember_btf_archive_free(&a);
	return -EINVAL;
}

const struct ember_btf_entry *ember_btf_archive_find(const struct ember_btf_entry *entries,
						     size_t n, const char *release,
						     const char *version,
						     const struct ember_btf_entry **same_release)
{
	const struct ember_btf_entry *any_build = NULL, *other = NULL;

	if (same_release)
		*same_release = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(entries[i].release, release))
			continue;
		if (!strcmp(entries[i].version, version))
			return &entries[i];
		if (!strcmp(entries[i].version, EMBER_BTF_ANY_BUILD))
			any_build = any_build ? any_build : &entries[i];
		else
			other = other ? other : &entries[i];
	}
	if (same_release)
		*same_release = any_build ? NULL : other;
	return any_build;
}

int ember_btf_decompress(const void *z, size_t zlen, uint64_t expect, void **out,
			 size_t *outlen, char *err, size_t errlen)
{
	*out = NULL;
	*outlen = 0;
	unsigned long long content = ZSTD_getFrameContentSize(z, zlen);
	if (content == ZSTD_CONTENTSIZE_ERROR) {
		snprintf(err, errlen, "not a zstd frame");
		return -EINVAL;
	}
	if (content == ZSTD_CONTENTSIZE_UNKNOWN && !expect) {
		snprintf(err, errlen, "zstd frame without its size (compress with the zstd tool)");
		return -EINVAL;
	}
	if (content != ZSTD_CONTENTSIZE_UNKNOWN && expect && content != expect) {
		snprintf(err, errlen, "zstd frame holds %llu bytes, the index says %llu", content,
			 (unsigned long long)expect);
		return -EINVAL;
	}
	uint64_t size = expect ? expect : content;
	if (size == 0 || size > EMBER_BTF_MAX_RAW) {
		snprintf(err, errlen, "BTF of %llu bytes (at most %u)", (unsigned long long)size,
			 EMBER_BTF_MAX_RAW);
		return -EINVAL;
	}
	void *buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	size_t n = ZSTD_decompress(buf, size, z, zlen);
	if (ZSTD_isError(n) || n != size) {
		snprintf(err, errlen, "zstd: %s",
			 ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short output");
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*outlen = n;
	return 0;
}
