/*
 * net_collector.c - attributing the kernel's TCP counters to processes and peers.
 *
 * The kernel counts per (process, connection 4-tuple); a row without a
 * process (tgid 0: an accepted connection's events, in softirq, before the
 * server touched it) gets the connection's owner as user space knows it.
 * One drain, in order:
 *
 *   1. flip and read the kernel counters and drops;
 *   2. read the socket table: listeners by (netns, port), and every other
 *      socket's role, owner and namespace into the connection table
 *      (keyed by 4-tuple, kept a while after the socket is gone, so rows
 *      drained after a short connection ended still find it); sockets the
 *      kernel marked destroyed are deleted from its table at the next drain;
 *   3. rows with a process teach the table owners and roles (an accept
 *      makes the accepting side, an established connect the connecting
 *      one);
 *   4. every row becomes a delta of (10 s bucket, target, peer) in the
 *      batch and of the Prometheus totals;
 *   5. housekeeping: the connection table forgets connections idle for two
 *      minutes, and exited processes are handed to forget_fn.
 *
 * Owners: the row's process; else the connection's owner; else the
 * process listening on the connection's local port.
 *
 * Peers.  Addresses are compared as IPv6 (IPv4 as ::ffff:a.b.c.d), so a
 * dual-stack server's v4-mapped sockets meet their IPv4 clients.  The other
 * end of a connection is the connection with the reversed 4-tuple; for
 * loopback addresses it must also live in the same network namespace
 * (127.0.0.1 in a container is not the host's).  A connection's direction
 * comes from its events or role; for one opened before Ember started, from
 * a listening port, its other end, or the ephemeral port range.
 */
#include "net/net_collector.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "core/clock.h"
#include "core/log.h"

#define CONN_IDLE_DRAINS 120
#define SWEEP_EVERY_DRAINS 10
#define FORGET_EVERY_DRAINS 30
#define MAX_REASONS 1024
#define MAX_PIDS 65536
#define MAX_DELETES 65536
#define DEFAULT_BUCKET_NS (10LL * 1000000000LL)

/* A 4-tuple, addresses as IPv6. */
struct tuple {
	uint8_t saddr[16], daddr[16];
	uint16_t sport, dport;
};

struct conn {
	struct tuple t;
	uint64_t hash;       /* 0 = free slot */
	uint32_t tgid;       /* owner, 0 = unknown */
	uint32_t netns;      /* 0 = unknown */
	uint32_t last_drain;
	uint8_t role;        /* enum ember_net_role */
	char comm[EMBER_NET_COMM_LEN];
};

struct listener {
	uint32_t netns, tgid;
	uint16_t port;
	uint8_t addr[16];
};

struct pid_slot {
	uint32_t pid;       /* 0 = empty */
	uint32_t target;    /* in the pending batch, UINT32_MAX = not named in it yet */
	uint32_t last_drain;
	char comm[EMBER_NET_COMM_LEN]; /* the kernel's name for it, from the socket table */
};

struct pending_delete {
	uint64_t sk, born_ns;
};

struct ember_net_collector {
	struct ember_net_bpf *nb;
	struct ember_net_collector_opts opts;
	struct ember_net_batch *batch;
	struct ember_net_prom *prom;
	uint32_t drain_no;
	int64_t now_ns, bucket_ns;
	/* connections: open addressing on the tuple's hash, rebuilt by sweeps */
	struct conn *conns;
	size_t cap, used;
	uint64_t conns_full;
	struct listener *listeners;
	size_t n_listeners, cap_listeners;
	/* sockets seen destroyed, deleted from the kernel's table next drain */
	struct pending_delete *deletes, *deletes_next;
	size_t n_deletes, n_deletes_next;
	/* processes named (for the batch's target index and for forget_fn) */
	struct pid_slot *pids; /* MAX_PIDS, open addressing */
	size_t n_pids;
	uint16_t ephemeral_lo, ephemeral_hi; /* net.ipv4.ip_local_port_range */
	/* drop reason names from the kernel's BTF */
	char *reasons[MAX_REASONS];
	struct ember_net_collector_stats stats;
};

/* ---- addresses and peers ---- */

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void to_v6(const uint8_t *in, uint16_t family, uint8_t out[16])
{
	if (family == 2 /* AF_INET */) {
		memcpy(out, v4_prefix, 12);
		memcpy(out + 12, in, 4);
	} else {
		memcpy(out, in, 16);
	}
}

static bool is_v4(const uint8_t a[16])
{
	return memcmp(a, v4_prefix, 12) == 0;
}

static bool is_loopback(const uint8_t a[16])
{
	static const uint8_t one[16] = {[15] = 1};

	return memcmp(a, one, 16) == 0 || (is_v4(a) && a[12] == 127);
}

static bool is_any(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0 || (is_v4(a) && !a[12] && !a[13] && !a[14] && !a[15]);
}

static void addr_text(const uint8_t a[16], char *buf, size_t size)
{
	if (is_v4(a))
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)size);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)size);
}

/* ---- the connection table ---- */

static void tuple_of(struct tuple *t, uint16_t family, const uint8_t *saddr, uint16_t sport,
		     const uint8_t *daddr, uint16_t dport)
{
	to_v6(saddr, family, t->saddr);
	to_v6(daddr, family, t->daddr);
	t->sport = sport;
	t->dport = dport;
}

static void reverse(const struct tuple *t, struct tuple *r)
{
	memcpy(r->saddr, t->daddr, 16);
	memcpy(r->daddr, t->saddr, 16);
	r->sport = t->dport;
	r->dport = t->sport;
}

static uint64_t tuple_hash(const struct tuple *t)
{
	uint8_t key[36];

	memcpy(key, t->saddr, 16);
	memcpy(key + 16, t->daddr, 16);
	memcpy(key + 32, &t->sport, 2);
	memcpy(key + 34, &t->dport, 2);
	return ember_hash64(key, sizeof(key), 7) | 1;
}

static bool same_tuple(const struct tuple *a, const struct tuple *b)
{
	return a->sport == b->sport && a->dport == b->dport && memcmp(a->saddr, b->saddr, 16) == 0 &&
	       memcmp(a->daddr, b->daddr, 16) == 0;
}

static struct conn *conn_find(struct ember_net_collector *c, const struct tuple *t)
{
	uint64_t h = tuple_hash(t);

	for (size_t i = h & (c->cap - 1); c->conns[i].hash; i = (i + 1) & (c->cap - 1))
		if (c->conns[i].hash == h && same_tuple(&c->conns[i].t, t))
			return &c->conns[i];
	return NULL;
}

/* The entry of t, added when new; NULL when the table is full (counted). */
static struct conn *conn_get(struct ember_net_collector *c, const struct tuple *t)
{
	uint64_t h = tuple_hash(t);
	size_t i;

	for (i = h & (c->cap - 1); c->conns[i].hash; i = (i + 1) & (c->cap - 1))
		if (c->conns[i].hash == h && same_tuple(&c->conns[i].t, t))
			goto found;
	if (c->used * 4 >= c->cap * 3) {
		c->conns_full++;
		return NULL;
	}
	memset(&c->conns[i], 0, sizeof(c->conns[i]));
	c->conns[i].hash = h;
	c->conns[i].t = *t;
	c->used++;
found:
	c->conns[i].last_drain = c->drain_no;
	return &c->conns[i];
}

/* Forget connections idle for CONN_IDLE_DRAINS (rebuilding the table). */
static void sweep_conns(struct ember_net_collector *c)
{
	struct conn *old = c->conns, *fresh = calloc(c->cap, sizeof(*fresh));

	if (!fresh)
		return;
	c->conns = fresh;
	c->used = 0;
	for (size_t i = 0; i < c->cap; i++) {
		if (!old[i].hash || c->drain_no - old[i].last_drain > CONN_IDLE_DRAINS)
			continue;
		size_t j = old[i].hash & (c->cap - 1);
		while (fresh[j].hash)
			j = (j + 1) & (c->cap - 1);
		fresh[j] = old[i];
		c->used++;
	}
	free(old);
	c->stats.sockets = c->used;
}

static void remember_comm(struct ember_net_collector *c, uint32_t pid, const char *comm);

static void on_sock(uint64_t sk, const struct ember_net_sock *e, void *arg)
{
	struct ember_net_collector *c = arg;
	uint8_t saddr[16];

	if (e->destroyed && c->n_deletes_next < MAX_DELETES)
		c->deletes_next[c->n_deletes_next++] = (struct pending_delete){sk, e->born_ns};
	if (e->role == EMBER_NET_ROLE_LISTEN) {
		/* a listener closed since the last drain still owns what it accepted */
		if (c->n_listeners == c->cap_listeners)
			return;
		to_v6(e->saddr, e->family, saddr);
		struct listener *l = &c->listeners[c->n_listeners++];
		*l = (struct listener){.netns = e->netns, .tgid = e->tgid, .port = e->sport};
		memcpy(l->addr, saddr, 16);
		return;
	}
	if (!e->sport || !e->dport)
		return;
	struct tuple t;
	tuple_of(&t, e->family, e->saddr, e->sport, e->daddr, e->dport);
	struct conn *cn = conn_get(c, &t);
	if (!cn)
		return;
	if (e->role != EMBER_NET_ROLE_UNKNOWN)
		cn->role = e->role;
	if (!e->tgid && e->listener_tgid && !cn->tgid)
		cn->tgid = e->listener_tgid; /* until the server touches it */
	if (e->tgid) {
		cn->tgid = e->tgid;
		memcpy(cn->comm, e->comm, sizeof(cn->comm));
		cn->comm[sizeof(cn->comm) - 1] = '\0';
		remember_comm(c, e->tgid, cn->comm);
	}
	cn->netns = e->netns;
}

/* The process listening on port in netns (0: any namespace), 0 if unknown. */
static uint32_t listener_owner(struct ember_net_collector *c, uint32_t netns,
			       const uint8_t addr[16], uint16_t port)
{
	uint32_t wildcard = 0;

	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct listener *l = &c->listeners[i];
		if (l->port != port || (netns && l->netns != netns))
			continue;
		if (memcmp(l->addr, addr, 16) == 0)
			return l->tgid;
		if (is_any(l->addr))
			wildcard = l->tgid;
	}
	return wildcard;
}

/* The owner of a connection: its process, else the listener of its local port. */
static uint32_t conn_owner(struct ember_net_collector *c, const struct conn *cn)
{
	if (cn->tgid)
		return cn->tgid;
	if (cn->role == EMBER_NET_ROLE_ACTIVE)
		return 0;
	return listener_owner(c, cn->netns, cn->t.saddr, cn->t.sport);
}

/* ---- naming processes ---- */

static struct pid_slot *pid_slot(struct ember_net_collector *c, uint32_t pid, bool add)
{
	size_t i = (size_t)(ember_hash64(&pid, sizeof(pid), 3) & (MAX_PIDS - 1));

	for (;; i = (i + 1) & (MAX_PIDS - 1)) {
		struct pid_slot *p = &c->pids[i];
		if (p->pid == pid)
			return p;
		if (!p->pid) {
			if (!add || c->n_pids * 4 >= MAX_PIDS * 3)
				return NULL;
			p->pid = pid;
			p->target = UINT32_MAX;
			c->n_pids++;
			return p;
		}
	}
}

/* Keep the kernel's name of pid, for naming it after it exits. */
static void remember_comm(struct ember_net_collector *c, uint32_t pid, const char *comm)
{
	struct pid_slot *p = comm[0] ? pid_slot(c, pid, true) : NULL;

	if (p && !p->comm[0]) {
		snprintf(p->comm, sizeof(p->comm), "%s", comm);
		p->last_drain = c->drain_no;
	}
}

/* pid's target in the pending batch (UINT32_MAX if it cannot be added). */
static uint32_t target_of(struct ember_net_collector *c, uint32_t pid, const char *comm)
{
	struct pid_slot *p = pid_slot(c, pid, true);

	if ((!comm || !comm[0]) && p && p->comm[0])
		comm = p->comm; /* a process gone before it could be read: its kernel name */
	struct ember_target t = {.pid = pid, .comm = comm};

	if (p && p->target != UINT32_MAX) {
		p->last_drain = c->drain_no;
		return p->target;
	}
	if (!c->opts.name_fn || !c->opts.name_fn(pid, comm, &t, c->opts.name_arg)) {
		t = (struct ember_target){.pid = pid, .comm = comm && comm[0] ? comm : NULL};
	}
	uint32_t id = ember_profile_target(c->batch->targets, &t);
	if (p) {
		p->target = id;
		p->last_drain = c->drain_no;
	}
	return id;
}

static void service_of(struct ember_net_collector *c, uint32_t target, const char **service,
		       const char **version, char short_id[EMBER_SHORT_BUILD_ID + 1])
{
	ember_target_display_names(&c->batch->targets->targets[target], service, version, short_id);
}

/* ---- rows ---- */

static bool ephemeral(const struct ember_net_collector *c, uint16_t port)
{
	return port >= c->ephemeral_lo && port <= c->ephemeral_hi;
}

/*
 * Whether the row's process accepted the connection (else it connected):
 * from the row's own events, the connection's role, a listener on its
 * port, its other end's role, and last the usual port ranges (clients bind
 * ephemeral ports, servers do not).
 */
static bool accepted(struct ember_net_collector *c, const struct ember_net_counts *v,
		     const struct tuple *t, const struct conn *cn, const struct conn *other,
		     uint32_t netns)
{
	if (v->accepts)
		return true;
	if (v->established || v->failures)
		return false;
	if (cn && cn->role != EMBER_NET_ROLE_UNKNOWN)
		return cn->role == EMBER_NET_ROLE_PASSIVE;
	if (listener_owner(c, netns, t->saddr, t->sport))
		return true;
	if (other && other->role != EMBER_NET_ROLE_UNKNOWN)
		return other->role == EMBER_NET_ROLE_ACTIVE;
	return ephemeral(c, t->dport) && !ephemeral(c, t->sport);
}

/* The connection at the other end of t, when it is on this host. */
static const struct conn *other_end(struct ember_net_collector *c, const struct tuple *t,
				    uint32_t netns)
{
	struct tuple r;
	const struct conn *o;

	if (!t->sport || !t->dport)
		return NULL;
	reverse(t, &r);
	o = conn_find(c, &r);
	/* loopback connections only meet inside one namespace */
	if (o && netns && o->netns && o->netns != netns &&
	    (is_loopback(t->saddr) || is_loopback(t->daddr)))
		return NULL;
	return o;
}

/* The peer of a row's connection for its owner. */
static void peer_of(struct ember_net_collector *c, const struct ember_net_counts *v,
		    const struct tuple *t, const struct conn *cn, struct ember_net_peer *p)
{
	uint32_t netns = cn ? cn->netns : 0;
	const struct conn *o = other_end(c, t, netns);
	bool in = accepted(c, v, t, cn, o, netns);
	uint32_t o_owner = 0;

	memset(p, 0, sizeof(*p));
	p->direction = in ? EMBER_NET_IN : EMBER_NET_OUT;
	p->port = in ? t->sport : t->dport;
	addr_text(t->daddr, p->addr, sizeof(p->addr));
	if (o)
		o_owner = conn_owner(c, o);
	else if (!in) /* a connect to a local listener, before the other end is known */
		o_owner = listener_owner(c, netns, t->daddr, t->dport);
	if (o_owner) {
		const char *service, *version;
		char short_id[EMBER_SHORT_BUILD_ID + 1];
		uint32_t tg = target_of(c, o_owner, o && o->tgid == o_owner ? o->comm : "");
		if (tg != UINT32_MAX) {
			service_of(c, tg, &service, &version, short_id);
			snprintf(p->service, sizeof(p->service), "%s", service);
		}
	}
}

/* The Prometheus label of a peer: its service, else its address. */
static void peer_label(const struct ember_net_peer *p, char *buf, size_t size)
{
	if (p->service[0])
		snprintf(buf, size, "%s", p->service);
	else if (p->direction == EMBER_NET_IN)
		snprintf(buf, size, "%s", p->addr);
	else if (strchr(p->addr, ':'))
		snprintf(buf, size, "[%s]:%u", p->addr, p->port);
	else
		snprintf(buf, size, "%s:%u", p->addr, p->port);
}

/*
 * Add d to the row of (now's bucket, the key's process or the connection's
 * owner, the connection's peer) and to the totals.  The batch row index
 * goes to *row_out (UINT32_MAX when nothing was added).
 */
static void add_row(struct ember_net_collector *c, const struct ember_net_key *k,
		    const struct ember_net_counts *counts, const struct ember_net_values *d,
		    uint32_t *row_out)
{
	struct ember_net_peer peer;
	const char *service, *version;
	char short_id[EMBER_SHORT_BUILD_ID + 1], label[EMBER_NET_ADDR_LEN + EMBER_NET_NAME_LEN];
	struct tuple t;

	*row_out = UINT32_MAX;
	tuple_of(&t, k->family, k->saddr, k->sport, k->daddr, k->dport);
	struct conn *cn = t.sport && t.dport ? conn_find(c, &t) : NULL;
	uint32_t owner = k->tgid;
	if (!owner && cn)
		owner = conn_owner(c, cn);
	if (!owner && counts->accepts)
		owner = listener_owner(c, 0, t.saddr, t.sport);
	if (!owner) {
		c->stats.unattributed++;
		return;
	}
	peer_of(c, counts, &t, cn, &peer);
	uint32_t target = target_of(c, owner, cn && cn->tgid == owner ? cn->comm : "");
	uint32_t pi = ember_net_batch_peer(c->batch, &peer);
	if (target == UINT32_MAX || pi == UINT32_MAX)
		return;
	int64_t bucket = c->now_ns - (c->now_ns % c->bucket_ns);
	struct ember_net_batch_row *row = ember_net_batch_row(c->batch, bucket, target, pi);
	if (!row || ember_net_values_add(&row->v, d))
		return;
	*row_out = (uint32_t)(row - c->batch->rows);
	if (peer.service[0])
		c->stats.local_peers++;
	service_of(c, target, &service, &version, short_id);
	peer_label(&peer, label, sizeof(label));
	ember_net_prom_add(c->prom, service, version, peer.direction, label, d, c->now_ns);
}

/* What rows with a process say about their connection. */
static void learn_from_row(struct ember_net_collector *c, const struct ember_net_row *r)
{
	struct tuple t;
	struct conn *cn;

	if (!r->key.sport || !r->key.dport)
		return;
	tuple_of(&t, r->key.family, r->key.saddr, r->key.sport, r->key.daddr, r->key.dport);
	if (!r->key.tgid && !r->c.accepts && !r->c.established)
		return;
	if (!(cn = conn_get(c, &t)))
		return;
	if (r->c.accepts)
		cn->role = EMBER_NET_ROLE_PASSIVE;
	else if (r->c.established)
		cn->role = EMBER_NET_ROLE_ACTIVE;
	if (!cn->tgid && r->key.tgid)
		cn->tgid = r->key.tgid;
}

static void counts_row(struct ember_net_collector *c, const struct ember_net_row *r)
{
	uint32_t row;
	struct ember_net_values v = {
		.bytes_sent = r->c.bytes_sent,
		.bytes_recv = r->c.bytes_recv,
		.sends = r->c.sends,
		.recvs = r->c.recvs,
		.connects = (uint64_t)r->c.established + r->c.failures,
		.accepts = r->c.accepts,
		.failures = r->c.failures,
		.closes = r->c.closes,
		.retransmits = r->c.retrans,
		.resets_sent = r->c.resets_sent,
		.resets_recv = r->c.resets_recv,
	};
	if (r->c.srtt_us)
		ember_hist_add(&v.rtt, r->c.srtt_us, 1);
	if (r->c.established && r->c.connect_us)
		ember_hist_add(&v.connect, r->c.connect_us, 1);
	add_row(c, &r->key, &r->c, &v, &row);
	ember_net_values_free(&v);
}

static const char *reason_name(struct ember_net_collector *c, uint32_t reason, char *buf,
			       size_t size)
{
	if (reason < MAX_REASONS && c->reasons[reason])
		return c->reasons[reason];
	snprintf(buf, size, "reason_%u", reason);
	return buf;
}

static void drop_row(struct ember_net_collector *c, const struct ember_net_drop_row *r)
{
	static const struct ember_net_counts none;
	struct ember_net_values v = {.drops = r->count};
	uint32_t row;
	char buf[32];

	add_row(c, &r->key.conn, &none, &v, &row);
	if (row == UINT32_MAX)
		return;
	const char *reason = reason_name(c, r->key.reason, buf, sizeof(buf));
	ember_net_batch_drop(c->batch, row, reason, r->count);
	const char *service, *version;
	char short_id[EMBER_SHORT_BUILD_ID + 1];
	service_of(c, c->batch->rows[row].target, &service, &version, short_id);
	ember_net_prom_drop(c->prom, service, version, reason, r->count);
}

/* ---- housekeeping ---- */

/* Delete the kernel entries of sockets seen destroyed one drain ago. */
static void delete_destroyed(struct ember_net_collector *c)
{
	for (size_t i = 0; i < c->n_deletes; i++)
		ember_net_bpf_forget_sock(c->nb, c->deletes[i].sk, c->deletes[i].born_ns);
	struct pending_delete *t = c->deletes;
	c->deletes = c->deletes_next;
	c->n_deletes = c->n_deletes_next;
	c->deletes_next = t;
	c->n_deletes_next = 0;
}

static void forget_exited(struct ember_net_collector *c)
{
	for (size_t i = 0; i < MAX_PIDS; i++) {
		struct pid_slot *p = &c->pids[i];
		if (!p->pid || c->drain_no - p->last_drain < FORGET_EVERY_DRAINS)
			continue;
		if (kill((pid_t)p->pid, 0) == 0 || errno != ESRCH)
			continue;
		if (c->opts.forget_fn)
			c->opts.forget_fn(p->pid, c->opts.name_arg);
		c->stats.forgotten++;
		p->pid = UINT32_MAX; /* tombstone: keeps the probe chains intact */
	}
	/* rebuild without tombstones */
	struct pid_slot *old = c->pids;
	struct pid_slot *fresh = calloc(MAX_PIDS, sizeof(*fresh));
	if (!fresh) {
		return;
	}
	c->pids = fresh;
	c->n_pids = 0;
	for (size_t i = 0; i < MAX_PIDS; i++) {
		if (!old[i].pid || old[i].pid == UINT32_MAX)
			continue;
		struct pid_slot *p = pid_slot(c, old[i].pid, true);
		if (p)
			*p = old[i];
	}
	free(old);
}

/* ---- the drain ---- */

int ember_net_collector_drain(struct ember_net_collector *c, int64_t now_ns)
{
	const struct ember_net_row *rows;
	const struct ember_net_drop_row *drops;
	size_t n_rows, n_drops;
	int64_t t0 = ember_monotonic_ns();
	int rc;

	c->drain_no++;
	c->now_ns = now_ns;
	rc = ember_net_bpf_drain(c->nb, &rows, &n_rows, &drops, &n_drops);
	if (rc)
		return rc;
	c->n_listeners = 0;
	long n = ember_net_bpf_socks(c->nb, on_sock, c);
	if (n < 0)
		return (int)n;
	c->stats.socks_last = (uint64_t)n;
	c->stats.listeners = c->n_listeners;
	for (size_t i = 0; i < n_rows; i++)
		learn_from_row(c, &rows[i]);
	for (size_t i = 0; i < n_rows; i++)
		counts_row(c, &rows[i]);
	for (size_t i = 0; i < n_drops; i++)
		drop_row(c, &drops[i]);
	delete_destroyed(c);
	if (c->drain_no % SWEEP_EVERY_DRAINS == 0)
		sweep_conns(c);
	if (c->drain_no % FORGET_EVERY_DRAINS == 0)
		forget_exited(c);

	c->stats.drains++;
	c->stats.rows += n_rows;
	c->stats.drops += n_drops;
	c->stats.counts_last = n_rows;
	c->stats.sockets = c->used;
	c->stats.conns_full = c->conns_full;
	c->stats.batch_overflow = c->batch->overflow;
	c->stats.drain_ns = (uint64_t)(ember_monotonic_ns() - t0);
	return 0;
}

/* ---- life cycle ---- */

static void read_port_range(struct ember_net_collector *c)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned lo = 32768, hi = 60999;

	if (f) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2 || lo > hi || hi > 65535) {
			lo = 32768;
			hi = 60999;
		}
		fclose(f);
	}
	c->ephemeral_lo = (uint16_t)lo;
	c->ephemeral_hi = (uint16_t)hi;
}

static void load_reasons(struct ember_net_collector *c)
{
	struct btf *btf = btf__load_vmlinux_btf();
	static const char prefix[] = "SKB_DROP_REASON_";

	if (!btf || libbpf_get_error(btf))
		return;
	int id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, (unsigned)id) : NULL;
	for (unsigned i = 0; t && i < btf_vlen(t); i++) {
		const struct btf_enum *e = &btf_enum(t)[i];
		const char *name = btf__name_by_offset(btf, e->name_off);
		if (e->val < 0 || e->val >= MAX_REASONS || !name || c->reasons[e->val])
			continue;
		if (strncmp(name, prefix, sizeof(prefix) - 1) == 0)
			name += sizeof(prefix) - 1;
		c->reasons[e->val] = strdup(name);
	}
	btf__free(btf);
}

struct ember_net_collector *ember_net_collector_new(struct ember_net_bpf *nb,
						    const struct ember_net_collector_opts *opts)
{
	struct ember_net_collector *c = calloc(1, sizeof(*c));
	struct ember_net_hook_report r;

	if (!c)
		return NULL;
	ember_net_bpf_report(nb, &r);
	c->nb = nb;
	c->opts = *opts;
	c->bucket_ns = opts->bucket_ns > 0 ? opts->bucket_ns : DEFAULT_BUCKET_NS;
	c->cap = 1024;
	while (c->cap < 4 * (size_t)r.max_sockets)
		c->cap *= 2;
	c->conns = calloc(c->cap, sizeof(*c->conns));
	c->deletes = calloc(MAX_DELETES, sizeof(*c->deletes));
	c->deletes_next = calloc(MAX_DELETES, sizeof(*c->deletes_next));
	c->cap_listeners = 4096;
	c->listeners = calloc(c->cap_listeners, sizeof(*c->listeners));
	c->pids = calloc(MAX_PIDS, sizeof(*c->pids));
	c->batch = ember_net_batch_new(opts->max_rows);
	c->prom = ember_net_prom_new(opts->top_peers);
	if (!c->conns || !c->deletes || !c->deletes_next || !c->listeners || !c->pids || !c->batch ||
	    !c->prom) {
		ember_net_collector_free(c);
		return NULL;
	}
	c->stats.sockets_max = r.max_sockets;
	c->stats.conns_max = c->cap * 3 / 4;
	c->stats.counts_max = r.max_counts;
	load_reasons(c);
	read_port_range(c);
	return c;
}

void ember_net_collector_free(struct ember_net_collector *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < MAX_REASONS; i++)
		free(c->reasons[i]);
	ember_net_batch_free(c->batch);
	ember_net_prom_free(c->prom);
	free(c->conns);
	free(c->deletes);
	free(c->deletes_next);
	free(c->listeners);
	free(c->pids);
	free(c);
}

const struct ember_net_batch *ember_net_collector_pending(struct ember_net_collector *c)
{
	return c->batch;
}

void ember_net_collector_flushed(struct ember_net_collector *c)
{
	struct ember_net_batch *b = ember_net_batch_new(c->opts.max_rows);

	if (!b) {
		ember_err("net: out of memory starting a new batch (the old one is kept)");
		return;
	}
	ember_net_batch_free(c->batch);
	c->batch = b;
	for (size_t i = 0; i < MAX_PIDS; i++) /* target indexes were the old batch's */
		c->pids[i].target = UINT32_MAX;
}

struct ember_net_prom *ember_net_collector_prom(struct ember_net_collector *c)
{
	return c->prom;
}

void ember_net_collector_stats(struct ember_net_collector *c, struct ember_net_collector_stats *st)
{
	*st = c->stats;
}
