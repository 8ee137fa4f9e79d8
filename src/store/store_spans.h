/*
 * store_spans.h - L7 spans in the store: RED aggregates per 10 s bucket and slow spans.
 *
 * Rows are keyed like the samples: the same target ids (service, version,
 * host, pid, ...), 10 s buckets, and an hourly roll-up written in the same
 * transaction.  Per (bucket, target, endpoint, role, peer, status) a row
 * holds the count, errors, summed and maximum duration, bytes and a
 * histogram of the durations in µs (core/hist.h); endpoints are (protocol,
 * name) rows of their own.  Slow spans keep their text and error; the
 * newest EMBER_STORE_MAX_SLOW_SPANS are kept.  Old rows go with the
 * samples' retention (store_retention.c).
 */
#ifndef EMBER_STORE_SPANS_H
#define EMBER_STORE_SPANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "core/hist.h"
#include "store/store.h"

#define EMBER_STORE_MAX_SLOW_SPANS 100000

struct ember_store_span {
	const struct ember_target *target;
	int64_t bucket_ns;
	const char *protocol; /* "http", "mysql", "pgsql", "redis" */
	const char *role;     /* "client", "server" */
	const char *endpoint, *peer, *status;
	uint64_t count, errors, dur_sum_ns, dur_max_ns, req_bytes, resp_bytes;
	uint64_t tls; /* of count, spans read at the TLS library */
	const struct ember_hist *hist; /* µs; NULL = none */
};

struct ember_store_slow_span {
	const struct ember_target *target;
	int64_t time_ns;
	uint64_t duration_ns;
	const char *protocol, *role, *endpoint, *peer, *status;
	const char *text, *err; /* may be NULL */
	bool error;
	bool tls; /* read at the TLS library */
	uint32_t tid;
};

/* Add the aggregates and slow spans of one flush, in one transaction. */
int ember_store_spans_ingest(struct ember_store *s, const struct ember_store_span *rows, size_t n,
			     const struct ember_store_slow_span *slow, size_t n_slow, char *err,
			     size_t errlen);

/* What a span query selects besides the target selection (NULL / "" = any). */
struct ember_span_filter {
	const char *protocol, *role, *endpoint, *peer;
	bool by_peer; /* one row per peer too */
};

#define EMBER_SPAN_MAX_STATUSES 8

/* One row of the RED table: (service, protocol, role, endpoint[, peer]). */
struct ember_span_group {
	char *service, *protocol, *role, *endpoint, *peer; /* peer NULL unless by_peer */
	uint64_t count, errors, dur_sum_ns, dur_max_ns, req_bytes, resp_bytes;
	uint64_t tls;           /* of count, spans read at the TLS library */
	struct ember_hist hist; /* µs; freed by ember_span_red_free */
	struct { char status[16]; uint64_t count; } statuses[EMBER_SPAN_MAX_STATUSES];
	size_t n_statuses;  /* more distinct statuses are summed in the last one, "other" */
	uint64_t *series;   /* count per step, n_steps (the red table's) */
	uint64_t *series_errors;
};

struct ember_span_red {
	int64_t from_ns, to_ns, step_ns;
	size_t n_steps;
	struct ember_span_group *groups; /* by count, largest first */
	size_t n_groups;
	bool truncated;  /* more than max_groups: the smallest were left out */
	bool hourly;     /* read from the hourly roll-up */
};

#define EMBER_SPAN_MAX_GROUPS 5000
#define EMBER_SPAN_MAX_STEPS 500

/*
 * The RED table of the selected spans.  The range is sel's from/to (both
 * needed for a series; without them the whole store is read hourly).
 * Ranges over 24 h read the hourly roll-up.  step_ns 0 picks ~30 steps.
 */
int ember_store_spans_red(struct ember_store *s, const struct ember_selection *sel,
			  const struct ember_span_filter *f, int64_t step_ns,
			  struct ember_span_red *out, char *err, size_t errlen);
void ember_span_red_free(struct ember_span_red *r);

struct ember_slow_span_row {
	int64_t time_ns;
	uint64_t duration_ns;
	const char *service, *version, *protocol, *role, *endpoint, *peer, *status, *text, *err;
	bool error;
	bool tls;
	uint32_t pid, tid;
	int64_t target_id;
};

/* The slowest spans of the selection (slowest first), at most limit; fn returns non-zero to stop. */
int ember_store_spans_slow(struct ember_store *s, const struct ember_selection *sel,
			   const struct ember_span_filter *f, size_t limit,
			   int (*fn)(const struct ember_slow_span_row *row, void *arg), void *arg,
			   char *err, size_t errlen);

#endif
