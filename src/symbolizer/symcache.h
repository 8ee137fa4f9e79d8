/*
 * symcache.h - a bounded cache of resolved addresses.
 *
 * Profiling a fixed set of programs samples the same few thousand pcs over
 * and over; resolving one through DWARF costs microseconds, finding it here
 * tens of nanoseconds.  Keys are (module, pc): module is 64 bits of the
 * SHA-256 of the binary's content (elf_identity.h; never its build-id
 * alone, which another binary can copy), pc the ELF virtual address, so
 * every process mapping a binary shares entries, and a copy of it at
 * another path too.
 * Values are whole inline chains (ember_sym_frame, innermost first) whose
 * strings are copied into the cache, so they outlive the ELF/DWARF objects
 * they came from; each distinct string once, shared by every frame naming
 * it.  An empty chain (nothing known) is cached too.
 *
 * Memory is bounded by a byte budget (entries, frames, copied strings and
 * the indexes); when full, CLOCK (second-chance) eviction picks the victim: each
 * hit sets a reference bit, the clock hand clears bits and evicts the first
 * entry found without one.
 */
#ifndef EMBER_SYMBOLIZER_SYMCACHE_H
#define EMBER_SYMBOLIZER_SYMCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer/dwarf.h"

#define EMBER_SYMCACHE_DEFAULT_BYTES (32u << 20)

struct ember_symcache;

struct ember_symcache_stats {
	uint64_t lookups, hits, inserts, evictions;
	uint64_t entries, bytes, max_bytes;
};

/* A cache using at most max_bytes (at least 64 KiB is used). NULL on OOM. */
struct ember_symcache *ember_symcache_new(size_t max_bytes);
void ember_symcache_free(struct ember_symcache *c);

/*
 * Look (module, pc) up.  On a hit returns the chain's length (>= 0) and
 * points *frames at it (valid until the next ember_symcache_put); on a miss
 * returns -ENOENT.
 */
int ember_symcache_get(struct ember_symcache *c, uint64_t module, uint64_t pc,
		       const struct ember_sym_frame **frames);

/* Store a copy of frames[0..n) for (module, pc).  Returns 0 or -ENOMEM/-E2BIG. */
int ember_symcache_put(struct ember_symcache *c, uint64_t module, uint64_t pc,
		       const struct ember_sym_frame *frames, int n);

void ember_symcache_get_stats(const struct ember_symcache *c, struct ember_symcache_stats *st);

/*
 * The symbolizer's cache figures (defined in symbolizer.c).  Lives here
 * until symbolizer.h's ember_symbolizer_stats grows the fields.
 */
struct ember_symbolizer;
void ember_symbolizer_symcache_stats(const struct ember_symbolizer *s,
				     struct ember_symcache_stats *st);

#endif
