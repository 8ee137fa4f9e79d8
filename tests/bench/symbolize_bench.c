/*
 * symbolize_bench.c - throughput of Ember's symbolizer on a batch of addresses.
 *
 *   symbolize_bench FILE ADDR_FILE [WARM_SECONDS]
 *
 * ADDR_FILE holds ELF virtual addresses of FILE (hex), one per line.
 *   cold  load FILE (symbols, DWARF mapped), then resolve every address once
 *         through DWARF: unit/function indexes built on the way, no cache.
 *   warm  the same addresses answered by the symcache (every one a hit), as
 *         in steady-state profiling, repeated for WARM_SECONDS (default 1).
 * Prints one line per phase: addresses, seconds, lookups per second, and the
 * number of frames produced (a cheap checksum against other tools).
 * Built and run by tests/bench/symbolize.sh (see there).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "symbolizer/dwarf.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/symcache.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t *read_addrs(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	uint64_t *a = NULL;
	size_t cap = 0;
	char line[128];

	*n = 0;
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 4096;
			a = realloc(a, cap * sizeof(*a));
			if (!a)
				exit(1);
		}
		a[(*n)++] = strtoull(line, NULL, 16);
	}
	fclose(f);
	return a;
}

int main(int argc, char **argv)
{
	struct ember_sym_frame f[EMBER_DWARF_MAX_CHAIN];
	const struct ember_sym_frame *got;
	struct ember_elf *e;
	size_t n;
	uint64_t frames = 0, lookups = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE ADDR_FILE [WARM_SECONDS]\n", argv[0]);
		return 2;
	}
	double warm_s = argc > 3 ? atof(argv[3]) : 1.0;
	uint64_t *addrs = read_addrs(argv[2], &n);
	if (!addrs || !n) {
		fprintf(stderr, "no addresses in %s\n", argv[2]);
		return 1;
	}

	double t0 = now();
	if (ember_elf_open(argv[1], &e) != 0) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	struct ember_symcache *c = ember_symcache_new(EMBER_SYMCACHE_DEFAULT_BYTES);
	for (size_t i = 0; i < n; i++) {
		int k = ember_elf_symbolize(e, addrs[i], f, EMBER_DWARF_MAX_CHAIN);
		frames += k > 0 ? k : 1;
		ember_symcache_put(c, 1, addrs[i], f, k > 0 ? k : 0);
	}
	double cold = now() - t0;
	printf("cold  %zu addresses  %.3f s  %.0f lookups/s  %" PRIu64 " frames\n", n, cold,
	       n / cold, frames);

	t0 = now();
	double t;
	uint64_t sink = 0;
	do {
		for (size_t i = 0; i < n; i++) {
			int k = ember_symcache_get(c, 1, addrs[i], &got);
			sink += (uint64_t)k;
		}
		lookups += n;
	} while ((t = now() - t0) < warm_s);
	struct ember_symcache_stats st;
	ember_symcache_get_stats(c, &st);
	printf("warm  %" PRIu64 " lookups  %.3f s  %.0f lookups/s  hit rate %.4f%%  cache %" PRIu64
	       " entries %.1f MiB  (sink %" PRIu64 ")\n",
	       lookups, t, lookups / t, 100.0 * (st.hits) / (st.lookups ? st.lookups : 1),
	       st.entries, st.bytes / 1048576.0, sink);
	ember_symcache_free(c);
	ember_elf_free(e);
	free(addrs);
	return 0;
}
