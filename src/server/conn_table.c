/*
 * conn_table.c - per-client limits, request deadlines and eviction for the
 * HTTP server's connections (see conn_table.h for the rules and why).
 *
 * The table is small (at most max_connections + CONN_TABLE_SLACK entries,
 * 1024 + 64 by default) and every decision scans it: counting a client's
 * connections on accept, picking the one to evict, finding expired ones on
 * each sweep (4 per second).  A scan of a thousand entries costs about a
 * microsecond, far below what accepting the connection costs, and keeps
 * the table a plain array with no index to keep consistent.  Slots are
 * preallocated, so a flood of connections allocates nothing.
 */
#include "server/conn_table.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAT_ADD(t, field) __atomic_add_fetch(&(t)->stats.field, 1, __ATOMIC_RELAXED)

/* ---- clients ---- */

void conn_client_from_sockaddr(const struct sockaddr *sa, socklen_t len,
			       struct conn_client *out)
{
	memset(out, 0, sizeof(*out));
	if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, &in->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6 &&
		   len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(out->addr, &in6->sin6_addr, 16);
		/* one host usually owns a whole /64: count it as one client */
		if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			memset(out->addr + 8, 0, 8);
	}
	/* anything else (no address) is the all-zero client */
}

bool conn_client_equal(const struct conn_client *a, const struct conn_client *b)
{
	return memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

void conn_client_format(const struct conn_client *c, char *buf, size_t len)
{
	struct in6_addr a;
	char text[INET6_ADDRSTRLEN];

	memcpy(&a, c->addr, sizeof(a));
	if (IN6_IS_ADDR_V4MAPPED(&a)) {
		inet_ntop(AF_INET, c->addr + 12, text, sizeof(text));
		snprintf(buf, len, "%s", text);
	} else {
		inet_ntop(AF_INET6, &a, text, sizeof(text));
		snprintf(buf, len, "%s/64", text);
	}
}

/* ---- the table ---- */

int conn_table_init(struct conn_table *t, const struct conn_limits *lim)
{
	memset(t, 0, sizeof(*t));
	if (!lim->max_connections || !lim->max_per_client || lim->request_deadline_ns <= 0 ||
	    lim->send_deadline_ns <= 0)
		return -EINVAL;
	t->lim = *lim;
	t->cap = (size_t)lim->max_connections + CONN_TABLE_SLACK;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	t->free = calloc(t->cap, sizeof(*t->free));
	t->live = calloc(t->cap, sizeof(*t->live));
	if (!t->slots || !t->free || !t->live) {
		conn_table_free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++)
		t->free[i] = &t->slots[t->cap - 1 - i];
	t->n_free = t->cap;
	return 0;
}

void conn_table_free(struct conn_table *t)
{
	free(t->slots);
	free(t->free);
	free(t->live);
	t->slots = NULL;
	t->free = t->live = NULL;
	t->n_free = t->n_live = 0;
}

size_t conn_table_client_count(const struct conn_table *t, const struct conn_client *client)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n_live; i++)
		if (!t->live[i]->closing && conn_client_equal(&t->live[i]->client, client))
			n++;
	return n;
}

/* The connection that has waited longest for its request, or NULL. */
static struct conn *longest_waiting(const struct conn_table *t)
{
	struct conn *best = NULL;

	for (size_t i = 0; i < t->n_live; i++) {
		struct conn *c = t->live[i];
		if (!c->closing && c->phase == CONN_RECEIVING &&
		    (!best || c->since_ns < best->since_ns))
			best = c;
	}
	return best;
}

enum conn_verdict conn_table_admit(struct conn_table *t, const struct conn_client *client,
				   int *evict_fd)
{
	size_t open = 0, mine = 0;

	*evict_fd = -1;
	for (size_t i = 0; i < t->n_live; i++) {
		if (t->live[i]->closing)
			continue;
		open++;
		if (conn_client_equal(&t->live[i]->client, client))
			mine++;
	}
	if (mine >= t->lim.max_per_client) {
		STAT_ADD(t, refused_per_client);
		return CONN_REFUSE_PER_CLIENT;
	}
	if (open >= t->lim.max_connections) {
		struct conn *victim = longest_waiting(t);
		if (!victim || t->n_free == 0) {
			STAT_ADD(t, refused_full);
			return CONN_REFUSE_FULL;
		}
		victim->closing = true;
		*evict_fd = victim->fd;
		STAT_ADD(t, evicted);
	}
	return CONN_ADMIT;
}

struct conn *conn_table_add(struct conn_table *t, int fd, const struct conn_client *client,
			    int64_t now_ns)
{
	struct conn *c;

	if (t->n_free == 0)
		return NULL;
	c = t->free[--t->n_free];
	*c = (struct conn){.fd = fd, .client = *client, .phase = CONN_RECEIVING,
			   .since_ns = now_ns, .index = t->n_live};
	t->live[t->n_live++] = c;
	STAT_ADD(t, accepted);
	__atomic_store_n(&t->stats.open, (uint64_t)t->n_live, __ATOMIC_RELAXED);
	if (t->n_live > __atomic_load_n(&t->stats.peak_open, __ATOMIC_RELAXED))
		__atomic_store_n(&t->stats.peak_open, (uint64_t)t->n_live, __ATOMIC_RELAXED);
	return c;
}

void conn_table_remove(struct conn_table *t, struct conn *c)
{
	size_t i = c->index;

	if (i >= t->n_live || t->live[i] != c)
		return; /* not ours: nothing to undo */
	t->live[i] = t->live[--t->n_live];
	t->live[i]->index = i;
	t->free[t->n_free++] = c;
	__atomic_store_n(&t->stats.open, (uint64_t)t->n_live, __ATOMIC_RELAXED);
}

void conn_table_set_phase(struct conn *c, enum conn_phase phase, int64_t now_ns)
{
	c->phase = phase;
	c->since_ns = now_ns;
}

size_t conn_table_expired(struct conn_table *t, int64_t now_ns, int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n_live && n < max; i++) {
		struct conn *c = t->live[i];
		int64_t waited = now_ns - c->since_ns;

		if (c->closing)
			continue;
		if (c->phase == CONN_RECEIVING && waited >= t->lim.request_deadline_ns)
			STAT_ADD(t, request_deadline);
		else if (c->phase == CONN_SENDING && waited >= t->lim.send_deadline_ns)
			STAT_ADD(t, send_deadline);
		else
			continue;
		c->closing = true;
		fds[n++] = c->fd;
	}
	return n;
}
