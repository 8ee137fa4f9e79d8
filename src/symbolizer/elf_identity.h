/*
 * elf_identity.h - what tells one ELF file from another: build-ids and
 * content hashes.
 *
 * Ember shares what it derives from a binary (symbols, unwind tables)
 * between every process that maps it, and names versions of a program by
 * its build-id.  A build-id alone is a claim, not a proof: a linker flag
 * (`-Wl,--build-id=0x...`) copies any value into any binary.  So:
 *
 *   - the *build-id* Ember shows and stores is the GNU build-id when the
 *     file has one; else the SHA-256 of Go's build ID (the
 *     `.note.go.buildid` note, or the "\xff Go build ID:" marker at the
 *     start of the text); else the SHA-256 of the file's content (see
 *     ember_elf_content_hash).  The last two are cut to 20 bytes and
 *     written in lower-case hex, like a GNU build-id, so every ELF file
 *     has one and two different Go builds never share one;
 *   - caches are keyed by the build-id *plus* a hash of the bytes they are
 *     derived from (ember_elf_content_hash for symbols,
 *     ember_elf_unwind_hash for unwind tables), so a copied build-id
 *     cannot make one binary use another's tables;
 *   - a separate debug file is accepted only when its PT_LOAD layout is
 *     the binary's (ember_elf_layout_hash): objcopy --only-keep-debug
 *     keeps the program headers, a different program does not have them.
 *
 * Hashes are SHA-256 (OpenSSL's libcrypto: SHA-NI where the CPU has it,
 * ~1.4 GB/s here).  Every reader is bounds-checked against the file size:
 * headers or sections pointing past the end hash what exists, never fail
 * open or crash.
 */
#ifndef EMBER_SYMBOLIZER_ELF_IDENTITY_H
#define EMBER_SYMBOLIZER_ELF_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest build-id we keep (SHA-1 is 20 bytes; allow up to 64). */
#define EMBER_BUILD_ID_MAX 64
/* Bytes of a derived (Go or content) build-id: as long as a SHA-1 GNU one. */
#define EMBER_DERIVED_BUILD_ID_BYTES 20
#define EMBER_HASH_BYTES 32 /* SHA-256 */
/* Files larger than this are content-hashed without their DWARF sections. */
#define EMBER_CONTENT_HASH_FULL_MAX (64u << 20)
/* Longest Go build ID accepted (Go's are 83 characters). */
#define EMBER_GO_BUILD_ID_MAX 256

enum ember_build_id_kind {
	EMBER_BUILD_ID_NONE,    /* not even the content could be read */
	EMBER_BUILD_ID_GNU,     /* the NT_GNU_BUILD_ID note */
	EMBER_BUILD_ID_GO,      /* SHA-256 of Go's build ID */
	EMBER_BUILD_ID_CONTENT, /* SHA-256 of the file's content */
};

struct Elf; /* libelf */

/* "gnu", "go", "content" or "none". */
const char *ember_build_id_kind_name(enum ember_build_id_kind kind);

/* n bytes as lower-case hex into out (2n+1 bytes). */
void ember_hex_encode(const uint8_t *p, size_t n, char *out);

/* The GNU build-id as hex into out (2*EMBER_BUILD_ID_MAX+1 bytes); false when none. */
bool ember_elf_read_build_id(struct Elf *elf, char *out);

/*
 * Go's build ID ("actionID/.../contentID", as `go tool buildid` prints it)
 * of the file open on fd (elf: the same file), from the Go note, else from
 * the marker in the first 32 KiB of the file.  Returns its length, or
 * -ENOENT when there is none.
 */
int ember_go_build_id(struct Elf *elf, int fd, char *out, size_t size);

/*
 * Find the "\xff Go build ID: \"ID\"\n \xff" marker in buf and copy ID
 * (NUL-terminated) to out.  Returns its length or -ENOENT.  Exposed for
 * the fuzzer.
 */
int ember_go_build_id_scan(const void *buf, size_t len, char *out, size_t size);

/*
 * SHA-256 of the file's content: of every byte (as sha256sum) when the
 * file is at most EMBER_CONTENT_HASH_FULL_MAX, else of every byte but
 * those of its .debug_* / .zdebug_* sections (their headers are still
 * hashed), followed by the file size and the ranges left out.  Returns 0
 * or -errno.
 */
int ember_elf_content_hash(struct Elf *elf, int fd, uint8_t out[EMBER_HASH_BYTES]);

/*
 * SHA-256 of what the unwind-table compiler (src/ehframe/, .gopclntab
 * rows) reads: the ELF header's class, type and machine, the program
 * headers, the headers and bytes of .eh_frame, .eh_frame_hdr,
 * .debug_frame, .zdebug_frame and .gopclntab and, for Go binaries and
 * files without section headers, every PT_LOAD's bytes (the Go rows look
 * at the code).  Two files with equal hashes compile to the same table; a
 * stripped copy hashes as its original.  Returns 0 or -errno.
 */
int ember_elf_unwind_hash(struct Elf *elf, int fd, uint8_t out[EMBER_HASH_BYTES]);

/*
 * The build-id Ember uses for the file (see the top of this file) into
 * out (2*EMBER_BUILD_ID_MAX+1 bytes).  gnu: the GNU build-id already read
 * ("" when none); content: the file's ember_elf_content_hash, or NULL to
 * leave out the content fallback (hashing a whole file can cost more than
 * what the caller does with the id).  Returns its kind; EMBER_BUILD_ID_NONE
 * leaves out "".
 */
enum ember_build_id_kind ember_elf_build_id(struct Elf *elf, int fd, const char *gnu,
					    const uint8_t *content, char *out);

/*
 * A hash of the PT_LOAD segments' (p_vaddr, p_memsz, p_flags): equal for
 * a binary and its separate debug file.  0 when the file has no PT_LOAD.
 */
uint64_t ember_elf_layout_hash(struct Elf *elf);

#endif
