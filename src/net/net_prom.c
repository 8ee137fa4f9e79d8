/*
 * net_prom.c - Prometheus totals with a top-N peer label (see net_prom.h).
 *
 * Small arrays and linear searches: at most 256 groups of at most 4N
 * peers, touched a few hundred times a second.  The ranking runs per
 * group at most once a minute, when that group gets an addition.
 */
#include "net/net_prom.h"

#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct ember_net_prom_values) % sizeof(uint64_t) == 0,
	       "ember_net_prom_values is uint64_t counters only");

#define MAX_GROUPS 256
#define MAX_REASONS 32
#define RANK_EVERY_NS (60LL * 1000000000LL)
#define HALF_LIFE_S 300.0
#define CONNECTION_WEIGHT 1000.0 /* a connection ranks like 1000 bytes */

struct prom_peer {
	char label[EMBER_NET_ADDR_LEN + EMBER_NET_NAME_LEN];
	int direction;
	int named;
	double rate;         /* decayed traffic */
	int64_t rate_ns;     /* when rate was last decayed */
	struct ember_net_prom_values v; /* gained while named */
};

struct prom_drop {
	char reason[EMBER_NET_REASON_LEN];
	uint64_t count;
};

struct prom_group {
	char service[EMBER_NET_NAME_LEN], version[EMBER_NET_NAME_LEN];
	struct prom_peer *peers; /* max_peers */
	unsigned n_peers, n_named;
	int64_t ranked_ns;
	struct ember_net_prom_values other[2]; /* by direction */
	struct prom_drop drops[MAX_REASONS];
	unsigned n_drops;
};

struct ember_net_prom {
	pthread_mutex_t lock;
	unsigned top, max_peers;
	struct prom_group *groups[MAX_GROUPS];
	unsigned n_groups;
	uint64_t folded; /* additions that went to "other" */
};

uint64_t ember_net_prom_le_us(unsigned k)
{
	return 25ull << k;
}

struct ember_net_prom *ember_net_prom_new(unsigned top_peers)
{
	struct ember_net_prom *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->top = top_peers ? top_peers : 20;
	p->max_peers = 4 * p->top;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void ember_net_prom_free(struct ember_net_prom *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n_groups; i++) {
		free(p->groups[i]->peers);
		free(p->groups[i]);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static struct prom_group *group_of(struct ember_net_prom *p, const char *service,
				   const char *version)
{
	for (unsigned i = 0; i < p->n_groups; i++)
		if (strcmp(p->groups[i]->service, service) == 0 &&
		    strcmp(p->groups[i]->version, version) == 0)
			return p->groups[i];
	if (p->n_groups == MAX_GROUPS - 1 && strcmp(service, "other") != 0)
		return group_of(p, "other", ""); /* the last slot is the catch-all */
	struct prom_group *g = calloc(1, sizeof(*g));
	if (!g || !(g->peers = calloc(p->max_peers, sizeof(*g->peers)))) {
		free(g);
		return NULL;
	}
	snprintf(g->service, sizeof(g->service), "%s", service);
	snprintf(g->version, sizeof(g->version), "%s", version);
	p->groups[p->n_groups++] = g;
	return g;
}

static void prom_values_add(struct ember_net_prom_values *v, const struct ember_net_prom_values *d)
{
	const uint64_t *src = (const uint64_t *)d;
	uint64_t *dst = (uint64_t *)v;

	/* the struct is nothing but uint64_t counters */
	for (size_t i = 0; i < sizeof(*v) / sizeof(uint64_t); i++)
		dst[i] += src[i];
}

static void decay(struct prom_peer *pp, int64_t now_ns)
{
	if (now_ns > pp->rate_ns && pp->rate_ns)
		pp->rate *= exp2(-(double)(now_ns - pp->rate_ns) / 1e9 / HALF_LIFE_S);
	pp->rate_ns = now_ns;
}

static int by_rate(const void *a, const void *b)
{
	const struct prom_peer *x = a, *y = b;

	return x->rate < y->rate ? 1 : x->rate > y->rate ? -1 : 0;
}

/* Name the top N peers by their decayed rate. */
static void rank(struct ember_net_prom *p, struct prom_group *g, int64_t now_ns)
{
	for (unsigned i = 0; i < g->n_peers; i++)
		decay(&g->peers[i], now_ns);
	if (g->n_peers)
		qsort(g->peers, g->n_peers, sizeof(*g->peers), by_rate);
	g->n_named = 0;
	for (unsigned i = 0; i < g->n_peers; i++) {
		struct prom_peer *pp = &g->peers[i];
		if (pp->named && i >= p->top) {
			/* demoted: what it counted moves to "other", so every sum over
			 * peers stays what it was; its own series ends */
			prom_values_add(&g->other[pp->direction], &pp->v);
			memset(&pp->v, 0, sizeof(pp->v));
		}
		pp->named = i < p->top;
		g->n_named += pp->named;
	}
	g->ranked_ns = now_ns;
}

/* The tracked peer, added (evicting the slowest unnamed one when full); NULL if none. */
static struct prom_peer *peer_of(struct ember_net_prom *p, struct prom_group *g, int direction,
				 const char *label, int64_t now_ns)
{
	struct prom_peer *pp = NULL;

	for (unsigned i = 0; i < g->n_peers; i++)
		if (g->peers[i].direction == direction && strcmp(g->peers[i].label, label) == 0)
			return &g->peers[i];
	if (g->n_peers < p->max_peers) {
		pp = &g->peers[g->n_peers++];
	} else {
		for (unsigned i = 0; i < g->n_peers; i++) {
			struct prom_peer *c = &g->peers[i];
			if (c->named)
				continue;
			decay(c, now_ns);
			if (!pp || c->rate < pp->rate)
				pp = c;
		}
		if (!pp)
			return NULL;
	}
	memset(pp, 0, sizeof(*pp));
	snprintf(pp->label, sizeof(pp->label), "%s", label);
	pp->direction = direction;
	pp->rate_ns = now_ns;
	if (g->n_named < p->top) { /* room at the top: named from the start */
		pp->named = 1;
		g->n_named++;
	}
	return pp;
}

static void hist_add(struct ember_net_prom_hist *ph, const struct ember_hist *h)
{
	for (unsigned k = 0; k < EMBER_NET_PROM_LE; k++)
		ph->le[k] += ember_hist_count_le(h, ember_net_prom_le_us(k));
	ph->count += h->count;
	ph->sum_us += h->sum_us;
}

static void values_add(struct ember_net_prom_values *v, const struct ember_net_values *d)
{
	v->bytes_sent += d->bytes_sent;
	v->bytes_recv += d->bytes_recv;
	v->connects += d->connects;
	v->accepts += d->accepts;
	v->closes += d->closes;
	v->failures += d->failures;
	v->resets_sent += d->resets_sent;
	v->resets_recv += d->resets_recv;
	v->retransmits += d->retransmits;
	hist_add(&v->rtt, &d->rtt);
	hist_add(&v->connect, &d->connect);
}

void ember_net_prom_add(struct ember_net_prom *p, const char *service, const char *version,
			int direction, const char *peer, const struct ember_net_values *d,
			int64_t now_ns)
{
	direction = direction ? 1 : 0;
	pthread_mutex_lock(&p->lock);
	struct prom_group *g = group_of(p, service, version);
	if (!g)
		goto out;
	if (now_ns - g->ranked_ns >= RANK_EVERY_NS)
		rank(p, g, now_ns);
	struct prom_peer *pp = peer_of(p, g, direction, peer, now_ns);
	if (pp) {
		decay(pp, now_ns);
		pp->rate += (double)(d->bytes_sent + d->bytes_recv) +
			    CONNECTION_WEIGHT * (double)(d->connects + d->accepts);
	}
	if (pp && pp->named) {
		values_add(&pp->v, d);
	} else {
		values_add(&g->other[direction], d);
		p->folded++;
	}
out:
	pthread_mutex_unlock(&p->lock);
}

void ember_net_prom_drop(struct ember_net_prom *p, const char *service, const char *version,
			 const char *reason, uint64_t count)
{
	pthread_mutex_lock(&p->lock);
	struct prom_group *g = group_of(p, service, version);
	if (g) {
		unsigned i;
		for (i = 0; i < g->n_drops; i++)
			if (strcmp(g->drops[i].reason, reason) == 0)
				break;
		if (i == g->n_drops && g->n_drops < MAX_REASONS) {
			snprintf(g->drops[i].reason, sizeof(g->drops[i].reason), "%s", reason);
			g->n_drops++;
		} else if (i == g->n_drops) {
			i = MAX_REASONS - 1; /* more reasons than slots: the last one takes them */
		}
		g->drops[i].count += count;
	}
	pthread_mutex_unlock(&p->lock);
}

static bool values_empty(const struct ember_net_prom_values *v)
{
	return !(v->bytes_sent | v->bytes_recv | v->connects | v->accepts | v->closes |
		 v->failures | v->resets_sent | v->resets_recv | v->retransmits | v->rtt.count |
		 v->connect.count);
}

void ember_net_prom_each(struct ember_net_prom *p,
			 void (*fn)(const char *service, const char *version, int direction,
				    const char *peer, const struct ember_net_prom_values *v,
				    void *arg),
			 void (*drop_fn)(const char *service, const char *version,
					 const char *reason, uint64_t count, void *arg),
			 void *arg)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->n_groups; i++) {
		struct prom_group *g = p->groups[i];
		for (unsigned j = 0; j < g->n_peers; j++)
			if (g->peers[j].named && !values_empty(&g->peers[j].v))
				fn(g->service, g->version, g->peers[j].direction, g->peers[j].label,
				   &g->peers[j].v, arg);
		for (int d = 0; d < 2; d++)
			if (!values_empty(&g->other[d]))
				fn(g->service, g->version, d, "other", &g->other[d], arg);
	}
	for (unsigned i = 0; drop_fn && i < p->n_groups; i++)
		for (unsigned j = 0; j < p->groups[i]->n_drops; j++)
			drop_fn(p->groups[i]->service, p->groups[i]->version,
				p->groups[i]->drops[j].reason, p->groups[i]->drops[j].count, arg);
	pthread_mutex_unlock(&p->lock);
}

void ember_net_prom_counts(struct ember_net_prom *p, uint64_t *series, uint64_t *folded_adds)
{
	uint64_t n = 0;

	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->n_groups; i++) {
		for (unsigned j = 0; j < p->groups[i]->n_peers; j++)
			n += p->groups[i]->peers[j].named && !values_empty(&p->groups[i]->peers[j].v);
		n += !values_empty(&p->groups[i]->other[0]) + !values_empty(&p->groups[i]->other[1]);
	}
	*series = n;
	*folded_adds = p->folded;
	pthread_mutex_unlock(&p->lock);
}
