/*
 * spans.h - L7 spans in the agent: capture, tracking, aggregation, flush, metrics.
 *
 * ember_spans_start() loads the span capture (capture.h) and starts a
 * thread that reads its events, feeds the connection tracker (tracker.h)
 * and counts the spans (red.h).  The agent's thread calls
 * ember_spans_flush() at each flush: the spans gathered since the last one
 * are named (the same targets as the samples, through opts.name), capped
 * (at most max_endpoints endpoints per service and protocol; the rest are
 * counted as "other"), written to the store and added to the cumulative
 * counters behind /metrics.
 */
#ifndef EMBER_SPANS_SPANS_H
#define EMBER_SPANS_SPANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "core/strbuf.h"
#include "spans/capture.h"
#include "spans/red.h"

#define EMBER_SPANS_DEFAULT_SLOW_NS (500ULL * 1000000ULL)
#define EMBER_SPANS_DEFAULT_MAX_ENDPOINTS 200 /* per service and protocol */
#define EMBER_SPANS_MAX_SERIES 10000          /* /metrics series; more are dropped, counted */

struct ember_store;

struct ember_kernel;

struct ember_spans_opts {
	struct ember_kernel *kernel; /* BTF, features, hook notes (NULL: the running kernel's) */
	unsigned payload_head;     /* bytes (default 1024, at most 4096) */
	enum ember_span_hooks hooks;
	bool force_perfbuf;
	bool no_tls;               /* no uprobes on TLS libraries (plaintext never read) */
	unsigned tls_max_probes;   /* TLS uprobes at once (0 = EMBER_TLS_MAX_LINKS) */
	uint64_t slow_ns;          /* slow-span threshold (default 500 ms) */
	unsigned max_endpoints;    /* per service and protocol (default 200) */
	size_t max_conns;          /* tracked connections (default 16384) */
	/*
	 * Name a process as its samples are named (called on the flushing
	 * thread; the same callback as the TCP collector's name_fn).  Fill
	 * *out, whose strings are copied at once; false falls back to the comm.
	 */
	bool (*name)(uint32_t pid, const char *comm, struct ember_target *out, void *arg);
	void *name_arg;
};

struct ember_spans;

int ember_spans_start(const struct ember_spans_opts *opts, struct ember_spans **out, char *err,
		      size_t errlen);
/*
 * The same without the kernel: no capture, no thread; spans come from
 * ember_spans_add() (tests, and tools replaying recorded spans).
 */
int ember_spans_open_offline(const struct ember_spans_opts *opts, struct ember_spans **out);
struct ember_span;
void ember_spans_add(struct ember_spans *sp, const struct ember_span *span);
/* The endpoint id of (proto, name) in the agent's table (offline use). */
uint32_t ember_spans_intern_endpoint(struct ember_spans *sp, uint8_t proto, const char *name);

/*
 * Wait (at most max_ms) until the span thread has read the events the
 * kernel sent before this call: then the requests CPU samples taken so far
 * carry are parsed and tagged with their endpoints.  Call before draining
 * the profiler.
 */
void ember_spans_sync(struct ember_spans *sp, int max_ms);

/* Stop the span thread after it has read what the kernel sent; a flush then takes it all. */
void ember_spans_drain(struct ember_spans *sp);

/* Whether TLS plaintext is traced (uprobes loaded and the attacher running). */
bool ember_spans_tls(const struct ember_spans *sp);

/*
 * pid exec'd (the profiler's kernel events; any
 * thread): its TLS libraries or Go crypto/tls are attached at once.
 */
void ember_spans_process_changed(struct ember_spans *sp, uint32_t pid);

/* The hooks and transport chosen ("tracepoint"/"raw_tracepoint", "ringbuf"/"perfbuf"). */
const char *ember_spans_hooks(const struct ember_spans *sp);
const char *ember_spans_transport(const struct ember_spans *sp);

/* Stop the thread and free everything (spans not flushed are lost). */
void ember_spans_stop(struct ember_spans *sp);

/* Write what was gathered since the last flush (store may be NULL: metrics only). */
int ember_spans_flush(struct ember_spans *sp, struct ember_store *store, char *err,
		      size_t errlen);

/* Counters as one JSON object (any thread). */
void ember_spans_stats_json(struct ember_spans *sp, struct strbuf *sb);

/* One /metrics series: cumulative since the agent started. */
struct ember_span_series {
	const char *service, *protocol, *role, *endpoint, *status;
	uint64_t count, errors;
	uint64_t dur_sum_ns;
	uint64_t le[EMBER_LE_N]; /* spans per duration bucket (not cumulative) */
};

/* Call fn for every series, under the series lock (any thread). */
void ember_spans_each_series(struct ember_spans *sp,
			     void (*fn)(const struct ember_span_series *s, void *arg), void *arg);

/* File descriptors of the maps the CPU profiler reads to tag samples (see ember_spans.h). */
void ember_spans_thread_maps(struct ember_spans *sp, int *threads_fd, int *req_endpoint_fd);

/* The name CPU samples of a thread serving endpoint id are labelled with (any thread). */
const char *ember_spans_endpoint_name(struct ember_spans *sp, uint32_t id);

#endif
