/*
 * store.h - Ember's SQLite store: what it offers the agent, server and report.
 *
 * The store keeps aggregated profiles.  Targets (service, version, host, pid,
 * comm, labels), frames and stacks are deduplicated; samples are counts per
 * (time bucket, target, stack), rolled up per hour for long ranges, with
 * per-(bucket, target) totals for timelines and service lists.  The
 * database runs in WAL mode so the HTTP server can read while the agent
 * writes.  The schema is versioned and migrated in code (store_schema.c).
 *
 * Every function returns 0 on success or a negative errno-style code, and
 * fills `err` (when given) with a message that names the database path.
 *
 * The file is read and written with plain read()/write(), never through
 * mmap (PRAGMA mmap_size = 0): a file truncated under a memory-mapped read
 * raises SIGBUS, which would kill the agent.  It is created 0640 (group
 * `ember` when it exists), and so are its WAL and SHM (SQLite gives them
 * the database's mode and owner).
 */
#ifndef EMBER_STORE_H
#define EMBER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"

struct ember_store;

#define EMBER_STORE_ERRLEN 512
#define EMBER_STORE_DEFAULT_BUCKET_NS (10LL * 1000000000LL) /* 10 s */

/* Open (creating and migrating as needed) the database at path. */
int ember_store_open(const char *path, struct ember_store **out, char *err, size_t errlen);
/*
 * Open an existing database for reading only (SQLITE_OPEN_READONLY): for
 * readers beside the writer, such as the HTTP server's query threads.  The
 * file must already hold this code's schema (-EPROTO otherwise, -ENOENT
 * when it holds none).  Ingest and saving reports fail on such a handle.
 */
int ember_store_open_readonly(const char *path, struct ember_store **out, char *err,
			      size_t errlen);
void ember_store_close(struct ember_store *s);

/* ---- the file under a long-running writer (store_file.c) ---- */

/*
 * Something outside Ember may truncate, remove, replace or corrupt the
 * file while the agent writes.  ember_store_ingest() notices (the file is
 * shorter than it can legitimately be, is another file or none, or SQLite
 * finds it corrupt), closes the connection without writing anything more
 * into the file and fails with -EIO and a message naming the file.  The
 * handle is then "damaged": nothing is read or written until
 * ember_store_recover() finds the file usable again: removed (a new
 * database is created), replaced or restored (reopened), or emptied (a
 * zero-byte file is a new database).  Readers (the HTTP server) reconnect
 * by themselves when the file they read was replaced.
 */
struct ember_store_file_stats {
	uint64_t damaged;   /* times the file was found damaged, truncated, replaced or removed */
	uint64_t recovered; /* times writing resumed afterwards */
	uint64_t reopened;  /* reconnections of a reading handle to a replaced file */
	bool is_damaged;    /* now */
};

bool ember_store_damaged(const struct ember_store *s);

/*
 * Try to go on after damage.  0: the store is usable again (what happened
 * is in err, for the log); -EAGAIN: the file has not changed since the
 * last try (err says it is still damaged); another error: it changed but
 * is still unusable (err says why).  0 at once when not damaged.
 */
int ember_store_recover(struct ember_store *s, char *err, size_t errlen);
void ember_store_get_file_stats(const struct ember_store *s, struct ember_store_file_stats *st);

/* The ingest caches (target, frame and stack -> row id): bounded, emptied when full. */
struct ember_store_cache_stats {
	uint64_t entries, bytes, max_bytes, clears;
};
void ember_store_cache_stats(const struct ember_store *s, struct ember_store_cache_stats *st);

/* Name of the host this store records for (defaults to gethostname()). */
int ember_store_set_host(struct ember_store *s, const char *host);

/*
 * Ingest a profile: every stack's count is added to the sample row of
 * (bucket of stack->time_ns, or of `time_ns` when the stack has none, target,
 * stack).  Targets without a service get the executable name (comm) and
 * without a version the short build-id.  One transaction per call.
 */
int ember_store_ingest(struct ember_store *s, const struct ember_profile *p, int64_t time_ns,
		       char *err, size_t errlen);

/*
 * What a query selects.  Zero/NULL fields select everything.  The version
 * filter matches a target whose version is `version` or any of
 * versions[0..n_versions); it selects everything only when both are empty.
 */
struct ember_selection {
	int64_t from_ns;         /* inclusive, 0 = no lower bound */
	int64_t to_ns;           /* exclusive, 0 = no upper bound */
	int64_t target_id;       /* 0 = any */
	const char *service;     /* NULL = any */
	const char *version;     /* NULL = any (unless versions are given) */
	const char *const *versions; /* any of these; at most EMBER_STORE_MAX_VERSIONS */
	size_t n_versions;
	uint32_t pid;            /* 0 = any */
	const char *endpoint;    /* NULL = any; else only the CPU samples of threads serving
				    this span endpoint (targets labelled endpoint=, spans/endpoint.h) */
	size_t max_stacks;       /* 0 = default bound (EMBER_STORE_MAX_STACKS) */
	enum ember_profile_type type; /* the profile type (0: CPU samples); never mixed */
	bool merge_targets;      /* sum each stack over targets: the profile holds one
				    target, pid 0, service/version/comm "*" (for flame
				    graphs and diffs, which ignore targets; much faster) */
};
#define EMBER_STORE_MAX_STACKS 500000
#define EMBER_STORE_MAX_VERSIONS 64
#define EMBER_STORE_QUERY_TIMEOUT_NS (10 * 1000000000LL) /* default time bound of a read */

/*
 * Bound the time of each query and timeline (0 = unbounded; the default is
 * EMBER_STORE_QUERY_TIMEOUT_NS).  A read that runs over it is stopped and
 * fails with -ETIMEDOUT and a message saying so.
 */
void ember_store_set_query_timeout(struct ember_store *s, int64_t timeout_ns);

/*
 * Aggregate the selected samples into a new profile (targets merged per
 * target row; stack->time_ns left 0).  *out must be freed with
 * ember_profile_free().
 */
int ember_store_query(struct ember_store *s, const struct ember_selection *sel,
		      struct ember_profile **out, char *err, size_t errlen);

struct ember_target_row {
	int64_t id;
	const char *service, *version, *host, *comm, *exe, *build_id, *labels;
	uint32_t pid;
	enum ember_profile_type type; /* a target records one profile type */
	int64_t first_seen_ns, last_seen_ns;
	uint64_t samples; /* CPU samples, or off-CPU nanoseconds (type) */
};

/* Call fn for every target (newest last_seen first).  fn returns non-zero to stop. */
int ember_store_list_targets(struct ember_store *s,
			     int (*fn)(const struct ember_target_row *row, void *arg), void *arg,
			     char *err, size_t errlen);

/* One (service, version): its targets aggregated. */
struct ember_version_row {
	const char *service, *version;
	int64_t first_seen_ns, last_seen_ns;
	uint64_t samples, targets; /* CPU samples; targets of every profile type */
	uint64_t offcpu_ns;        /* off-CPU time recorded */
};

/*
 * Call fn for every (service, version), ordered by service, then newest
 * last_seen first.  fn returns non-zero to stop.  Sample totals come from
 * the per-bucket totals table, so this never reads the samples.
 */
int ember_store_list_versions(struct ember_store *s,
			      int (*fn)(const struct ember_version_row *row, void *arg), void *arg,
			      char *err, size_t errlen);

/*
 * Samples over time for a selection: out->n points (t_ns[i], samples[i]),
 * ascending, one per step that holds samples (empty steps are left out).
 * The step is step_ns rounded up to a whole number of buckets, raised
 * until the span holds at most max_points steps (0 = 2000).  The span is the
 * selection's from/to, or else the first and last bucket holding selected
 * samples; out->from_ns (aligned down to the step) and out->to_ns give it.
 * Free with ember_timeline_free().
 */
struct ember_timeline {
	int64_t step_ns, from_ns, to_ns;
	size_t n;
	int64_t *t_ns;
	uint64_t *samples;
};
int ember_store_timeline(struct ember_store *s, const struct ember_selection *sel,
			 int64_t step_ns, size_t max_points, struct ember_timeline *out, char *err,
			 size_t errlen);
void ember_timeline_free(struct ember_timeline *t);

/* Totals for stats endpoints. */
struct ember_store_stats {
	uint64_t targets, frames, stacks, sample_rows, samples;
	int64_t oldest_ns, newest_ns;
};
int ember_store_stats(struct ember_store *s, struct ember_store_stats *st, char *err,
		      size_t errlen);

/* ---- retention and a bounded size (store_retention.c) ---- */

/*
 * Old data is deleted table by table (every table with a time column is
 * registered in store_retention.c, see store_internal.h), in transactions
 * of at most batch_rows rows, by whoever ingests (the agent) calling
 * ember_store_retention_step() between flushes:
 *  - 10 s buckets (samples) older than full_res_ns;
 *  - hourly roll-ups, per-bucket totals, saved reports older than
 *    retention_ns;
 *  - stacks, frames and targets no row references any more;
 *  - when the database and its WAL outgrow max_bytes, the oldest data
 *    first (10 s buckets, then roll-ups) until they fit in 90% of it.
 * Freed pages are given back to the file system by incremental vacuum.
 * Queries over a time range older than the full-resolution window read
 * whole hours of the roll-up there.
 */
#define EMBER_RETENTION_FULL_RES_NS (48LL * 3600 * 1000000000LL)
#define EMBER_RETENTION_NS (14LL * 86400 * 1000000000LL)
#define EMBER_MAX_DB_BYTES (2ULL << 30)
#define EMBER_RETENTION_BATCH_ROWS 1000
#define EMBER_RETENTION_VACUUM_PAGES 256

struct ember_retention_options {
	int64_t full_res_ns;   /* keep 10 s buckets this long (0: the default; at most retention) */
	int64_t retention_ns;  /* keep everything this long (0: the default; < 0: forever) */
	uint64_t max_bytes;    /* bound of database + WAL (0: none) */
	uint32_t batch_rows;   /* rows deleted per transaction (0: the default) */
	uint32_t vacuum_pages; /* pages given back per step (0: the default) */
};

/*
 * Set retention up on the handle that ingests.  A database created before
 * incremental vacuum existed is converted once (VACUUM) when it is at most
 * 256 MiB; a larger one keeps reusing its free pages but its file does not
 * shrink (the log and stats say so).  err may hold a notice on success.
 */
int ember_store_retention_setup(struct ember_store *s, const struct ember_retention_options *o,
				char *err, size_t errlen);

/*
 * One bounded piece of the work: a transaction of at most batch_rows rows
 * (or a scan of at most 16 x batch_rows rows, or vacuum_pages pages).
 * Returns 1 when it did something (call again soon), 0 when there is
 * nothing to do until now_ns moves on (a pass starts at most once a
 * minute, or at once when the size bound is exceeded), < 0 on an error.
 */
int ember_store_retention_step(struct ember_store *s, int64_t now_ns, char *err, size_t errlen);

struct ember_retention_stats {
	uint64_t passes, rows_deleted, stacks_deleted, frames_deleted, targets_deleted,
		reports_deleted, gc_runs, pages_vacuumed;
	uint64_t batches, max_batch_rows; /* write transactions, and the largest */
	uint64_t max_step_ns;             /* the longest step (wall time) */
	uint64_t size_passes;             /* passes forced by the size bound */
	uint64_t bound_unreachable;       /* passes that could not get under it */
	int64_t full_res_from_ns;         /* 10 s buckets before this are deleted (0: none yet) */
	int64_t rollup_from_ns;           /* everything before this is deleted (0: none yet) */
	uint64_t db_bytes, wal_bytes, free_bytes, max_bytes;
	bool incremental_vacuum;          /* the file shrinks */
	bool collecting;                  /* a collection of unreferenced rows is under way */
};
void ember_store_retention_stats(const struct ember_store *s, struct ember_retention_stats *st);

/* ---- saved reports (store_reports.c): `ember report` saves, the UI lists ---- */

struct ember_report_row {
	int64_t id;
	int64_t created_ns, from_ns, to_ns; /* the report's current window */
	const char *baseline;               /* "previous-day", "previous-version", "window" */
	const char *service;                /* NULL = every service */
	const char *summary;                /* one line */
	uint32_t regressions, improvements; /* over its services (new and vanished included) */
};
#define EMBER_STORE_MAX_REPORTS 1000 /* older reports are deleted when one is saved */

/* Save a report (HTML and JSON); *id gets its id.  Keeps the newest EMBER_STORE_MAX_REPORTS. */
int ember_store_save_report(struct ember_store *s, const struct ember_report_row *row,
			    const char *html, const char *json, int64_t *id, char *err,
			    size_t errlen);

/* Keep only the newest `keep` reports (`ember report --keep`); *deleted (may be NULL) counts the rest. */
int ember_store_prune_reports(struct ember_store *s, uint32_t keep, uint64_t *deleted, char *err,
			      size_t errlen);

/* Call fn for the newest `limit` reports (0 = all kept), newest first; fn returns non-zero to stop. */
int ember_store_list_reports(struct ember_store *s, size_t limit,
			     int (*fn)(const struct ember_report_row *row, void *arg), void *arg,
			     char *err, size_t errlen);

/*
 * A report's body, format "html" (NULL too) or "json", NUL-terminated in a
 * malloc'd *body (the caller frees).  -ENOENT when there is no such report.
 */
int ember_store_get_report(struct ember_store *s, int64_t id, const char *format, char **body,
			   size_t *len, char *err, size_t errlen);

#endif
