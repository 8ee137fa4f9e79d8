/*
 * red.h - rate, errors and duration of spans per 10 s bucket, and the slowest spans.
 *
 * The span thread adds every span; the agent thread takes what was
 * gathered (ember_red_take) at each flush and names, caps and stores it.
 * Spans are counted in cells keyed by (bucket, pid, protocol, role,
 * endpoint, peer, status): count, errors, the sum and maximum of the
 * durations, bytes, a log-linear histogram of the durations in µs
 * (core/hist.h: quantiles) and the Prometheus bucket counts.  Spans at or over the slow threshold are kept whole
 * (text included) in a bounded list: past its size the fastest is dropped.
 *
 * Bounded: at most max_cells cells between two takes (beyond, a span is
 * counted under endpoint "other" and peer "other" of its process, and when
 * even that cell cannot be made it is dropped, counted),
 * EMBER_RED_MAX_PEERS distinct peers for the agent's life (then "other"),
 * EMBER_RED_MAX_SLOW slow spans between two takes.
 *
 * Thread-safe: one mutex, held briefly by each add and by the take.
 */
#ifndef EMBER_SPANS_RED_H
#define EMBER_SPANS_RED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hist.h"
#include "spans/tracker.h"

#define EMBER_RED_DEFAULT_CELLS 8192
#define EMBER_RED_MAX_PEERS 4096
#define EMBER_RED_MAX_SLOW 256
#define EMBER_RED_BUCKET_NS (10LL * 1000000000LL)
#define EMBER_RED_PEER_OTHER 0u

/* status of a non-HTTP span */
#define EMBER_STATUS_OK 0
#define EMBER_STATUS_ERROR 1

/* Prometheus buckets of ember_request_duration_seconds (upper bounds, +Inf implied). */
#define EMBER_LE_N 14
extern const double ember_le_seconds[EMBER_LE_N];
/* Index of the first bucket whose bound holds ns (EMBER_LE_N for +Inf only). */
unsigned ember_le_index(uint64_t ns);

struct ember_red_key {
	int64_t bucket_ns;  /* wall clock, start of the 10 s bucket */
	uint32_t pid;
	uint32_t endpoint;
	uint32_t peer;      /* id in the peer table */
	uint16_t status;    /* HTTP status; else EMBER_STATUS_OK / _ERROR */
	uint8_t proto, role;
};

struct ember_red_cell {
	struct ember_red_key key;
	uint64_t count, errors;
	uint64_t tls;            /* spans read at the TLS library (uprobes) */
	uint64_t dur_sum_ns, dur_max_ns;
	uint64_t req_bytes, resp_bytes;
	uint64_t le[EMBER_LE_N]; /* spans at or under ember_le_seconds[i] (not cumulative) */
	struct ember_hist hist;  /* durations in µs; owns memory (ember_red_batch_free) */
};

struct ember_red_slow {
	int64_t time_ns;      /* wall clock of the start */
	uint64_t duration_ns;
	uint32_t pid, tid, endpoint;
	uint16_t status;
	uint8_t proto, role;
	bool error;
	bool tls;             /* read at the TLS library (uprobes) */
	char peer[64];
	char comm[16];
	char *text, *err;     /* owned */
};

struct ember_red_comm {
	uint32_t pid;
	char comm[16];
};

/* What a take hands over (free with ember_red_batch_free). */
struct ember_red_batch {
	struct ember_red_cell *cells;
	size_t n_cells;
	struct ember_red_slow *slow;
	size_t n_slow;
	struct ember_red_comm *comms; /* the name of each pid seen */
	size_t n_comms;
};

struct ember_red_stats {
	uint64_t spans, cells, cells_full, dropped, slow, slow_dropped, peers_full;
	uint64_t hist_nomem; /* durations left out of a histogram: out of memory */
};

struct ember_red;

/* slow_ns: spans at least this long are kept in the slow list (0 = none). */
struct ember_red *ember_red_new(size_t max_cells, uint64_t slow_ns);
void ember_red_free(struct ember_red *r);

/* Count a span; wall_offset_ns turns its kernel timestamps into wall clock. */
void ember_red_add(struct ember_red *r, const struct ember_span *s, int64_t wall_offset_ns);

/* Peer names by id (any thread; the table lives as long as r). */
const char *ember_red_peer(const struct ember_red *r, uint32_t id);

/* Take everything gathered since the last take. */
int ember_red_take(struct ember_red *r, struct ember_red_batch *out);
void ember_red_batch_free(struct ember_red_batch *b);

void ember_red_stats(struct ember_red *r, struct ember_red_stats *st);

#endif
