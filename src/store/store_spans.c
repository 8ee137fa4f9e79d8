/*
 * store_spans.c - the span tables: ingest, the RED query, slow spans.
 *
 * The tables are version 7 of the schema (store_schema.c); retention
 * deletes their old rows with the samples' (store_retention.c: spans with
 * the 10 s data, spans_1h and slow_spans with the roll-ups, endpoints by
 * their last use, which every ingest naming one moves up).
 *
 * A row that exists already is added to in SQL: the counts summed, the
 * duration histograms (core/hist.h blobs) merged by the SQL function
 * ember_hist_merge(a, b), registered on every connection
 * (store_spans_connect, from store_connect).
 */
#include "store/store_spans.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "ember_spans.h"
#include "store/store_internal.h"

#define HOUR_NS STORE_ROLLUP_NS
#define LONG_RANGE_NS (24 * HOUR_NS) /* longer ranges read the hourly roll-up */
#define DEFAULT_STEPS 30

/* ---- ember_hist_merge(a, b) ---- */

static void hist_merge_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct ember_hist h = {0};
	struct strbuf out;
	bool nomem = false;

	(void)argc;
	sb_init(&out);
	for (int i = 0; i < 2; i++) {
		const void *b = sqlite3_value_blob(argv[i]);
		/* a malformed blob (a damaged file) counts as empty */
		if (ember_hist_decode_add(&h, b, b ? (size_t)sqlite3_value_bytes(argv[i]) : 0) ==
		    -ENOMEM)
			nomem = true;
	}
	ember_hist_encode(&h, &out);
	if (nomem || out.oom)
		sqlite3_result_error_nomem(ctx);
	else
		sqlite3_result_blob(ctx, out.len ? out.buf : "", (int)out.len, SQLITE_TRANSIENT);
	sb_free(&out);
	ember_hist_free(&h);
}

int store_spans_connect(struct ember_store *s, char *err, size_t errlen)
{
	int rc = sqlite3_create_function_v2(s->db, "ember_hist_merge", 2,
					    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, hist_merge_fn,
					    NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0
			       : store_sqlite_error(s, err, errlen, rc, "register ember_hist_merge");
}

/* ---- ingest ---- */

static int role_code(const char *role)
{
	return role && strcmp(role, "server") == 0 ? EMBER_ROLE_SERVER : EMBER_ROLE_CLIENT;
}

static const char *role_name(int code)
{
	return code == EMBER_ROLE_SERVER ? "server" : "client";
}

struct ingest_stmts {
	sqlite3_stmt *endpoint, *add, *add_1h, *slow, *trim;
};

static const char *const add_sql =
	"INSERT INTO %s(%s, target_id, endpoint_id, role, peer, status, count, errors,"
	" duration_ns, max_ns, req_bytes, resp_bytes, hist, tls)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
	" ON CONFLICT DO UPDATE SET count = count + excluded.count,"
	" errors = errors + excluded.errors, tls = tls + excluded.tls,"
	" duration_ns = duration_ns + excluded.duration_ns,"
	" max_ns = max(max_ns, excluded.max_ns), req_bytes = req_bytes + excluded.req_bytes,"
	" resp_bytes = resp_bytes + excluded.resp_bytes,"
	" hist = ember_hist_merge(hist, excluded.hist)";

static void finalize_stmts(struct ingest_stmts *st)
{
	sqlite3_finalize(st->endpoint);
	sqlite3_finalize(st->add);
	sqlite3_finalize(st->add_1h);
	sqlite3_finalize(st->slow);
	sqlite3_finalize(st->trim);
}

static int prepare_stmts(struct ember_store *s, struct ingest_stmts *st)
{
	char sql[1024];
	int rc;

	rc = sqlite3_prepare_v2(s->db,
				"INSERT INTO span_endpoints(protocol, name, last_ns) VALUES (?1, ?2, ?3)"
				" ON CONFLICT(protocol, name) DO UPDATE SET"
				" last_ns = max(last_ns, excluded.last_ns) RETURNING id",
				-1, &st->endpoint, NULL);
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), add_sql, "spans", "bucket_ns");
		rc = sqlite3_prepare_v2(s->db, sql, -1, &st->add, NULL);
	}
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), add_sql, "spans_1h", "hour_ns");
		rc = sqlite3_prepare_v2(s->db, sql, -1, &st->add_1h, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db,
					"INSERT INTO slow_spans(time_ns, target_id, endpoint_id, role,"
					" peer, status, error, duration_ns, tid, text, err, tls)"
					" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
					-1, &st->slow, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db,
					"DELETE FROM slow_spans WHERE id <= (SELECT max(id) FROM"
					" slow_spans) - ?1",
					-1, &st->trim, NULL);
	return rc;
}

/* The endpoint's id, its last use moved up to time_ns (retention deletes endpoints by it). */
static int endpoint_id(struct ingest_stmts *st, const char *protocol, const char *name,
		       int64_t time_ns, int64_t *id)
{
	int rc;

	sqlite3_reset(st->endpoint);
	store_bind_text(st->endpoint, 1, protocol);
	store_bind_text(st->endpoint, 2, name);
	sqlite3_bind_int64(st->endpoint, 3, time_ns);
	rc = sqlite3_step(st->endpoint);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st->endpoint, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st->endpoint);
	return rc;
}

static int add_row(sqlite3_stmt *st, int64_t t, int64_t target, int64_t endpoint,
		   const struct ember_store_span *r, const void *hist, size_t hlen)
{
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, t);
	sqlite3_bind_int64(st, 2, target);
	sqlite3_bind_int64(st, 3, endpoint);
	sqlite3_bind_int(st, 4, role_code(r->role));
	store_bind_text(st, 5, r->peer);
	store_bind_text(st, 6, r->status);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->count);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->errors);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)r->dur_sum_ns);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)r->dur_max_ns);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)r->req_bytes);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)r->resp_bytes);
	sqlite3_bind_blob(st, 13, hlen ? hist : "", (int)hlen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 14, (sqlite3_int64)r->tls);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int ingest_all(struct ember_store *s, struct ingest_stmts *st,
		      const struct ember_store_span *rows, size_t n,
		      const struct ember_store_slow_span *slow, size_t n_slow, char *err,
		      size_t errlen)
{
	struct strbuf *blob = &s->blob; /* scratch of the ingest thread */
	int64_t target, ep;
	int rc, ret;

	for (size_t i = 0; i < n; i++) {
		const struct ember_store_span *r = &rows[i];
		ret = store_target_id(s, r->target, r->bucket_ns, r->bucket_ns, &target, err, errlen);
		if (ret)
			return ret;
		rc = endpoint_id(st, r->protocol, r->endpoint, r->bucket_ns, &ep);
		sb_reset(blob);
		if (r->hist)
			ember_hist_encode(r->hist, blob);
		if (blob->oom)
			return store_error(s, err, errlen, -ENOMEM, "spans: out of memory");
		if (rc == SQLITE_OK)
			rc = add_row(st->add, r->bucket_ns, target, ep, r, blob->buf, blob->len);
		if (rc == SQLITE_OK)
			rc = add_row(st->add_1h, store_floor_to(r->bucket_ns, HOUR_NS), target, ep, r,
				     blob->buf, blob->len);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "spans: add %s %s",
						  r->protocol, r->endpoint);
	}
	for (size_t i = 0; i < n_slow; i++) {
		const struct ember_store_slow_span *r = &slow[i];
		ret = store_target_id(s, r->target, r->time_ns, r->time_ns, &target, err, errlen);
		if (ret)
			return ret;
		rc = endpoint_id(st, r->protocol, r->endpoint, r->time_ns, &ep);
		if (rc == SQLITE_OK) {
			sqlite3_stmt *q = st->slow;
			sqlite3_reset(q);
			sqlite3_bind_int64(q, 1, r->time_ns);
			sqlite3_bind_int64(q, 2, target);
			sqlite3_bind_int64(q, 3, ep);
			sqlite3_bind_int(q, 4, role_code(r->role));
			store_bind_text(q, 5, r->peer);
			store_bind_text(q, 6, r->status);
			sqlite3_bind_int(q, 7, r->error);
			sqlite3_bind_int64(q, 8, (sqlite3_int64)r->duration_ns);
			sqlite3_bind_int64(q, 9, r->tid);
			store_bind_text(q, 10, r->text);
			store_bind_text(q, 11, r->err);
			sqlite3_bind_int(q, 12, r->tls);
			rc = sqlite3_step(q);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
			sqlite3_reset(q);
		}
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "spans: add a slow span");
	}
	if (n_slow) {
		sqlite3_reset(st->trim);
		sqlite3_bind_int64(st->trim, 1, EMBER_STORE_MAX_SLOW_SPANS);
		rc = sqlite3_step(st->trim);
		sqlite3_reset(st->trim);
		if (rc != SQLITE_DONE)
			return store_sqlite_error(s, err, errlen, rc, "spans: trim slow spans");
	}
	return 0;
}

struct spans_write {
	const struct ember_store_span *rows;
	size_t n;
	const struct ember_store_slow_span *slow;
	size_t n_slow;
};

/* store_file_write's work: the rows and slow spans, inside its transaction. */
static int spans_write(struct ember_store *s, void *arg, char *err, size_t errlen)
{
	const struct spans_write *w = arg;
	struct ingest_stmts st = {0};
	int rc = prepare_stmts(s, &st), ret;

	if (rc != SQLITE_OK)
		ret = store_sqlite_error(s, err, errlen, rc, "spans: prepare");
	else
		ret = ingest_all(s, &st, w->rows, w->n, w->slow, w->n_slow, err, errlen);
	finalize_stmts(&st);
	return ret;
}

int ember_store_spans_ingest(struct ember_store *s, const struct ember_store_span *rows, size_t n,
			     const struct ember_store_slow_span *slow, size_t n_slow, char *err,
			     size_t errlen)
{
	struct spans_write w = {rows, n, slow, n_slow};

	if (err && errlen)
		err[0] = '\0';
	if (!n && !n_slow)
		return 0;
	return store_file_write(s, "spans", spans_write, &w, err, errlen);
}

/* ---- queries ---- */

/* " AND ..." for the filter; bound by bind_filter. */
static void append_filter(struct strbuf *sql, const struct ember_span_filter *f)
{
	if (f->protocol && *f->protocol)
		sb_puts(sql, " AND e.protocol = :protocol");
	if (f->role && *f->role)
		sb_puts(sql, " AND r.role = :role");
	if (f->endpoint && *f->endpoint)
		sb_puts(sql, " AND e.name = :endpoint");
	if (f->peer && *f->peer)
		sb_puts(sql, " AND r.peer = :peer");
}

static void bind_named(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (i)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static void bind_filter(sqlite3_stmt *st, const struct ember_span_filter *f)
{
	int i = sqlite3_bind_parameter_index(st, ":role");

	bind_named(st, ":protocol", f->protocol);
	bind_named(st, ":endpoint", f->endpoint);
	bind_named(st, ":peer", f->peer);
	if (i)
		sqlite3_bind_int(st, i, role_code(f->role));
}

static void bind_range(sqlite3_stmt *st, int64_t lo, int64_t hi)
{
	int i = sqlite3_bind_parameter_index(st, ":lo");

	if (i)
		sqlite3_bind_int64(st, i, lo);
	if ((i = sqlite3_bind_parameter_index(st, ":hi")))
		sqlite3_bind_int64(st, i, hi);
}

void ember_span_red_free(struct ember_span_red *r)
{
	for (size_t i = 0; i < r->n_groups; i++) {
		struct ember_span_group *g = &r->groups[i];
		free(g->service);
		free(g->protocol);
		free(g->role);
		free(g->endpoint);
		free(g->peer);
		free(g->series);
		free(g->series_errors);
		ember_hist_free(&g->hist);
	}
	free(r->groups);
	memset(r, 0, sizeof(*r));
}

static char *dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return strdup(t ? (const char *)t : "");
}

static int by_count(const void *a, const void *b)
{
	const struct ember_span_group *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	int c = strcmp(x->service, y->service);
	return c ? c : strcmp(x->endpoint, y->endpoint);
}

static void add_status(struct ember_span_group *g, const char *status, uint64_t count)
{
	for (size_t i = 0; i < g->n_statuses; i++) {
		if (strcmp(g->statuses[i].status, status) == 0) {
			g->statuses[i].count += count;
			return;
		}
	}
	if (g->n_statuses < EMBER_SPAN_MAX_STATUSES) {
		snprintf(g->statuses[g->n_statuses].status, sizeof(g->statuses[0].status), "%s",
			 g->n_statuses == EMBER_SPAN_MAX_STATUSES - 1 ? "other" : status);
		g->statuses[g->n_statuses++].count = count;
	} else {
		g->statuses[EMBER_SPAN_MAX_STATUSES - 1].count += count;
	}
}

/* The group a row belongs to; NULL when out of memory or over the limit. */
static struct ember_span_group *group_of(struct ember_span_red *r, struct store_idmap *index,
					 size_t *cap, sqlite3_stmt *st, bool by_peer,
					 struct strbuf *key)
{
	int64_t gi;

	sb_reset(key);
	for (int col = 0; col < 5; col++) {
		if (col == 4 && !by_peer)
			break;
		const unsigned char *t = sqlite3_column_text(st, col);
		const char *v = t ? (const char *)t : "";
		sb_append(key, v, strlen(v) + 1);
	}
	if (key->oom)
		return NULL;
	if (store_idmap_get(index, key->buf, key->len, &gi))
		return &r->groups[gi];
	if (r->n_groups >= EMBER_SPAN_MAX_GROUPS) {
		r->truncated = true;
		return NULL;
	}
	if (ember_array_grow(&r->groups, cap, r->n_groups + 1, sizeof(*r->groups)))
		return NULL;
	struct ember_span_group *g = &r->groups[r->n_groups];
	memset(g, 0, sizeof(*g));
	g->service = dup_col(st, 0);
	g->protocol = dup_col(st, 1);
	g->role = strdup(role_name(sqlite3_column_int(st, 2)));
	g->endpoint = dup_col(st, 3);
	g->peer = by_peer ? dup_col(st, 4) : NULL;
	if (r->n_steps) {
		g->series = calloc(r->n_steps, sizeof(*g->series));
		g->series_errors = calloc(r->n_steps, sizeof(*g->series_errors));
	}
	if (!g->service || !g->protocol || !g->role || !g->endpoint || (by_peer && !g->peer) ||
	    (r->n_steps && (!g->series || !g->series_errors)) ||
	    store_idmap_put(index, key->buf, key->len, (int64_t)r->n_groups)) {
		r->n_groups++; /* freed with the rest */
		return NULL;
	}
	r->n_groups++;
	return g;
}

int ember_store_spans_red(struct ember_store *s, const struct ember_selection *sel,
			  const struct ember_span_filter *f, int64_t step_ns,
			  struct ember_span_red *out, char *err, size_t errlen)
{
	struct strbuf sql, key;
	struct store_idmap index = {0};
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, ret = 0;
	bool bounded = sel->from_ns && sel->to_ns;

	memset(out, 0, sizeof(*out));
	ret = store_check_selection(s, sel, err, errlen);
	if (!ret)
		ret = store_refresh(s, err, errlen);
	if (ret)
		return ret;
	int64_t full_from;
	rc = store_full_res_from(s, &full_from);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "spans: read full_res_from_ns");
	/* long ranges, and ranges reaching where retention left only the roll-up */
	out->hourly = !bounded || sel->to_ns - sel->from_ns > LONG_RANGE_NS ||
		      sel->from_ns < full_from;
	int64_t bucket = out->hourly ? HOUR_NS : s->bucket_ns;
	if (bounded) {
		int64_t span = sel->to_ns - sel->from_ns;
		int64_t step = step_ns > 0 ? step_ns : span / DEFAULT_STEPS;
		step = store_ceil_to(step > bucket ? step : bucket, bucket);
		while (span / step + 1 > EMBER_SPAN_MAX_STEPS)
			step *= 2;
		out->step_ns = step;
		out->from_ns = store_floor_to(sel->from_ns, step);
		out->to_ns = sel->to_ns;
		out->n_steps = (size_t)((out->to_ns - out->from_ns + step - 1) / step);
	}
	sb_init(&sql);
	sb_init(&key);
	sb_printf(&sql,
		  "SELECT t.service, e.protocol, r.role, e.name, r.peer, r.status, r.%s, r.count,"
		  " r.errors, r.duration_ns, r.max_ns, r.req_bytes, r.resp_bytes, r.hist, r.tls"
		  " FROM %s AS r JOIN span_endpoints AS e ON e.id = r.endpoint_id"
		  " JOIN targets AS t ON t.id = r.target_id WHERE 1",
		  out->hourly ? "hour_ns" : "bucket_ns", out->hourly ? "spans_1h" : "spans");
	if (bounded)
		sb_printf(&sql, " AND r.%s > :lo AND r.%s < :hi", out->hourly ? "hour_ns" : "bucket_ns",
			  out->hourly ? "hour_ns" : "bucket_ns");
	store_append_target_filter(&sql, sel);
	append_filter(&sql, f);
	if (sql.oom) {
		ret = store_error(s, err, errlen, -ENOMEM, "spans: out of memory");
		goto out;
	}
	rc = store_begin_read(s);
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "spans: begin read");
		goto out;
	}
	rc = sqlite3_prepare_v2(s->db, sql.buf, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		store_bind_selection(st, sel);
		bind_filter(st, f);
		bind_range(st, sel->from_ns - bucket, sel->to_ns);
	}
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ember_span_group *g = group_of(out, &index, &cap, st, f->by_peer, &key);
		rc = SQLITE_OK;
		if (!g)
			continue; /* over the group limit (or out of memory): left out, flagged */
		uint64_t count = (uint64_t)sqlite3_column_int64(st, 7);
		uint64_t errors = (uint64_t)sqlite3_column_int64(st, 8);
		g->count += count;
		g->errors += errors;
		g->dur_sum_ns += (uint64_t)sqlite3_column_int64(st, 9);
		uint64_t mx = (uint64_t)sqlite3_column_int64(st, 10);
		if (mx > g->dur_max_ns)
			g->dur_max_ns = mx;
		g->req_bytes += (uint64_t)sqlite3_column_int64(st, 11);
		g->resp_bytes += (uint64_t)sqlite3_column_int64(st, 12);
		g->tls += (uint64_t)sqlite3_column_int64(st, 14);
		/* a malformed blob (damaged file) adds nothing; out of memory
		 * leaves the quantiles short, never the counts */
		ember_hist_decode_add(&g->hist, sqlite3_column_blob(st, 13),
				      (size_t)sqlite3_column_bytes(st, 13));
		const unsigned char *status = sqlite3_column_text(st, 5);
		add_status(g, status ? (const char *)status : "", count);
		if (out->n_steps && g->series) {
			int64_t t = sqlite3_column_int64(st, 6);
			int64_t i = t < out->from_ns ? 0 : (t - out->from_ns) / out->step_ns;
			if (i >= (int64_t)out->n_steps)
				i = (int64_t)out->n_steps - 1;
			g->series[i] += count;
			g->series_errors[i] += errors;
		}
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		ret = store_sqlite_error(s, err, errlen, rc, "spans: query");
	sqlite3_finalize(st);
	store_end_read(s);
	if (!ret && out->n_groups)
		qsort(out->groups, out->n_groups, sizeof(*out->groups), by_count);
out:
	sb_free(&sql);
	sb_free(&key);
	store_idmap_free(&index);
	if (ret)
		ember_span_red_free(out);
	return ret;
}

int ember_store_spans_slow(struct ember_store *s, const struct ember_selection *sel,
			   const struct ember_span_filter *f, size_t limit,
			   int (*fn)(const struct ember_slow_span_row *row, void *arg), void *arg,
			   char *err, size_t errlen)
{
	struct strbuf sql;
	sqlite3_stmt *st = NULL;
	int rc, ret;

	ret = store_check_selection(s, sel, err, errlen);
	if (!ret)
		ret = store_refresh(s, err, errlen);
	if (ret)
		return ret;
	sb_init(&sql);
	sb_puts(&sql, "SELECT r.time_ns, r.duration_ns, t.service, t.version, e.protocol, r.role,"
		      " e.name, r.peer, r.status, r.text, r.err, r.error, t.pid, r.tid, r.target_id,"
		      " r.tls"
		      " FROM slow_spans AS r JOIN span_endpoints AS e ON e.id = r.endpoint_id"
		      " JOIN targets AS t ON t.id = r.target_id WHERE 1");
	if (sel->from_ns)
		sb_puts(&sql, " AND r.time_ns >= :lo");
	if (sel->to_ns)
		sb_puts(&sql, " AND r.time_ns < :hi");
	store_append_target_filter(&sql, sel);
	append_filter(&sql, f);
	sb_printf(&sql, " ORDER BY r.duration_ns DESC LIMIT %zu", limit ? limit : 100);
	if (sql.oom) {
		sb_free(&sql);
		return store_error(s, err, errlen, -ENOMEM, "slow spans: out of memory");
	}
	rc = store_begin_read(s);
	if (rc != SQLITE_OK) {
		sb_free(&sql);
		return store_sqlite_error(s, err, errlen, rc, "slow spans: begin read");
	}
	rc = sqlite3_prepare_v2(s->db, sql.buf, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		store_bind_selection(st, sel);
		bind_filter(st, f);
		bind_range(st, sel->from_ns, sel->to_ns);
	}
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ember_slow_span_row row = {
			.time_ns = sqlite3_column_int64(st, 0),
			.duration_ns = (uint64_t)sqlite3_column_int64(st, 1),
			.service = (const char *)sqlite3_column_text(st, 2),
			.version = (const char *)sqlite3_column_text(st, 3),
			.protocol = (const char *)sqlite3_column_text(st, 4),
			.role = role_name(sqlite3_column_int(st, 5)),
			.endpoint = (const char *)sqlite3_column_text(st, 6),
			.peer = (const char *)sqlite3_column_text(st, 7),
			.status = (const char *)sqlite3_column_text(st, 8),
			.text = store_column_text_or_null(st, 9),
			.err = store_column_text_or_null(st, 10),
			.error = sqlite3_column_int(st, 11) != 0,
			.pid = (uint32_t)sqlite3_column_int64(st, 12),
			.tid = (uint32_t)sqlite3_column_int64(st, 13),
			.target_id = sqlite3_column_int64(st, 14),
			.tls = sqlite3_column_int(st, 15) != 0,
		};
		rc = SQLITE_OK;
		if (fn(&row, arg)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	ret = rc == SQLITE_DONE || rc == SQLITE_OK
		      ? 0
		      : store_sqlite_error(s, err, errlen, rc, "slow spans: query");
	sqlite3_finalize(st);
	store_end_read(s);
	sb_free(&sql);
	return ret;
}
