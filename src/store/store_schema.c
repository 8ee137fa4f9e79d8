/*
 * store_schema.c - the database schema and its migrations, in code.
 *
 * PRAGMA user_version holds the schema version.  migrations[i] takes a
 * database from version i to i + 1; on open every missing step runs in order,
 * each in its own write transaction that re-reads the version first, so two
 * processes opening a new file at once migrate it once.  A file whose version
 * is newer than this code knows is refused: an old binary must not write to a
 * schema it does not understand.  Never edit a released migration; append one.
 *
 * Version 1:
 *  - meta: settings of the file (bucket size, last sampling period).
 *  - targets: what was profiled; unique on every identifying column (NULLs
 *    are stored as '' so the UNIQUE constraint sees them as equal).  The
 *    unique index also serves lookups by service and by service + version.
 *  - frames: deduplicated on all their columns.  Text is kept inline, which
 *    keeps function-level queries (diffs, reports) a plain GROUP BY.
 *  - stacks: frame ids leaf first as a varint blob; `hash` is a 64-bit hash
 *    of the blob, unique, with the blob compared on a match (a collision
 *    moves on to the hash with the next seed, see store_ingest.c).
 *  - samples: counts per (bucket start, target, stack), WITHOUT ROWID so the
 *    primary key is the table: a time-range scan reads consecutive pages.
 *    samples_by_target covers (count included) selections by target, service
 *    or version, and per-target totals, without touching the table.
 *
 * Version 2 (issue [4]: versions, diffs, timelines):
 *  - samples_1h: the samples summed per hour, same shape.  Written in the
 *    same transaction as samples (store_ingest.c), so the two always agree;
 *    a query over a long range reads whole hours from it and only the
 *    partial hours at its ends from samples (store_query.c).  A day of a
 *    busy service is ~24 x the distinct stacks of an hour instead of
 *    8640 x those of a 10 s bucket.
 *  - sample_totals: samples per (bucket, target).  Timelines, per-target
 *    and per-version totals read this small table instead of the samples.
 *  Both are filled from the existing samples when an old file migrates.
 *  Retention (later) must delete from all the sample tables alike.
 *
 * Version 4 (issue [5]: the daily report):
 *  - reports: regression reports saved by `ember report` for the UI's list,
 *    rendered (HTML) and as JSON, with the fields the list shows.  Small
 *    and few (the newest 1000 are kept, store_reports.c).
 *
 * Version 5 (issue [4]: query latency):
 *  - samples_1h_packed: the roll-up of each finished hour as one row per
 *    (hour, target) with a blob of (stack, count) pairs (store_seal.c);
 *    samples_1h keeps the current hour.  The migration seals all hours but
 *    the newest.  A rowid table, not WITHOUT ROWID: its rows are large.
 *
 * Version 6 (issue [6]: network metrics, store_net.c):
 *  - net_peers: what processes talk to (direction, address, port, the
 *    peer's service when it is a local process), deduplicated.
 *  - net_samples: TCP counters per (bucket, target, peer), the targets of
 *    the samples; RTT and connect latency as log-linear histogram blobs
 *    (src/core/hist.h).  net_samples_1h: the same per hour, written in
 *    the same transaction (few rows: one per peer and target per hour, so
 *    no sealed form is needed).
 *  - net_drops / net_drops_1h: packets the kernel dropped, by reason.
 *  Retention must delete from all four like from the sample tables, and
 *  net_peers rows by their last use (last_ns, store_retention.c).
 *
 * Version 7 (issue [7]: L7 spans, store_spans.c):
 *  - span_endpoints: (protocol, name) -> id, with its last use (last_ns,
 *    moved up at every ingest that names it).  Names are bounded in the
 *    agent (per service, then "other"), so this stays small.
 *  - spans: per (bucket, target, endpoint, role, peer, status) the count,
 *    errors, summed and maximum duration (ns), request and response bytes,
 *    and the durations as a histogram blob (core/hist.h, µs).  WITHOUT
 *    ROWID, the primary key leading with the bucket like samples;
 *    spans_by_target serves selections of a service.
 *  - spans_1h: the same per hour, written in the same transaction.
 *  - slow_spans: one row per span over the agent's slow threshold, with
 *    its text (<= 1 KiB) and error; the newest EMBER_STORE_MAX_SLOW_SPANS
 *    are kept (store_spans.c), the rest by age.
 *  Retention deletes spans with the 10 s data, spans_1h and slow_spans with
 *  the roll-ups, span_endpoints by their last use (store_retention.c).
 *
 * Version 8 (issue [11]: off-CPU profiles):
 *  - targets.profile_type: what the counts of a target's sample rows
 *    measure (enum ember_profile_type: 0 CPU samples, 1 off-CPU
 *    nanoseconds), part of the target's identity.  A process profiled both
 *    ways is two targets, so every sample table (samples, samples_1h,
 *    samples_1h_packed, sample_totals), the roll-ups, sealing and retention
 *    keep their shape; a selection picks one type through the target filter
 *    (store_query.c).  The UNIQUE constraint cannot be altered in place, so
 *    the table is rebuilt with the same ids; existing targets are CPU ones.
 *
 * Version 9 (issue [12]: TLS spans):
 *  - spans.tls, spans_1h.tls: how many of the row's spans were read at the
 *    TLS library (uprobes), summed like count (not part of the key: a
 *    process's plain and TLS requests to one endpoint share a row).
 *  - slow_spans.tls: 1 for a span read at the TLS library.
 *  Older rows have 0 (they were not marked).
 */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The net tables of version 6: one shape at 10 s and per hour. */
#define NET_SAMPLES_TABLE(name, time)                                                     \
	"CREATE TABLE " name " ("                                                         \
	"  " time "    INTEGER NOT NULL,"                                                 \
	"  target_id   INTEGER NOT NULL REFERENCES targets(id),"                         \
	"  peer_id     INTEGER NOT NULL REFERENCES net_peers(id),"                       \
	"  bytes_sent  INTEGER NOT NULL, bytes_recv INTEGER NOT NULL,"                   \
	"  sends       INTEGER NOT NULL, recvs INTEGER NOT NULL,"                        \
	"  connects    INTEGER NOT NULL, accepts INTEGER NOT NULL,"                      \
	"  closes      INTEGER NOT NULL, failures INTEGER NOT NULL,"                     \
	"  resets_sent INTEGER NOT NULL, resets_recv INTEGER NOT NULL,"                  \
	"  retransmits INTEGER NOT NULL, drops INTEGER NOT NULL,"                        \
	"  rtt         BLOB NOT NULL, connect BLOB NOT NULL,"                            \
	"  PRIMARY KEY (" time ", target_id, peer_id)"                                    \
	") WITHOUT ROWID;"                                                                \
	"CREATE INDEX " name "_by_target ON " name "(target_id, " time ");"

#define NET_DROPS_TABLE(name, time)                                                       \
	"CREATE TABLE " name " ("                                                         \
	"  " time "  INTEGER NOT NULL,"                                                   \
	"  target_id INTEGER NOT NULL REFERENCES targets(id),"                           \
	"  peer_id   INTEGER NOT NULL REFERENCES net_peers(id),"                         \
	"  reason    TEXT NOT NULL,"                                                      \
	"  count     INTEGER NOT NULL,"                                                   \
	"  PRIMARY KEY (" time ", target_id, peer_id, reason)"                            \
	") WITHOUT ROWID;"

/* The span tables of version 7: one shape at 10 s and per hour. */
#define SPANS_TABLE(name, time)                                                           \
	"CREATE TABLE " name " ("                                                         \
	"  " time "      INTEGER NOT NULL,"                                               \
	"  target_id   INTEGER NOT NULL REFERENCES targets(id),"                         \
	"  endpoint_id INTEGER NOT NULL REFERENCES span_endpoints(id),"                  \
	"  role        INTEGER NOT NULL," /* 1 client, 2 server */                      \
	"  peer        TEXT NOT NULL,"                                                   \
	"  status      TEXT NOT NULL,"                                                   \
	"  count       INTEGER NOT NULL, errors INTEGER NOT NULL,"                       \
	"  duration_ns INTEGER NOT NULL, max_ns INTEGER NOT NULL,"                       \
	"  req_bytes   INTEGER NOT NULL, resp_bytes INTEGER NOT NULL,"                   \
	"  hist        BLOB NOT NULL,"                                                   \
	"  PRIMARY KEY (" time ", target_id, endpoint_id, role, peer, status)"            \
	") WITHOUT ROWID;"                                                                \
	"CREATE INDEX " name "_by_target ON " name "(target_id, " time ");"

static const char *const migrations[] = {
	/* 0 -> 1: the initial schema */
	"CREATE TABLE meta ("
	"  key   TEXT PRIMARY KEY,"
	"  value"
	") WITHOUT ROWID;"
	"INSERT INTO meta(key, value) VALUES ('bucket_ns', 10000000000);"

	"CREATE TABLE targets ("
	"  id            INTEGER PRIMARY KEY,"
	"  service       TEXT NOT NULL,"
	"  version       TEXT NOT NULL,"
	"  host          TEXT NOT NULL,"
	"  pid           INTEGER NOT NULL,"
	"  comm          TEXT NOT NULL,"
	"  exe           TEXT NOT NULL,"
	"  build_id      TEXT NOT NULL,"
	"  labels        TEXT NOT NULL,"
	"  first_seen_ns INTEGER NOT NULL,"
	"  last_seen_ns  INTEGER NOT NULL,"
	"  UNIQUE (service, version, host, pid, comm, exe, build_id, labels)"
	");"
	"CREATE INDEX targets_by_last_seen ON targets(last_seen_ns);"

	"CREATE TABLE frames ("
	"  id       INTEGER PRIMARY KEY,"
	"  function TEXT NOT NULL,"
	"  file     TEXT NOT NULL,"
	"  line     INTEGER NOT NULL,"
	"  module   TEXT NOT NULL,"
	"  build_id TEXT NOT NULL,"
	"  address  INTEGER NOT NULL," /* u64 stored as its two's-complement i64 */
	"  flags    INTEGER NOT NULL,"
	"  UNIQUE (function, file, line, module, build_id, address, flags)"
	");"

	"CREATE TABLE stacks ("
	"  id     INTEGER PRIMARY KEY,"
	"  hash   INTEGER NOT NULL UNIQUE,"
	"  frames BLOB NOT NULL"
	");"

	"CREATE TABLE samples ("
	"  bucket_ns INTEGER NOT NULL,"
	"  target_id INTEGER NOT NULL REFERENCES targets(id),"
	"  stack_id  INTEGER NOT NULL REFERENCES stacks(id),"
	"  count     INTEGER NOT NULL,"
	"  PRIMARY KEY (bucket_ns, target_id, stack_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX samples_by_target ON samples(target_id, bucket_ns, stack_id, count);",

	/* 1 -> 2: hourly roll-up and per-bucket totals, filled from the samples */
	"CREATE TABLE samples_1h ("
	"  hour_ns   INTEGER NOT NULL,"
	"  target_id INTEGER NOT NULL REFERENCES targets(id),"
	"  stack_id  INTEGER NOT NULL REFERENCES stacks(id),"
	"  count     INTEGER NOT NULL,"
	"  PRIMARY KEY (hour_ns, target_id, stack_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX samples_1h_by_target ON samples_1h(target_id, hour_ns, stack_id, count);"
	"INSERT INTO samples_1h(hour_ns, target_id, stack_id, count)"
	"  SELECT bucket_ns - ((bucket_ns % 3600000000000) + 3600000000000) % 3600000000000,"
	"         target_id, stack_id, sum(count)"
	"  FROM samples GROUP BY 1, 2, 3;"

	"CREATE TABLE sample_totals ("
	"  bucket_ns INTEGER NOT NULL,"
	"  target_id INTEGER NOT NULL REFERENCES targets(id),"
	"  count     INTEGER NOT NULL,"
	"  PRIMARY KEY (bucket_ns, target_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX sample_totals_by_target ON sample_totals(target_id, bucket_ns, count);"
	"INSERT INTO sample_totals(bucket_ns, target_id, count)"
	"  SELECT bucket_ns, target_id, sum(count) FROM samples GROUP BY 1, 2;",

	/* 2 -> 3: the line a frame's function starts at (pprof Function.start_line);
	 * not part of the frame's identity: it follows from function and file */
	"ALTER TABLE frames ADD COLUMN start_line INTEGER NOT NULL DEFAULT 0;",

	/* 3 -> 4: saved regression reports (issue [5], store_reports.c) */
	"CREATE TABLE reports ("
	"  id           INTEGER PRIMARY KEY,"
	"  created_ns   INTEGER NOT NULL,"
	"  from_ns      INTEGER NOT NULL,"
	"  to_ns        INTEGER NOT NULL,"
	"  baseline     TEXT NOT NULL,"
	"  service      TEXT NOT NULL,"
	"  summary      TEXT NOT NULL,"
	"  regressions  INTEGER NOT NULL,"
	"  improvements INTEGER NOT NULL,"
	"  html         TEXT NOT NULL,"
	"  json         TEXT NOT NULL"
	");",

	/* 4 -> 5: finished hours of samples_1h sealed into one row per (hour,
	 * target) (store_seal.c); migrate_step seals the existing hours */
	"CREATE TABLE samples_1h_packed ("
	"  id        INTEGER PRIMARY KEY,"
	"  hour_ns   INTEGER NOT NULL,"
	"  target_id INTEGER NOT NULL REFERENCES targets(id),"
	"  stacks    BLOB NOT NULL,"
	"  UNIQUE (hour_ns, target_id)"
	");",

	/* 5 -> 6: network metrics (issue [6], store_net.c) */
	"CREATE TABLE net_peers ("
	"  id        INTEGER PRIMARY KEY,"
	"  direction INTEGER NOT NULL," /* 0: the target connected, 1: it accepted */
	"  addr      TEXT NOT NULL,"
	"  port      INTEGER NOT NULL," /* out: remote port; in: the target's own port */
	"  service   TEXT NOT NULL,"    /* the peer's service when local, else '' */
	"  last_ns   INTEGER NOT NULL DEFAULT 0," /* the last bucket that named it (retention) */
	"  UNIQUE (direction, addr, port, service)"
	");"
	"CREATE INDEX net_peers_by_last ON net_peers(last_ns);"
	NET_SAMPLES_TABLE("net_samples", "bucket_ns")
	NET_SAMPLES_TABLE("net_samples_1h", "hour_ns")
	NET_DROPS_TABLE("net_drops", "bucket_ns")
	NET_DROPS_TABLE("net_drops_1h", "hour_ns"),

	/* 6 -> 7: L7 spans (issue [7], store_spans.c) */
	"CREATE TABLE span_endpoints ("
	"  id       INTEGER PRIMARY KEY,"
	"  protocol TEXT NOT NULL,"
	"  name     TEXT NOT NULL,"
	"  last_ns  INTEGER NOT NULL," /* the last bucket or slow span that named it */
	"  UNIQUE (protocol, name)"
	");"
	"CREATE INDEX span_endpoints_by_last ON span_endpoints(last_ns);"
	SPANS_TABLE("spans", "bucket_ns")
	SPANS_TABLE("spans_1h", "hour_ns")
	"CREATE TABLE slow_spans ("
	"  id          INTEGER PRIMARY KEY,"
	"  time_ns     INTEGER NOT NULL,"
	"  target_id   INTEGER NOT NULL REFERENCES targets(id),"
	"  endpoint_id INTEGER NOT NULL REFERENCES span_endpoints(id),"
	"  role        INTEGER NOT NULL,"
	"  peer        TEXT NOT NULL,"
	"  status      TEXT NOT NULL,"
	"  error       INTEGER NOT NULL,"
	"  duration_ns INTEGER NOT NULL,"
	"  tid         INTEGER NOT NULL,"
	"  text        TEXT NOT NULL,"
	"  err         TEXT NOT NULL"
	");"
	"CREATE INDEX slow_spans_by_time ON slow_spans(time_ns);",

	/* 7 -> 8: the profile type, part of a target's identity (issue [11]) */
	"CREATE TABLE targets_v8 ("
	"  id            INTEGER PRIMARY KEY,"
	"  service       TEXT NOT NULL,"
	"  version       TEXT NOT NULL,"
	"  host          TEXT NOT NULL,"
	"  pid           INTEGER NOT NULL,"
	"  comm          TEXT NOT NULL,"
	"  exe           TEXT NOT NULL,"
	"  build_id      TEXT NOT NULL,"
	"  labels        TEXT NOT NULL,"
	"  first_seen_ns INTEGER NOT NULL,"
	"  last_seen_ns  INTEGER NOT NULL,"
	"  profile_type  INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE (service, version, host, pid, comm, exe, build_id, labels, profile_type)"
	");"
	"INSERT INTO targets_v8(id, service, version, host, pid, comm, exe, build_id, labels,"
	"  first_seen_ns, last_seen_ns)"
	"  SELECT id, service, version, host, pid, comm, exe, build_id, labels,"
	"         first_seen_ns, last_seen_ns FROM targets;"
	"DROP TABLE targets;"
	"ALTER TABLE targets_v8 RENAME TO targets;"
	"CREATE INDEX targets_by_last_seen ON targets(last_seen_ns);"
	"CREATE INDEX targets_by_type ON targets(profile_type, id);",

	/* 8 -> 9: spans read at the TLS library, marked (issue [12]) */
	"ALTER TABLE spans ADD COLUMN tls INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE spans_1h ADD COLUMN tls INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE slow_spans ADD COLUMN tls INTEGER NOT NULL DEFAULT 0;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

_Static_assert(EMBER_STORE_DEFAULT_BUCKET_NS == 10000000000LL,
	       "migration 1 records the default bucket size");
_Static_assert(STORE_ROLLUP_NS == 3600000000000LL, "migration 2 rolls up per hour");

int store_schema_version(void)
{
	return SCHEMA_VERSION;
}

static int read_version(struct ember_store *s, int *version)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int too_new(struct ember_store *s, char *err, size_t errlen, int version)
{
	return store_error(s, err, errlen, -ENOTSUP,
			   "schema version %d is newer than this ember supports (%d); "
			   "upgrade ember or use another database",
			   version, SCHEMA_VERSION);
}

static int seal_all_but_newest(struct ember_store *s)
{
	int64_t newest;
	int rc = store_newest_hour(s, &newest);

	return rc == SQLITE_OK && newest != INT64_MIN ? store_seal_hours(s, newest) : rc;
}

/* Apply the next migration in a write transaction; *version is updated. */
static int migrate_step(struct ember_store *s, int *version, char *err, size_t errlen)
{
	char sql[64];
	int rc, ret;

	rc = store_exec(s, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "migrate: begin");
	rc = read_version(s, version); /* another process may have migrated meanwhile */
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "migrate: read version");
		goto rollback;
	}
	if (*version > SCHEMA_VERSION) {
		ret = too_new(s, err, errlen, *version);
		goto rollback;
	}
	if (*version == SCHEMA_VERSION) {
		rc = store_exec(s, "COMMIT");
		if (rc == SQLITE_OK)
			return 0;
		ret = store_sqlite_error(s, err, errlen, rc, "migrate: commit");
		goto rollback;
	}

	rc = store_exec(s, migrations[*version]);
	if (rc == SQLITE_OK && *version + 1 == 5)
		rc = seal_all_but_newest(s);
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "migrate to schema version %d",
					 *version + 1);
		goto rollback;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", *version + 1);
	rc = store_exec(s, sql);
	if (rc == SQLITE_OK)
		rc = store_exec(s, "COMMIT");
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "migrate to schema version %d",
					 *version + 1);
		goto rollback;
	}
	(*version)++;
	return 0;
rollback:
	store_exec(s, "ROLLBACK");
	return ret;
}

int store_migrate(struct ember_store *s, char *err, size_t errlen)
{
	int version = 0, rc, ret;

	rc = read_version(s, &version);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "read schema version");
	if (version > SCHEMA_VERSION)
		return too_new(s, err, errlen, version);
	while (version < SCHEMA_VERSION) {
		ret = migrate_step(s, &version, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int store_meta_get_int(struct ember_store *s, const char *key, int64_t *value)
{
	sqlite3_stmt *st = store_stmt(s, STMT_META_GET);
	int rc;

	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	return rc;
}

int store_meta_set_int(struct ember_store *s, const char *key, int64_t value)
{
	sqlite3_stmt *st = store_stmt(s, STMT_META_SET);
	int rc;

	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store_load_meta(struct ember_store *s, char *err, size_t errlen)
{
	int64_t bucket = EMBER_STORE_DEFAULT_BUCKET_NS, period = 0;
	int rc = store_meta_get_int(s, "bucket_ns", &bucket);

	if (rc == SQLITE_OK)
		rc = store_meta_get_int(s, "period_ns", &period);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "read meta");
	if (bucket <= 0)
		return store_error(s, err, errlen, -EIO, "corrupt meta: bucket_ns %" PRId64,
				   bucket);
	s->bucket_ns = bucket;
	s->period_ns = period > 0 ? (uint64_t)period : 0;
	return 0;
}
