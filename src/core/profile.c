/*
 * profile.c - interning of strings, frames, targets and stacks.
 *
 * Each kind of object lives in a growable array; an open-addressing table of
 * (hash, index) pairs finds an existing equal object in O(1).  Strings are
 * interned too, so equal strings share one pointer and frame/target equality
 * compares pointers instead of bytes.  Stack frame arrays are carved from one
 * growing pool per profile (freed all at once).
 */
#include "core/profile.h"

#include "core/array.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	uint64_t hash; /* 0 = empty */
	uint32_t index;
};

struct table {
	struct slot *slots;
	size_t cap; /* power of two */
	size_t used;
};

struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
};

struct ember_profile_index {
	struct table strings, frames, targets, stacks;
	char **strs;
	size_t n_strs, cap_strs;
	size_t cap_frames, cap_targets, cap_stacks;
	struct chunk *pool;
};

/* ---- hashing ---- */

uint64_t ember_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h ? h : 1;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}

static uint64_t fin(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h ? h : 1;
}

/* ---- open addressing table ---- */

static int table_grow(struct table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	struct slot *s = calloc(cap, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct slot *o = &t->slots[i];
		if (!o->hash)
			continue;
		size_t j = o->hash & (cap - 1);
		while (s[j].hash)
			j = (j + 1) & (cap - 1);
		s[j] = *o;
	}
	free(t->slots);
	t->slots = s;
	t->cap = cap;
	return 0;
}

/*
 * Find the slot for hash where eq(index) holds, or the empty slot where it
 * should go.  Returns NULL on OOM.
 */
static struct slot *table_find(struct table *t, uint64_t hash,
			       bool (*eq)(const struct ember_profile *, uint32_t, const void *),
			       const struct ember_profile *p, const void *key)
{
	if ((t->used + 1) * 4 >= t->cap * 3 && table_grow(t))
		return NULL;
	size_t j = hash & (t->cap - 1);
	while (t->slots[j].hash) {
		if (t->slots[j].hash == hash && eq(p, t->slots[j].index, key))
			return &t->slots[j];
		j = (j + 1) & (t->cap - 1);
	}
	return &t->slots[j];
}


static void *pool_alloc(struct ember_profile_index *ix, size_t size)
{
	size = (size + 7) & ~(size_t)7;
	if (!ix->pool || ix->pool->used + size > ix->pool->cap) {
		size_t cap = size > 65536 ? size : 65536;
		struct chunk *c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = ix->pool;
		c->used = 0;
		c->cap = cap;
		ix->pool = c;
	}
	void *r = ix->pool->data + ix->pool->used;
	ix->pool->used += size;
	return r;
}

/* ---- strings ---- */

static bool str_eq(const struct ember_profile *p, uint32_t i, const void *key)
{
	return strcmp(p->index->strs[i], key) == 0;
}

static const char *intern(struct ember_profile *p, const char *s, bool *oom)
{
	struct ember_profile_index *ix = p->index;

	if (!s)
		return NULL;
	uint64_t h = ember_hash64(s, strlen(s), 0);
	struct slot *slot = table_find(&ix->strings, h, str_eq, p, s);
	if (!slot)
		goto fail;
	if (slot->hash)
		return ix->strs[slot->index];
	if (ember_array_grow(&ix->strs, &ix->cap_strs, ix->n_strs + 1, sizeof(char *)))
		goto fail;
	size_t len = strlen(s) + 1;
	char *copy = pool_alloc(ix, len);
	if (!copy)
		goto fail;
	memcpy(copy, s, len);
	slot->hash = h;
	slot->index = (uint32_t)ix->n_strs;
	ix->strings.used++;
	ix->strs[ix->n_strs++] = copy;
	return copy;
fail:
	*oom = true;
	return NULL;
}

/* ---- frames ---- */

static uint64_t frame_hash(const struct ember_frame *f)
{
	uint64_t h = 0x66726d;
	h = mix(h, (uintptr_t)f->function);
	h = mix(h, (uintptr_t)f->file);
	h = mix(h, f->line);
	h = mix(h, f->start_line);
	h = mix(h, (uintptr_t)f->module);
	h = mix(h, (uintptr_t)f->build_id);
	h = mix(h, f->address);
	h = mix(h, f->flags);
	return fin(h);
}

static bool frame_eq(const struct ember_profile *p, uint32_t i, const void *key)
{
	const struct ember_frame *a = &p->frames[i], *b = key;
	return a->function == b->function && a->file == b->file && a->line == b->line &&
	       a->start_line == b->start_line &&
	       a->module == b->module && a->build_id == b->build_id && a->address == b->address &&
	       a->flags == b->flags;
}

uint32_t ember_profile_frame(struct ember_profile *p, const struct ember_frame *f)
{
	struct ember_profile_index *ix = p->index;
	bool oom = false;
	struct ember_frame k = *f;

	k.function = intern(p, f->function, &oom);
	k.file = intern(p, f->file, &oom);
	k.module = intern(p, f->module, &oom);
	k.build_id = intern(p, f->build_id, &oom);
	if (oom)
		return UINT32_MAX;
	uint64_t h = frame_hash(&k);
	struct slot *slot = table_find(&ix->frames, h, frame_eq, p, &k);
	if (!slot)
		return UINT32_MAX;
	if (slot->hash)
		return slot->index;
	if (ember_array_grow(&p->frames, &ix->cap_frames, p->n_frames + 1, sizeof(k)))
		return UINT32_MAX;
	p->frames[p->n_frames] = k;
	slot->hash = h;
	slot->index = (uint32_t)p->n_frames;
	ix->frames.used++;
	return (uint32_t)p->n_frames++;
}

/* ---- targets ---- */

static uint64_t target_hash(const struct ember_target *t)
{
	uint64_t h = 0x746774;
	h = mix(h, t->pid);
	h = mix(h, (uintptr_t)t->comm);
	h = mix(h, (uintptr_t)t->exe);
	h = mix(h, (uintptr_t)t->service);
	h = mix(h, (uintptr_t)t->version);
	h = mix(h, (uintptr_t)t->build_id);
	h = mix(h, (uintptr_t)t->labels);
	return fin(h);
}

static bool target_eq(const struct ember_profile *p, uint32_t i, const void *key)
{
	const struct ember_target *a = &p->targets[i], *b = key;
	return a->pid == b->pid && a->comm == b->comm && a->exe == b->exe &&
	       a->service == b->service && a->version == b->version &&
	       a->build_id == b->build_id && a->labels == b->labels;
}

uint32_t ember_profile_target(struct ember_profile *p, const struct ember_target *t)
{
	struct ember_profile_index *ix = p->index;
	bool oom = false;
	struct ember_target k = *t;

	k.comm = intern(p, t->comm, &oom);
	k.exe = intern(p, t->exe, &oom);
	k.service = intern(p, t->service, &oom);
	k.version = intern(p, t->version, &oom);
	k.build_id = intern(p, t->build_id, &oom);
	k.labels = intern(p, t->labels, &oom);
	if (oom)
		return UINT32_MAX;
	uint64_t h = target_hash(&k);
	struct slot *slot = table_find(&ix->targets, h, target_eq, p, &k);
	if (!slot)
		return UINT32_MAX;
	if (slot->hash)
		return slot->index;
	if (ember_array_grow(&p->targets, &ix->cap_targets, p->n_targets + 1, sizeof(k)))
		return UINT32_MAX;
	p->targets[p->n_targets] = k;
	slot->hash = h;
	slot->index = (uint32_t)p->n_targets;
	ix->targets.used++;
	return (uint32_t)p->n_targets++;
}

/* ---- stacks ---- */

static bool stack_eq(const struct ember_profile *p, uint32_t i, const void *key)
{
	const struct ember_stack *a = &p->stacks[i], *b = key;
	return a->target == b->target && a->time_ns == b->time_ns && a->depth == b->depth &&
	       memcmp(a->frames, b->frames, a->depth * sizeof(uint32_t)) == 0;
}

int ember_profile_add(struct ember_profile *p, uint32_t target, const uint32_t *frames,
		      uint32_t depth, uint64_t count, int64_t time_ns)
{
	struct ember_profile_index *ix = p->index;
	struct ember_stack k = {.target = target, .depth = depth, .frames = (uint32_t *)frames,
				.count = count, .time_ns = time_ns};
	uint64_t h = mix(mix(0x73746b, target), (uint64_t)time_ns);

	h = fin(mix(h, ember_hash64(frames, depth * sizeof(uint32_t), depth)));
	struct slot *slot = table_find(&ix->stacks, h, stack_eq, p, &k);
	if (!slot)
		return -ENOMEM;
	p->total += count;
	if (slot->hash) {
		p->stacks[slot->index].count += count;
		return 0;
	}
	if (ember_array_grow(&p->stacks, &ix->cap_stacks, p->n_stacks + 1, sizeof(k)))
		goto oom;
	k.frames = pool_alloc(ix, depth * sizeof(uint32_t) + 1);
	if (!k.frames)
		goto oom;
	memcpy(k.frames, frames, depth * sizeof(uint32_t));
	p->stacks[p->n_stacks] = k;
	slot->hash = h;
	slot->index = (uint32_t)p->n_stacks++;
	ix->stacks.used++;
	return 0;
oom:
	p->total -= count;
	return -ENOMEM;
}

/* ---- lifetime and helpers ---- */

struct ember_profile *ember_profile_new(void)
{
	struct ember_profile *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->index = calloc(1, sizeof(*p->index));
	if (!p->index) {
		free(p);
		return NULL;
	}
	return p;
}

void ember_profile_free(struct ember_profile *p)
{
	if (!p)
		return;
	struct ember_profile_index *ix = p->index;
	free(ix->strings.slots);
	free(ix->frames.slots);
	free(ix->targets.slots);
	free(ix->stacks.slots);
	free(ix->strs);
	for (struct chunk *c = ix->pool, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(ix);
	free(p->frames);
	free(p->targets);
	free(p->stacks);
	free(p);
}

const char *ember_basename(const char *path)
{
	const char *s;

	if (!path)
		return "";
	s = strrchr(path, '/');
	return s ? s + 1 : path;
}

const char *ember_frame_name(const struct ember_frame *f, char *buf, size_t size)
{
	if (f->function && f->function[0])
		snprintf(buf, size, "%s", f->function);
	else if (f->module && f->module[0])
		snprintf(buf, size, "%s+0x%" PRIx64, ember_basename(f->module), f->address);
	else
		snprintf(buf, size, "[unknown]");
	return buf;
}

static const char *nonempty(const char *s)
{
	return s && s[0] ? s : NULL;
}

void ember_target_display_names(const struct ember_target *t, const char **service,
				const char **version, char short_id[EMBER_SHORT_BUILD_ID + 1])
{
	*service = nonempty(t->service);
	if (!*service)
		*service = nonempty(t->comm);
	if (!*service && t->exe)
		*service = nonempty(ember_basename(t->exe));
	if (!*service)
		*service = "unknown";

	*version = nonempty(t->version);
	if (!*version && nonempty(t->build_id)) {
		snprintf(short_id, EMBER_SHORT_BUILD_ID + 1, "%s", t->build_id);
		*version = short_id;
	}
	if (!*version)
		*version = "unknown";
}
