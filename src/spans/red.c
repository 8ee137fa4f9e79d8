/*
 * red.c - span aggregation per bucket and the slow-span list (red.h).
 *
 * Cells live in an array grown on demand, found through an open-addressing
 * table of indexes sized for max_cells; a take hands the array over and
 * starts an empty one.  Peers are interned in an ember_endpoints table
 * (protocol 0), which gives stable ids readable from any thread.
 */
#include "spans/red.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/profile.h"
#include "spans/endpoints.h"

struct ember_red {
	pthread_mutex_t lock;
	size_t max_cells;
	uint64_t slow_ns;
	struct ember_red_cell *cells;
	size_t n_cells, cap_cells;
	uint32_t *index;      /* cell + 1, 0 = empty; index_cap slots */
	size_t index_cap;
	struct ember_red_slow *slow;
	size_t n_slow;
	struct ember_red_comm *comms;
	size_t n_comms, cap_comms;
	struct ember_endpoints *peers;
	struct ember_red_stats st;
	bool mutex_ok;
};

const double ember_le_seconds[EMBER_LE_N] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
					     0.025,  0.05,  0.1,    0.25,  0.5,
					     1,      2.5,   5,      10};

unsigned ember_le_index(uint64_t ns)
{
	unsigned i = 0;

	while (i < EMBER_LE_N && (double)ns > ember_le_seconds[i] * 1e9)
		i++;
	return i;
}

struct ember_red *ember_red_new(size_t max_cells, uint64_t slow_ns)
{
	struct ember_red *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->max_cells = max_cells ? max_cells : EMBER_RED_DEFAULT_CELLS;
	r->slow_ns = slow_ns;
	r->index_cap = 16;
	while (r->index_cap < r->max_cells * 2)
		r->index_cap *= 2;
	r->index = calloc(r->index_cap, sizeof(*r->index));
	r->slow = calloc(EMBER_RED_MAX_SLOW, sizeof(*r->slow));
	r->peers = ember_endpoints_new(EMBER_RED_MAX_PEERS);
	if (!r->index || !r->slow || !r->peers) {
		ember_red_free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->mutex_ok = true;
	return r;
}

static void slow_free(struct ember_red_slow *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].text);
		free(s[i].err);
	}
}

static void cells_free(struct ember_red_cell *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ember_hist_free(&c[i].hist);
	free(c);
}

void ember_red_free(struct ember_red *r)
{
	if (!r)
		return;
	if (r->slow)
		slow_free(r->slow, r->n_slow);
	free(r->slow);
	cells_free(r->cells, r->n_cells);
	free(r->index);
	free(r->comms);
	ember_endpoints_free(r->peers);
	if (r->mutex_ok)
		pthread_mutex_destroy(&r->lock);
	free(r);
}

const char *ember_red_peer(const struct ember_red *r, uint32_t id)
{
	const char *n = ember_endpoints_name(r->peers, id);
	return n ? n : "other";
}

static bool key_eq(const struct ember_red_key *a, const struct ember_red_key *b)
{
	return a->bucket_ns == b->bucket_ns && a->pid == b->pid && a->endpoint == b->endpoint &&
	       a->peer == b->peer && a->status == b->status && a->proto == b->proto &&
	       a->role == b->role;
}

/* The cell of key, made if need be; NULL when full. */
static struct ember_red_cell *cell_of(struct ember_red *r, const struct ember_red_key *key)
{
	uint64_t h = ember_hash64(key, sizeof(*key), 7);
	size_t i = (size_t)h & (r->index_cap - 1);

	for (;; i = (i + 1) & (r->index_cap - 1)) {
		uint32_t v = r->index[i];
		if (!v)
			break;
		if (key_eq(&r->cells[v - 1].key, key))
			return &r->cells[v - 1];
	}
	if (r->n_cells >= r->max_cells ||
	    ember_array_grow(&r->cells, &r->cap_cells, r->n_cells + 1, sizeof(*r->cells)))
		return NULL;
	struct ember_red_cell *c = &r->cells[r->n_cells];
	memset(c, 0, sizeof(*c));
	c->key = *key;
	r->index[i] = (uint32_t)++r->n_cells;
	r->st.cells++;
	return c;
}

static void note_comm(struct ember_red *r, uint32_t pid, const char *comm)
{
	for (size_t i = r->n_comms; i-- > 0;)
		if (r->comms[i].pid == pid)
			return;
	if (r->n_comms >= r->max_cells ||
	    ember_array_grow(&r->comms, &r->cap_comms, r->n_comms + 1, sizeof(*r->comms)))
		return;
	r->comms[r->n_comms].pid = pid;
	snprintf(r->comms[r->n_comms].comm, sizeof(r->comms[0].comm), "%s", comm ? comm : "");
	r->n_comms++;
}

static void keep_slow(struct ember_red *r, const struct ember_span *s, int64_t wall_start,
		      uint64_t dur, uint16_t status)
{
	struct ember_red_slow *slot;

	if (r->n_slow < EMBER_RED_MAX_SLOW) {
		slot = &r->slow[r->n_slow++];
	} else {
		slot = &r->slow[0];
		for (size_t i = 1; i < r->n_slow; i++)
			if (r->slow[i].duration_ns < slot->duration_ns)
				slot = &r->slow[i];
		r->st.slow_dropped++;
		if (slot->duration_ns >= dur)
			return;
		slow_free(slot, 1);
	}
	memset(slot, 0, sizeof(*slot));
	slot->time_ns = wall_start;
	slot->duration_ns = dur;
	slot->pid = s->pid;
	slot->tid = s->tid;
	slot->endpoint = s->endpoint;
	slot->status = status;
	slot->proto = s->proto;
	slot->role = s->role;
	slot->error = s->error;
	slot->tls = s->tls;
	snprintf(slot->peer, sizeof(slot->peer), "%s", s->peer ? s->peer : "");
	snprintf(slot->comm, sizeof(slot->comm), "%s", s->comm ? s->comm : "");
	slot->text = s->text ? strdup(s->text) : NULL;
	slot->err = s->err ? strdup(s->err) : NULL;
	r->st.slow++;
}

void ember_red_add(struct ember_red *r, const struct ember_span *s, int64_t wall_offset_ns)
{
	uint64_t dur = s->end_ns > s->start_ns ? (uint64_t)(s->end_ns - s->start_ns) : 0;
	int64_t wall = s->start_ns + wall_offset_ns;
	int64_t bucket = wall - ((wall % EMBER_RED_BUCKET_NS) + EMBER_RED_BUCKET_NS) % EMBER_RED_BUCKET_NS;
	uint16_t status = s->proto == EMBER_PROTO_HTTP ? s->status
			  : s->error                  ? EMBER_STATUS_ERROR
						      : EMBER_STATUS_OK;

	pthread_mutex_lock(&r->lock);
	r->st.spans++;
	uint32_t peer = ember_endpoints_intern(r->peers, 0, s->peer && s->peer[0] ? s->peer : "unknown");
	struct ember_red_key key = {.bucket_ns = bucket, .pid = s->pid, .endpoint = s->endpoint,
				    .peer = peer, .status = status, .proto = s->proto,
				    .role = s->role};
	struct ember_red_cell *c = cell_of(r, &key);
	if (!c) {
		r->st.cells_full++;
		key.endpoint = EMBER_ENDPOINT_OTHER;
		key.peer = EMBER_RED_PEER_OTHER;
		c = cell_of(r, &key);
	}
	if (c) {
		c->count++;
		c->errors += s->error;
		c->tls += s->tls;
		c->dur_sum_ns += dur;
		if (dur > c->dur_max_ns)
			c->dur_max_ns = dur;
		c->req_bytes += s->req_bytes;
		c->resp_bytes += s->resp_bytes;
		unsigned le = ember_le_index(dur);
		if (le < EMBER_LE_N)
			c->le[le]++;
		if (ember_hist_add(&c->hist, dur / 1000, 1))
			r->st.hist_nomem++; /* the quantiles miss it; the counts do not */
		note_comm(r, s->pid, s->comm);
	} else {
		r->st.dropped++;
	}
	if (r->slow_ns && dur >= r->slow_ns)
		keep_slow(r, s, wall, dur, status);
	pthread_mutex_unlock(&r->lock);
}

int ember_red_take(struct ember_red *r, struct ember_red_batch *out)
{
	struct ember_red_slow *fresh = calloc(EMBER_RED_MAX_SLOW, sizeof(*fresh));

	memset(out, 0, sizeof(*out));
	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	out->cells = r->cells;
	out->n_cells = r->n_cells;
	out->slow = r->slow;
	out->n_slow = r->n_slow;
	out->comms = r->comms;
	out->n_comms = r->n_comms;
	r->cells = NULL;
	r->n_cells = r->cap_cells = 0;
	r->comms = NULL;
	r->n_comms = r->cap_comms = 0;
	r->slow = fresh;
	r->n_slow = 0;
	memset(r->index, 0, r->index_cap * sizeof(*r->index));
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void ember_red_batch_free(struct ember_red_batch *b)
{
	if (b->slow)
		slow_free(b->slow, b->n_slow);
	free(b->slow);
	cells_free(b->cells, b->n_cells);
	free(b->comms);
	memset(b, 0, sizeof(*b));
}

void ember_red_stats(struct ember_red *r, struct ember_red_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->st;
	st->peers_full = ember_endpoints_overflow(r->peers);
	pthread_mutex_unlock(&r->lock);
}
