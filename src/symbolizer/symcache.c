/*
 * symcache.c - (module, pc) -> inline chain, bounded, CLOCK eviction
 * (see symcache.h).
 *
 * Layout: entries live in one array (the clock hand walks it; unused ones
 * are kept on a free stack); an open
 * addressing index (linear probing, power-of-two size, load <= 1/2) maps
 * a key to its entry number + 1 (0 = empty).  Removal from the index uses
 * backward-shift deletion, so there are no tombstones and probe chains
 * stay short however long the cache runs.  Each entry's chain is one
 * malloc'd array of frames; their strings are interned: one reference-
 * counted copy per distinct string (function and file names repeat across
 * the pcs of a function), in a second open-addressing set, also with
 * backward-shift deletion.  A string is freed with its last reference.
 *
 * The entry count is fixed at creation from the byte budget (assuming a
 * typical entry size); the byte budget (entries, frames, strings, the
 * index and the string set) is then enforced on top by evicting until the
 * new entry fits.
 */
#include "symbolizer/symcache.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
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

/* An interned string; frames point at s. */
struct istr {
	uint32_t refs, hash;
	char s[];
};

#define ISTR_OF(p) ((struct istr *)((char *)(p) - offsetof(struct istr, s)))

struct ember_symcache {
	struct entry *entries;
	uint32_t cap, n_used, hand;
	uint32_t *free_list; /* unused entry numbers (a stack) */
	uint32_t n_free;
	uint32_t *index; /* entry number + 1, 0 = empty */
	uint32_t index_mask;
	struct istr **strs; /* the string set: NULL = empty */
	size_t strs_cap, n_strs;
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
	for (size_t i = 0; i < c->strs_cap; i++)
		free(c->strs[i]);
	free(c->strs);
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

static void chain_unref(struct ember_symcache *c, struct ember_sym_frame *f, int n);

static void evict(struct ember_symcache *c, uint32_t idx)
{
	struct entry *e = &c->entries[idx];

	index_delete(c, find_slot(c, e->module, e->pc));
	c->bytes -= e->bytes;
	chain_unref(c, e->frames, e->n);
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

/* ---- interned strings ---- */

/* A hash of the string, 8 bytes at a time (names are long: C++ templates, paths). */
static uint32_t str_hash(const char *p, size_t *len)
{
	size_t n = strlen(p), i = 0;
	uint64_t h = n * 0x9e3779b97f4a7c15ull, w;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	w = 0;
	memcpy(&w, p + i, n - i);
	h = (h ^ w) * 0x94d049bb133111ebull;
	*len = n;
	return (uint32_t)(h ^ (h >> 32));
}

/* Slot of the string set holding s (hash h, length len), or the empty slot where it would go. */
static size_t str_slot(const struct ember_symcache *c, const char *s, size_t len, uint32_t h)
{
	size_t mask = c->strs_cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct istr *x = c->strs[i];
		if (!x || (x->hash == h && memcmp(x->s, s, len + 1) == 0))
			return i;
	}
}

static bool strs_grow(struct ember_symcache *c)
{
	size_t cap = c->strs_cap ? 2 * c->strs_cap : 1024;
	struct istr **old = c->strs;
	size_t old_cap = c->strs_cap;

	if (!(c->strs = calloc(cap, sizeof(*c->strs)))) {
		c->strs = old;
		return false;
	}
	c->strs_cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i])
			continue;
		size_t j = old[i]->hash & (cap - 1);
		while (c->strs[j])
			j = (j + 1) & (cap - 1);
		c->strs[j] = old[i];
	}
	free(old);
	c->bytes += (cap - old_cap) * sizeof(*c->strs);
	return true;
}

/* The interned copy of s (length *len), one more reference taken; NULL on OOM. */
static const char *str_ref(struct ember_symcache *c, const char *s, size_t *len_out)
{
	size_t len;
	uint32_t h = str_hash(s, &len);

	*len_out = len;
	if ((c->n_strs + 1) * 2 > c->strs_cap && !strs_grow(c))
		return NULL;
	size_t i = str_slot(c, s, len, h);
	if (c->strs[i]) {
		c->strs[i]->refs++;
		return c->strs[i]->s;
	}
	struct istr *x = malloc(sizeof(*x) + len + 1);
	if (!x)
		return NULL;
	x->refs = 1;
	x->hash = h;
	memcpy(x->s, s, len + 1);
	c->strs[i] = x;
	c->n_strs++;
	c->bytes += sizeof(*x) + len + 1;
	return x->s;
}

/* Drop a reference to an interned string; the last one frees it. */
static void str_unref(struct ember_symcache *c, const char *s)
{
	struct istr *x = ISTR_OF(s);
	size_t mask = c->strs_cap - 1, i = x->hash & mask, j;

	if (--x->refs > 0)
		return;
	while (c->strs[i] != x)
		i = (i + 1) & mask;
	c->bytes -= sizeof(*x) + strlen(x->s) + 1;
	free(x);
	c->n_strs--;
	/* backward-shift deletion, as index_delete */
	for (j = i;;) {
		c->strs[i] = NULL;
		for (;;) {
			j = (j + 1) & mask;
			struct istr *y = c->strs[j];
			if (!y)
				return;
			size_t home = y->hash & mask;
			bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
			if (!stays) {
				c->strs[i] = y;
				i = j;
				break;
			}
		}
	}
}

static void chain_unref(struct ember_symcache *c, struct ember_sym_frame *f, int n)
{
	for (int i = 0; i < n; i++) {
		if (f[i].function)
			str_unref(c, f[i].function);
		if (f[i].file)
			str_unref(c, f[i].file);
	}
}

/*
 * A copy of the frames with interned strings; NULL on OOM (-ENOMEM in
 * *err) or when the chain's strings exceed MAX_CHAIN_BYTES (-E2BIG).
 */
static struct ember_sym_frame *copy_chain(struct ember_symcache *c,
					  const struct ember_sym_frame *in, int n, int *err)
{
	struct ember_sym_frame *out = malloc(n * sizeof(*in));
	size_t total = n * sizeof(*in), len;

	*err = -ENOMEM;
	if (!out)
		return NULL;
	for (int i = 0; i < n; i++) {
		out[i] = in[i];
		const char **strs[2] = {&out[i].function, &out[i].file};
		for (int k = 0; k < 2; k++) {
			if (!*strs[k])
				continue;
			const char *p = str_ref(c, *strs[k], &len);
			total += p ? len + 1 : 0;
			if (!p || total > MAX_CHAIN_BYTES) {
				/* undo: the references taken so far */
				if (p)
					str_unref(c, p);
				if (k == 1 && out[i].function)
					str_unref(c, out[i].function);
				chain_unref(c, out, i);
				free(out);
				*err = p ? -E2BIG : -ENOMEM;
				return NULL;
			}
			*strs[k] = p;
		}
	}
	return out;
}

int ember_symcache_put(struct ember_symcache *c, uint64_t module, uint64_t pc,
		       const struct ember_sym_frame *frames, int n)
{
	struct ember_sym_frame *copy = NULL;
	size_t bytes = n > 0 ? n * sizeof(*frames) : 0;
	int err;

	if (n < 0 || n > EMBER_DWARF_MAX_CHAIN)
		return -E2BIG;
	/*
	 * Strings first: a new string's bytes count from now on, and our
	 * references keep them through make_room.
	 */
	if (n > 0 && !(copy = copy_chain(c, frames, n, &err)))
		return err;

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
