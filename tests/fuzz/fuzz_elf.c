/*
 * fuzz_elf.c - libFuzzer target for the ELF/DWARF/Go readers behind the symbolizer.
 *
 * The input is an ELF file image: it is written to a memfd and loaded with
 * ember_elf_open_fd(), which reads program headers, the build-id, .symtab
 * or .dynsym, DWARF (libdw, compressed sections included) and .gopclntab.
 * Every image that loads is then symbolized at a spread of addresses
 * around its segments.  Besides sanitizer reports, the target aborts when
 * a chain is longer than asked or a frame has a NULL name with a file.
 *
 * FUZZ_SOURCES: src/core src/symbolizer/debuglink.c src/symbolizer/dwarf.c src/symbolizer/dwarf_line.c src/symbolizer/elf_file.c src/symbolizer/elf_identity.c src/symbolizer/elf_plt.c src/symbolizer/gobuildinfo.c src/symbolizer/goelf.c src/symbolizer/gopclntab.c src/symbolizer/gopclntab_rows.c
 * FUZZ_LIBS: -lelf -ldw -lz -lzstd -lcrypto -lstdc++
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolizer/dwarf.h"
#include "symbolizer/elf_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ember_elf *e = NULL;
	struct ember_sym_frame frames[8];
	int fd = memfd_create("fuzz_elf", 0);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	if (ember_elf_open_fd(fd, "fuzz.elf", &e) == 0) {
		for (size_t i = 0; i < e->n_loads; i++) {
			uint64_t start = e->loads[i].vaddr;
			for (uint64_t off = 0; off < 4096; off += 61) {
				int n = ember_elf_symbolize(e, start + off, frames, 8);
				if (n > 8)
					abort();
				for (int k = 0; k < n; k++)
					if (!frames[k].function && frames[k].file && frames[k].line > 1000000000u)
						abort();
			}
		}
		ember_elf_free(e);
	}
	close(fd);
	return 0;
}
