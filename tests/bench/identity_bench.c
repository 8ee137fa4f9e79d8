/*
 * identity_bench.c - what knowing a binary by its content costs.
 *
 *   identity_bench FILE...
 *
 * For each file, best of 3: the content hash (ember_elf_content_hash, what
 * keys the symbolizer's ELF sharing and symcache), the unwind-input hash
 * (ember_elf_unwind_hash, what keys the disk cache of unwind tables), the
 * whole ELF load that includes the content hash (ember_elf_open_fd), and
 * compiling the unwind table the unwind hash stands for
 * (ember_ehframe_compile_file + .gopclntab rows are not included: CFI only).
 * One line per file, in milliseconds.  Run by tests/bench/symbolize.sh,
 * next to `sha256sum` on the same files as the peer.
 */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ehframe/ehframe.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/elf_identity.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double min(double a, double b)
{
	return a < b ? a : b;
}

int main(int argc, char **argv)
{
	elf_version(EV_CURRENT);
	printf("%-28s %9s %13s %12s %14s %15s\n", "file", "MiB", "content hash", "unwind hash",
	       "ELF load (ms)", "CFI compile (ms)");
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0) {
			perror(argv[i]);
			continue;
		}
		Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
		double content = 1e9, unwind = 1e9, load = 1e9, compile = 1e9;
		uint8_t h[EMBER_HASH_BYTES];
		for (int k = 0; k < 3 && elf; k++) {
			double t0 = now();
			ember_elf_content_hash(elf, fd, h);
			double t1 = now();
			ember_elf_unwind_hash(elf, fd, h);
			double t2 = now();
			struct ember_elf *e = NULL;
			if (ember_elf_open_fd(fd, argv[i], &e) == 0)
				ember_elf_free(e);
			double t3 = now();
			struct ember_unwind_table table;
			char err[256];
			if (ember_ehframe_compile_file(argv[i], NULL, 0, &table, err, sizeof(err)) == 0)
				ember_unwind_table_free(&table);
			double t4 = now();
			content = min(content, t1 - t0);
			unwind = min(unwind, t2 - t1);
			load = min(load, t3 - t2);
			compile = min(compile, t4 - t3);
		}
		const char *base = strrchr(argv[i], '/');
		printf("%-28s %9.1f %10.1f ms %9.1f ms %14.1f %15.1f\n", base ? base + 1 : argv[i],
		       st.st_size / 1048576.0, content * 1e3, unwind * 1e3, load * 1e3,
		       compile * 1e3);
		if (elf)
			elf_end(elf);
		close(fd);
	}
	return 0;
}
