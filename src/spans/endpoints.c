/*
 * endpoints.c - the bounded table of endpoint names (endpoints.h).
 *
 * Open addressing on a hash of (proto, name), sized at twice the maximum
 * so it never needs to grow; names live in one array indexed by id that
 * readers on other threads see through an acquire load of the count.
 */
#include "spans/endpoints.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/profile.h"

struct ember_endpoints {
	size_t max, cap;      /* cap: slots, a power of two >= 2 * max */
	uint32_t *slots;      /* id + 1, 0 = empty */
	char **names;         /* [id] */
	uint8_t *protos;      /* [id] */
	uint64_t *hashes;     /* [id] */
	size_t count;         /* published with release */
	uint64_t overflow;
};

struct ember_endpoints *ember_endpoints_new(size_t max)
{
	struct ember_endpoints *e = calloc(1, sizeof(*e));
	size_t cap = 16;

	if (!e)
		return NULL;
	if (max < 2)
		max = 2;
	while (cap < max * 2)
		cap *= 2;
	e->max = max;
	e->cap = cap;
	e->slots = calloc(cap, sizeof(*e->slots));
	e->names = calloc(max, sizeof(*e->names));
	e->protos = calloc(max, sizeof(*e->protos));
	e->hashes = calloc(max, sizeof(*e->hashes));
	if (!e->slots || !e->names || !e->protos || !e->hashes ||
	    !(e->names[0] = strdup("other"))) {
		ember_endpoints_free(e);
		return NULL;
	}
	e->count = 1; /* EMBER_ENDPOINT_OTHER */
	return e;
}

void ember_endpoints_free(struct ember_endpoints *e)
{
	if (!e)
		return;
	if (e->names)
		for (size_t i = 0; i < e->max; i++)
			free(e->names[i]);
	free(e->names);
	free(e->slots);
	free(e->protos);
	free(e->hashes);
	free(e);
}

/* The slot holding (proto, name), or the empty slot where it would go. */
static size_t slot_of(const struct ember_endpoints *e, uint8_t proto, const char *name,
		      uint64_t *hash)
{
	uint64_t h = ember_hash64(name, strlen(name), proto);
	size_t i = (size_t)h & (e->cap - 1);

	*hash = h;
	for (;; i = (i + 1) & (e->cap - 1)) {
		uint32_t s = e->slots[i];
		if (!s)
			return i;
		uint32_t id = s - 1;
		if (e->hashes[id] == h && e->protos[id] == proto && strcmp(e->names[id], name) == 0)
			return i;
	}
}

uint32_t ember_endpoints_find(const struct ember_endpoints *e, uint8_t proto, const char *name)
{
	uint64_t h;
	uint32_t s = e->slots[slot_of(e, proto, name, &h)];

	return s ? s - 1 : UINT32_MAX;
}

uint32_t ember_endpoints_intern(struct ember_endpoints *e, uint8_t proto, const char *name)
{
	uint64_t h;
	size_t i = slot_of(e, proto, name, &h);

	if (e->slots[i])
		return e->slots[i] - 1;
	if (e->count >= e->max) {
		e->overflow++;
		return EMBER_ENDPOINT_OTHER;
	}
	uint32_t id = (uint32_t)e->count;
	char *copy = strdup(name);
	if (!copy) {
		e->overflow++;
		return EMBER_ENDPOINT_OTHER;
	}
	e->names[id] = copy;
	e->protos[id] = proto;
	e->hashes[id] = h;
	e->slots[i] = id + 1;
	__atomic_store_n(&e->count, e->count + 1, __ATOMIC_RELEASE);
	return id;
}

const char *ember_endpoints_name(const struct ember_endpoints *e, uint32_t id)
{
	if (id >= __atomic_load_n(&e->count, __ATOMIC_ACQUIRE))
		return NULL;
	return e->names[id];
}

uint8_t ember_endpoints_proto(const struct ember_endpoints *e, uint32_t id)
{
	if (id >= __atomic_load_n(&e->count, __ATOMIC_ACQUIRE))
		return 0;
	return e->protos[id];
}

size_t ember_endpoints_count(const struct ember_endpoints *e)
{
	return __atomic_load_n(&e->count, __ATOMIC_ACQUIRE);
}

uint64_t ember_endpoints_overflow(const struct ember_endpoints *e)
{
	return e->overflow;
}
