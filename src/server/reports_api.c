/*
 * reports_api.c - /api/reports: the list of saved reports and each report.
 *
 * The endpoints are described in reports_api.h.  api.c routes every path
 * under /api/reports here once its store is open; this file only reads the
 * reports table (store_reports.c) and never renders a report itself, so
 * what the UI shows is exactly what `ember report` saved.
 */
#include "server/reports_api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "report/report.h"
#include "server/api.h"

#define CT_JSON "application/json; charset=utf-8"
#define CT_HTML "text/html; charset=utf-8"
#define CT_CSS "text/css; charset=utf-8"
#define PREFIX "/api/reports"
#define DEFAULT_LIMIT 100
#define NS_PER_MS ((int64_t)1000000)

bool ember_reports_api_path(const char *path)
{
	size_t n = strlen(PREFIX);

	return strncmp(path, PREFIX, n) == 0 && (path[n] == '\0' || path[n] == '/');
}



/* Decimal digits only, 1..max. */
static bool parse_id(const char *s, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (!*s || strlen(s) > 18)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
	}
	if (v < 1 || v > max)
		return false;
	*out = v;
	return true;
}

/* The one allowed parameter `key` (NULL when absent); false (and a 400) on any other. */
static bool only_param(const struct ember_api_param *params, size_t n, const char *key,
		       const char **value, struct ember_api_reply *r)
{
	char msg[128];

	*value = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *k = params[i].key ? params[i].key : "";
		if (strcmp(k, key) != 0) {
			snprintf(msg, sizeof(msg), "unknown parameter '%.40s'", k);
			ember_api_reply_error(r, 400, msg);
			return false;
		}
		if (*value) {
			snprintf(msg, sizeof(msg), "%s: given twice", key);
			ember_api_reply_error(r, 400, msg);
			return false;
		}
		*value = params[i].value ? params[i].value : "";
	}
	return true;
}

static int list_row(const struct ember_report_row *row, void *arg)
{
	struct strbuf *sb = arg;

	if (sb->buf && sb->buf[sb->len - 1] != '[')
		sb_putc(sb, ',');
	sb_printf(sb, "{\"id\":%" PRId64 ",\"created\":%" PRId64 ",\"from\":%" PRId64
		      ",\"to\":%" PRId64 ",\"baseline\":",
		  row->id, row->created_ns / NS_PER_MS, row->from_ns / NS_PER_MS,
		  row->to_ns / NS_PER_MS);
	sb_json_str(sb, row->baseline);
	sb_puts(sb, ",\"service\":");
	sb_json_str(sb, row->service);
	sb_puts(sb, ",\"summary\":");
	sb_json_str(sb, row->summary);
	sb_printf(sb, ",\"regressions\":%u,\"improvements\":%u,\"url\":\"api/reports/%" PRId64 "\"}",
		  row->regressions, row->improvements, row->id);
	return 0;
}

static void list_reports(struct ember_store *store, const struct ember_api_param *params,
			 size_t n, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	const char *limit_s;
	int64_t limit = DEFAULT_LIMIT;
	struct strbuf sb;

	if (!only_param(params, n, "limit", &limit_s, r))
		return;
	if (limit_s && !parse_id(limit_s, EMBER_STORE_MAX_REPORTS, &limit)) {
		ember_api_reply_error(r, 400, "limit: must be an integer from 1 to 1000");
		return;
	}
	sb_init(&sb);
	sb_puts(&sb, "{\"reports\":[");
	if (ember_store_list_reports(store, (size_t)limit, list_row, &sb, err, sizeof(err))) {
		sb_free(&sb);
		ember_api_reply_error(r, 500, err[0] ? err : "cannot list reports");
		return;
	}
	sb_puts(&sb, "]}");
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

/* The saved HTML with its inline style sheet replaced by a link to report.css. */
static void html_with_css_link(const char *html, size_t len, struct strbuf *out)
{
	const char *open = strstr(html, "<style>");
	const char *close = open ? strstr(open, "</style>") : NULL;

	if (!open || !close) {
		sb_append(out, html, len);
		return;
	}
	sb_append(out, html, (size_t)(open - html));
	sb_puts(out, "<link rel=\"stylesheet\" href=\"report.css\">");
	close += strlen("</style>");
	sb_append(out, close, len - (size_t)(close - html));
}

static void get_report(struct ember_store *store, const char *id_s,
		       const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	const char *format;
	char *body = NULL;
	size_t len = 0;
	int64_t id;
	int ret;
	struct strbuf sb;

	if (!parse_id(id_s, INT64_MAX / 10, &id)) {
		ember_api_reply_error(r, 400, "report id: must be a positive integer");
		return;
	}
	if (!only_param(params, n, "format", &format, r))
		return;
	if (format && strcmp(format, "html") != 0 && strcmp(format, "json") != 0) {
		ember_api_reply_error(r, 400, "format: must be html or json");
		return;
	}
	ret = ember_store_get_report(store, id, format, &body, &len, err, sizeof(err));
	if (ret) {
		ember_api_reply_error(r, ret == -ENOENT ? 404 : 500, err[0] ? err : "cannot read the report");
		return;
	}
	sb_init(&sb);
	if (format && strcmp(format, "json") == 0) {
		sb_append(&sb, body, len);
		ember_api_reply_sb(r, 200, CT_JSON, &sb);
	} else {
		html_with_css_link(body, len, &sb);
		ember_api_reply_sb(r, 200, CT_HTML, &sb);
	}
	free(body);
}

void ember_reports_api_handle(struct ember_store *store, const char *path,
			      const struct ember_api_param *params, size_t n,
			      struct ember_api_reply *reply)
{
	const char *rest = path + strlen(PREFIX);

	memset(reply, 0, sizeof(*reply));
	if (!ember_reports_api_path(path)) {
		ember_api_reply_error(reply, 404, "no such endpoint");
	} else if (*rest == '\0' || strcmp(rest, "/") == 0) {
		list_reports(store, params, n, reply);
	} else if (strcmp(rest, "/report.css") == 0) {
		struct strbuf sb;
		if (!only_param(params, n, "-", &rest, reply))
			return;
		sb_init(&sb);
		sb_puts(&sb, ember_report_css);
		ember_api_reply_sb(reply, 200, CT_CSS, &sb);
	} else {
		get_report(store, rest + 1, params, n, reply);
	}
}
