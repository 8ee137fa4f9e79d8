/*
 * spans_metrics.h - the span families of /metrics (Prometheus text format 0.0.4).
 *
 *   ember_requests_total{service,protocol,role,endpoint,status}     counter
 *   ember_request_errors_total{service,protocol,role,endpoint,status} counter
 *   ember_request_duration_seconds{service,protocol,role,endpoint,status}
 *       histogram, le = 0.0005 .. 10 s and +Inf
 *
 * Cumulative since the agent started; updated at each flush.  Label values
 * are bounded: endpoints per service and protocol are capped (then
 * "other"), series at EMBER_SPANS_MAX_SERIES (more are dropped, counted in
 * /api/stats).  status is the HTTP status code, else "ok" or "error".
 *
 * ember run's part of /metrics (metrics_text in cmd_run.c) calls
 * ember_spans_metrics_write() once per scrape, after the TCP families.
 */
#ifndef EMBER_SERVER_SPANS_METRICS_H
#define EMBER_SERVER_SPANS_METRICS_H

#include "core/strbuf.h"

struct ember_spans;

/* Append the span families to sb; nothing when sp is NULL (spans off). */
void ember_spans_metrics_write(struct strbuf *sb, struct ember_spans *sp);

#endif
