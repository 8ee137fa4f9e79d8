/*
 * store_retention.c - deleting old data, and keeping the file under a size.
 *
 * The agent calls ember_store_retention_step() between flushes; each call
 * does one bounded piece of work (one write transaction of at most
 * batch_rows rows, a read scan of at most SCAN_FACTOR x batch_rows rows, or
 * an incremental vacuum of vacuum_pages pages), so ingest, which runs on
 * the same thread, and queries, which read other connections in WAL mode,
 * are never held up for long.  A pass, at most once a minute:
 *
 *  1. DELETE: every registered table (store_retained_tables[] below) loses
 *     its rows older than its cut: STORE_KEEP_FULL tables (10 s buckets)
 *     the full-resolution window, STORE_KEEP_ROLLUP tables (hourly
 *     roll-ups, per-bucket totals, reports) the retention period.  Cuts are
 *     whole hours, so the roll-up always holds every hour whose buckets are
 *     gone; meta full_res_from_ns tells queries where that starts
 *     (store_query.c reads whole hours there).  A batch is a DELETE of the
 *     rows whose key is among the oldest batch_rows (rowid, or the primary
 *     key of a WITHOUT ROWID table, found with pragma_table_info).
 *
 *  2. Collect stacks, frames and targets nothing references any more (at
 *     most every 6 hours, or at once under the size bound): a
 *     mark-and-sweep.  A second, read-only connection holds one snapshot
 *     while every registered table's target and stack columns are scanned
 *     (packed roll-up rows decoded) into bitmaps of live ids; rows ingested
 *     after the snapshot mark their ids as they are resolved
 *     (store_retention_touch, from store_ingest.c), so a stack that ingest
 *     starts using again is never deleted.  Then unmarked stacks are
 *     deleted, a new snapshot marks the frames of the stacks left, unmarked
 *     frames and targets are deleted; the ingest caches of a kind are
 *     dropped after each batch of deletions of it.  Only this process's
 *     ingests are seen: one agent ingests into a database.
 *
 *  3. VACUUM: the freed pages are given back to the file system,
 *     vacuum_pages at a time (PRAGMA incremental_vacuum; new databases are
 *     created with auto_vacuum=INCREMENTAL, store.c).
 *
 * The size bound: when the database and its WAL use more than 90% of
 * max_bytes, the cuts move forward, full-resolution data first, then the
 * roll-ups (never past the last hour), by the share of the data that is in
 * excess, and the pass repeats until they use at most 80%.  A bound that
 * even the last hour exceeds is counted (bound_unreachable), not met.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"

#define HOUR STORE_ROLLUP_NS
#define CHECK_EVERY_NS (60LL * 1000000000LL) /* a pass at most this often */
#define SCAN_FACTOR 16                       /* rows read per step, x batch_rows */
#define CONVERT_MAX_BYTES (256LL << 20)      /* one-time VACUUM up to this size */
#define HIGH_WATER 0.90                      /* of max_bytes: start deleting */
#define LOW_WATER 0.80                       /* of max_bytes: stop */
#define MAX_GC_ID (1LL << 32)                /* larger row ids: no collection */
#define COLLECT_EVERY_NS (6 * HOUR)          /* unless the size bound presses */
#define CHECKPOINT_WAL_BYTES (4u << 20)      /* retention checkpoints past this WAL */

/*
 * Every table retention manages.  Tables of other parts of the store (net
 * metrics, spans) add one line each here; see store_internal.h.
 */
static const struct store_retained_table retained[] = {
	{"samples", "bucket_ns", STORE_KEEP_FULL, "target_id", "stack_id", false},
	{"samples_1h", "hour_ns", STORE_KEEP_ROLLUP, "target_id", "stack_id", false},
	{"samples_1h_packed", "hour_ns", STORE_KEEP_ROLLUP, "target_id", "stacks", true},
	{"sample_totals", "bucket_ns", STORE_KEEP_ROLLUP, "target_id", NULL, false},
	{"reports", "created_ns", STORE_KEEP_ROLLUP, NULL, NULL, false},
	{"net_samples", "bucket_ns", STORE_KEEP_FULL, "target_id", NULL, false},
	{"net_drops", "bucket_ns", STORE_KEEP_FULL, "target_id", NULL, false},
	{"net_samples_1h", "hour_ns", STORE_KEEP_ROLLUP, "target_id", NULL, false},
	{"net_drops_1h", "hour_ns", STORE_KEEP_ROLLUP, "target_id", NULL, false},
	{"net_peers", "last_ns", STORE_KEEP_ROLLUP, NULL, NULL, false},
	{"spans", "bucket_ns", STORE_KEEP_FULL, "target_id", NULL, false},
	{"spans_1h", "hour_ns", STORE_KEEP_ROLLUP, "target_id", NULL, false},
	{"slow_spans", "time_ns", STORE_KEEP_ROLLUP, "target_id", NULL, false},
	{"span_endpoints", "last_ns", STORE_KEEP_ROLLUP, NULL, NULL, false},
};
#define N_TABLES (sizeof(retained) / sizeof(retained[0]))

static const char *const ref_table[STORE_REF_COUNT_] = {
	[STORE_REF_TARGET] = "targets", [STORE_REF_STACK] = "stacks", [STORE_REF_FRAME] = "frames"};

enum phase { PH_IDLE, PH_DELETE, PH_MARK, PH_SWEEP, PH_MARK_FRAMES, PH_VACUUM };

struct bitmap {
	uint64_t *w;
	int64_t max; /* ids 1..max are tracked; larger ones are never candidates */
};

struct table_state {
	bool exists;
	sqlite3_stmt *del; /* the batched DELETE, on s->db */
	bool done;         /* nothing older than its cut left in this pass */
};

struct store_retention {
	struct ember_retention_options o;
	struct table_state t[N_TABLES];
	bool checked; /* which tables exist, on this connection */
	enum phase phase;
	int64_t now, next_check, last_collect;
	int64_t full_cut, rollup_cut;         /* of this pass: rows before go */
	int64_t pressure_full, pressure_rollup; /* moved by the size bound */
	bool pressure, deleted_refs;
	bool incremental;
	/* collection */
	sqlite3 *gc;          /* read-only connection holding the snapshot */
	sqlite3_stmt *scan;   /* on gc */
	size_t scan_table;
	struct bitmap live[STORE_REF_COUNT_];
	bool collecting;
	enum store_ref sweeping;
	int64_t cursor;
	sqlite3_stmt *ids;    /* SELECT id FROM <sweeping> WHERE id > ? ..., on s->db */
	struct ember_retention_stats st;
};

/* ---- helpers ---- */

static void bm_free(struct bitmap *b)
{
	free(b->w);
	b->w = NULL;
	b->max = 0;
}

static int bm_alloc(struct bitmap *b, int64_t max)
{
	bm_free(b);
	if (max <= 0)
		return 0;
	b->w = calloc((size_t)(max / 64 + 1), sizeof(*b->w));
	if (!b->w)
		return -ENOMEM;
	b->max = max;
	return 0;
}

static bool bm_get(const struct bitmap *b, int64_t id)
{
	return id > 0 && id <= b->max && (b->w[id >> 6] >> (id & 63) & 1);
}

static void bm_set(struct bitmap *b, int64_t id)
{
	if (id > 0 && id <= b->max)
		b->w[id >> 6] |= 1ULL << (id & 63);
}

/* One integer from sql (NULL gives dflt).  An SQLite code. */
static int query_int(sqlite3 *db, const char *sql, int64_t dflt, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	*out = dflt;
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static bool has_refs(const struct store_retained_table *t)
{
	return t->target_column || t->stack_column;
}

/* The database's pages and its WAL's size, into the stats. */
static int measure(struct ember_store *s, struct store_retention *r)
{
	char wal[PATH_MAX];
	struct stat st;
	int64_t pages, free_pages, page_size;
	int rc = query_int(s->db, "PRAGMA page_count", 0, &pages);

	if (rc == SQLITE_OK)
		rc = query_int(s->db, "PRAGMA freelist_count", 0, &free_pages);
	if (rc == SQLITE_OK)
		rc = query_int(s->db, "PRAGMA page_size", 4096, &page_size);
	if (rc != SQLITE_OK)
		return rc;
	r->st.db_bytes = (uint64_t)(pages * page_size);
	r->st.free_bytes = (uint64_t)(free_pages * page_size);
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	r->st.wal_bytes = stat(wal, &st) == 0 ? (uint64_t)st.st_size : 0;
	return SQLITE_OK;
}

static uint64_t used_bytes(const struct store_retention *r)
{
	return r->st.db_bytes - r->st.free_bytes + r->st.wal_bytes;
}

/* ---- setting up ---- */

/* Per connection: which tables exist, their batched DELETE statements, the WAL's limit. */
static int check_tables(struct ember_store *s, struct store_retention *r, char *err,
			size_t errlen)
{
	char sql[1024], pk[512];
	/* the WAL is cut back to this after checkpoints: it is part of the bound */
	int64_t limit = r->o.max_bytes ? (int64_t)(r->o.max_bytes / 16) : 64LL << 20;

	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%" PRId64,
		 limit < (64LL << 20) ? limit : (int64_t)(64LL << 20));
	store_exec(s, sql);

	for (size_t i = 0; i < N_TABLES; i++) {
		const struct store_retained_table *t = &retained[i];
		struct table_state *ts = &r->t[i];
		sqlite3_stmt *st;
		int64_t n;
		int rc;

		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'",
			 t->table);
		rc = query_int(s->db, sql, 0, &n);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "retention: table %s", t->table);
		ts->exists = n > 0;
		if (!ts->exists || !t->time_column)
			continue;
		/* a rowid table deletes by rowid, a WITHOUT ROWID one by its primary key */
		snprintf(sql, sizeof(sql), "SELECT rowid FROM \"%s\" LIMIT 0", t->table);
		if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_finalize(st);
			snprintf(pk, sizeof(pk), "rowid");
		} else {
			pk[0] = '\0';
			snprintf(sql, sizeof(sql),
				 "SELECT name FROM pragma_table_info('%s') WHERE pk > 0 ORDER BY pk",
				 t->table);
			rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
			while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
				size_t len = strlen(pk);
				snprintf(pk + len, sizeof(pk) - len, "%s\"%s\"", len ? "," : "",
					 (const char *)sqlite3_column_text(st, 0));
			}
			if (rc == SQLITE_OK)
				sqlite3_finalize(st);
			if (!pk[0])
				return store_error(s, err, errlen, -EINVAL,
						   "retention: table %s has no key to delete by", t->table);
		}
		snprintf(sql, sizeof(sql),
			 "DELETE FROM \"%s\" WHERE (%s) IN (SELECT %s FROM \"%s\" WHERE \"%s\" < ?1"
			 " ORDER BY \"%s\" LIMIT ?2)",
			 t->table, pk, pk, t->table, t->time_column, t->time_column);
		rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &ts->del, NULL);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "retention: prepare %s", sql);
	}
	r->checked = true;
	return 0;
}

int ember_store_retention_setup(struct ember_store *s, const struct ember_retention_options *o,
				char *err, size_t errlen)
{
	struct store_retention *r;
	int64_t mode;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!s->db)
		return store_error(s, err, errlen, -EIO, "retention: the database is not open");
	if (!s->retention && !(s->retention = calloc(1, sizeof(*s->retention))))
		return store_error(s, err, errlen, -ENOMEM, "retention: out of memory");
	r = s->retention;
	r->o = *o;
	if (!r->o.retention_ns)
		r->o.retention_ns = EMBER_RETENTION_NS;
	if (!r->o.full_res_ns)
		r->o.full_res_ns = EMBER_RETENTION_FULL_RES_NS;
	if (r->o.retention_ns > 0 && r->o.full_res_ns > r->o.retention_ns)
		r->o.full_res_ns = r->o.retention_ns;
	if (!r->o.batch_rows)
		r->o.batch_rows = EMBER_RETENTION_BATCH_ROWS;
	if (!r->o.vacuum_pages)
		r->o.vacuum_pages = EMBER_RETENTION_VACUUM_PAGES;
	r->st.max_bytes = r->o.max_bytes;

	rc = query_int(s->db, "PRAGMA auto_vacuum", 0, &mode);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "retention: read auto_vacuum");
	r->incremental = mode == 2;
	if (!r->incremental) {
		rc = measure(s, r);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "retention: measure");
		if ((int64_t)r->st.db_bytes <= CONVERT_MAX_BYTES) {
			rc = store_exec(s, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM");
			if (rc == SQLITE_OK && query_int(s->db, "PRAGMA auto_vacuum", 0, &mode) == SQLITE_OK)
				r->incremental = mode == 2;
			store_file_written(s);
			if (err && errlen)
				snprintf(err, errlen,
					 "store %s: converted to incremental vacuum (one VACUUM of %" PRIu64
					 " KiB)%s", s->path, r->st.db_bytes >> 10,
					 r->incremental ? "" : " failed: its file will not shrink");
		} else if (err && errlen) {
			snprintf(err, errlen,
				 "store %s: created before incremental vacuum and too large (%" PRIu64
				 " MiB) to convert while starting: freed pages are reused but the file "
				 "does not shrink; to convert, stop ember and run: sqlite3 %s "
				 "'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'",
				 s->path, r->st.db_bytes >> 20, s->path);
		}
	}
	r->st.incremental_vacuum = r->incremental;
	return 0;
}

void ember_store_retention_stats(const struct ember_store *s, struct ember_retention_stats *st)
{
	if (s->retention)
		*st = s->retention->st;
	else
		memset(st, 0, sizeof(*st));
}

/* ---- collection state ---- */

static void gc_end(struct ember_store *s, struct store_retention *r)
{
	sqlite3_finalize(r->scan);
	r->scan = NULL;
	sqlite3_finalize(r->ids);
	r->ids = NULL;
	if (r->gc) {
		sqlite3_exec(r->gc, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(r->gc);
		r->gc = NULL;
	}
	for (int i = 0; i < STORE_REF_COUNT_; i++)
		bm_free(&r->live[i]);
	r->collecting = false;
	r->st.collecting = false;
}

void store_retention_touch(struct ember_store *s, enum store_ref ref, int64_t id)
{
	if (s->retention && s->retention->collecting)
		bm_set(&s->retention->live[ref], id);
}

void store_retention_disconnected(struct ember_store *s)
{
	struct store_retention *r = s->retention;

	if (!r)
		return;
	gc_end(s, r);
	for (size_t i = 0; i < N_TABLES; i++) {
		sqlite3_finalize(r->t[i].del);
		r->t[i].del = NULL;
	}
	r->checked = false;
	r->phase = PH_IDLE;
}

void store_retention_free(struct ember_store *s)
{
	if (!s->retention)
		return;
	store_retention_disconnected(s);
	free(s->retention);
	s->retention = NULL;
}

/* ---- the meta key queries read ---- */

int store_full_res_from(struct ember_store *s, int64_t *from_ns)
{
	*from_ns = 0;
	return store_meta_get_int(s, "full_res_from_ns", from_ns);
}

/* ---- a pass ---- */

static int64_t table_cut(const struct store_retention *r, const struct store_retained_table *t)
{
	int64_t rollup = r->rollup_cut > r->pressure_rollup ? r->rollup_cut : r->pressure_rollup;
	int64_t full = r->full_cut > r->pressure_full ? r->full_cut : r->pressure_full;

	switch (t->keep) {
	case STORE_KEEP_FULL: return full > rollup ? full : rollup;
	case STORE_KEEP_ROLLUP: return rollup;
	default: return INT64_MIN;
	}
}

/* Oldest row time of the tables of one keep class, INT64_MAX when empty. */
static int oldest(struct ember_store *s, struct store_retention *r, enum store_keep keep,
		  int64_t *t_ns)
{
	char sql[256];

	*t_ns = INT64_MAX;
	for (size_t i = 0; i < N_TABLES; i++) {
		const struct store_retained_table *t = &retained[i];
		int64_t v;
		if (t->keep != keep || !r->t[i].exists)
			continue;
		snprintf(sql, sizeof(sql), "SELECT min(\"%s\") FROM \"%s\"", t->time_column, t->table);
		int rc = query_int(s->db, sql, INT64_MAX, &v);
		if (rc != SQLITE_OK)
			return rc;
		if (v < *t_ns)
			*t_ns = v;
	}
	return SQLITE_OK;
}

/*
 * Over the bound: move a cut forward by the share of the data in excess
 * (x 1.5, at least an hour).  Full resolution first.  false when both
 * cuts are already at the last hour.
 */
static int advance_pressure(struct ember_store *s, struct store_retention *r, bool *moved)
{
	uint64_t used = used_bytes(r), low = (uint64_t)(LOW_WATER * (double)r->o.max_bytes);
	double share = used > low ? (double)(used - low) / (double)used : 0;
	int64_t limit = store_floor_to(r->now, HOUR) - HOUR, t;
	enum store_keep keeps[] = {STORE_KEEP_FULL, STORE_KEEP_ROLLUP};
	int rc;

	*moved = false;
	for (int k = 0; k < 2; k++) {
		rc = oldest(s, r, keeps[k], &t);
		if (rc != SQLITE_OK)
			return rc;
		if (t == INT64_MAX || t >= limit)
			continue;
		double hours = ceil(1.5 * share * (double)(limit - t) / (double)HOUR);
		int64_t cut = store_floor_to(t, HOUR) + (int64_t)(hours < 1 ? 1 : hours) * HOUR;
		if (cut > limit)
			cut = limit;
		if (keeps[k] == STORE_KEEP_FULL) {
			if (cut > r->pressure_full)
				r->pressure_full = cut;
		} else if (cut > r->pressure_rollup) {
			r->pressure_rollup = cut;
		}
		*moved = true;
		return SQLITE_OK;
	}
	return SQLITE_OK;
}

static int begin_deleting(struct ember_store *s, struct store_retention *r)
{
	int64_t horizon, current;
	int rc;

	for (size_t i = 0; i < N_TABLES; i++)
		r->t[i].done = !r->t[i].exists || retained[i].keep == STORE_KEEP_REFS;
	r->phase = PH_DELETE;
	/* queries read whole hours of the roll-up before the full-resolution cut:
	 * say so before the buckets go */
	for (size_t i = 0; i < N_TABLES; i++) {
		if (retained[i].keep != STORE_KEEP_FULL || !r->t[i].exists)
			continue;
		horizon = table_cut(r, &retained[i]);
		rc = store_full_res_from(s, &current);
		if (rc == SQLITE_OK && horizon > current)
			rc = store_meta_set_int(s, "full_res_from_ns", horizon);
		if (rc != SQLITE_OK)
			return rc;
		r->st.full_res_from_ns = horizon > current ? horizon : current;
		break;
	}
	int64_t rollup = r->rollup_cut > r->pressure_rollup ? r->rollup_cut : r->pressure_rollup;
	if (rollup != INT64_MIN)
		r->st.rollup_from_ns = rollup;
	return SQLITE_OK;
}

static int begin_pass(struct ember_store *s, struct store_retention *r, int64_t now, char *err,
		      size_t errlen)
{
	int rc;

	if (!r->checked && check_tables(s, r, err, errlen))
		return -EIO;
	r->now = now;
	r->next_check = now + CHECK_EVERY_NS;
	r->full_cut = store_floor_to(now - r->o.full_res_ns, HOUR);
	r->rollup_cut = r->o.retention_ns > 0 ? store_floor_to(now - r->o.retention_ns, HOUR)
					      : INT64_MIN;
	r->st.passes++;
	rc = measure(s, r);
	if (rc == SQLITE_OK && r->o.max_bytes &&
	    used_bytes(r) > (uint64_t)(HIGH_WATER * (double)r->o.max_bytes)) {
		bool moved;
		rc = advance_pressure(s, r, &moved);
		r->pressure = moved;
		if (rc == SQLITE_OK && moved)
			r->st.size_passes++;
		else if (rc == SQLITE_OK)
			r->st.bound_unreachable++;
	}
	if (rc == SQLITE_OK)
		rc = begin_deleting(s, r);
	return rc == SQLITE_OK ? 0 : store_sqlite_error(s, err, errlen, rc, "retention: start");
}

/* The end of a pass: under the bound, or another pass with the cuts moved. */
static int end_pass(struct ember_store *s, struct store_retention *r, char *err, size_t errlen)
{
	int rc = measure(s, r);

	if (rc == SQLITE_OK && r->pressure &&
	    used_bytes(r) > (uint64_t)(LOW_WATER * (double)r->o.max_bytes)) {
		bool moved;
		rc = advance_pressure(s, r, &moved);
		if (rc == SQLITE_OK && moved) {
			r->st.passes++;
			r->st.size_passes++;
			rc = begin_deleting(s, r);
			return rc == SQLITE_OK ? 0 : store_sqlite_error(s, err, errlen, rc, "retention");
		}
		if (rc == SQLITE_OK)
			r->st.bound_unreachable++;
	}
	r->pressure = false;
	r->phase = PH_IDLE;
	return rc == SQLITE_OK ? 0 : store_sqlite_error(s, err, errlen, rc, "retention: measure");
}

/* A write: the file must be whole before (store_file.c), and is checkpointed after. */
static int write_begins(struct ember_store *s, char *err, size_t errlen)
{
	return store_file_check(s, err, errlen);
}

static void write_ended(struct ember_store *s, struct store_retention *r, uint64_t rows)
{
	char wal[PATH_MAX];
	struct stat st;
	/* a checkpoint (two fsyncs) once the WAL holds a few MiB, not per batch */
	uint64_t limit = r->o.max_bytes && r->o.max_bytes / 32 < CHECKPOINT_WAL_BYTES
				 ? r->o.max_bytes / 32
				 : CHECKPOINT_WAL_BYTES;

	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if (stat(wal, &st) == 0 && (uint64_t)st.st_size >= limit)
		store_file_written(s);
	else
		store_file_noted(s);
	r->st.batches++;
	if (rows > r->st.max_batch_rows)
		r->st.max_batch_rows = rows;
}

static int begin_collecting(struct ember_store *s, struct store_retention *r, char *err,
			    size_t errlen);

static int delete_step(struct ember_store *s, struct store_retention *r, char *err, size_t errlen)
{
	size_t i = 0;

	while (i < N_TABLES && r->t[i].done)
		i++;
	if (i == N_TABLES) {
		/* a collection scans every reference: not more than every few
		 * hours, unless the bound needs the space now */
		if (r->deleted_refs &&
		    (r->pressure || r->now - r->last_collect >= COLLECT_EVERY_NS)) {
			r->last_collect = r->now;
			return begin_collecting(s, r, err, errlen);
		}
		r->phase = PH_VACUUM;
		return 0;
	}
	const struct store_retained_table *t = &retained[i];
	struct table_state *ts = &r->t[i];
	int64_t cut = table_cut(r, t);
	int ret, rc;

	if (cut == INT64_MIN) {
		ts->done = true;
		return 0;
	}
	ret = write_begins(s, err, errlen);
	if (ret)
		return ret;
	sqlite3_reset(ts->del);
	sqlite3_bind_int64(ts->del, 1, cut);
	sqlite3_bind_int64(ts->del, 2, r->o.batch_rows);
	rc = sqlite3_step(ts->del);
	sqlite3_reset(ts->del);
	if (rc != SQLITE_DONE)
		return store_sqlite_error(s, err, errlen, rc, "retention: delete from %s", t->table);
	uint64_t n = (uint64_t)sqlite3_changes(s->db);
	write_ended(s, r, n);
	r->st.rows_deleted += n;
	if (strcmp(t->table, "reports") == 0)
		r->st.reports_deleted += n;
	if (n && has_refs(t))
		r->deleted_refs = true;
	if (n < r->o.batch_rows)
		ts->done = true;
	return 0;
}

/* ---- collection ---- */

static int next_scan(struct ember_store *s, struct store_retention *r)
{
	char sql[512];

	sqlite3_finalize(r->scan);
	r->scan = NULL;
	for (; r->scan_table < N_TABLES; r->scan_table++) {
		const struct store_retained_table *t = &retained[r->scan_table];
		if (!r->t[r->scan_table].exists || !has_refs(t))
			continue;
		snprintf(sql, sizeof(sql), "SELECT %s%s%s, %s%s%s FROM \"%s\"",
			 t->target_column ? "\"" : "", t->target_column ? t->target_column : "NULL",
			 t->target_column ? "\"" : "", t->stack_column ? "\"" : "",
			 t->stack_column ? t->stack_column : "NULL", t->stack_column ? "\"" : "",
			 t->table);
		return sqlite3_prepare_v2(r->gc, sql, -1, &r->scan, NULL);
	}
	return SQLITE_OK; /* no table left: r->scan NULL */
}

static int begin_collecting(struct ember_store *s, struct store_retention *r, char *err,
			    size_t errlen)
{
	static const char *const max_sql[STORE_REF_COUNT_] = {
		[STORE_REF_TARGET] = "SELECT max(id) FROM targets",
		[STORE_REF_STACK] = "SELECT max(id) FROM stacks",
		[STORE_REF_FRAME] = "SELECT max(id) FROM frames"};
	int rc = SQLITE_OK;

	for (int i = 0; i < STORE_REF_COUNT_ && rc == SQLITE_OK; i++) {
		int64_t max;
		rc = query_int(s->db, max_sql[i], 0, &max);
		if (rc == SQLITE_OK && max >= MAX_GC_ID) {
			r->phase = PH_VACUUM; /* not plausible: leave them */
			return 0;
		}
		if (rc == SQLITE_OK && bm_alloc(&r->live[i], max))
			rc = SQLITE_NOMEM;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(s->path, &r->gc,
				     SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
				     NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(r->gc, STORE_BUSY_TIMEOUT_MS);
		/* a read starts the snapshot now, as ingest starts marking */
		rc = sqlite3_exec(r->gc, "PRAGMA mmap_size=0; BEGIN; SELECT count(*) FROM stacks"
					 " WHERE id = 1", NULL, NULL, NULL);
	}
	r->collecting = true; /* from now on ingest marks what it uses */
	r->st.collecting = true;
	r->scan_table = 0;
	if (rc == SQLITE_OK)
		rc = next_scan(s, r);
	if (rc != SQLITE_OK) {
		const char *msg = r->gc ? sqlite3_errmsg(r->gc) : sqlite3_errstr(rc);
		int ret = store_error(s, err, errlen, -EIO, "retention: start collecting: %s", msg);
		gc_end(s, r);
		return ret;
	}
	r->st.gc_runs++;
	r->deleted_refs = false;
	r->phase = PH_MARK;
	return 0;
}

static int mark_row(struct store_retention *r, sqlite3_stmt *st, bool packed)
{
	if (sqlite3_column_type(st, 0) != SQLITE_NULL)
		bm_set(&r->live[STORE_REF_TARGET], sqlite3_column_int64(st, 0));
	if (sqlite3_column_type(st, 1) == SQLITE_NULL)
		return 0;
	if (!packed) {
		bm_set(&r->live[STORE_REF_STACK], sqlite3_column_int64(st, 1));
		return 0;
	}
	struct store_packed_iter it;
	int64_t stack;
	uint64_t count;
	int k;

	store_packed_init(&it, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
	while ((k = store_packed_next(&it, &stack, &count)) > 0)
		bm_set(&r->live[STORE_REF_STACK], stack);
	return k;
}

static int begin_sweep(struct store_retention *r, enum store_ref ref, struct ember_store *s)
{
	char sql[128];

	sqlite3_finalize(r->ids);
	r->ids = NULL;
	snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE id > ?1 ORDER BY id LIMIT ?2",
		 ref_table[ref]);
	r->sweeping = ref;
	r->cursor = 0;
	r->phase = PH_SWEEP;
	return sqlite3_prepare_v2(s->db, sql, -1, &r->ids, NULL);
}

static int mark_step(struct ember_store *s, struct store_retention *r, char *err, size_t errlen)
{
	uint64_t budget = (uint64_t)r->o.batch_rows * SCAN_FACTOR;
	int rc = SQLITE_OK;

	while (r->scan && budget) {
		rc = sqlite3_step(r->scan);
		if (rc == SQLITE_ROW) {
			if (mark_row(r, r->scan, retained[r->scan_table].packed_stacks))
				return store_error(s, err, errlen, -EIO,
						   "retention: corrupt packed row in %s",
						   retained[r->scan_table].table);
			budget--;
			continue;
		}
		if (rc != SQLITE_DONE)
			return store_sqlite_error(s, err, errlen, rc, "retention: scan %s",
						  retained[r->scan_table].table);
		r->scan_table++;
		rc = next_scan(s, r);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "retention: scan");
	}
	if (r->scan)
		return 0;
	sqlite3_exec(r->gc, "COMMIT", NULL, NULL, NULL); /* end of the first snapshot */
	rc = begin_sweep(r, STORE_REF_STACK, s);
	return rc == SQLITE_OK ? 0 : store_sqlite_error(s, err, errlen, rc, "retention: sweep");
}

static int mark_frames_step(struct ember_store *s, struct store_retention *r, char *err,
			    size_t errlen)
{
	uint64_t budget = (uint64_t)r->o.batch_rows * SCAN_FACTOR;
	bool done = false;
	int rc;

	while (budget--) {
		rc = sqlite3_step(r->scan);
		if (rc == SQLITE_DONE) {
			done = true;
			break;
		}
		if (rc != SQLITE_ROW)
			return store_sqlite_error(s, err, errlen, rc, "retention: scan stacks");
		const unsigned char *p = sqlite3_column_blob(r->scan, 0);
		const unsigned char *end = p + sqlite3_column_bytes(r->scan, 0);
		uint64_t id;
		while (p && p < end && store_varint_get(&p, end, &id))
			bm_set(&r->live[STORE_REF_FRAME], (int64_t)id);
	}
	if (!done)
		return 0; /* more rows */
	sqlite3_finalize(r->scan);
	r->scan = NULL;
	sqlite3_exec(r->gc, "COMMIT", NULL, NULL, NULL);
	rc = begin_sweep(r, STORE_REF_FRAME, s);
	return rc == SQLITE_OK ? 0 : store_sqlite_error(s, err, errlen, rc, "retention: sweep");
}

/* The next kind to sweep once one is done; the frames need their own mark first. */
static int sweep_done(struct ember_store *s, struct store_retention *r, char *err, size_t errlen)
{
	int rc;

	sqlite3_finalize(r->ids);
	r->ids = NULL;
	switch (r->sweeping) {
	case STORE_REF_STACK:
		/* a new snapshot: the frames of the stacks that are left */
		rc = sqlite3_exec(r->gc, "BEGIN; SELECT count(*) FROM stacks WHERE id = 1", NULL, NULL,
				  NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(r->gc, "SELECT frames FROM stacks", -1, &r->scan, NULL);
		if (rc != SQLITE_OK)
			return store_error(s, err, errlen, -EIO, "retention: scan stacks: %s",
					   sqlite3_errmsg(r->gc));
		r->phase = PH_MARK_FRAMES;
		return 0;
	case STORE_REF_FRAME:
		rc = begin_sweep(r, STORE_REF_TARGET, s);
		return rc == SQLITE_OK ? 0 : store_sqlite_error(s, err, errlen, rc, "retention: sweep");
	default:
		gc_end(s, r);
		r->phase = PH_VACUUM;
		return 0;
	}
}

static void drop_cache(struct ember_store *s, enum store_ref ref)
{
	struct store_idmap *m = ref == STORE_REF_STACK ? &s->stacks
				: ref == STORE_REF_FRAME ? &s->frames
							 : &s->targets;
	store_idmap_clear(m);
}

static int sweep_step(struct ember_store *s, struct store_retention *r, char *err, size_t errlen)
{
	const struct bitmap *live = &r->live[r->sweeping];
	uint64_t limit = (uint64_t)r->o.batch_rows * SCAN_FACTOR, seen = 0;
	int64_t *cand = malloc(r->o.batch_rows * sizeof(*cand));
	size_t n = 0;
	bool more = false;
	int rc, ret = 0;

	if (!cand)
		return store_error(s, err, errlen, -ENOMEM, "retention: out of memory");
	sqlite3_reset(r->ids);
	sqlite3_bind_int64(r->ids, 1, r->cursor);
	sqlite3_bind_int64(r->ids, 2, (int64_t)limit);
	while ((rc = sqlite3_step(r->ids)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(r->ids, 0);
		seen++;
		r->cursor = id;
		if (id <= live->max && !bm_get(live, id)) {
			cand[n++] = id;
			if (n == r->o.batch_rows) {
				more = true;
				break;
			}
		}
	}
	if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
		more = more || seen == limit;
		rc = SQLITE_OK;
	}
	sqlite3_reset(r->ids);
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "retention: list %s",
					 ref_table[r->sweeping]);
		goto out;
	}
	if (n) {
		char sql[64];
		sqlite3_stmt *del = NULL;
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?1", ref_table[r->sweeping]);
		ret = write_begins(s, err, errlen);
		if (ret)
			goto out;
		rc = store_exec(s, "BEGIN IMMEDIATE");
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(s->db, sql, -1, &del, NULL);
		for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
			sqlite3_bind_int64(del, 1, cand[i]);
			rc = sqlite3_step(del) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(s->db);
			sqlite3_reset(del);
		}
		sqlite3_finalize(del);
		if (rc == SQLITE_OK)
			rc = store_exec(s, "COMMIT");
		if (rc != SQLITE_OK) {
			ret = store_sqlite_error(s, err, errlen, rc, "retention: delete %s",
						 ref_table[r->sweeping]);
			store_exec(s, "ROLLBACK");
			goto out;
		}
		drop_cache(s, r->sweeping); /* it may hold the ids just deleted */
		write_ended(s, r, n);
		uint64_t *counter = r->sweeping == STORE_REF_STACK ? &r->st.stacks_deleted
				    : r->sweeping == STORE_REF_FRAME ? &r->st.frames_deleted
								     : &r->st.targets_deleted;
		*counter += n;
	}
	if (!more)
		ret = sweep_done(s, r, err, errlen);
out:
	free(cand);
	return ret;
}

/* ---- vacuum ---- */

static int vacuum_step(struct ember_store *s, struct store_retention *r, char *err, size_t errlen)
{
	int64_t free_pages;
	char sql[64];
	int rc, ret;

	if (!r->incremental)
		return end_pass(s, r, err, errlen);
	rc = query_int(s->db, "PRAGMA freelist_count", 0, &free_pages);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "retention: freelist");
	if (!free_pages)
		return end_pass(s, r, err, errlen);
	ret = write_begins(s, err, errlen);
	if (ret)
		return ret;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%u)", r->o.vacuum_pages);
	rc = store_exec(s, sql);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "retention: incremental vacuum");
	store_file_written(s); /* the file is shorter now, legitimately */
	r->st.pages_vacuumed += (uint64_t)(free_pages < r->o.vacuum_pages ? free_pages
									   : r->o.vacuum_pages);
	return 0;
}

int ember_store_retention_step(struct ember_store *s, int64_t now_ns, char *err, size_t errlen)
{
	struct store_retention *r = s->retention;
	int64_t t0 = ember_monotonic_ns();
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!r || s->damaged || !s->db)
		return 0;
	switch (r->phase) {
	case PH_IDLE:
		if (now_ns < r->next_check)
			return 0;
		ret = begin_pass(s, r, now_ns, err, errlen);
		break;
	case PH_DELETE: ret = delete_step(s, r, err, errlen); break;
	case PH_MARK: ret = mark_step(s, r, err, errlen); break;
	case PH_MARK_FRAMES: ret = mark_frames_step(s, r, err, errlen); break;
	case PH_SWEEP: ret = sweep_step(s, r, err, errlen); break;
	default: ret = vacuum_step(s, r, err, errlen); break;
	}
	uint64_t dt = (uint64_t)(ember_monotonic_ns() - t0);
	if (dt > r->st.max_step_ns)
		r->st.max_step_ns = dt;
	if (ret) {
		/* start over at the next pass (damage has closed the connection already) */
		gc_end(s, r);
		r->phase = PH_IDLE;
		r->next_check = now_ns + CHECK_EVERY_NS;
		return ret;
	}
	return 1;
}
