/*
 * spans_metrics.c - ember_requests_total and ember_request_duration_seconds.
 *
 * Each family is written whole (HELP, TYPE, then its samples) as the text
 * format requires, so the series are walked once per family.  Samples go
 * through metrics.c's writer, which escapes label values.
 */
#include "server/spans_metrics.h"

#include <stdio.h>

#include "server/metrics.h"
#include "spans/spans.h"

#define N_LABELS 5 /* service, protocol, role, endpoint, status */

/* The series' labels as key, value pairs, with room for one more (le). */
static void labels(const struct ember_span_series *s, const char *l[2 * N_LABELS + 2])
{
	const char *const v[N_LABELS] = {s->service, s->protocol, s->role, s->endpoint, s->status};
	static const char *const k[N_LABELS] = {"service", "protocol", "role", "endpoint", "status"};

	for (int i = 0; i < N_LABELS; i++) {
		l[2 * i] = k[i];
		l[2 * i + 1] = v[i];
	}
}

static void write_total(const struct ember_span_series *s, void *arg)
{
	const char *l[2 * N_LABELS + 2];

	labels(s, l);
	ember_metrics_sample(arg, "ember_requests_total", l, N_LABELS, (double)s->count);
}

static void write_errors(const struct ember_span_series *s, void *arg)
{
	const char *l[2 * N_LABELS + 2];

	labels(s, l);
	ember_metrics_sample(arg, "ember_request_errors_total", l, N_LABELS, (double)s->errors);
}

static void write_histogram(const struct ember_span_series *s, void *arg)
{
	const char *l[2 * N_LABELS + 2];
	char le[32];
	uint64_t cum = 0;

	labels(s, l);
	l[2 * N_LABELS] = "le";
	for (int i = 0; i < EMBER_LE_N; i++) {
		cum += s->le[i];
		snprintf(le, sizeof(le), "%g", ember_le_seconds[i]);
		l[2 * N_LABELS + 1] = le;
		ember_metrics_sample(arg, "ember_request_duration_seconds_bucket", l, N_LABELS + 1,
				     (double)cum);
	}
	l[2 * N_LABELS + 1] = "+Inf";
	ember_metrics_sample(arg, "ember_request_duration_seconds_bucket", l, N_LABELS + 1,
			     (double)s->count);
	ember_metrics_sample(arg, "ember_request_duration_seconds_sum", l, N_LABELS,
			     (double)s->dur_sum_ns / 1e9);
	ember_metrics_sample(arg, "ember_request_duration_seconds_count", l, N_LABELS,
			     (double)s->count);
}

void ember_spans_metrics_write(struct strbuf *sb, struct ember_spans *sp)
{
	if (!sp)
		return;
	ember_metrics_family(sb, "ember_requests_total", "counter",
			     "Requests seen on the wire (L7 spans), by service, protocol, role, "
			     "endpoint and status.");
	ember_spans_each_series(sp, write_total, sb);
	ember_metrics_family(sb, "ember_request_errors_total", "counter",
			     "Requests that failed (HTTP 5xx, or 4xx seen by the client; SQL and "
			     "Redis errors).");
	ember_spans_each_series(sp, write_errors, sb);
	ember_metrics_family(sb, "ember_request_duration_seconds", "histogram",
			     "Time from the request's first byte to the response's last byte.");
	ember_spans_each_series(sp, write_histogram, sb);
}
