/*
 * tracker.h - the connection tracker: kernel events in, spans out.
 *
 * Fed the control and data events of bpf/spans/spans.bpf.c (or, in tests
 * and the fuzzer, events made up to look like them), the tracker keeps one
 * struct span_conn per traced connection, frames and parses each direction
 * with the connection's protocol (conn.h, proto_*.c) and pairs requests
 * with responses into spans, handed to a callback.
 *
 * Bounded: at most max_conns connections (the least recently active is
 * dropped when a new one needs room), SPAN_MAX_PENDING unanswered requests
 * and SPAN_MAX_STMTS prepared statements per connection, SPAN_CARRY_MAX
 * bytes carried per direction.  Every drop is counted.
 *
 * Single-threaded: one thread feeds it (the span thread of spans.c).
 */
#ifndef EMBER_SPANS_TRACKER_H
#define EMBER_SPANS_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember_spans.h"
#include "spans/endpoints.h"

struct ember_span {
	uint64_t conn_id;
	uint32_t pid, tid;
	uint8_t proto, role;
	bool error;
	uint16_t status;          /* HTTP status, 0 for the other protocols */
	uint32_t endpoint;        /* id in the endpoint table */
	const char *text;         /* request text (<= 1 KiB) or NULL */
	const char *err;          /* error text or NULL */
	const char *peer;         /* "10.1.2.3:3306" (client), "10.1.2.3" (server: the client's address) */
	const char *comm;
	int64_t start_ns, end_ns; /* bpf_ktime_get_ns() clock */
	uint64_t req_bytes, resp_bytes;
};

enum ember_tracker_stat {
	EMBER_TRACKER_EVENTS,        /* data events fed */
	EMBER_TRACKER_BYTES,         /* payload bytes fed */
	EMBER_TRACKER_SPANS,         /* spans emitted */
	EMBER_TRACKER_CONNS,         /* connections now */
	EMBER_TRACKER_CONNS_OPENED,
	EMBER_TRACKER_CONNS_EVICTED, /* dropped to make room (max_conns) */
	EMBER_TRACKER_CONNS_IDLE,    /* closed after EMBER_TRACKER_IDLE_NS without events */
	EMBER_TRACKER_CONNS_DEAD,    /* gave up: TLS or another protocol */
	EMBER_TRACKER_UNANSWERED,    /* requests dropped without a response */
	EMBER_TRACKER_UNMATCHED,     /* responses with no request to answer */
	EMBER_TRACKER_PENDING_FULL,  /* requests dropped: too many unanswered */
	EMBER_TRACKER_DESYNC,        /* framing lost, resynchronized at the next turn */
	EMBER_TRACKER_LOST,          /* connections told that the kernel lost an event */
	EMBER_TRACKER_STMTS_EVICTED, /* prepared statements forgotten (SPAN_MAX_STMTS) */
	EMBER_TRACKER_UNKNOWN_STMT,  /* executions of a statement never seen prepared */
	EMBER_TRACKER_OOM,
	EMBER_TRACKER__COUNT,
};

#ifndef EMBER_TRACKER_STAT_NAMES
#define EMBER_TRACKER_STAT_NAMES                                                           \
	{"events",          "bytes",         "spans",        "conns",        "conns_opened",   \
	 "conns_evicted",   "conns_idle",    "conns_dead",   "unanswered",   "unmatched",      \
	 "pending_full",    "desync",        "lost",         "stmts_evicted", "unknown_stmt",  \
	 "oom"}
#endif

#define EMBER_TRACKER_DEFAULT_MAX_CONNS 16384
#define EMBER_TRACKER_IDLE_NS (600LL * 1000000000LL) /* a connection silent this long is closed */

struct ember_tracker_opts {
	size_t max_conns;                 /* 0 = EMBER_TRACKER_DEFAULT_MAX_CONNS */
	struct ember_endpoints *endpoints; /* required */
	void (*on_span)(const struct ember_span *span, void *arg);
	/* A server thread started serving request req_id for endpoint (per-endpoint CPU). */
	void (*on_tag)(uint64_t req_id, uint32_t endpoint, void *arg);
	void *arg;
};

struct ember_tracker;

struct ember_tracker *ember_tracker_new(const struct ember_tracker_opts *opts);
/* Free every connection (spans still open are dropped). */
void ember_tracker_free(struct ember_tracker *tr);

void ember_tracker_ctl(struct ember_tracker *tr, const struct ember_span_ctl *ev);
/* ev's payload: `captured` bytes at payload. */
void ember_tracker_data(struct ember_tracker *tr, const struct ember_span_data *ev,
			const uint8_t *payload);

/*
 * Housekeeping, about once a second: finish connections closed before the
 * previous sweep (events may trail a close across the two channels), those
 * of exited processes, and idle ones.  now_ns on the kernel's clock.
 */
void ember_tracker_sweep(struct ember_tracker *tr, int64_t now_ns);

void ember_tracker_stats(const struct ember_tracker *tr, uint64_t out[EMBER_TRACKER__COUNT]);

#endif
