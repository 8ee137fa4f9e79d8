/*
 * store_internal.h - what the store's source files share, and nobody else.
 *
 * The store handle owns one SQLite connection (used by one thread at a
 * time), a cache of prepared statements, and three in-memory caches that
 * map the bytes of a target, frame or stack to its row id, so that the
 * agent's periodic ingests of mostly the same stacks touch the database only
 * for the sample counts.
 *
 * Stack blobs: a stack's frame row ids, leaf first, each as an unsigned
 * LEB128 varint (row ids below 2^21 take three bytes or less).
 */
#ifndef EMBER_STORE_INTERNAL_H
#define EMBER_STORE_INTERNAL_H

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/strbuf.h"
#include "core/varint.h"
#include "store/store.h"

/* ---- byte-keyed map to int64 (store_idmap.c) ---- */

struct store_idmap_slot {
	uint64_t hash; /* 0 = empty */
	size_t key_off;
	uint32_t key_len;
	int64_t value;
};

struct store_idmap {
	struct store_idmap_slot *slots;
	size_t cap, used; /* cap is a power of two */
	char *keys;       /* arena of key bytes */
	size_t keys_len, keys_cap;
};

bool store_idmap_get(const struct store_idmap *m, const void *key, size_t len, int64_t *value);
/* Insert or overwrite.  Returns 0 or -ENOMEM. */
int store_idmap_put(struct store_idmap *m, const void *key, size_t len, int64_t value);
void store_idmap_clear(struct store_idmap *m);
/* Bytes held (slots and key arena), and whether one more key of len bytes would grow them past max. */
size_t store_idmap_bytes(const struct store_idmap *m);
bool store_idmap_would_outgrow(const struct store_idmap *m, size_t len, size_t max_bytes);
void store_idmap_free(struct store_idmap *m);

/* ---- uint64 -> uint32 map, for row ids and indexes in a query (store_idmap.c) ---- */

struct store_intmap_slot {
	uint64_t key;
	uint32_t value;
	uint32_t used;
};

struct store_intmap {
	struct store_intmap_slot *slots;
	size_t cap, used; /* cap is a power of two; used counts the hashed keys only */
	uint32_t *dense;  /* optional: value + 1 per key below n_dense, 0 = absent */
	size_t n_dense;
};

/*
 * Keep keys below n (row ids, which SQLite hands out densely from 1) in a
 * direct array instead of the hash table: one memory access per lookup.
 * Call on an empty map.  Returns 0 or -ENOMEM.
 */
int store_intmap_dense(struct store_intmap *m, uint64_t n);
bool store_intmap_get(const struct store_intmap *m, uint64_t key, uint32_t *value);
/* Insert or overwrite; value < UINT32_MAX.  Returns 0 or -ENOMEM. */
int store_intmap_put(struct store_intmap *m, uint64_t key, uint32_t value);
void store_intmap_free(struct store_intmap *m);

/* How long a connection waits for a lock before it fails with SQLITE_BUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* Hourly roll-up (samples_1h, schema version 2). */
#define STORE_ROLLUP_NS (3600LL * 1000000000LL)

/*
 * The ingest caches (a target's, frame's or stack's bytes -> row id) are
 * emptied at once when growing one would take it past this many bytes of
 * slots and keys: under process churn every new pid is a new target and
 * new stacks, so an entry bound alone let them reach hundreds of MiB.  A
 * miss costs one indexed SELECT.  1 MiB each: at 4 MiB the three held
 * 12 MiB after a churn, 15% of a lean agent's RSS (e2e churn).
 */
#define STORE_CACHE_MAX_BYTES (1u << 20)

/* ---- prepared statements (store.c) ---- */

enum store_stmt_id {
	STMT_BEGIN_READ,
	STMT_BEGIN_WRITE,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_META_GET,
	STMT_META_SET,
	STMT_TARGET_UPSERT,
	STMT_TARGET_TOUCH,
	STMT_TARGET_BY_ID,
	STMT_FRAME_FIND,
	STMT_FRAME_INSERT,
	STMT_STACK_BY_HASH,
	STMT_STACK_INSERT,
	STMT_SAMPLE_ADD,
	STMT_ROLLUP_ADD,
	STMT_TOTAL_ADD,
	STMT_IDS_ADD,
	STMT_IDS_CLEAR,
	STMT_STACKS_MAX_ID,
	STMT_STACKS_SCAN,
	STMT_STACKS_JOIN,
	STMT_FRAMES_MAX_ID,
	STMT_FRAMES_SCAN,
	STMT_FRAMES_JOIN,
	STMT_ROLLUP_OLD,
	STMT_ROLLUP_DELETE_OLD,
	STMT_PACKED_GET,
	STMT_PACKED_PUT,
	STMT_NEWEST_HOUR,
	STMT_COUNT_
};

/* Which file a path named when it was opened (store_file.c). */
struct store_file_id {
	dev_t dev;
	ino_t ino;
	bool valid;
};

struct ember_store {
	sqlite3 *db; /* NULL while the file is damaged (store_file.c) */
	char *path;
	int open_flags; /* of sqlite3_open_v2, for reopening */
	char host[256];
	int64_t bucket_ns;  /* from meta, EMBER_STORE_DEFAULT_BUCKET_NS for new files */
	uint64_t period_ns; /* last sampling period recorded in meta, 0 = none */
	sqlite3_stmt *stmts[STMT_COUNT_];
	struct store_idmap targets, frames, stacks; /* key bytes -> row id */
	uint64_t cache_clears;                      /* of those, emptied at STORE_CACHE_MAX_BYTES */
	struct strbuf key, blob;                    /* scratch for ingest */
	int64_t query_timeout_ns; /* bound of one read, 0 = none */
	int64_t deadline_ns;      /* CLOCK_MONOTONIC end of the running read, 0 = none */
	int64_t newest_hour; /* newest hour in the roll-up, once known_hour (store_seal.c) */
	bool known_hour;
	int last_rc; /* SQLite code of the last error reported (store_sqlite_error) */

	/* ---- the file (store_file.c) ---- */
	struct store_file_id db_id, wal_id, shm_id; /* as connected */
	int64_t min_size;     /* the file cannot legitimately be smaller: it was truncated */
	bool own_checkpoints; /* this handle ingests: it checkpoints after each write */
	bool reader_cache;    /* the larger page cache of a reading handle is set */
	bool damaged;         /* the connection is closed until ember_store_recover() */
	struct stat damaged_st; /* the file when found damaged (st_ino 0: missing) */
	char damage[256];     /* why */
	struct ember_store_file_stats file_stats;

	struct store_retention *retention; /* store_retention.c, once set up */
};

/* The cached statement, reset and with bindings cleared; NULL if it fails to prepare. */
sqlite3_stmt *store_stmt(struct ember_store *s, enum store_stmt_id id);

/* Run a statement that returns no rows (BEGIN, COMMIT, ...).  Returns an SQLite code. */
int store_step_done(struct ember_store *s, enum store_stmt_id id);

/* Run one or more SQL statements.  Returns an SQLite code. */
int store_exec(struct ember_store *s, const char *sql);

/*
 * Fill err with "store PATH: WHAT: SQLITE MESSAGE" and return the negative
 * errno matching the SQLite code rc.  Call it before any other SQLite call
 * (such as a ROLLBACK) replaces the connection's error message.
 */
int store_sqlite_error(struct ember_store *s, char *err, size_t errlen, int rc,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Fill err with "store PATH: WHAT" and return neg_errno. */
int store_error(struct ember_store *s, char *err, size_t errlen, int neg_errno,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Start / end a read transaction bounded by the query timeout (SQLite
 * steps past the deadline fail with SQLITE_INTERRUPT).  An SQLite code;
 * after a failed begin there is nothing to end.
 */
int store_begin_read(struct ember_store *s);
void store_end_read(struct ember_store *s);

/* Forget every cached row id (after a rollback or when rows may have been deleted). */
void store_caches_clear(struct ember_store *s);

/* Bind a C string, NULL as '' (the schema keeps NOT NULL text columns). */
int store_bind_text(sqlite3_stmt *st, int col, const char *text);
/* A text column, '' as NULL. */
const char *store_column_text_or_null(sqlite3_stmt *st, int col);

int64_t store_now_ns(void);
/* Start of the bucket holding t (floor, also for negative t). */
int64_t store_bucket_of(const struct ember_store *s, int64_t t);
/* t rounded down / up to a multiple of step (> 0), also for negative t. */
int64_t store_floor_to(int64_t t, int64_t step);
int64_t store_ceil_to(int64_t t, int64_t step);

/*
 * The row id of target t, made or moved (seen from first_ns to last_ns) as
 * an ingest would; for tables beside the samples (spans).  Call inside a
 * write transaction.  Returns 0 or a negative errno with err filled.
 */
int store_target_id(struct ember_store *s, const struct ember_target *t, int64_t first_ns,
		    int64_t last_ns, int64_t *id, char *err, size_t errlen);

/* Span tables (store_spans.c): register their SQL function on a new connection. */
int store_spans_connect(struct ember_store *s, char *err, size_t errlen);

/* ---- selections (store_query.c) ---- */

/*
 * Append " AND ..." conditions on target_id for sel's target, service,
 * version(s) and pid to sql; bind them with store_bind_selection() (named
 * parameters, so a compound SELECT may repeat the conditions).
 */
void store_append_target_filter(struct strbuf *sql, const struct ember_selection *sel);
void store_bind_selection(sqlite3_stmt *st, const struct ember_selection *sel);
/*
 * First bucket and end of the last bucket holding samples of sel inside its
 * time range (from sample_totals); *any false when there are none.  Returns
 * an SQLite code.
 */
int store_sample_span(struct ember_store *s, const struct ember_selection *sel, int64_t *lo,
		      int64_t *hi, bool *any);
/*
 * Which rows a time selection reads: buckets [lo, hi) of a 10 s table, of
 * which the whole hours [hour_lo, hour_hi) come from its hourly roll-up
 * (when `hourly`).  has_* false = unbounded on that side.  Shared by the
 * sample queries and the net queries (store_net.c).
 */
struct store_read_plan {
	bool has_lo, has_hi, hourly;
	int64_t lo, hi, hour_lo, hour_hi;
};
void store_plan_reads(const struct ember_store *s, const struct ember_selection *sel,
		      int64_t full_res_from, struct store_read_plan *plan);

/* -EINVAL with a message when sel asks for too much (versions). */
int store_check_selection(struct ember_store *s, const struct ember_selection *sel, char *err,
			  size_t errlen);

/* ---- sealed hours (store_seal.c) ---- */

/*
 * Move the samples_1h rows of hours before `below` into samples_1h_packed,
 * merging with packed rows already there.  Call inside a write
 * transaction.  Returns an SQLite code.
 */
int store_seal_hours(struct ember_store *s, int64_t below);
/* The newest hour in either roll-up table, INT64_MIN when both are empty. */
int store_newest_hour(struct ember_store *s, int64_t *hour);

/* ---- the database file (store_file.c) ---- */

/*
 * Connect s->db to s->path with `flags` (creating the file safely first
 * when they include SQLITE_OPEN_CREATE), configure, migrate and identify
 * the files (store.c).  On failure s->db is NULL.
 */
int store_connect(struct ember_store *s, int flags, char *err, size_t errlen);
/* Close the connection; `checkpoint` false leaves the file and WAL as they are. */
void store_disconnect(struct ember_store *s, bool checkpoint);
/* Create the database file 0640 (ember group) if missing; refuse symlinks and foreign files. */
int store_file_prepare(struct ember_store *s, bool create, char *err, size_t errlen);
/* Remember which files (database, WAL, SHM) the new connection uses. */
void store_file_identify(struct ember_store *s);
/*
 * Before and after a write: is the file still the one connected, and not
 * shorter than it can be?  If not, the handle becomes damaged (the
 * connection is closed without writing) and -EIO comes back with a message.
 */
int store_file_check(struct ember_store *s, char *err, size_t errlen);
/* After a committed write: checkpoint and record the smallest legitimate size. */
void store_file_written(struct ember_store *s);
/* The same without the checkpoint, for writes that come in runs (retention). */
void store_file_noted(struct ember_store *s);
/*
 * After a write that failed (a full disk): checkpoint what was committed
 * so the WAL restarts at its beginning instead of growing; on
 * SQLITE_FULL, truncate it (if no reader holds it) to give the space back.
 */
void store_file_failed(struct ember_store *s);
/* Declare the file damaged: close without a checkpoint, remember why. */
int store_file_damaged(struct ember_store *s, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Whether an SQLite code says the file itself is damaged (corrupt, not a database, truncated). */
bool store_rc_is_damage(int rc);
/*
 * One write transaction of an ingest: the file checked before and after,
 * fn(s, arg, ...) run between BEGIN and COMMIT (rolled back, the id caches
 * dropped, when it fails), a checkpoint after, damage declared or a full
 * disk handled (store_file_failed) on failure.  what names the writer in
 * messages ("net ingest: commit").  Returns 0 or a negative errno, err filled.
 */
int store_file_write(struct ember_store *s, const char *what,
		     int (*fn)(struct ember_store *s, void *arg, char *err, size_t errlen),
		     void *arg, char *err, size_t errlen);
/*
 * Start of every read: reconnect when the file was replaced, removed and
 * recreated, or its WAL index renewed; set the reading page cache.
 */
int store_refresh(struct ember_store *s, char *err, size_t errlen);

/* ---- retention (store_retention.c) ---- */

/*
 * The tables retention manages.  A table of another part of the store
 * (net metrics, spans) registers itself with ONE line in
 * store_retained_tables[] in store_retention.c:
 *
 *   {"net_peer_10s", "bucket_ns", STORE_KEEP_FULL, "target_id", NULL},
 *
 * naming its time column (ns since the epoch; an index must start with
 * it, so deleting the oldest rows is a range scan), how long its rows live
 * (STORE_KEEP_FULL: the 10 s window; STORE_KEEP_ROLLUP: the retention
 * period; STORE_KEEP_REFS: no time column, never deleted by age), and the
 * columns by which it references targets(id) and stacks(id), if any:
 * rows of targets and stacks nobody references are deleted, so every
 * table holding such ids must be registered.  A registered table that
 * does not exist (an older schema) is skipped.
 */
enum store_keep { STORE_KEEP_FULL, STORE_KEEP_ROLLUP, STORE_KEEP_REFS };

struct store_retained_table {
	const char *table;
	const char *time_column;   /* NULL with STORE_KEEP_REFS */
	enum store_keep keep;
	const char *target_column; /* references targets(id), or NULL */
	const char *stack_column;  /* references stacks(id), or NULL */
	bool packed_stacks;        /* stack_column is a packed blob (store_packed_next) */
};

enum store_ref { STORE_REF_TARGET, STORE_REF_STACK, STORE_REF_FRAME, STORE_REF_COUNT_ };

/*
 * Ingest resolved the row id of a target, stack or frame: while a
 * collection of unreferenced rows runs it must not delete that one.
 */
void store_retention_touch(struct ember_store *s, enum store_ref ref, int64_t id);
/* The connection closed (damage, close): a collection in progress is abandoned. */
void store_retention_disconnected(struct ember_store *s);
void store_retention_free(struct ember_store *s);
/* Oldest 10 s bucket still stored (meta full_res_from_ns), 0 when nothing was deleted. */
int store_full_res_from(struct ember_store *s, int64_t *from_ns);

/* ---- targets (store_ingest.c) ---- */

/*
 * The row id of target t (created, or its seen times widened to
 * [first_ns, last_ns]), through the handle's cache.  Call inside a write
 * transaction.  Returns 0 or a negative errno with err filled.  Other
 * tables keyed by target (store_net.c) use it so their rows share the
 * samples' target ids.
 */
int store_resolve_target(struct ember_store *s, const struct ember_target *t, int64_t first_ns,
			 int64_t last_ns, int64_t *id, char *err, size_t errlen);

/* ---- schema (store_schema.c) ---- */

/* Bring the schema to the newest version this code knows, or fail. */
int store_migrate(struct ember_store *s, char *err, size_t errlen);
/* An integer setting of the meta table; *value is left alone when the key is absent. */
int store_meta_get_int(struct ember_store *s, const char *key, int64_t *value);
int store_meta_set_int(struct ember_store *s, const char *key, int64_t value);
/* Read settings kept in the meta table (bucket size, sampling period). */
int store_load_meta(struct ember_store *s, char *err, size_t errlen);
int store_schema_version(void);

/* ---- stack blobs ---- */

#define STORE_VARINT_MAX EMBER_VARINT_MAX
#define store_varint_put ember_varint_put /* core/varint.h */
#define store_varint_get ember_varint_get

/*
 * A packed roll-up row (store_seal.c): (stack id distance >= 1, count >= 1)
 * varint pairs, stack ids ascending.
 */
struct store_packed_iter {
	const unsigned char *p, *end;
	uint64_t stack;
};

static inline void store_packed_init(struct store_packed_iter *it, const void *blob, size_t len)
{
	it->p = blob;
	it->end = it->p + (blob ? len : 0);
	it->stack = 0;
}

/* 1 and the next pair, 0 at the end, -EIO on a corrupt blob. */
static inline int store_packed_next(struct store_packed_iter *it, int64_t *stack,
				    uint64_t *count)
{
	uint64_t delta;

	if (it->p == it->end)
		return 0;
	if (!store_varint_get(&it->p, it->end, &delta) || !store_varint_get(&it->p, it->end, count) ||
	    !delta || !*count || delta >= ((uint64_t)1 << 40) - it->stack)
		return -EIO;
	it->stack += delta;
	*stack = (int64_t)it->stack;
	return 1;
}

#endif
