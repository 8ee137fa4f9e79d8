/*
 * store_net.c - the TCP metrics tables (schema version 6): ingest, queries, retention.
 *
 * Ingest, one write transaction per batch: every row's target is resolved
 * through the samples' target cache (store_resolve_target: the same ids),
 * its peer found or added in net_peers, then its counters are added to
 * (bucket, target, peer) in net_samples and to (hour, target, peer) in
 * net_samples_1h.  Counters add in SQL; the RTT and connect histograms
 * are blobs (core/hist.h), so a row that exists is read first and its
 * histograms merged here.  A batch touches each row once, so that read is
 * one indexed lookup per row and flush.
 *
 * Queries read the selection's rows (whole hours from the roll-up, the
 * partial hours at the ends from the 10 s table: store_plan_reads) joined
 * with their peer and target, and sum them here per peer, per time step or
 * per edge.  Statements are prepared per call: a query or ingest runs a
 * handful, every few seconds at most.
 *
 * Retention: the store's registry (store_retention.c) deletes net_samples
 * and net_drops rows (bucket_ns) with the 10 s buckets, net_samples_1h and
 * net_drops_1h (hour_ns) with the roll-ups, and net_peers rows by their
 * last use (last_ns, moved up at every ingest that names the peer), so a
 * peer goes with the last row that refers to it.
 */
#include "store/store_net.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "store/store_internal.h"

#define COUNTER_COLS                                                                       \
	"bytes_sent, bytes_recv, sends, recvs, connects, accepts, closes, failures, "      \
	"resets_sent, resets_recv, retransmits, drops"
#define X_COUNTER_COLS                                                                     \
	"x.bytes_sent, x.bytes_recv, x.sends, x.recvs, x.connects, x.accepts, x.closes, "  \
	"x.failures, x.resets_sent, x.resets_recv, x.retransmits, x.drops"
#define N_COUNTERS 12
#define DEFAULT_POINTS 600
#define MAX_POINTS 5000
#define MAX_PEERS_READ 100000

/* ---- values <-> columns ---- */

static uint64_t *counter(struct ember_net_values *v, int i)
{
	uint64_t *c[N_COUNTERS] = {&v->bytes_sent,  &v->bytes_recv,  &v->sends,    &v->recvs,
				   &v->connects,    &v->accepts,     &v->closes,   &v->failures,
				   &v->resets_sent, &v->resets_recv, &v->retransmits, &v->drops};
	return c[i];
}

/* Add columns col.. (counters, rtt blob, connect blob) of st to v; -EIO on a bad blob. */
static int add_columns(sqlite3_stmt *st, int col, struct ember_net_values *v)
{
	int rc;

	for (int i = 0; i < N_COUNTERS; i++)
		*counter(v, i) += (uint64_t)sqlite3_column_int64(st, col + i);
	rc = ember_hist_decode_add(&v->rtt, sqlite3_column_blob(st, col + N_COUNTERS),
				   (size_t)sqlite3_column_bytes(st, col + N_COUNTERS));
	if (!rc)
		rc = ember_hist_decode_add(&v->connect, sqlite3_column_blob(st, col + N_COUNTERS + 1),
					   (size_t)sqlite3_column_bytes(st, col + N_COUNTERS + 1));
	return rc == -EINVAL ? -EIO : rc;
}

static int prepare(struct ember_store *s, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
}

/* ---- ingest ---- */

struct ingest {
	sqlite3_stmt *peer_use;
	sqlite3_stmt *get[2], *put[2], *drop[2]; /* [0] 10 s, [1] hourly */
	int64_t *target_ids, *peer_ids;
	int64_t *peer_last; /* the newest bucket naming each peer in the batch */
	int64_t *first, *last; /* per target: the span of its rows */
	struct strbuf rtt, conn;
	const struct ember_net_batch *batch;
};

static void ingest_free(struct ingest *in)
{
	sqlite3_finalize(in->peer_use);
	for (int i = 0; i < 2; i++) {
		sqlite3_finalize(in->get[i]);
		sqlite3_finalize(in->put[i]);
		sqlite3_finalize(in->drop[i]);
	}
	free(in->target_ids);
	free(in->peer_ids);
	free(in->peer_last);
	free(in->first);
	free(in->last);
	sb_free(&in->rtt);
	sb_free(&in->conn);
}

static int ingest_prepare(struct ember_store *s, struct ingest *in)
{
	static const char *const table[2] = {"net_samples", "net_samples_1h"};
	static const char *const drops[2] = {"net_drops", "net_drops_1h"};
	static const char *const tcol[2] = {"bucket_ns", "hour_ns"};
	char sql[1024];
	/* the peer's row, its last use moved up (retention deletes peers by it) */
	int rc = prepare(s,
			 "INSERT INTO net_peers(direction, addr, port, service, last_ns)"
			 " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(direction, addr, port, service)"
			 " DO UPDATE SET last_ns = max(last_ns, excluded.last_ns) RETURNING id",
			 &in->peer_use);

	for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT rtt, connect FROM %s WHERE %s = ?1 AND target_id = ?2 AND peer_id = ?3",
			 table[i], tcol[i]);
		rc = prepare(s, sql, &in->get[i]);
		if (rc != SQLITE_OK)
			break;
		snprintf(sql, sizeof(sql),
			 "INSERT INTO %s(%s, target_id, peer_id, " COUNTER_COLS ", rtt, connect)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
			 " ?16, ?17) ON CONFLICT(%s, target_id, peer_id) DO UPDATE SET"
			 " bytes_sent = bytes_sent + excluded.bytes_sent,"
			 " bytes_recv = bytes_recv + excluded.bytes_recv,"
			 " sends = sends + excluded.sends, recvs = recvs + excluded.recvs,"
			 " connects = connects + excluded.connects,"
			 " accepts = accepts + excluded.accepts, closes = closes + excluded.closes,"
			 " failures = failures + excluded.failures,"
			 " resets_sent = resets_sent + excluded.resets_sent,"
			 " resets_recv = resets_recv + excluded.resets_recv,"
			 " retransmits = retransmits + excluded.retransmits,"
			 " drops = drops + excluded.drops,"
			 " rtt = excluded.rtt, connect = excluded.connect",
			 table[i], tcol[i], tcol[i]);
		rc = prepare(s, sql, &in->put[i]);
		if (rc != SQLITE_OK)
			break;
		snprintf(sql, sizeof(sql),
			 "INSERT INTO %s(%s, target_id, peer_id, reason, count) VALUES (?1, ?2, ?3,"
			 " ?4, ?5) ON CONFLICT(%s, target_id, peer_id, reason) DO UPDATE SET"
			 " count = count + excluded.count",
			 drops[i], tcol[i], tcol[i]);
		rc = prepare(s, sql, &in->drop[i]);
	}
	return rc;
}

static int peer_id(struct ingest *in, const struct ember_net_peer *p, int64_t time_ns,
		   int64_t *id)
{
	sqlite3_stmt *st = in->peer_use;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int(st, 1, p->direction);
	sqlite3_bind_text(st, 2, p->addr, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, p->port);
	sqlite3_bind_text(st, 4, p->service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, time_ns);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(sqlite3_db_handle(st));
	}
	sqlite3_reset(st);
	return rc;
}

/* Add v to the row (time, target, peer) of table `which` (0: 10 s, 1: hourly). */
static int put_row(struct ingest *in, int which, int64_t time, int64_t target, int64_t peer,
		   const struct ember_net_values *v)
{
	struct ember_hist rtt = {0}, conn = {0};
	sqlite3_stmt *st = in->get[which];
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, time);
	sqlite3_bind_int64(st, 2, target);
	sqlite3_bind_int64(st, 3, peer);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* a damaged blob is replaced by the new histogram, not propagated */
		ember_hist_decode_add(&rtt, sqlite3_column_blob(st, 0),
				      (size_t)sqlite3_column_bytes(st, 0));
		ember_hist_decode_add(&conn, sqlite3_column_blob(st, 1),
				      (size_t)sqlite3_column_bytes(st, 1));
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto out;
	if (ember_hist_merge(&rtt, &v->rtt) || ember_hist_merge(&conn, &v->connect)) {
		rc = SQLITE_NOMEM;
		goto out;
	}
	sb_reset(&in->rtt);
	sb_reset(&in->conn);
	ember_hist_encode(&rtt, &in->rtt);
	ember_hist_encode(&conn, &in->conn);
	if (in->rtt.oom || in->conn.oom) {
		rc = SQLITE_NOMEM;
		goto out;
	}
	st = in->put[which];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, time);
	sqlite3_bind_int64(st, 2, target);
	sqlite3_bind_int64(st, 3, peer);
	for (int i = 0; i < N_COUNTERS; i++)
		sqlite3_bind_int64(st, 4 + i,
				   (sqlite3_int64) * counter((struct ember_net_values *)v, i));
	sqlite3_bind_blob(st, 4 + N_COUNTERS, in->rtt.len ? in->rtt.buf : "", (int)in->rtt.len,
			  SQLITE_STATIC);
	sqlite3_bind_blob(st, 5 + N_COUNTERS, in->conn.len ? in->conn.buf : "", (int)in->conn.len,
			  SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
out:
	ember_hist_free(&rtt);
	ember_hist_free(&conn);
	return rc;
}

static int put_drop(struct ingest *in, int which, int64_t time, int64_t target, int64_t peer,
		    const char *reason, uint64_t count)
{
	sqlite3_stmt *st = in->drop[which];
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, time);
	sqlite3_bind_int64(st, 2, target);
	sqlite3_bind_int64(st, 3, peer);
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)count);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Target and peer ids of row r, resolved once per batch. */
static int row_ids(struct ember_store *s, struct ingest *in, const struct ember_net_batch *b,
		   const struct ember_net_batch_row *r, char *err, size_t errlen)
{
	int ret, rc;

	if (!in->target_ids[r->target]) {
		ret = store_resolve_target(s, &b->targets->targets[r->target], in->first[r->target],
					   in->last[r->target], &in->target_ids[r->target], err,
					   errlen);
		if (ret)
			return ret;
	}
	if (!in->peer_ids[r->peer]) {
		rc = peer_id(in, &b->peers[r->peer], in->peer_last[r->peer], &in->peer_ids[r->peer]);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "net ingest: add peer %s",
						  b->peers[r->peer].addr);
	}
	return 0;
}

static int ingest_rows(struct ember_store *s, struct ingest *in, const struct ember_net_batch *b,
		       char *err, size_t errlen)
{
	int ret, rc;

	for (size_t i = 0; i < b->n_rows; i++) {
		const struct ember_net_batch_row *r = &b->rows[i];
		ret = row_ids(s, in, b, r, err, errlen);
		if (ret)
			return ret;
		int64_t t = in->target_ids[r->target], p = in->peer_ids[r->peer];
		int64_t bucket = store_bucket_of(s, r->bucket_ns);
		rc = put_row(in, 0, bucket, t, p, &r->v);
		if (rc == SQLITE_OK)
			rc = put_row(in, 1, store_floor_to(bucket, STORE_ROLLUP_NS), t, p, &r->v);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "net ingest: add counters");
	}
	for (size_t i = 0; i < b->n_drops; i++) {
		const struct ember_net_batch_drop *d = &b->drops[i];
		if (d->row >= b->n_rows)
			return store_error(s, err, errlen, -EINVAL, "net ingest: drop of row %u of %zu",
					   d->row, b->n_rows);
		const struct ember_net_batch_row *r = &b->rows[d->row];
		int64_t t = in->target_ids[r->target], p = in->peer_ids[r->peer];
		int64_t bucket = store_bucket_of(s, r->bucket_ns);
		rc = put_drop(in, 0, bucket, t, p, d->reason, d->count);
		if (rc == SQLITE_OK)
			rc = put_drop(in, 1, store_floor_to(bucket, STORE_ROLLUP_NS), t, p, d->reason,
				      d->count);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "net ingest: add drops");
	}
	return 0;
}

/* Every index in the batch points inside its arrays. */
static int check_batch(struct ember_store *s, const struct ember_net_batch *b, char *err,
		       size_t errlen)
{
	for (size_t i = 0; i < b->n_rows; i++)
		if (b->rows[i].target >= b->targets->n_targets || b->rows[i].peer >= b->n_peers)
			return store_error(s, err, errlen, -EINVAL,
					   "net ingest: row %zu refers to target %u of %zu or "
					   "peer %u of %zu",
					   i, b->rows[i].target, b->targets->n_targets,
					   b->rows[i].peer, b->n_peers);
	return 0;
}

/* store_file_write's work: the batch's rows, inside its transaction. */
static int ingest_write(struct ember_store *s, void *arg, char *err, size_t errlen)
{
	struct ingest *in = arg;
	int rc = ingest_prepare(s, in);

	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "net ingest: prepare");
	return ingest_rows(s, in, in->batch, err, errlen);
}

int ember_store_net_ingest(struct ember_store *s, const struct ember_net_batch *b, char *err,
			   size_t errlen)
{
	struct ingest in = {0};
	size_t nt;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (ember_net_batch_empty(b))
		return 0;
	ret = check_batch(s, b, err, errlen);
	if (ret)
		return ret;
	nt = b->targets->n_targets;
	sb_init(&in.rtt);
	sb_init(&in.conn);
	in.target_ids = calloc(nt + 1, sizeof(*in.target_ids));
	in.first = calloc(nt + 1, sizeof(*in.first));
	in.last = calloc(nt + 1, sizeof(*in.last));
	in.peer_ids = calloc(b->n_peers + 1, sizeof(*in.peer_ids));
	in.peer_last = calloc(b->n_peers + 1, sizeof(*in.peer_last));
	if (!in.target_ids || !in.first || !in.last || !in.peer_ids || !in.peer_last) {
		ret = store_error(s, err, errlen, -ENOMEM, "net ingest: out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n_rows; i++) {
		uint32_t t = b->rows[i].target;
		int64_t at = b->rows[i].bucket_ns;
		if (!in.first[t] || at < in.first[t])
			in.first[t] = at;
		if (at > in.last[t])
			in.last[t] = at;
		if (at > in.peer_last[b->rows[i].peer])
			in.peer_last[b->rows[i].peer] = at;
	}
	in.batch = b;
	ret = store_file_write(s, "net ingest", ingest_write, &in, err, errlen);
out:
	ingest_free(&in);
	return ret;
}

/* ---- reading rows ---- */

/* One row as read, with its peer and target's service and version. */
struct net_row {
	int64_t t;
	int64_t peer_id;
	struct ember_net_peer peer;
	const char *service, *version; /* the target's, valid during the callback */
	const char *reason;            /* drops only */
	uint64_t count;                /* drops only */
	struct ember_net_values v;     /* rows only */
};

/*
 * The parts of the selection's rows (the 10 s table, and its "_1h" roll-up
 * for whole hours), unioned, joined with peers and targets.  drops: the
 * drop tables (reason, count) instead of the counters.
 */
static void build_sql(struct strbuf *sql, const struct ember_selection *sel,
		      const struct store_read_plan *plan, bool drops)
{
	const char *base = drops ? "net_drops" : "net_samples";
	const char *cols = drops ? "reason, count" : COUNTER_COLS ", rtt, connect";
	const char *xcols = drops ? "x.reason, x.count" : X_COUNTER_COLS ", x.rtt, x.connect";
	struct part {
		bool hourly;
		const char *lo, *hi;
	} parts[3];
	int n = 0;

	if (!plan->hourly) {
		parts[n++] = (struct part){false, plan->has_lo ? ":lo" : NULL,
					   plan->has_hi ? ":hi" : NULL};
	} else {
		parts[n++] = (struct part){true, plan->has_lo ? ":hour_lo" : NULL,
					   plan->has_hi ? ":hour_hi" : NULL};
		if (plan->has_lo && plan->lo < plan->hour_lo)
			parts[n++] = (struct part){false, ":lo", ":hour_lo"};
		if (plan->has_hi && plan->hour_hi < plan->hi)
			parts[n++] = (struct part){false, ":hour_hi", ":hi"};
	}
	sb_printf(sql, "SELECT x.t, x.peer_id, p.direction, p.addr, p.port, p.service, g.service,"
		       " g.version, %s FROM (", xcols);
	for (int i = 0; i < n; i++) {
		const char *tcol = parts[i].hourly ? "hour_ns" : "bucket_ns";
		sb_printf(sql, "%sSELECT %s AS t, target_id, peer_id, %s FROM %s%s WHERE 1",
			  i ? " UNION ALL " : "", tcol, cols, base, parts[i].hourly ? "_1h" : "");
		if (parts[i].lo)
			sb_printf(sql, " AND %s >= %s", tcol, parts[i].lo);
		if (parts[i].hi)
			sb_printf(sql, " AND %s < %s", tcol, parts[i].hi);
		store_append_target_filter(sql, sel);
	}
	sb_puts(sql, ") AS x JOIN net_peers AS p ON p.id = x.peer_id"
		     " JOIN targets AS g ON g.id = x.target_id");
}

static void bind_named(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (i)
		sqlite3_bind_int64(st, i, v);
}

/*
 * Call fn for every row of the selection (counters, or drops when `drops`);
 * hourly false reads only the 10 s table.  Inside a read transaction.
 * Returns 0 or -errno with err filled.
 */
static int read_rows(struct ember_store *s, const struct ember_selection *sel, bool hourly,
		     bool drops, int (*fn)(const struct net_row *r, void *arg), void *arg,
		     char *err, size_t errlen)
{
	struct store_read_plan plan;
	struct strbuf sql;
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	int64_t full_res_from;
	rc = store_full_res_from(s, &full_res_from);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "net query: read meta");
	store_plan_reads(s, sel, full_res_from, &plan);
	if (!hourly)
		plan.hourly = false;
	sb_init(&sql);
	build_sql(&sql, sel, &plan, drops);
	if (sql.oom) {
		sb_free(&sql);
		return store_error(s, err, errlen, -ENOMEM, "net query: out of memory");
	}
	rc = prepare(s, sql.buf, &st);
	sb_free(&sql);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "net query: prepare");
	store_bind_selection(st, sel);
	bind_named(st, ":lo", plan.lo);
	bind_named(st, ":hi", plan.hi);
	bind_named(st, ":hour_lo", plan.hour_lo);
	bind_named(st, ":hour_hi", plan.hour_hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct net_row r = {.t = sqlite3_column_int64(st, 0), .peer_id = sqlite3_column_int64(st, 1)};
		const char *addr = (const char *)sqlite3_column_text(st, 3);
		const char *psvc = (const char *)sqlite3_column_text(st, 5);
		r.peer.direction = (uint8_t)sqlite3_column_int(st, 2);
		r.peer.port = (uint16_t)sqlite3_column_int(st, 4);
		snprintf(r.peer.addr, sizeof(r.peer.addr), "%s", addr ? addr : "");
		snprintf(r.peer.service, sizeof(r.peer.service), "%s", psvc ? psvc : "");
		r.service = (const char *)sqlite3_column_text(st, 6);
		r.version = (const char *)sqlite3_column_text(st, 7);
		if (!r.service)
			r.service = "";
		if (!r.version)
			r.version = "";
		if (drops) {
			r.reason = (const char *)sqlite3_column_text(st, 8);
			r.reason = r.reason ? r.reason : "";
			r.count = (uint64_t)sqlite3_column_int64(st, 9);
		} else if ((ret = add_columns(st, 8, &r.v)) != 0) {
			ember_net_values_free(&r.v);
			ret = ret == -ENOMEM ? store_error(s, err, errlen, -ENOMEM, "net query: out of memory")
					     : store_error(s, err, errlen, -EIO,
							   "net query: damaged histogram of peer %s",
							   r.peer.addr);
			break;
		}
		ret = fn(&r, arg);
		ember_net_values_free(&r.v);
		if (ret) {
			if (ret == -ENOMEM)
				store_error(s, err, errlen, -ENOMEM, "net query: out of memory");
			break;
		}
	}
	if (!ret && rc != SQLITE_DONE)
		ret = store_sqlite_error(s, err, errlen, rc, "net query");
	sqlite3_finalize(st);
	return ret;
}

/* ---- peers and timeline ---- */

struct report_ctx {
	struct ember_net_report *r;
	struct store_intmap peer_index; /* peer row id -> index into r->peers */
	size_t cap_peers, cap_points;
	int64_t lo, step;               /* timeline: first step start and step */
	struct store_intmap step_index; /* step number -> index into r->points */
};

static int peer_row(const struct net_row *row, void *arg)
{
	struct report_ctx *c = arg;
	struct ember_net_report *r = c->r;
	uint32_t i;

	if (!store_intmap_get(&c->peer_index, (uint64_t)row->peer_id, &i)) {
		if (r->n_peers == MAX_PEERS_READ) {
			r->truncated = true;
			return 0;
		}
		if (ember_array_grow(&r->peers, &c->cap_peers, r->n_peers + 1, sizeof(*r->peers)) ||
		    store_intmap_put(&c->peer_index, (uint64_t)row->peer_id, (uint32_t)r->n_peers))
			return -ENOMEM;
		i = (uint32_t)r->n_peers++;
		memset(&r->peers[i], 0, sizeof(r->peers[i]));
		r->peers[i].peer = row->peer;
	}
	if (ember_net_values_add(&r->peers[i].v, &row->v) || ember_net_values_add(&r->total, &row->v))
		return -ENOMEM;
	return 0;
}

static int drop_row(const struct net_row *row, void *arg)
{
	struct report_ctx *c = arg;
	struct ember_net_peer_stats *p;
	uint32_t i;
	size_t j;

	if (!store_intmap_get(&c->peer_index, (uint64_t)row->peer_id, &i))
		return 0; /* a peer cut by the bound */
	p = &c->r->peers[i];
	for (j = 0; j < p->n_reasons; j++)
		if (strcmp(p->reasons[j].reason, row->reason) == 0)
			break;
	if (j == p->n_reasons) {
		struct ember_net_reason_count *n = realloc(p->reasons, (j + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->reasons = n;
		p->n_reasons++;
		snprintf(n[j].reason, sizeof(n[j].reason), "%s", row->reason);
		n[j].count = 0;
	}
	p->reasons[j].count += row->count;
	return 0;
}

static int point_row(const struct net_row *row, void *arg)
{
	struct report_ctx *c = arg;
	struct ember_net_report *r = c->r;
	uint64_t step_no = (uint64_t)((row->t - c->lo) / c->step);
	uint32_t i;

	if (row->t < c->lo)
		return 0;
	if (!store_intmap_get(&c->step_index, step_no, &i)) {
		if (r->n_points == MAX_POINTS)
			return 0;
		if (ember_array_grow(&r->points, &c->cap_points, r->n_points + 1, sizeof(*r->points)) ||
		    store_intmap_put(&c->step_index, step_no, (uint32_t)r->n_points))
			return -ENOMEM;
		i = (uint32_t)r->n_points++;
		memset(&r->points[i], 0, sizeof(r->points[i]));
		r->points[i].t_ns = c->lo + (int64_t)step_no * c->step;
	}
	return ember_net_values_add(&r->points[i].v, &row->v) ? -ENOMEM : 0;
}

static uint64_t peer_bytes(const struct ember_net_peer_stats *p)
{
	return p->v.bytes_sent + p->v.bytes_recv;
}

static int heavier_peer(const void *a, const void *b)
{
	uint64_t x = peer_bytes(a), y = peer_bytes(b);

	if (x != y)
		return x < y ? 1 : -1;
	const struct ember_net_peer_stats *p = a, *q = b;
	uint64_t cx = p->v.connects + p->v.accepts, cy = q->v.connects + q->v.accepts;
	return cx < cy ? 1 : cx > cy ? -1 : strcmp(p->peer.addr, q->peer.addr);
}

static int more_drops(const void *a, const void *b)
{
	const struct ember_net_reason_count *x = a, *y = b;

	return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->reason, y->reason);
}

static int earlier_point(const void *a, const void *b)
{
	const struct ember_net_point *x = a, *y = b;

	return x->t_ns < y->t_ns ? -1 : x->t_ns > y->t_ns;
}

/* First and last+1 bucket holding selected net rows; *any false when none. */
static int data_span(struct ember_store *s, const struct ember_selection *sel, int64_t *lo,
		     int64_t *hi, bool *any)
{
	struct strbuf sql;
	sqlite3_stmt *st = NULL;
	int rc;

	*any = false;
	sb_init(&sql);
	sb_puts(&sql, "SELECT min(a), max(b) FROM (SELECT min(bucket_ns) AS a, max(bucket_ns) AS b"
		      " FROM net_samples WHERE 1");
	store_append_target_filter(&sql, sel);
	sb_puts(&sql, " UNION ALL SELECT min(hour_ns), max(hour_ns) + 3600000000000 - 10000000000"
		      " FROM net_samples_1h WHERE 1");
	store_append_target_filter(&sql, sel);
	sb_puts(&sql, ")");
	rc = sql.oom ? SQLITE_NOMEM : prepare(s, sql.buf, &st);
	sb_free(&sql);
	if (rc != SQLITE_OK)
		return rc;
	store_bind_selection(st, sel);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*lo = sqlite3_column_int64(st, 0);
		*hi = sqlite3_column_int64(st, 1) + s->bucket_ns;
		*any = true;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int read_timeline(struct ember_store *s, const struct ember_selection *sel,
			 int64_t step_ns, size_t max_points, struct report_ctx *c, char *err,
			 size_t errlen)
{
	struct ember_net_report *r = c->r;
	int64_t lo, hi;
	bool any = true;
	int rc;

	if (sel->from_ns && sel->to_ns) {
		lo = store_bucket_of(s, sel->from_ns);
		hi = store_ceil_to(sel->to_ns, s->bucket_ns);
	} else {
		rc = data_span(s, sel, &lo, &hi, &any);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "net query: time span");
		if (any && sel->from_ns)
			lo = store_bucket_of(s, sel->from_ns);
		if (any && sel->to_ns)
			hi = store_ceil_to(sel->to_ns, s->bucket_ns);
	}
	if (!any || hi <= lo)
		return 0;
	if (!max_points)
		max_points = DEFAULT_POINTS;
	if (max_points > MAX_POINTS)
		max_points = MAX_POINTS;
	int64_t step = step_ns > s->bucket_ns ? step_ns : s->bucket_ns;
	int64_t need = (hi - lo + (int64_t)max_points - 1) / (int64_t)max_points;
	if (step < need)
		step = need;
	step = store_ceil_to(step, s->bucket_ns);
	bool hourly = step >= STORE_ROLLUP_NS;
	if (hourly)
		step = store_ceil_to(step, STORE_ROLLUP_NS);
	c->step = step;
	c->lo = store_floor_to(lo, step);
	r->step_ns = step;
	r->from_ns = c->lo;
	r->to_ns = hi;

	struct ember_selection tsel = *sel;
	tsel.from_ns = c->lo;
	tsel.to_ns = hi;
	int ret = read_rows(s, &tsel, hourly, false, point_row, c, err, errlen);
	if (ret)
		return ret;
	if (r->n_points)
		qsort(r->points, r->n_points, sizeof(*r->points), earlier_point);
	return 0;
}

int ember_store_net_query(struct ember_store *s, const struct ember_selection *sel,
			  int64_t step_ns, size_t max_points, size_t max_peers,
			  struct ember_net_report *out, char *err, size_t errlen)
{
	struct report_ctx c = {.r = out};
	int ret, rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	ret = store_check_selection(s, sel, err, errlen);
	if (ret)
		return ret;
	rc = store_begin_read(s);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "net query: begin");
	ret = read_rows(s, sel, true, false, peer_row, &c, err, errlen);
	if (!ret)
		ret = read_rows(s, sel, true, true, drop_row, &c, err, errlen);
	if (!ret)
		ret = read_timeline(s, sel, step_ns, max_points, &c, err, errlen);
	store_end_read(s);
	store_intmap_free(&c.peer_index);
	store_intmap_free(&c.step_index);
	if (ret) {
		ember_net_report_free(out);
		return ret;
	}
	if (out->n_peers)
		qsort(out->peers, out->n_peers, sizeof(*out->peers), heavier_peer);
	for (size_t i = 0; i < out->n_peers; i++)
		if (out->peers[i].n_reasons)
			qsort(out->peers[i].reasons, out->peers[i].n_reasons,
			      sizeof(*out->peers[i].reasons), more_drops);
	if (!max_peers)
		max_peers = EMBER_STORE_NET_MAX_PEERS;
	while (out->n_peers > max_peers) {
		struct ember_net_peer_stats *p = &out->peers[--out->n_peers];
		ember_net_values_free(&p->v);
		free(p->reasons);
		out->truncated = true;
	}
	return 0;
}

void ember_net_report_free(struct ember_net_report *r)
{
	for (size_t i = 0; i < r->n_peers; i++) {
		ember_net_values_free(&r->peers[i].v);
		free(r->peers[i].reasons);
	}
	for (size_t i = 0; i < r->n_points; i++)
		ember_net_values_free(&r->points[i].v);
	ember_net_values_free(&r->total);
	free(r->peers);
	free(r->points);
	memset(r, 0, sizeof(*r));
}

/* ---- topology ---- */

struct topo_ctx {
	struct ember_net_edge *edges;
	size_t n, cap;
	struct store_idmap index; /* "C|from\0to" (C: client side) -> edge index */
	struct strbuf key;
	bool truncated;
};

/* The edge values as seen from the client: bytes_sent = client to server. */
static void client_view(const struct net_row *row, struct ember_net_values *v)
{
	*v = row->v;
	if (row->peer.direction == EMBER_NET_IN) {
		v->bytes_sent = row->v.bytes_recv;
		v->bytes_recv = row->v.bytes_sent;
		v->sends = row->v.recvs;
		v->recvs = row->v.sends;
		v->connects = row->v.accepts;
		v->accepts = 0;
		v->resets_sent = row->v.resets_recv;
		v->resets_recv = row->v.resets_sent;
	}
}

static int topo_row(const struct net_row *row, void *arg)
{
	struct topo_ctx *c = arg;
	const struct ember_net_peer *p = &row->peer;
	char other[EMBER_NET_NAME_LEN + EMBER_NET_ADDR_LEN];
	bool out = p->direction == EMBER_NET_OUT;
	int64_t idx;

	if (p->service[0])
		snprintf(other, sizeof(other), "%s", p->service);
	else if (!out)
		snprintf(other, sizeof(other), "%s", p->addr);
	else if (strchr(p->addr, ':'))
		snprintf(other, sizeof(other), "[%s]:%u", p->addr, p->port);
	else
		snprintf(other, sizeof(other), "%s:%u", p->addr, p->port);
	const char *from = out ? row->service : other, *to = out ? other : row->service;

	sb_reset(&c->key);
	sb_putc(&c->key, out ? 'C' : 'S');
	sb_append(&c->key, from, strlen(from) + 1);
	sb_append(&c->key, to, strlen(to) + 1);
	if (c->key.oom)
		return -ENOMEM;
	if (!store_idmap_get(&c->index, c->key.buf, c->key.len, &idx)) {
		if (c->n == EMBER_STORE_NET_MAX_EDGES * 2) {
			c->truncated = true;
			return 0;
		}
		if (ember_array_grow(&c->edges, &c->cap, c->n + 1, sizeof(*c->edges)) ||
		    store_idmap_put(&c->index, c->key.buf, c->key.len, (int64_t)c->n))
			return -ENOMEM;
		idx = (int64_t)c->n++;
		struct ember_net_edge *e = &c->edges[idx];
		memset(e, 0, sizeof(*e));
		snprintf(e->from, sizeof(e->from), "%s", from);
		snprintf(e->to, sizeof(e->to), "%s", to);
		e->from_service = out || p->service[0];
		e->to_service = !out || p->service[0];
	}
	struct ember_net_values v;
	client_view(row, &v);
	return ember_net_values_add(&c->edges[idx].v, &v) ? -ENOMEM : 0;
}

static int busier_edge(const void *a, const void *b)
{
	const struct ember_net_edge *x = a, *y = b;
	uint64_t bx = x->v.bytes_sent + x->v.bytes_recv, by = y->v.bytes_sent + y->v.bytes_recv;

	return bx < by ? 1 : bx > by ? -1 : strcmp(x->from, y->from);
}

int ember_store_net_topology(struct ember_store *s, const struct ember_selection *sel,
			     struct ember_net_edge **edges, size_t *n_edges, bool *truncated,
			     char *err, size_t errlen)
{
	struct topo_ctx c = {0};
	int ret, rc;

	*edges = NULL;
	*n_edges = 0;
	*truncated = false;
	if (err && errlen)
		err[0] = '\0';
	ret = store_check_selection(s, sel, err, errlen);
	if (ret)
		return ret;
	sb_init(&c.key);
	rc = store_begin_read(s);
	if (rc != SQLITE_OK) {
		sb_free(&c.key);
		return store_sqlite_error(s, err, errlen, rc, "net topology: begin");
	}
	ret = read_rows(s, sel, true, false, topo_row, &c, err, errlen);
	store_end_read(s);
	if (ret) {
		ember_net_edges_free(c.edges, c.n);
		goto out;
	}
	/* a local-to-local edge seen from both ends keeps the client's view */
	size_t kept = 0;
	for (size_t i = 0; i < c.n; i++) {
		struct ember_net_edge *e = &c.edges[i];
		int64_t other;
		bool server_side = false;
		if (e->from_service && e->to_service) {
			sb_reset(&c.key);
			sb_putc(&c.key, 'C');
			sb_append(&c.key, e->from, strlen(e->from) + 1);
			sb_append(&c.key, e->to, strlen(e->to) + 1);
			server_side = store_idmap_get(&c.index, c.key.buf, c.key.len, &other) &&
				      (size_t)other != i;
		}
		if (server_side) {
			ember_net_values_free(&e->v);
			continue;
		}
		c.edges[kept++] = *e;
	}
	c.n = kept;
	if (c.n)
		qsort(c.edges, c.n, sizeof(*c.edges), busier_edge);
	while (c.n > EMBER_STORE_NET_MAX_EDGES) {
		ember_net_values_free(&c.edges[--c.n].v);
		c.truncated = true;
	}
	*edges = c.edges;
	*n_edges = c.n;
	*truncated = c.truncated;
out:
	store_idmap_free(&c.index);
	sb_free(&c.key);
	return ret;
}

void ember_net_edges_free(struct ember_net_edge *edges, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ember_net_values_free(&edges[i].v);
	free(edges);
}
