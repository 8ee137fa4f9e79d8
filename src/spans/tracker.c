/*
 * tracker.c - connections, the stream layer under the parsers, and pairing.
 *
 * Connections are found by the kernel's conn_id in a chained hash table and
 * kept on an LRU list; a new connection beyond max_conns evicts the least
 * recently active one.  Control and data events arrive on two channels, so
 * a close can be seen before the last data of its connection: a closed
 * connection is finished only at the second sweep after its close, and a
 * data event for a connection never opened creates it (its peer then comes
 * with the open event, or stays empty).
 *
 * The stream layer (stream_feed) is described in conn.h.  Turns: a payload
 * in the direction opposite to the previous one starts a turn.  At a
 * request turn a protocol that does not pipeline (MySQL) has answered
 * everything before: a response still open ends with its last byte seen,
 * requests never answered are dropped.  A stream that lost its framing
 * restarts at its next turn.  An event the kernel flags as following a
 * lost one drops every open request of the connection (an answer could
 * otherwise be paired with the wrong request) and restarts both streams.
 */
#include "spans/tracker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/profile.h"
#include "spans/conn.h"
#include "spans/endpoint.h"

#define MAX_EXITED 1024 /* exited processes remembered until the next sweep */

struct ember_tracker {
	struct ember_tracker_opts o;
	struct span_conn **table; /* conn_id hash, n_buckets chains */
	size_t n_buckets;
	struct span_conn *lru_head, *lru_tail; /* most recently active first */
	size_t n_conns;
	uint64_t sweeps;
	uint32_t exited[MAX_EXITED];
	size_t n_exited;
	bool exited_overflow;
	uint64_t stats[EMBER_TRACKER__COUNT];
};

static const struct span_proto_ops *ops_of(uint8_t proto)
{
	switch (proto) {
	case EMBER_PROTO_HTTP:
		return &span_http_ops;
	case EMBER_PROTO_REDIS:
		return &span_redis_ops;
	case EMBER_PROTO_MYSQL:
		return &span_mysql_ops;
	case EMBER_PROTO_PGSQL:
		return &span_pgsql_ops;
	}
	return NULL;
}

uint64_t span_hash(const void *data, size_t len)
{
	return ember_hash64(data, len, 0x5eed);
}

char *span_strndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void span_count(struct span_conn *c, int stat)
{
	if (stat >= 0 && stat < EMBER_TRACKER__COUNT)
		c->tr->stats[stat]++;
}

/* ---- connections ---------------------------------------------------------- */

static size_t bucket_of(const struct ember_tracker *tr, uint64_t conn_id)
{
	return (size_t)(ember_hash64(&conn_id, sizeof(conn_id), 1) & (tr->n_buckets - 1));
}

static struct span_conn *find(struct ember_tracker *tr, uint64_t conn_id)
{
	for (struct span_conn *c = tr->table[bucket_of(tr, conn_id)]; c; c = c->hnext)
		if (c->conn_id == conn_id)
			return c;
	return NULL;
}

static void lru_unlink(struct ember_tracker *tr, struct span_conn *c)
{
	if (c->lru_prev)
		c->lru_prev->lru_next = c->lru_next;
	else
		tr->lru_head = c->lru_next;
	if (c->lru_next)
		c->lru_next->lru_prev = c->lru_prev;
	else
		tr->lru_tail = c->lru_prev;
	c->lru_prev = c->lru_next = NULL;
}

static void lru_front(struct ember_tracker *tr, struct span_conn *c)
{
	if (tr->lru_head == c)
		return;
	if (c->lru_prev || c->lru_next || tr->lru_tail == c)
		lru_unlink(tr, c);
	c->lru_next = tr->lru_head;
	if (tr->lru_head)
		tr->lru_head->lru_prev = c;
	tr->lru_head = c;
	if (!tr->lru_tail)
		tr->lru_tail = c;
}

static void pending_free(struct span_pending *p)
{
	free(p->text);
	free(p->err);
	p->text = p->err = NULL;
}

static void stream_clear(struct span_stream *s)
{
	free(s->carry);
	s->carry = NULL;
	s->carry_len = 0;
	s->skip = 0;
}

/* Free a connection's memory; it must be out of the table and the list. */
static void conn_free(struct span_conn *c)
{
	while (c->p_count) {
		pending_free(&c->pending[c->p_head]);
		c->p_head = (c->p_head + 1) % c->p_cap;
		c->p_count--;
	}
	free(c->pending);
	for (uint32_t i = 0; i < c->n_stmts; i++)
		free(c->stmts[i].text);
	free(c->stmts);
	free(c->pg_batch_text);
	free(c->pg_unnamed_text);
	stream_clear(&c->req);
	stream_clear(&c->resp);
	free(c);
}

static void remove_conn(struct ember_tracker *tr, struct span_conn *c)
{
	struct span_conn **pp = &tr->table[bucket_of(tr, c->conn_id)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	lru_unlink(tr, c);
	tr->n_conns--;
	tr->stats[EMBER_TRACKER_CONNS] = tr->n_conns;
	conn_free(c);
}

static void emit_span(struct span_conn *c, struct span_pending *p, int64_t end_ts)
{
	struct ember_tracker *tr = c->tr;
	struct ember_span sp = {
		.conn_id = c->conn_id,
		.pid = c->pid,
		.tid = p->tid,
		.proto = c->proto,
		.role = c->role,
		.error = p->error,
		.status = p->status,
		.endpoint = p->endpoint,
		.text = p->text,
		.err = p->err,
		.peer = c->peer,
		.comm = c->comm,
		.start_ns = p->start_ts,
		.end_ns = end_ts >= p->start_ts ? end_ts : p->start_ts,
		.req_bytes = p->req_bytes,
		.resp_bytes = p->resp_bytes,
	};
	tr->stats[EMBER_TRACKER_SPANS]++;
	if (tr->o.on_span)
		tr->o.on_span(&sp, tr->o.arg);
}

static void pop_head(struct span_conn *c)
{
	pending_free(&c->pending[c->p_head]);
	c->p_head = (c->p_head + 1) % c->p_cap;
	c->p_count--;
}

/* End the head's response with the last byte seen of it. */
static void complete_head_as_seen(struct span_conn *c)
{
	struct span_pending *h = span_head(c);

	if (!h)
		return;
	emit_span(c, h, h->resp_ts);
	pop_head(c);
}

/* Drop every open request (counted). */
static void drop_pending(struct span_conn *c)
{
	while (c->p_count) {
		c->tr->stats[EMBER_TRACKER_UNANSWERED]++;
		pop_head(c);
	}
}

static void reset_stream(struct span_conn *c, struct span_stream *s)
{
	const struct span_proto_ops *ops = ops_of(c->proto);

	stream_clear(s);
	s->desync = false;
	if (ops && ops->reset)
		ops->reset(c, s);
}

/* A connection's last act: answers still open end as seen, the rest were never answered. */
static void finish_conn(struct ember_tracker *tr, struct span_conn *c)
{
	struct span_pending *h = span_head(c);

	if (h && h->resp_started && !c->dead)
		complete_head_as_seen(c);
	drop_pending(c);
	remove_conn(tr, c);
}

static struct span_conn *create_conn(struct ember_tracker *tr, uint64_t conn_id, uint32_t pid,
				     uint32_t fd, uint8_t proto, uint8_t role)
{
	struct span_conn *c;

	if (!ops_of(proto) || (role != EMBER_ROLE_CLIENT && role != EMBER_ROLE_SERVER))
		return NULL;
	if (tr->n_conns >= tr->o.max_conns && tr->lru_tail) {
		tr->stats[EMBER_TRACKER_CONNS_EVICTED]++;
		finish_conn(tr, tr->lru_tail);
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		tr->stats[EMBER_TRACKER_OOM]++;
		return NULL;
	}
	c->conn_id = conn_id;
	c->pid = pid;
	c->fd = fd;
	c->proto = proto;
	c->role = role;
	c->tr = tr;
	c->req.requests = true;
	size_t b = bucket_of(tr, conn_id);
	c->hnext = tr->table[b];
	tr->table[b] = c;
	lru_front(tr, c);
	tr->n_conns++;
	tr->stats[EMBER_TRACKER_CONNS] = tr->n_conns;
	tr->stats[EMBER_TRACKER_CONNS_OPENED]++;
	reset_stream(c, &c->req);
	reset_stream(c, &c->resp);
	return c;
}

/* "1.2.3.4" / "[::1]", with ":port" for the client's view of its server. */
static void format_peer(const struct ember_span_ctl *ev, bool with_port, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	bool v6 = ev->family == 10;

	if (v6 && memcmp(ev->raddr, v4mapped, sizeof(v4mapped)) == 0) {
		inet_ntop(AF_INET, ev->raddr + 12, ip, sizeof(ip));
		v6 = false;
	} else if (v6) {
		inet_ntop(AF_INET6, ev->raddr, ip, sizeof(ip));
	} else {
		inet_ntop(AF_INET, ev->raddr, ip, sizeof(ip));
	}
	if (with_port)
		snprintf(out, size, v6 ? "[%s]:%u" : "%s:%u", ip, ev->rport);
	else
		snprintf(out, size, v6 ? "[%s]" : "%s", ip);
}

/* ---- what parsers call ------------------------------------------------------ */

int64_t span_ts_of(const struct span_stream *s, uint64_t pos)
{
	return pos >= s->chunk_pos ? s->ts_now : s->carry_ts;
}

struct span_pending *span_head(struct span_conn *c)
{
	return c->p_count ? &c->pending[c->p_head] : NULL;
}

uint32_t span_endpoint(struct span_conn *c, const char *name)
{
	return ember_endpoints_intern(c->tr->o.endpoints, c->proto, name);
}

const char *span_endpoint_name(struct span_conn *c, uint32_t id)
{
	const char *n = ember_endpoints_name(c->tr->o.endpoints, id);
	return n ? n : "other";
}

struct span_pending *span_request_id(struct span_conn *c, struct span_stream *s,
				     uint64_t start_pos, uint32_t endpoint, const char *text,
				     size_t tlen, uint8_t kind)
{
	struct ember_tracker *tr = c->tr;
	struct span_pending *p;

	if (c->p_count >= SPAN_MAX_PENDING) {
		tr->stats[EMBER_TRACKER_PENDING_FULL]++;
		tr->stats[EMBER_TRACKER_UNANSWERED]++;
		pop_head(c);
	}
	if (c->p_count == c->p_cap) {
		uint32_t cap = c->p_cap ? c->p_cap * 2 : 4;
		struct span_pending *np = calloc(cap, sizeof(*np));
		if (!np) {
			tr->stats[EMBER_TRACKER_OOM]++;
			return NULL;
		}
		for (uint32_t i = 0; i < c->p_count; i++)
			np[i] = c->pending[(c->p_head + i) % c->p_cap];
		free(c->pending);
		c->pending = np;
		c->p_cap = cap;
		c->p_head = 0;
	}
	p = &c->pending[(c->p_head + c->p_count) % c->p_cap];
	memset(p, 0, sizeof(*p));
	p->start_ts = span_ts_of(s, start_pos);
	p->start_pos = start_pos;
	p->endpoint = endpoint;
	p->kind = kind;
	p->tid = c->cur_tid;
	if (text && tlen) {
		char buf[SPAN_TEXT_MAX];
		size_t n = ember_text_sanitize(text, tlen, buf, sizeof(buf));
		p->text = span_strndup(buf, n);
	}
	c->p_count++;
	if (c->role == EMBER_ROLE_SERVER && c->cur_req_id) {
		p->req_id = c->cur_req_id;
		c->cur_req_id = 0; /* the thread serves the first request it read */
		if (tr->o.on_tag)
			tr->o.on_tag(p->req_id, endpoint, tr->o.arg);
	}
	return p;
}

struct span_pending *span_request(struct span_conn *c, struct span_stream *s, uint64_t start_pos,
				  const char *endpoint, const char *text, size_t tlen,
				  uint8_t kind)
{
	return span_request_id(c, s, start_pos, span_endpoint(c, endpoint), text, tlen, kind);
}

void span_response_start(struct span_conn *c, struct span_stream *s, uint64_t pos)
{
	struct span_pending *h = span_head(c);

	if (!h) {
		c->tr->stats[EMBER_TRACKER_UNMATCHED]++;
		return;
	}
	if (!h->resp_started) {
		h->resp_started = true;
		h->resp_pos = pos;
	}
	h->resp_ts = span_ts_of(s, pos);
}

void span_respond(struct span_conn *c, struct span_stream *s, uint64_t end_pos)
{
	struct span_pending *h = span_head(c);

	if (!h)
		return;
	if (!h->resp_started) {
		h->resp_started = true;
		h->resp_pos = end_pos;
	}
	h->resp_bytes = end_pos > h->resp_pos ? end_pos - h->resp_pos : 0;
	emit_span(c, h, span_ts_of(s, end_pos ? end_pos - 1 : 0));
	pop_head(c);
}

void span_drop_head(struct span_conn *c)
{
	if (c->p_count)
		pop_head(c);
}

void span_set_error(struct span_pending *p, const char *text, size_t len)
{
	p->error = true;
	if (!text || !len || p->err)
		return;
	char buf[SPAN_ERR_MAX];
	size_t n = ember_text_sanitize(text, len, buf, sizeof(buf));
	p->err = span_strndup(buf, n);
}

const struct span_stmt *span_stmt_get(struct span_conn *c, uint64_t key)
{
	for (uint32_t i = 0; i < c->n_stmts; i++) {
		if (c->stmts[i].key == key) {
			c->stmts[i].age = ++c->stmt_clock;
			return &c->stmts[i];
		}
	}
	return NULL;
}

void span_stmt_put(struct span_conn *c, uint64_t key, const char *text, uint32_t endpoint)
{
	struct span_stmt *st = NULL;

	for (uint32_t i = 0; i < c->n_stmts && !st; i++)
		if (c->stmts[i].key == key)
			st = &c->stmts[i];
	if (!st && c->n_stmts < SPAN_MAX_STMTS) {
		if (!c->stmts && !(c->stmts = calloc(SPAN_MAX_STMTS, sizeof(*c->stmts)))) {
			c->tr->stats[EMBER_TRACKER_OOM]++;
			return;
		}
		st = &c->stmts[c->n_stmts++];
	}
	if (!st) { /* full: the least recently used goes */
		st = &c->stmts[0];
		for (uint32_t i = 1; i < c->n_stmts; i++)
			if (c->stmts[i].age < st->age)
				st = &c->stmts[i];
		c->tr->stats[EMBER_TRACKER_STMTS_EVICTED]++;
	}
	free(st->text);
	st->key = key;
	st->text = text ? strdup(text) : NULL;
	st->endpoint = endpoint;
	st->age = ++c->stmt_clock;
}

void span_stmt_del(struct span_conn *c, uint64_t key)
{
	for (uint32_t i = 0; i < c->n_stmts; i++) {
		if (c->stmts[i].key == key) {
			free(c->stmts[i].text);
			c->stmts[i] = c->stmts[--c->n_stmts];
			return;
		}
	}
}

void span_conn_dead(struct span_conn *c, const char *why)
{
	(void)why;
	if (c->dead)
		return;
	c->dead = true;
	c->tr->stats[EMBER_TRACKER_CONNS_DEAD]++;
	drop_pending(c);
	stream_clear(&c->req);
	stream_clear(&c->resp);
}

/* ---- the stream layer ---------------------------------------------------------- */

static void lose_framing(struct span_conn *c, struct span_stream *s)
{
	if (!s->desync)
		c->tr->stats[EMBER_TRACKER_DESYNC]++;
	s->desync = true;
	stream_clear(s);
}

/* Pass up to `avail` bytes of a pending skip; returns the bytes passed. */
static size_t do_skip(struct span_conn *c, struct span_stream *s, const struct span_proto_ops *ops,
		      size_t avail)
{
	size_t k = s->skip < avail ? (size_t)s->skip : avail;

	s->skip -= k;
	s->pos += k;
	if (!s->skip && ops->skipped)
		ops->skipped(c, s);
	return k;
}

static void stream_feed(struct span_conn *c, struct span_stream *s, const uint8_t *data,
			uint32_t captured, uint64_t len)
{
	const struct span_proto_ops *ops = ops_of(c->proto);
	uint64_t gap = len > captured ? len - captured : 0;
	uint64_t end_pos;
	size_t off = 0;

	s->chunk_pos = s->pos + s->carry_len;
	end_pos = s->chunk_pos + len;
	while (off < captured && !s->desync && !c->dead) {
		if (s->skip && s->carry_len) {
			size_t k = do_skip(c, s, ops, s->carry_len);
			memmove(s->carry, s->carry + k, s->carry_len - k);
			s->carry_len -= (uint32_t)k;
			continue;
		}
		if (s->skip) {
			off += do_skip(c, s, ops, captured - off);
			continue;
		}
		s->pos_first = s->pos;
		if (s->carry_len) {
			size_t old = s->carry_len, t = captured - off;
			if (t > SPAN_CARRY_MAX - old)
				t = SPAN_CARRY_MAX - old;
			memcpy(s->carry + old, data + off, t);
			bool whole = off + t == captured;
			int r = ops->parse(c, s, s->carry, old + t, whole && gap);
			if (r < 0 || (r == 0 && (!whole || gap))) {
				lose_framing(c, s);
				break;
			}
			if (r == 0) { /* keep everything for the next payload */
				s->carry_len = (uint32_t)(old + t);
				off = captured;
				break;
			}
			s->pos += (uint64_t)r;
			if ((size_t)r >= old) {
				off += (size_t)r - old;
				s->carry_len = 0;
				free(s->carry);
				s->carry = NULL;
			} else {
				memmove(s->carry, s->carry + r, old - (size_t)r);
				s->carry_len = (uint32_t)(old - (size_t)r);
			}
			continue;
		}
		int r = ops->parse(c, s, data + off, captured - off, gap != 0);
		if (r < 0 || (r == 0 && (gap || captured - off > SPAN_CARRY_MAX))) {
			lose_framing(c, s);
			break;
		}
		if (r == 0) {
			if (!s->carry && !(s->carry = malloc(SPAN_CARRY_MAX))) {
				c->tr->stats[EMBER_TRACKER_OOM]++;
				lose_framing(c, s);
				break;
			}
			memcpy(s->carry, data + off, captured - off);
			s->carry_len = (uint32_t)(captured - off);
			s->carry_ts = s->ts_now;
			off = captured;
			break;
		}
		off += (size_t)r;
		s->pos += (uint64_t)r;
	}
	if (!s->desync && !c->dead && gap) {
		if (s->carry_len || s->skip < gap) {
			lose_framing(c, s);
		} else {
			s->skip -= gap;
			s->pos += gap;
			if (!s->skip && ops->skipped)
				ops->skipped(c, s);
		}
	}
	if (s->desync || c->dead)
		s->pos = end_pos;
}

/* ---- events ------------------------------------------------------------------- */

struct ember_tracker *ember_tracker_new(const struct ember_tracker_opts *opts)
{
	struct ember_tracker *tr = calloc(1, sizeof(*tr));

	if (!tr)
		return NULL;
	tr->o = *opts;
	if (!tr->o.max_conns)
		tr->o.max_conns = EMBER_TRACKER_DEFAULT_MAX_CONNS;
	tr->n_buckets = 64;
	while (tr->n_buckets < tr->o.max_conns)
		tr->n_buckets *= 2;
	tr->table = calloc(tr->n_buckets, sizeof(*tr->table));
	if (!tr->table || !tr->o.endpoints) {
		free(tr->table);
		free(tr);
		return NULL;
	}
	return tr;
}

void ember_tracker_free(struct ember_tracker *tr)
{
	if (!tr)
		return;
	while (tr->lru_head)
		remove_conn(tr, tr->lru_head);
	free(tr->table);
	free(tr);
}

/* Closed: finished at the second sweep from now, once its trailing data is in. */
static void close_conn(struct ember_tracker *tr, struct span_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	c->close_sweep = tr->sweeps;
}

void ember_tracker_ctl(struct ember_tracker *tr, const struct ember_span_ctl *ev)
{
	struct span_conn *c;

	switch (ev->type) {
	case EMBER_CTL_OPEN:
		c = find(tr, ev->conn_id);
		if (!c && !(c = create_conn(tr, ev->conn_id, ev->tgid, ev->fd, ev->proto, ev->role)))
			return;
		format_peer(ev, c->role == EMBER_ROLE_CLIENT, c->peer, sizeof(c->peer));
		memcpy(c->comm, ev->comm, sizeof(c->comm) - 1);
		c->comm[sizeof(c->comm) - 1] = '\0';
		c->last_ts = (int64_t)ev->ts_ns;
		break;
	case EMBER_CTL_CLOSE:
		c = find(tr, ev->conn_id);
		if (c)
			close_conn(tr, c);
		break;
	case EMBER_CTL_EXIT:
		if (tr->n_exited < MAX_EXITED)
			tr->exited[tr->n_exited++] = ev->tgid;
		else
			tr->exited_overflow = true;
		break;
	}
}

/* The start of a request turn: what a non-pipelining protocol left open is over. */
static void request_turn(struct span_conn *c)
{
	const struct span_proto_ops *ops = ops_of(c->proto);
	struct span_pending *h = span_head(c);

	if (h && h->resp_started && (c->resp.desync || !ops->pipelined))
		complete_head_as_seen(c);
	if (!ops->pipelined)
		drop_pending(c);
	if (c->resp.desync || !ops->pipelined)
		reset_stream(c, &c->resp); /* whatever it was in the middle of is over */
}

void ember_tracker_data(struct ember_tracker *tr, const struct ember_span_data *ev,
			const uint8_t *payload)
{
	struct span_conn *c = find(tr, ev->conn_id);
	uint32_t captured = ev->captured;

	tr->stats[EMBER_TRACKER_EVENTS]++;
	tr->stats[EMBER_TRACKER_BYTES] += captured;
	if (!c && !(c = create_conn(tr, ev->conn_id, ev->tgid, ev->fd, ev->proto, ev->role)))
		return;
	lru_front(tr, c);
	c->last_ts = (int64_t)ev->ts_ns;
	if (c->dead)
		return;
	if (captured > ev->len)
		captured = ev->len;
	if (ev->flags & EMBER_SPAN_F_LOST_BEFORE) {
		tr->stats[EMBER_TRACKER_LOST]++;
		drop_pending(c);
		lose_framing(c, &c->req);
		lose_framing(c, &c->resp);
	}
	bool egress = ev->dir == EMBER_DIR_EGRESS;
	struct span_stream *s = egress == (c->role == EMBER_ROLE_CLIENT) ? &c->req : &c->resp;
	if (c->last_dir != ev->dir + 1) {
		c->last_dir = ev->dir + 1;
		if (s == &c->req)
			request_turn(c);
		if (s->desync)
			reset_stream(c, s);
	}
	c->cur_tid = ev->tid;
	c->cur_req_id = ev->req_id;
	s->ts_now = (int64_t)ev->ts_ns;
	stream_feed(c, s, payload, captured, ev->len);
	c->cur_req_id = 0;
}

void ember_tracker_sweep(struct ember_tracker *tr, int64_t now_ns)
{
	struct span_conn *c, *prev;

	/* from the least recently active: idle ones first */
	for (c = tr->lru_tail; c; c = prev) {
		prev = c->lru_prev;
		bool exited = tr->exited_overflow;
		for (size_t i = 0; i < tr->n_exited && !exited; i++)
			exited = tr->exited[i] == c->pid;
		if (c->closed && c->close_sweep < tr->sweeps) {
			finish_conn(tr, c);
		} else if (exited) {
			close_conn(tr, c);
		} else if (now_ns - c->last_ts > EMBER_TRACKER_IDLE_NS) {
			tr->stats[EMBER_TRACKER_CONNS_IDLE]++;
			finish_conn(tr, c);
		}
	}
	tr->n_exited = 0;
	tr->exited_overflow = false;
	tr->sweeps++;
}

void ember_tracker_stats(const struct ember_tracker *tr, uint64_t out[EMBER_TRACKER__COUNT])
{
	memcpy(out, tr->stats, sizeof(tr->stats));
}
