/*
 * btf_archive.h - minimized kernel BTF for kernels without /sys/kernel/btf/vmlinux.
 *
 * An archive is a list of entries keyed by kernel release (uname -r) and
 * build (uname -v), each a zstd-compressed BTF blob reduced by
 * `bpftool gen min_core_btf` to the types Ember's BPF objects relocate
 * against.  Such a blob is valid only for the objects it was made from, so
 * the archive records a hash of those objects ("objects") and an entry made
 * for other objects is refused.  Archives come from btf-archive/btfgen.sh:
 * compiled into the binary (see btf_archive_embedded.h) or as a directory
 * (--btf-archive DIR) holding an `index` file and the blobs:
 *
 *   ember-btf-archive<TAB>1
 *   objects<TAB><sha256 of the BPF objects, hex>
 *   entry<TAB><release><TAB><build><TAB><file><TAB><raw bytes><TAB><origin>
 *
 * Lines starting with '#' are comments.  The index is untrusted input:
 * every field is length- and character-checked (fuzzed by
 * tests/fuzz/fuzz_btf_archive.c).
 */
#ifndef EMBER_AGENT_BTF_ARCHIVE_H
#define EMBER_AGENT_BTF_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#define EMBER_BTF_MAX_ENTRIES 4096
#define EMBER_BTF_MAX_RAW (64u << 20) /* a whole kernel's BTF is ~5 MiB */
#define EMBER_BTF_HASH_LEN 64         /* hex sha256 */

struct ember_btf_entry {
	const char *release;       /* uname -r */
	const char *version;       /* uname -v: the build */
	const char *file;          /* blob, relative to the archive directory (NULL if embedded) */
	const unsigned char *data; /* zstd blob when embedded (NULL in a directory) */
	size_t size;               /* bytes of data */
	uint64_t raw_size;         /* bytes of the BTF once decompressed */
	const char *origin;        /* where the kernel's BTF came from */
};

struct ember_btf_archive {
	char objects[EMBER_BTF_HASH_LEN + 1]; /* the objects the entries were made for */
	struct ember_btf_entry *entries;
	size_t n_entries;
	char *text; /* the index, cut into the entries' strings */
};

/*
 * Parse an index.  On error returns -EINVAL and names the line at fault in
 * err; out is then empty.  Free with ember_btf_archive_free().
 */
int ember_btf_archive_parse(const char *text, size_t len, struct ember_btf_archive *out,
			    char *err, size_t errlen);
void ember_btf_archive_free(struct ember_btf_archive *a);

/* The build of an entry that matches every build of its release (BTFHub keys by release). */
#define EMBER_BTF_ANY_BUILD "*"

/*
 * The entry for (release, version) among n, else one for (release, any
 * build), else NULL.  *same_release, when
 * not NULL, is set to an entry of the same release but another build (for
 * the message), or NULL.
 */
const struct ember_btf_entry *ember_btf_archive_find(const struct ember_btf_entry *entries,
						     size_t n, const char *release,
						     const char *version,
						     const struct ember_btf_entry **same_release);

/*
 * Decompress a zstd blob into *out (malloc'ed, *outlen bytes): exactly
 * `expect` bytes, or when expect is 0 the size its frame header declares;
 * at most EMBER_BTF_MAX_RAW.  Returns 0 or a negative errno with err set.
 */
int ember_btf_decompress(const void *z, size_t zlen, uint64_t expect, void **out,
			 size_t *outlen, char *err, size_t errlen);

#endif
