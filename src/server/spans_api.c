/*
 * spans_api.c - /api/spans and /api/spans/slow (described in spans_api.h).
 *
 * Parameters are checked like the rest of the API (every one known, given
 * once, at most 256 bytes; the selection through ember_api_parse_selection),
 * then the store answers (store_spans.c) and the rows are written as JSON.
 * Durations go out in milliseconds, times in unix milliseconds.
 */
#include "server/spans_api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/strbuf.h"
#include "store/store_spans.h"

#define CT_JSON "application/json; charset=utf-8"
#define PREFIX "/api/spans"
#define NS_PER_MS ((int64_t)1000000)
#define DEFAULT_SLOW_LIMIT 100
#define MAX_SLOW_LIMIT 1000
#define MAX_STEP_S (366LL * 24 * 3600)

bool ember_spans_api_path(const char *path)
{
	size_t n = strlen(PREFIX);

	return strncmp(path, PREFIX, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool one_of(const char *v, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(v, *allowed) == 0)
			return true;
	return false;
}

/* Selection and filters; false (reply filled) on a bad parameter. */
static bool parse_common(const struct ember_api_param *params, size_t n,
			 const char *const *extras, struct ember_api_query *q,
			 struct ember_span_filter *f, struct ember_api_reply *r)
{
	static const char *const prefixes[] = {"", NULL};
	static const char *const protocols[] = {"http", "mysql", "pgsql", "redis", NULL};
	static const char *const roles[] = {"client", "server", NULL};
	char err[EMBER_STORE_ERRLEN] = "";

	if (ember_api_check_params(params, n, prefixes, extras, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "", q, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return false;
	}
	memset(f, 0, sizeof(*f));
	f->protocol = ember_api_param_value(params, n, "protocol");
	f->role = ember_api_param_value(params, n, "role");
	f->peer = ember_api_param_value(params, n, "peer");
	/* endpoint= is parsed as a selection parameter (it selects CPU samples
	 * elsewhere); here it filters the spans, not the targets */
	f->endpoint = q->sel.endpoint;
	q->sel.endpoint = NULL;
	if (f->protocol && *f->protocol && !one_of(f->protocol, protocols)) {
		ember_api_reply_error(r, 400, "protocol: must be http, mysql, pgsql or redis");
		return false;
	}
	if (f->role && *f->role && !one_of(f->role, roles)) {
		ember_api_reply_error(r, 400, "role: must be client or server");
		return false;
	}
	return true;
}

/* "key":MS (or null), after a comma unless it is the object's first member. */
static void ms_or_null(struct strbuf *sb, const char *key, bool has, int64_t ns)
{
	sb_printf(sb, "%s\"%s\":", sb->len && sb->buf[sb->len - 1] == '{' ? "" : ",", key);
	if (has)
		sb_printf(sb, "%" PRId64, ns / NS_PER_MS);
	else
		sb_puts(sb, "null");
}

static void series(struct strbuf *sb, const char *key, const uint64_t *v, size_t n)
{
	sb_printf(sb, ",\"%s\":[", key);
	for (size_t i = 0; v && i < n; i++)
		sb_printf(sb, "%s%" PRIu64, i ? "," : "", v[i]);
	sb_putc(sb, ']');
}

/* A quantile from the histogram (µs), never past the largest duration seen. */
static double quantile_ms(const struct ember_span_group *g, double q)
{
	double v = ember_hist_quantile(&g->hist, q) / 1e3, max = (double)g->dur_max_ns / 1e6;

	return v < max ? v : max;
}

static void red_row(struct strbuf *sb, const struct ember_span_red *red,
		    const struct ember_span_group *g, double seconds)
{
	sb_puts(sb, "{\"service\":");
	sb_json_str(sb, g->service);
	sb_puts(sb, ",\"protocol\":");
	sb_json_str(sb, g->protocol);
	sb_puts(sb, ",\"role\":");
	sb_json_str(sb, g->role);
	sb_puts(sb, ",\"endpoint\":");
	sb_json_str(sb, g->endpoint);
	if (g->peer) {
		sb_puts(sb, ",\"peer\":");
		sb_json_str(sb, g->peer);
	}
	sb_printf(sb, ",\"count\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"error_rate\":%.6f",
		  g->count, g->errors, g->count ? (double)g->errors / (double)g->count : 0.0);
	sb_printf(sb, ",\"tls\":%" PRIu64, g->tls);
	if (seconds > 0)
		sb_printf(sb, ",\"rate\":%.6f", (double)g->count / seconds);
	else
		sb_puts(sb, ",\"rate\":null");
	sb_printf(sb,
		  ",\"avg_ms\":%.4f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f"
		  ",\"req_bytes\":%" PRIu64 ",\"resp_bytes\":%" PRIu64 ",\"statuses\":{",
		  g->count ? (double)g->dur_sum_ns / (double)g->count / 1e6 : 0.0,
		  quantile_ms(g, 0.5), quantile_ms(g, 0.9), quantile_ms(g, 0.99),
		  (double)g->dur_max_ns / 1e6,
		  g->req_bytes, g->resp_bytes);
	for (size_t i = 0; i < g->n_statuses; i++) {
		if (i)
			sb_putc(sb, ',');
		sb_json_str(sb, g->statuses[i].status);
		sb_printf(sb, ":%" PRIu64, g->statuses[i].count);
	}
	sb_putc(sb, '}');
	series(sb, "series", g->series, red->n_steps);
	series(sb, "series_errors", g->series_errors, red->n_steps);
	sb_putc(sb, '}');
}

static void api_red(struct ember_store *store, const struct ember_api_param *params, size_t n,
		    struct ember_api_reply *r)
{
	static const char *const extras[] = {"protocol", "role", "peer", "by", "step", NULL};
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query q;
	struct ember_span_filter f;
	struct ember_span_red red;
	int64_t step_s = 0;
	const char *v;
	struct strbuf sb;

	if (!parse_common(params, n, extras, &q, &f, r))
		return;
	v = ember_api_param_value(params, n, "by");
	if (v && *v && strcmp(v, "peer") != 0) {
		ember_api_reply_error(r, 400, "by: must be peer");
		return;
	}
	f.by_peer = v && *v;
	v = ember_api_param_value(params, n, "step");
	if (v && *v && !ember_api_parse_int(v, 1, MAX_STEP_S, &step_s)) {
		snprintf(err, sizeof(err), "step: must be seconds from 1 to %lld", MAX_STEP_S);
		ember_api_reply_error(r, 400, err);
		return;
	}
	int ret = ember_store_spans_red(store, &q.sel, &f, step_s * 1000 * NS_PER_MS, &red, err,
					sizeof(err));
	if (ret) {
		ember_api_reply_error(r, ret == -ETIMEDOUT ? 503 : ret == -EINVAL ? 400 : 500,
				      err[0] ? err : "cannot read spans");
		return;
	}
	bool bounded = q.has_from && q.has_to;
	double seconds = bounded ? (double)(q.to_ms - q.from_ms) / 1e3 : 0;
	sb_init(&sb);
	sb_putc(&sb, '{');
	ms_or_null(&sb, "from", bounded, red.from_ns);
	ms_or_null(&sb, "to", bounded, red.to_ns);
	ms_or_null(&sb, "step_ms", bounded, red.step_ns);
	sb_printf(&sb, ",\"hourly\":%s,\"truncated\":%s,\"rows\":[", red.hourly ? "true" : "false",
		  red.truncated ? "true" : "false");
	for (size_t i = 0; i < red.n_groups; i++) {
		if (i)
			sb_putc(&sb, ',');
		red_row(&sb, &red, &red.groups[i], seconds);
	}
	sb_puts(&sb, "]}");
	ember_span_red_free(&red);
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

struct slow_ctx {
	struct strbuf *sb;
	size_t n;
};

static int slow_row(const struct ember_slow_span_row *row, void *arg)
{
	struct slow_ctx *c = arg;
	struct strbuf *sb = c->sb;

	sb_puts(sb, c->n++ ? ",{" : "{");
	sb_printf(sb, "\"time\":%" PRId64 ",\"duration_ms\":%.4f,\"service\":", row->time_ns / NS_PER_MS,
		  (double)row->duration_ns / 1e6);
	sb_json_str(sb, row->service);
	sb_puts(sb, ",\"version\":");
	sb_json_str(sb, row->version);
	sb_printf(sb, ",\"target\":%" PRId64 ",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32 ",\"protocol\":",
		  row->target_id, row->pid, row->tid);
	sb_json_str(sb, row->protocol);
	sb_puts(sb, ",\"role\":");
	sb_json_str(sb, row->role);
	sb_puts(sb, ",\"endpoint\":");
	sb_json_str(sb, row->endpoint);
	sb_puts(sb, ",\"peer\":");
	sb_json_str(sb, row->peer);
	sb_puts(sb, ",\"status\":");
	sb_json_str(sb, row->status);
	sb_printf(sb, ",\"error\":%s,\"tls\":%s,\"text\":", row->error ? "true" : "false",
		  row->tls ? "true" : "false");
	sb_json_str(sb, row->text);
	sb_puts(sb, ",\"err\":");
	sb_json_str(sb, row->err);
	sb_putc(sb, '}');
	return sb->oom;
}

static void api_slow(struct ember_store *store, const struct ember_api_param *params, size_t n,
		     struct ember_api_reply *r)
{
	static const char *const extras[] = {"protocol", "role", "peer", "limit", NULL};
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query q;
	struct ember_span_filter f;
	int64_t limit = DEFAULT_SLOW_LIMIT;
	const char *v;
	struct strbuf sb;
	struct slow_ctx c = {.sb = &sb};

	if (!parse_common(params, n, extras, &q, &f, r))
		return;
	v = ember_api_param_value(params, n, "limit");
	if (v && *v && !ember_api_parse_int(v, 1, MAX_SLOW_LIMIT, &limit)) {
		ember_api_reply_error(r, 400, "limit: must be an integer from 1 to 1000");
		return;
	}
	sb_init(&sb);
	sb_puts(&sb, "{\"spans\":[");
	int ret = ember_store_spans_slow(store, &q.sel, &f, (size_t)limit, slow_row, &c, err,
					 sizeof(err));
	if (ret) {
		sb_free(&sb);
		ember_api_reply_error(r, ret == -ETIMEDOUT ? 503 : 500,
				      err[0] ? err : "cannot read slow spans");
		return;
	}
	sb_puts(&sb, "]}");
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

void ember_spans_api_handle(struct ember_store *store, const char *path,
			    const struct ember_api_param *params, size_t n,
			    struct ember_api_reply *reply)
{
	const char *rest = path + strlen(PREFIX);

	memset(reply, 0, sizeof(*reply));
	if (!ember_spans_api_path(path)) {
		ember_api_reply_error(reply, 404, "no such endpoint");
	} else if (*rest == '\0') {
		api_red(store, params, n, reply);
	} else if (strcmp(rest, "/slow") == 0) {
		api_slow(store, params, n, reply);
	} else {
		char msg[128];
		snprintf(msg, sizeof(msg), "no such endpoint: %.80s", path);
		ember_api_reply_error(reply, 404, msg);
	}
}
