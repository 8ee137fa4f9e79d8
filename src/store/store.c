/*
 * store.c - opening and closing the store, and the helpers its files share.
 *
 * Opening sets the connection up for one writer (the agent) and concurrent
 * readers (the HTTP server, on its own connection to the same file): WAL
 * journal, synchronous=NORMAL (a power loss may lose the last transactions,
 * never corrupt the file) and a busy timeout so a reader or writer waits for
 * a lock instead of failing.  No memory-mapped I/O: a read through a mapping
 * of a file someone truncated is a SIGBUS that kills the process, where a
 * read() returns short and SQLite reports an error (store_file.c handles
 * the damage).  Then the schema is migrated to the version this code knows
 * (store_schema.c).
 * A read-only handle (the HTTP server's query threads, one each) changes
 * nothing in the file: it needs the schema this code knows already in place
 * and leaves the journal mode to the writer.
 *
 * SQL text lives here, in one table of statements that are prepared on first
 * use and kept for the life of the handle.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"


static const char *const stmt_sql[STMT_COUNT_] = {
	[STMT_BEGIN_READ] = "BEGIN",
	/* IMMEDIATE takes the write lock up front: no deadlock upgrading a read. */
	[STMT_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[STMT_META_SET] = "INSERT INTO meta(key, value) VALUES (?1, ?2)"
			  " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	[STMT_TARGET_UPSERT] =
		"INSERT INTO targets(service, version, host, pid, comm, exe, build_id, labels,"
		" first_seen_ns, last_seen_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
		" ON CONFLICT(service, version, host, pid, comm, exe, build_id, labels) DO UPDATE SET"
		" first_seen_ns = min(first_seen_ns, excluded.first_seen_ns),"
		" last_seen_ns = max(last_seen_ns, excluded.last_seen_ns)"
		" RETURNING id",
	[STMT_TARGET_TOUCH] = "UPDATE targets SET first_seen_ns = min(first_seen_ns, ?2),"
			      " last_seen_ns = max(last_seen_ns, ?3) WHERE id = ?1",
	[STMT_TARGET_BY_ID] = "SELECT service, version, pid, comm, exe, build_id, labels"
			      " FROM targets WHERE id = ?1",
	[STMT_FRAME_FIND] = "SELECT id FROM frames WHERE function = ?1 AND file = ?2 AND line = ?3"
			    " AND module = ?4 AND build_id = ?5 AND address = ?6 AND flags = ?7",
	[STMT_FRAME_INSERT] = "INSERT INTO frames(function, file, line, module, build_id, address,"
			      " flags, start_line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[STMT_STACK_BY_HASH] = "SELECT id, frames FROM stacks WHERE hash = ?1",
	[STMT_STACK_INSERT] = "INSERT INTO stacks(hash, frames) VALUES (?1, ?2)",
	[STMT_SAMPLE_ADD] = "INSERT INTO samples(bucket_ns, target_id, stack_id, count)"
			    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(bucket_ns, target_id, stack_id)"
			    " DO UPDATE SET count = count + excluded.count",
	[STMT_ROLLUP_ADD] = "INSERT INTO samples_1h(hour_ns, target_id, stack_id, count)"
			    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(hour_ns, target_id, stack_id)"
			    " DO UPDATE SET count = count + excluded.count",
	[STMT_TOTAL_ADD] = "INSERT INTO sample_totals(bucket_ns, target_id, count)"
			   " VALUES (?1, ?2, ?3) ON CONFLICT(bucket_ns, target_id)"
			   " DO UPDATE SET count = count + excluded.count",
	/* Queries load stacks and frames by id: all rows, or those in temp.query_ids. */
	[STMT_IDS_ADD] = "INSERT OR IGNORE INTO temp.query_ids(id) VALUES (?1)",
	[STMT_IDS_CLEAR] = "DELETE FROM temp.query_ids",
	[STMT_STACKS_MAX_ID] = "SELECT max(id) FROM stacks",
	[STMT_STACKS_SCAN] = "SELECT id, frames FROM stacks",
	[STMT_STACKS_JOIN] = "SELECT t.id, t.frames"
			     " FROM temp.query_ids AS w CROSS JOIN stacks AS t ON t.id = w.id",
	[STMT_FRAMES_MAX_ID] = "SELECT max(id) FROM frames",
	[STMT_FRAMES_SCAN] = "SELECT id, function, file, line, module, build_id, address, flags,"
			     " start_line FROM frames",
	[STMT_FRAMES_JOIN] =
		"SELECT f.id, f.function, f.file, f.line, f.module, f.build_id, f.address, f.flags,"
		" f.start_line FROM temp.query_ids AS w CROSS JOIN frames AS f ON f.id = w.id",
	/* Sealing finished hours (store_seal.c). */
	[STMT_ROLLUP_OLD] = "SELECT hour_ns, target_id, stack_id, count FROM samples_1h"
			    " WHERE hour_ns < ?1 ORDER BY hour_ns, target_id, stack_id",
	[STMT_ROLLUP_DELETE_OLD] = "DELETE FROM samples_1h WHERE hour_ns < ?1",
	[STMT_PACKED_GET] = "SELECT stacks FROM samples_1h_packed WHERE hour_ns = ?1 AND target_id = ?2",
	[STMT_PACKED_PUT] = "INSERT INTO samples_1h_packed(hour_ns, target_id, stacks) VALUES (?1, ?2, ?3)"
			    " ON CONFLICT(hour_ns, target_id) DO UPDATE SET stacks = excluded.stacks",
	[STMT_NEWEST_HOUR] = "SELECT max(h) FROM (SELECT max(hour_ns) AS h FROM samples_1h"
			     " UNION ALL SELECT max(hour_ns) FROM samples_1h_packed)",
};

/* ---- helpers shared by the store's files ---- */

sqlite3_stmt *store_stmt(struct ember_store *s, enum store_stmt_id id)
{
	sqlite3_stmt *st = s->stmts[id];

	if (!st) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK)
			return NULL;
		s->stmts[id] = st;
		return st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int store_step_done(struct ember_store *s, enum store_stmt_id id)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int rc;

	if (!st)
		return sqlite3_errcode(s->db);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int store_exec(struct ember_store *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

static int sqlite_to_errno(int rc, int sys)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return sys > 0 ? -sys : -ENOENT;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_INTERRUPT: /* only the query deadline interrupts */
		return -ETIMEDOUT;
	default: /* SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_IOERR, ... */
		return -EIO;
	}
}

int store_sqlite_error(struct ember_store *s, char *err, size_t errlen, int rc,
		       const char *fmt, ...)
{
	char what[256];
	va_list ap;
	int sys = s->db ? sqlite3_system_errno(s->db) : 0;

	s->last_rc = rc;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err && errlen) {
		const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
		if ((rc & 0xff) == SQLITE_INTERRUPT)
			snprintf(err, errlen,
				 "store %s: %s: stopped after %g s, the time limit of a query;"
				 " select a shorter time range or one service",
				 s->path, what, (double)s->query_timeout_ns / 1e9);
		else if ((rc & 0xff) == SQLITE_CANTOPEN && sys > 0)
			snprintf(err, errlen, "store %s: %s: %s (%s)", s->path, what, msg,
				 strerror(sys));
		else
			snprintf(err, errlen, "store %s: %s: %s", s->path, what, msg);
	}
	return sqlite_to_errno(rc, sys);
}

int store_error(struct ember_store *s, char *err, size_t errlen, int neg_errno,
		const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "store %s: %s", s->path, what);
	return neg_errno;
}

/* SQLite's progress handler: non-zero interrupts the running statement. */
static int past_deadline(void *arg)
{
	const struct ember_store *s = arg;
	return s->deadline_ns && ember_monotonic_ns() > s->deadline_ns;
}

void ember_store_set_query_timeout(struct ember_store *s, int64_t timeout_ns)
{
	s->query_timeout_ns = timeout_ns > 0 ? timeout_ns : 0;
}

int store_begin_read(struct ember_store *s)
{
	int rc;

	s->deadline_ns = s->query_timeout_ns ? ember_monotonic_ns() + s->query_timeout_ns : 0;
	rc = store_step_done(s, STMT_BEGIN_READ);
	if (rc != SQLITE_OK)
		s->deadline_ns = 0;
	return rc;
}

void store_end_read(struct ember_store *s)
{
	s->deadline_ns = 0;
	store_step_done(s, STMT_COMMIT); /* ends the read transaction */
}

void store_caches_clear(struct ember_store *s)
{
	store_idmap_clear(&s->targets);
	store_idmap_clear(&s->frames);
	store_idmap_clear(&s->stacks);
}

int store_bind_text(sqlite3_stmt *st, int col, const char *text)
{
	return sqlite3_bind_text(st, col, text ? text : "", -1, SQLITE_STATIC);
}

const char *store_column_text_or_null(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	return t && t[0] ? t : NULL;
}

int64_t store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t store_floor_to(int64_t t, int64_t step)
{
	int64_t r = t % step, f = t - r; /* f: t rounded toward zero, never overflows */

	if (r >= 0)
		return f;
	return f < INT64_MIN + step ? INT64_MIN : f - step; /* saturate: no overflow */
}

int64_t store_ceil_to(int64_t t, int64_t step)
{
	int64_t f = store_floor_to(t, step);

	if (f == t)
		return t;
	return f > INT64_MAX - step ? INT64_MAX : f + step; /* saturate: no overflow */
}

int64_t store_bucket_of(const struct ember_store *s, int64_t t)
{
	return store_floor_to(t, s->bucket_ns);
}

/* ---- open and close ---- */

/*
 * A read-only handle only checks that the file holds the schema this code
 * reads (the writer migrates; an older file needs `ember run` first).
 */
static int check_schema_readonly(struct ember_store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc, version;

	/* The first statement reads the file: a corrupt or foreign file fails here. */
	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		rc = SQLITE_OK;
	if (rc != SQLITE_OK) {
		int ret = store_sqlite_error(s, err, errlen, rc, "open read-only");
		sqlite3_finalize(st);
		return ret;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version != store_schema_version())
		return store_error(s, err, errlen, version ? -EPROTO : -ENOENT,
				   "schema version %d, this ember reads version %d%s", version,
				   store_schema_version(),
				   version < store_schema_version()
					   ? " (ember run opens it for writing and migrates it)"
					   : " (written by a newer ember)");
	return 0;
}

/* WAL, synchronous=NORMAL, busy timeout, and the temp table queries use. */
static int configure(struct ember_store *s, bool readonly, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	/* every 1000 virtual machine steps: is a read past its deadline? */
	sqlite3_progress_handler(s->db, 1000, past_deadline, s);
	if (readonly) {
		rc = check_schema_readonly(s, err, errlen);
		if (rc)
			return rc;
		goto settings;
	}
	/* a new file can give freed pages back (store_retention.c); only
	 * before the first table, and before WAL mode writes the header */
	struct stat fst;
	if (stat(s->path, &fst) == 0 && fst.st_size == 0 &&
	    (rc = store_exec(s, "PRAGMA auto_vacuum=INCREMENTAL")) != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "open");
	/* The first statement reads the file: a corrupt or foreign file fails here. */
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "open");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int ret = store_sqlite_error(s, err, errlen, rc, "open");
		sqlite3_finalize(st);
		return ret;
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	bool wal = mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(st);
	if (!wal)
		return store_error(s, err, errlen, -EIO, "cannot switch to WAL journal mode");

settings:
	rc = store_exec(s, "PRAGMA synchronous=NORMAL;"
			   "PRAGMA temp_store=MEMORY;"
			   "PRAGMA mmap_size=0;" /* never SIGBUS on a truncated file */
			   "CREATE TEMP TABLE IF NOT EXISTS query_ids(id INTEGER PRIMARY KEY)");
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "configure");
	return 0;
}

int store_connect(struct ember_store *s, int flags, char *err, size_t errlen)
{
	int rc, ret;

	ret = store_file_prepare(s, flags & SQLITE_OPEN_CREATE, err, errlen);
	if (ret)
		return ret;
	/* NOFOLLOW: the database path may not be a symlink (core/safefile.h) */
	rc = sqlite3_open_v2(s->path, &s->db, flags | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "open");
		goto fail;
	}
	s->open_flags = flags;
	bool readonly = flags & SQLITE_OPEN_READONLY;
	ret = configure(s, readonly, err, errlen);
	if (!ret)
		ret = store_spans_connect(s, err, errlen);
	if (!ret && !readonly)
		ret = store_migrate(s, err, errlen);
	if (!ret)
		ret = store_load_meta(s, err, errlen);
	if (ret)
		goto fail;
	store_file_identify(s);
	return 0;
fail:
	store_disconnect(s, false);
	return ret;
}

void store_disconnect(struct ember_store *s, bool checkpoint)
{
	store_retention_disconnected(s); /* its statements first */
	for (int i = 0; i < STMT_COUNT_; i++) {
		sqlite3_finalize(s->stmts[i]);
		s->stmts[i] = NULL;
	}
	if (s->db && !checkpoint)
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_close(s->db); /* NULL is a no-op */
	s->db = NULL;
	s->reader_cache = false;
	s->own_checkpoints = false;
	s->known_hour = false;
	store_caches_clear(s);
}

static int open_store(const char *path, bool readonly, struct ember_store **out, char *err,
		      size_t errlen)
{
	struct ember_store *s;
	int ret;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!path || !path[0]) {
		if (err && errlen)
			snprintf(err, errlen, "store: no database path given");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		if (err && errlen)
			snprintf(err, errlen, "store %s: out of memory", path);
		return -ENOMEM;
	}
	s->bucket_ns = EMBER_STORE_DEFAULT_BUCKET_NS;
	if (gethostname(s->host, sizeof(s->host) - 1) != 0)
		snprintf(s->host, sizeof(s->host), "localhost");
	sb_init(&s->key);
	sb_init(&s->blob);
	s->query_timeout_ns = EMBER_STORE_QUERY_TIMEOUT_NS;

	ret = store_connect(s,
			    (readonly ? SQLITE_OPEN_READONLY
				      : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
				    SQLITE_OPEN_NOMUTEX,
			    err, errlen);
	if (ret) {
		ember_store_close(s);
		return ret;
	}
	*out = s;
	return 0;
}

int ember_store_open(const char *path, struct ember_store **out, char *err, size_t errlen)
{
	return open_store(path, false, out, err, errlen);
}

int ember_store_open_readonly(const char *path, struct ember_store **out, char *err,
			      size_t errlen)
{
	return open_store(path, true, out, err, errlen);
}

void ember_store_close(struct ember_store *s)
{
	if (!s)
		return;
	store_disconnect(s, true);
	store_retention_free(s);
	store_idmap_free(&s->targets);
	store_idmap_free(&s->frames);
	store_idmap_free(&s->stacks);
	sb_free(&s->key);
	sb_free(&s->blob);
	free(s->path);
	free(s);
}

int ember_store_set_host(struct ember_store *s, const char *host)
{
	if (!host || !host[0] || strlen(host) >= sizeof(s->host))
		return -EINVAL;
	snprintf(s->host, sizeof(s->host), "%s", host);
	return 0;
}
