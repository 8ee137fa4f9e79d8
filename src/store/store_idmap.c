/*
 * store_idmap.c - a hash map from byte strings to int64, for row-id caches.
 *
 * Ingest maps a frame's or stack's bytes to its row id so that a stack seen
 * before costs no SELECT; query maps row ids to indexes in the profile it
 * builds.  Open addressing with linear probing; keys are copied into one
 * growing arena (slots hold offsets, so the arena may move); the whole map is
 * cleared at once, never entry by entry.
 *
 * The int map does the same for integer keys with a multiplicative hash; a
 * query looks up every frame of every selected stack in one, so it must be
 * cheap: when the largest key is known and small (row ids of a table), keys
 * below it go into a direct array instead (store_intmap_dense).
 */
#include "store/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/profile.h"

static uint64_t key_hash(const void *key, size_t len)
{
	return ember_hash64(key, len, 0x69646d); /* never 0 */
}

static struct store_idmap_slot *find(const struct store_idmap *m, const void *key, size_t len,
				     uint64_t hash)
{
	size_t j = hash & (m->cap - 1);

	while (m->slots[j].hash) {
		struct store_idmap_slot *sl = &m->slots[j];
		if (sl->hash == hash && sl->key_len == len &&
		    memcmp(m->keys + sl->key_off, key, len) == 0)
			return sl;
		j = (j + 1) & (m->cap - 1);
	}
	return &m->slots[j];
}

static int grow_slots(struct store_idmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct store_idmap_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].hash)
			continue;
		size_t j = m->slots[i].hash & (cap - 1);
		while (slots[j].hash)
			j = (j + 1) & (cap - 1);
		slots[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

static int copy_key(struct store_idmap *m, const void *key, size_t len, size_t *off)
{
	if (m->keys_len + len > m->keys_cap) {
		size_t cap = m->keys_cap ? m->keys_cap * 2 : 65536;
		while (cap < m->keys_len + len)
			cap *= 2;
		char *keys = realloc(m->keys, cap);
		if (!keys)
			return -ENOMEM;
		m->keys = keys;
		m->keys_cap = cap;
	}
	memcpy(m->keys + m->keys_len, key, len);
	*off = m->keys_len;
	m->keys_len += len;
	return 0;
}

bool store_idmap_get(const struct store_idmap *m, const void *key, size_t len, int64_t *value)
{
	if (!m->used)
		return false;
	struct store_idmap_slot *sl = find(m, key, len, key_hash(key, len));
	if (!sl->hash)
		return false;
	*value = sl->value;
	return true;
}

int store_idmap_put(struct store_idmap *m, const void *key, size_t len, int64_t value)
{
	uint64_t hash = key_hash(key, len);

	if (len > UINT32_MAX)
		return -EINVAL;
	if ((m->used + 1) * 4 >= m->cap * 3 && grow_slots(m))
		return -ENOMEM;
	struct store_idmap_slot *sl = find(m, key, len, hash);
	if (sl->hash) {
		sl->value = value;
		return 0;
	}
	if (copy_key(m, key, len, &sl->key_off))
		return -ENOMEM;
	sl->hash = hash;
	sl->key_len = (uint32_t)len;
	sl->value = value;
	m->used++;
	return 0;
}

size_t store_idmap_bytes(const struct store_idmap *m)
{
	return m->cap * sizeof(*m->slots) + m->keys_cap;
}

bool store_idmap_would_outgrow(const struct store_idmap *m, size_t len, size_t max_bytes)
{
	size_t slots = m->cap, keys = m->keys_cap;

	if ((m->used + 1) * 4 >= m->cap * 3)
		slots = slots ? slots * 2 : 1024;
	if (m->keys_len + len > keys) {
		keys = keys ? keys * 2 : 65536;
		while (keys < m->keys_len + len)
			keys *= 2;
	}
	return slots * sizeof(*m->slots) + keys > max_bytes;
}

void store_idmap_clear(struct store_idmap *m)
{
	if (m->slots)
		memset(m->slots, 0, m->cap * sizeof(*m->slots));
	m->used = 0;
	m->keys_len = 0;
}

void store_idmap_free(struct store_idmap *m)
{
	free(m->slots);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

/* ---- integer keys ---- */

/* A full 64-bit mix (murmur3's finalizer): keys such as stack << 32 | target
 * must spread over the low bits the table uses. */
static size_t int_slot(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	key *= 0xc4ceb9fe1a85ec53ULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

static struct store_intmap_slot *int_find(const struct store_intmap *m, uint64_t key)
{
	size_t j = int_slot(key, m->cap);

	while (m->slots[j].used && m->slots[j].key != key)
		j = (j + 1) & (m->cap - 1);
	return &m->slots[j];
}

static int int_grow(struct store_intmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct store_intmap_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].used)
			continue;
		size_t j = int_slot(m->slots[i].key, cap);
		while (slots[j].used)
			j = (j + 1) & (cap - 1);
		slots[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int store_intmap_dense(struct store_intmap *m, uint64_t n)
{
	if (n > SIZE_MAX / sizeof(*m->dense))
		return -ENOMEM;
	m->dense = calloc((size_t)n ? (size_t)n : 1, sizeof(*m->dense));
	if (!m->dense)
		return -ENOMEM;
	m->n_dense = (size_t)n;
	return 0;
}

bool store_intmap_get(const struct store_intmap *m, uint64_t key, uint32_t *value)
{
	if (key < m->n_dense) {
		uint32_t v = m->dense[key];
		*value = v - 1;
		return v != 0;
	}
	if (!m->cap)
		return false;
	struct store_intmap_slot *sl = int_find(m, key);
	if (!sl->used)
		return false;
	*value = sl->value;
	return true;
}

int store_intmap_put(struct store_intmap *m, uint64_t key, uint32_t value)
{
	if (key < m->n_dense) {
		m->dense[key] = value + 1;
		return 0;
	}
	if ((m->used + 1) * 4 >= m->cap * 3 && int_grow(m))
		return -ENOMEM;
	struct store_intmap_slot *sl = int_find(m, key);
	if (!sl->used) {
		sl->used = 1;
		sl->key = key;
		m->used++;
	}
	sl->value = value;
	return 0;
}

void store_intmap_free(struct store_intmap *m)
{
	free(m->slots);
	free(m->dense);
	memset(m, 0, sizeof(*m));
}
