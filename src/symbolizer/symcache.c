/*
 * symcache.c - (module, pc) -> inline chain, bounded, CLOCK eviction
 * (see symcache.h).
 *
 * Layout: entries live in one array (the clock hand walks it; unused ones
 * are kept on a free stack); an open
 * addressing index (linear probing, power-of-two size, load <= 1/2) maps
 * a key to its entry number + 1 (0 = empty).  Removal from the index uses
 * backward-shift deletion, so there are no tombstones and probe chains
 * stay short however long the cache runs.  Each entry's chain and strings
 * are one malloc'd block.
 *
 * The entry count is fixed at creation from the byte budget (assuming a
 * typical entry size); the byte budget is then enforced on top by evicting
 * until the new entry fits.
 */
#include "symbolizer/symcache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TYPICAL_ENTRY_BYTES 192 /* two or three frames with C++ names */
#define MIN_BYTES (64u << 10)
#define MAX_CHAIN_BYTES (1u << 20) /* one chain larger than this is not cached */

struct entry {
	uint64_t module, pc;
	struct ember_sym_frame *frames; /* NULL when unused or n == 0 */
	uint32_t bytes;                 /* accounted size of frames */
	uint8_t n;
	bool used, ref;
};

struct ember_symcache {
	struct entry *entries;
	uint32_t cap, n_used, hand;
	uint32_t *free_list; /* unused entry numbers (a stack) */
	uint32_t n_free;
	uint32_t *index; /* entry number + 1, 0 = empty */
	uint32_t index_mask;
	size_t bytes, max_bytes;
	struct ember_symcache_stats st;
};

static inline uint32_t key_hash(uint64_t module, uint64_t pc)
{
	uint64_t h = (module ^ (pc * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

struct ember_symcache *ember_symcache_new(size_t max_bytes)
{
	struct ember_symcache *c = calloc(1, sizeof(*c));
	size_t cap, slots = 2;

	if (!c)
		return NULL;
	if (max_bytes < MIN_BYTES)
		max_bytes = MIN_BYTES;
	cap = max_bytes / (TYPICAL_ENTRY_BYTES + sizeof(struct entry) + 2 * sizeof(uint32_t));
	if (cap > UINT32_MAX / 4)
		cap = UINT32_MAX / 4;
	while (slots < 2 * cap)
		slots *= 2;
	c->entries = calloc(cap, sizeof(*c->entries));
	c->index = calloc(slots, sizeof(*c->index));
	c->free_list = calloc(cap, sizeof(*c->free_list));
	if (!c->entries || !c->index || !c->free_list) {
		ember_symcache_free(c);
		return NULL;
	}
	c->cap = (uint32_t)cap;
	c->index_mask = (uint32_t)(slots - 1);
	c->max_bytes = max_bytes;
	c->bytes = cap * (sizeof(struct entry) + sizeof(uint32_t)) + slots * sizeof(uint32_t);
	for (size_t i = 0; i < cap; i++)
		c->free_list[c->n_free++] = (uint32_t)(cap - 1 - i);
	return c;
}

void ember_symcache_free(struct ember_symcache *c)
{
	if (!c)
		return;
	if (c->entries)
		for (uint32_t i = 0; i < c->cap; i++)
			free(c->entries[i].frames);
	free(c->entries);
	free(c->free_list);
	free(c->index);
	free(c);
}

/* Index slot holding (module, pc), or the empty slot where it would go. */
static uint32_t find_slot(const struct ember_symcache *c, uint64_t module, uint64_t pc)
{
	uint32_t i = key_hash(module, pc) & c->index_mask;

	for (;;) {
		uint32_t v = c->index[i];
		if (v == 0)
			return i;
		const struct entry *e = &c->entries[v - 1];
		if (e->pc == pc && e->module == module)
			return i;
		i = (i + 1) & c->index_mask;
	}
}

int ember_symcache_get(struct ember_symcache *c, uint64_t module, uint64_t pc,
		       const struct ember_sym_frame **frames)
{
	c->st.lookups++;
	uint32_t v = c->index[find_slot(c, module, pc)];
	if (v == 0)
		return -ENOENT;
	struct entry *e = &c->entries[v - 1];
	e->ref = true;
	c->st.hits++;
	*frames = e->frames;
	return e->n;
}

/* Remove index slot i, shifting later members of its probe run back. */
static void index_delete(struct ember_symcache *c, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		c->index[i] = 0;
		for (;;) {
			j = (j + 1) & c->index_mask;
			uint32_t v = c->index[j];
			if (v == 0)
				return;
			const struct entry *e = &c->entries[v - 1];
			uint32_t home = key_hash(e->module, e->pc) & c->index_mask;
			/* Move v into the hole unless its home lies cyclically in (i, j]. */
			bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
			if (!stays) {
				c->index[i] = v;
				i = j;
				break;
			}
		}
	}
}

static void evict(struct ember_symcache *c, uint32_t idx)
{
	struct entry *e = &c->entries[idx];

	index_delete(c, find_slot(c, e->module, e->pc));
	c->bytes -= e->bytes;
	free(e->frames);
	memset(e, 0, sizeof(*e));
	c->free_list[c->n_free++] = idx;
	c->n_used--;
	c->st.evictions++;
}

/* An unused entry, evicting with the clock hand when needed. */
static uint32_t take_entry(struct ember_symcache *c)
{
	for (;;) {
		if (c->n_free > 0)
			return c->free_list[--c->n_free];
		struct entry *e = &c->entries[c->hand];
		uint32_t i = c->hand;
		c->hand = (c->hand + 1) % c->cap;
		if (e->ref)
			e->ref = false;
		else
			evict(c, i); /* pushes i on the free list */
	}
}

/* Evict with the clock until `need` more bytes fit the budget. */
static void make_room(struct ember_symcache *c, size_t need)
{
	uint32_t steps = 0;

	while (c->bytes + need > c->max_bytes && c->n_used > 0 && steps++ < 4 * c->cap) {
		struct entry *e = &c->entries[c->hand];
		uint32_t i = c->hand;
		c->hand = (c->hand + 1) % c->cap;
		if (!e->used)
			continue;
		if (e->ref)
			e->ref = false;
		else
			evict(c, i);
	}
}

/* One block: the frames, then their strings. */
static struct ember_sym_frame *copy_chain(const struct ember_sym_frame *in, int n, size_t *bytes)
{
	size_t size = n * sizeof(*in);
	struct ember_sym_frame *out;
	char *p;

	for (int i = 0; i < n; i++) {
		size += in[i].function ? strlen(in[i].function) + 1 : 0;
		size += in[i].file ? strlen(in[i].file) + 1 : 0;
	}
	*bytes = size;
	if (size > MAX_CHAIN_BYTES || !(out = malloc(size)))
		return NULL;
	p = (char *)(out + n);
	for (int i = 0; i < n; i++) {
		out[i] = in[i];
		const char **strs[2] = {&out[i].function, &out[i].file};
		for (int k = 0; k < 2; k++) {
			if (!*strs[k])
				continue;
			size_t len = strlen(*strs[k]) + 1;
			memcpy(p, *strs[k], len);
			*strs[k] = p;
			p += len;
		}
	}
	return out;
}

int ember_symcache_put(struct ember_symcache *c, uint64_t module, uint64_t pc,
		       const struct ember_sym_frame *frames, int n)
{
	struct ember_sym_frame *copy = NULL;
	size_t bytes = 0;

	if (n < 0 || n > EMBER_DWARF_MAX_CHAIN)
		return -E2BIG;
	if (n > 0 && !(copy = copy_chain(frames, n, &bytes)))
		return bytes > MAX_CHAIN_BYTES ? -E2BIG : -ENOMEM;

	uint32_t slot = find_slot(c, module, pc);
	if (c->index[slot]) /* already there (a racing resolve): replace */
		evict(c, c->index[slot] - 1);
	make_room(c, bytes);
	uint32_t idx = take_entry(c);
	slot = find_slot(c, module, pc); /* evictions may have moved the hole */
	c->entries[idx] = (struct entry){
		.module = module, .pc = pc, .frames = copy, .bytes = (uint32_t)bytes,
		.n = (uint8_t)n, .used = true,
	};
	c->index[slot] = idx + 1;
	c->n_used++;
	c->bytes += bytes;
	c->st.inserts++;
	return 0;
}

void ember_symcache_get_stats(const struct ember_symcache *c, struct ember_symcache_stats *st)
{
	*st = c->st;
	st->entries = c->n_used;
	st->bytes = c->bytes;
	st->max_bytes = c->max_bytes;
}
