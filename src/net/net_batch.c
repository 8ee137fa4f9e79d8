/*
 * net_batch.c - interning peers and (bucket, target, peer) rows of a batch.
 *
 * Two open-addressing tables of 64-bit hashes -> index, linear probing,
 * grown at half full.  A hash match is confirmed against the stored peer
 * or row, so a collision costs a probe, never a wrong merge.
 */
#include "net/net_batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"

#define DEFAULT_MAX_ROWS 100000

struct slot {
	uint64_t hash;
	uint32_t index; /* UINT32_MAX = empty */
};

struct table {
	struct slot *slots;
	size_t cap, used; /* cap a power of two */
};

struct ember_net_batch_index {
	struct table peers, rows;
};

static int table_grow(struct table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct slot *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].index = UINT32_MAX;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].index == UINT32_MAX)
			continue;
		size_t j = t->slots[i].hash & (cap - 1);
		while (s[j].index != UINT32_MAX)
			j = (j + 1) & (cap - 1);
		s[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = s;
	t->cap = cap;
	return 0;
}

/*
 * Find the index under hash for which same(index) holds; on a miss,
 * *slot is where to insert it.  Returns UINT32_MAX on a miss.
 */
static uint32_t table_find(struct table *t, uint64_t hash, bool (*same)(const void *, uint32_t),
			   const void *ctx, struct slot **slot)
{
	size_t i = hash & (t->cap - 1);

	for (;; i = (i + 1) & (t->cap - 1)) {
		struct slot *s = &t->slots[i];
		if (s->index == UINT32_MAX) {
			*slot = s;
			return UINT32_MAX;
		}
		if (s->hash == hash && same(ctx, s->index))
			return s->index;
	}
}

struct ember_net_batch *ember_net_batch_new(size_t max_rows)
{
	struct ember_net_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->max_rows = max_rows ? max_rows : DEFAULT_MAX_ROWS;
	b->targets = ember_profile_new();
	b->index = calloc(1, sizeof(*b->index));
	if (!b->targets || !b->index || table_grow(&b->index->peers) ||
	    table_grow(&b->index->rows)) {
		ember_net_batch_free(b);
		return NULL;
	}
	return b;
}

void ember_net_values_free(struct ember_net_values *v)
{
	ember_hist_free(&v->rtt);
	ember_hist_free(&v->connect);
}

void ember_net_batch_free(struct ember_net_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_rows; i++)
		ember_net_values_free(&b->rows[i].v);
	ember_profile_free(b->targets);
	free(b->peers);
	free(b->rows);
	free(b->drops);
	if (b->index) {
		free(b->index->peers.slots);
		free(b->index->rows.slots);
		free(b->index);
	}
	free(b);
}

bool ember_net_batch_empty(const struct ember_net_batch *b)
{
	return !b || b->n_rows == 0;
}

static uint64_t peer_hash(const struct ember_net_peer *p)
{
	uint64_t h = ember_hash64(p->addr, strnlen(p->addr, sizeof(p->addr)), p->port);

	h = ember_hash64(p->service, strnlen(p->service, sizeof(p->service)), h);
	return ember_hash64(&p->direction, 1, h) | 1;
}

struct peer_ctx {
	const struct ember_net_batch *b;
	const struct ember_net_peer *p;
};

static bool same_peer(const void *ctx, uint32_t i)
{
	const struct peer_ctx *c = ctx;
	const struct ember_net_peer *a = &c->b->peers[i], *p = c->p;

	return a->direction == p->direction && a->port == p->port &&
	       strcmp(a->addr, p->addr) == 0 && strcmp(a->service, p->service) == 0;
}

uint32_t ember_net_batch_peer(struct ember_net_batch *b, const struct ember_net_peer *p)
{
	struct peer_ctx ctx = {b, p};
	uint64_t h = peer_hash(p);
	struct slot *slot;
	uint32_t i = table_find(&b->index->peers, h, same_peer, &ctx, &slot);

	if (i != UINT32_MAX)
		return i;
	if (b->n_peers >= b->max_rows ||
	    ember_array_grow(&b->peers, &b->cap_peers, b->n_peers + 1, sizeof(*b->peers))) {
		b->overflow++;
		return UINT32_MAX;
	}
	i = (uint32_t)b->n_peers++;
	b->peers[i] = *p;
	b->peers[i].addr[sizeof(p->addr) - 1] = '\0';
	b->peers[i].service[sizeof(p->service) - 1] = '\0';
	slot->hash = h;
	slot->index = i;
	if (++b->index->peers.used * 2 > b->index->peers.cap)
		table_grow(&b->index->peers); /* on failure the table stays, fuller */
	return i;
}

struct row_ctx {
	const struct ember_net_batch *b;
	int64_t bucket;
	uint32_t target, peer;
};

static bool same_row(const void *ctx, uint32_t i)
{
	const struct row_ctx *c = ctx;
	const struct ember_net_batch_row *r = &c->b->rows[i];

	return r->bucket_ns == c->bucket && r->target == c->target && r->peer == c->peer;
}

struct ember_net_batch_row *ember_net_batch_row(struct ember_net_batch *b, int64_t bucket_ns,
						uint32_t target, uint32_t peer)
{
	struct row_ctx ctx = {b, bucket_ns, target, peer};
	uint64_t key[2] = {(uint64_t)bucket_ns, ((uint64_t)target << 32) | peer};
	uint64_t h = ember_hash64(key, sizeof(key), 0) | 1;
	struct slot *slot;
	uint32_t i = table_find(&b->index->rows, h, same_row, &ctx, &slot);

	if (i != UINT32_MAX)
		return &b->rows[i];
	if (b->n_rows >= b->max_rows ||
	    ember_array_grow(&b->rows, &b->cap_rows, b->n_rows + 1, sizeof(*b->rows))) {
		b->overflow++;
		return NULL;
	}
	i = (uint32_t)b->n_rows++;
	memset(&b->rows[i], 0, sizeof(b->rows[i]));
	b->rows[i].bucket_ns = bucket_ns;
	b->rows[i].target = target;
	b->rows[i].peer = peer;
	slot->hash = h;
	slot->index = i;
	if (++b->index->rows.used * 2 > b->index->rows.cap)
		table_grow(&b->index->rows);
	return &b->rows[i];
}

int ember_net_batch_drop(struct ember_net_batch *b, uint32_t row, const char *reason,
			 uint64_t count)
{
	for (size_t i = b->n_drops; i-- > 0;) {
		struct ember_net_batch_drop *d = &b->drops[i];
		if (d->row == row && strcmp(d->reason, reason) == 0) {
			d->count += count;
			return 0;
		}
		if (d->row != row)
			break; /* drops of one row are added together, at the end */
	}
	if (b->n_drops >= b->max_rows) {
		b->overflow++;
		return -E2BIG;
	}
	if (ember_array_grow(&b->drops, &b->cap_drops, b->n_drops + 1, sizeof(*b->drops))) {
		b->overflow++;
		return -ENOMEM;
	}
	struct ember_net_batch_drop *d = &b->drops[b->n_drops++];
	d->row = row;
	snprintf(d->reason, sizeof(d->reason), "%s", reason);
	d->count = count;
	return 0;
}

int ember_net_values_add(struct ember_net_values *dst, const struct ember_net_values *src)
{
	if (ember_hist_merge(&dst->rtt, &src->rtt) || ember_hist_merge(&dst->connect, &src->connect))
		return -ENOMEM;
	dst->bytes_sent += src->bytes_sent;
	dst->bytes_recv += src->bytes_recv;
	dst->sends += src->sends;
	dst->recvs += src->recvs;
	dst->connects += src->connects;
	dst->accepts += src->accepts;
	dst->closes += src->closes;
	dst->failures += src->failures;
	dst->resets_sent += src->resets_sent;
	dst->resets_recv += src->resets_recv;
	dst->retransmits += src->retransmits;
	dst->drops += src->drops;
	return 0;
}

bool ember_net_values_zero(const struct ember_net_values *v)
{
	return !(v->bytes_sent | v->bytes_recv | v->sends | v->recvs | v->connects | v->accepts |
		 v->closes | v->failures | v->resets_sent | v->resets_recv | v->retransmits |
		 v->drops | v->rtt.count | v->connect.count);
}
