/*
 * metrics.h - GET /metrics: the Prometheus text exposition format (version 0.0.4).
 *
 * Four parts, each written by the code that knows the numbers:
 *
 *   the agent's health   ember_metrics_agent(), from numbers `ember run`
 *                        gathers (samples, unwind outcomes by reason, BPF
 *                        map fill, CPU seconds, resident memory);
 *   the TCP metrics      ember_metrics_net(), from the collector's running
 *                        totals (src/net/net_prom.h: top N peers per
 *                        service, the rest as peer="other");
 *   the L7 requests      ember_spans_metrics_write() (spans_metrics.h), from
 *                        the span aggregator's running totals;
 *   the store            its file size, written by ember_metrics_reply().
 *
 * Naming follows Prometheus: ember_ prefix, base units (bytes, seconds),
 * _total counters, _seconds histograms with cumulative le buckets, _sum
 * and _count.  Label values are escaped (\\, \", \n).  Each family's HELP
 * and TYPE come once, before its samples.
 */
#ifndef EMBER_SERVER_METRICS_H
#define EMBER_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "server/api.h"

#define EMBER_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n" */
void ember_metrics_family(struct strbuf *sb, const char *name, const char *type,
			  const char *help);
/*
 * One sample: name{labels} value.  labels are alternating key, value
 * strings (n_labels pairs); values are escaped.
 */
void ember_metrics_sample(struct strbuf *sb, const char *name, const char *const *labels,
			  size_t n_labels, double value);

struct ember_metrics_pair {
	const char *name;
	uint64_t value;
};

struct ember_metrics_map_fill {
	const char *map;
	uint64_t entries, capacity;
};

struct ember_metrics_agent {
	uint64_t samples;                        /* perf-event samples taken */
	const struct ember_metrics_pair *unwind; /* outcome -> samples */
	size_t n_unwind;
	const struct ember_metrics_map_fill *maps;
	size_t n_maps;
	double cpu_user_s, cpu_system_s;
	uint64_t rss_bytes;
	uint64_t flushes, flush_errors;
	double uptime_s;
	/* TCP metrics: kernel events and what was lost */
	const struct ember_metrics_pair *net_events; /* ember_net_stat counters */
	size_t n_net_events;
};

void ember_metrics_agent(struct strbuf *sb, const struct ember_metrics_agent *a);

struct ember_net_prom;
void ember_metrics_net(struct strbuf *sb, struct ember_net_prom *p);

/*
 * The reply to GET /metrics: write_fn (the agent's part, may be NULL) then
 * the store's size (db_path and its -wal file).
 */
void ember_metrics_reply(const char *db_path, void (*write_fn)(struct strbuf *sb, void *arg),
			 void *arg, struct ember_api_reply *r);

#endif
