/*
 * spans_metrics.c - ember_requests_total and ember_request_duration_seconds.
 *
 * Each family is written whole (HELP, TYPE, then its samples) as the text
 * format requires, so the series are walked once per family.  Label values
 * are escaped (backslash, double quote, newline); names are valid UTF-8
 * already (the agent sanitizes endpoints).
 */
#include "server/spans_metrics.h"

#include <inttypes.h>
#include <stdio.h>

#include "spans/spans.h"

static void label_value(struct strbuf *sb, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\')
			sb_puts(sb, "\\\\");
		else if (*v == '"')
			sb_puts(sb, "\\\"");
		else if (*v == '\n')
			sb_puts(sb, "\\n");
		else
			sb_putc(sb, *v);
	}
}

static void labels(struct strbuf *sb, const struct ember_span_series *s)
{
	sb_puts(sb, "service=\"");
	label_value(sb, s->service);
	sb_puts(sb, "\",protocol=\"");
	label_value(sb, s->protocol);
	sb_puts(sb, "\",role=\"");
	label_value(sb, s->role);
	sb_puts(sb, "\",endpoint=\"");
	label_value(sb, s->endpoint);
	sb_puts(sb, "\",status=\"");
	label_value(sb, s->status);
	sb_putc(sb, '"');
}

static void write_total(const struct ember_span_series *s, void *arg)
{
	struct strbuf *sb = arg;

	sb_puts(sb, "ember_requests_total{");
	labels(sb, s);
	sb_printf(sb, "} %" PRIu64 "\n", s->count);
}

static void write_errors(const struct ember_span_series *s, void *arg)
{
	struct strbuf *sb = arg;

	sb_puts(sb, "ember_request_errors_total{");
	labels(sb, s);
	sb_printf(sb, "} %" PRIu64 "\n", s->errors);
}

static void write_histogram(const struct ember_span_series *s, void *arg)
{
	struct strbuf *sb = arg;
	uint64_t cum = 0;

	for (int i = 0; i < EMBER_LE_N; i++) {
		cum += s->le[i];
		sb_puts(sb, "ember_request_duration_seconds_bucket{");
		labels(sb, s);
		sb_printf(sb, ",le=\"%g\"} %" PRIu64 "\n", ember_le_seconds[i], cum);
	}
	sb_puts(sb, "ember_request_duration_seconds_bucket{");
	labels(sb, s);
	sb_printf(sb, ",le=\"+Inf\"} %" PRIu64 "\n", s->count);
	sb_puts(sb, "ember_request_duration_seconds_sum{");
	labels(sb, s);
	sb_printf(sb, "} %.9f\n", (double)s->dur_sum_ns / 1e9);
	sb_puts(sb, "ember_request_duration_seconds_count{");
	labels(sb, s);
	sb_printf(sb, "} %" PRIu64 "\n", s->count);
}

void ember_spans_metrics_write(struct strbuf *sb, struct ember_spans *sp)
{
	if (!sp)
		return;
	sb_puts(sb, "# HELP ember_requests_total Requests seen on the wire (L7 spans), by service, "
		    "protocol, role, endpoint and status.\n"
		    "# TYPE ember_requests_total counter\n");
	ember_spans_each_series(sp, write_total, sb);
	sb_puts(sb, "# HELP ember_request_errors_total Requests that failed (HTTP 5xx, or 4xx seen by "
		    "the client; SQL and Redis errors).\n"
		    "# TYPE ember_request_errors_total counter\n");
	ember_spans_each_series(sp, write_errors, sb);
	sb_puts(sb, "# HELP ember_request_duration_seconds Time from the request's first byte to "
		    "the response's last byte.\n"
		    "# TYPE ember_request_duration_seconds histogram\n");
	ember_spans_each_series(sp, write_histogram, sb);
}
