/*
 * fuzz_elf_identity.c - libFuzzer target for the build-id, content-hash and
 * PLT readers (elf_identity.c, elf_plt.c).
 *
 * The input is scanned for Go's build-ID marker as raw bytes, then written
 * to a memfd and opened with libelf; every reader runs on it: the GNU and
 * Go build-ids, the content and unwind hashes, the PT_LOAD layout hash and
 * the PLT stubs.  Besides sanitizer reports, the target aborts when a
 * build-id is not lower-case hex of the promised length, a Go build ID has
 * a character Go never writes, or a PLT name does not end in "@plt".
 *
 * FUZZ_SOURCES: src/core/array.c src/symbolizer/elf_identity.c src/symbolizer/elf_plt.c
 * FUZZ_LIBS: -lelf -lcrypto
 */
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolizer/elf_identity.h"
#include "symbolizer/elf_plt.h"

static void check_hex(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max || strspn(s, "0123456789abcdef") != n || n % 2)
		abort();
}

static void check_go_id(const char *s, int n)
{
	if (n <= 0)
		return;
	if ((size_t)n != strlen(s) || n > EMBER_GO_BUILD_ID_MAX ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/+=.") !=
		    (size_t)n)
		abort();
}

static int on_plt(void *arg, uint64_t addr, uint64_t size, const char *name)
{
	size_t n = strlen(name);
	(void)arg;
	(void)addr;
	if (n <= 4 || strcmp(name + n - 4, "@plt") != 0 || (size != 8 && size != 16))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char go[EMBER_GO_BUILD_ID_MAX + 1], id[2 * EMBER_BUILD_ID_MAX + 1];
	uint8_t hash[EMBER_HASH_BYTES];

	check_go_id(go, ember_go_build_id_scan(data, size, go, sizeof(go)));

	int fd = memfd_create("fuzz_elf_identity", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size || elf_version(EV_CURRENT) == EV_NONE) {
		close(fd);
		return 0;
	}
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		char gnu[2 * EMBER_BUILD_ID_MAX + 1];
		ember_elf_read_build_id(elf, gnu);
		check_hex(gnu, 2 * EMBER_BUILD_ID_MAX);
		check_go_id(go, ember_go_build_id(elf, fd, go, sizeof(go)));
		if (ember_elf_content_hash(elf, fd, hash) == 0) {
			ember_elf_build_id(elf, fd, gnu, hash, id);
			check_hex(id, 2 * EMBER_BUILD_ID_MAX);
			if (!gnu[0] && strlen(id) != 2 * EMBER_DERIVED_BUILD_ID_BYTES)
				abort();
		}
		ember_elf_unwind_hash(elf, fd, hash);
		ember_elf_layout_hash(elf);
		ember_elf_plt_symbols(elf, on_plt, NULL);
	}
	elf_end(elf);
	close(fd);
	return 0;
}
