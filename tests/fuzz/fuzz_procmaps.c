/*
 * fuzz_procmaps.c - libFuzzer target for the /proc/PID/maps parser.
 *
 * The agent parses the maps of every process on the host, root or not,
 * and a process names its own mappings (memfd names, paths with spaces,
 * newlines and " (deleted)"), so the text is untrusted.  The input is
 * parsed twice (all mappings, executable only); every mapping kept must
 * have a path, an executable-only parse keeps no more than a full one,
 * and a lookup that answers must answer with a mapping holding the
 * address.  Besides sanitizer reports, the target aborts when one of
 * these does not hold.
 *
 * FUZZ_SOURCES: src/agent/procmaps.c
 * FUZZ_LIBS:
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/procmaps.h"

static void check_lookups(const struct ember_maps *m, const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 8 <= size && i < 64; i += 8) {
		uint64_t addr;
		memcpy(&addr, data + i, sizeof(addr));
		const struct ember_map_entry *e = ember_maps_find(m, addr);
		if (e && (addr < e->start || addr >= e->end))
			abort();
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct ember_map_entry *e = ember_maps_find(m, m->entries[i].start);
		if (e && (m->entries[i].start < e->start || m->entries[i].start >= e->end))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ember_maps all = {0}, exec = {0};

	if (ember_maps_parse((const char *)data, size, EMBER_MAPS_ALL, &all) == 0 &&
	    ember_maps_parse((const char *)data, size, EMBER_MAPS_EXEC_ONLY, &exec) == 0) {
		if (exec.n > all.n)
			abort();
		for (size_t i = 0; i < all.n; i++)
			if (!all.entries[i].path)
				abort();
		for (size_t i = 0; i < exec.n; i++)
			if (!(exec.entries[i].perms & EMBER_MAP_EXEC))
				abort();
		check_lookups(&all, data, size);
	}
	ember_maps_free(&all);
	ember_maps_free(&exec);
	return 0;
}
