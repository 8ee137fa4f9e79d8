/*
 * reports_api.h - the saved regression reports behind /api/reports.
 *
 *   GET /api/reports[?limit=N]
 *       {"reports":[{"id":7,"created":MS,"from":MS,"to":MS,"baseline":"previous-day",
 *                    "service":null,"summary":"...","regressions":2,"improvements":0,
 *                    "url":"api/reports/7"}, ...]}
 *       Newest first; limit 1..1000 (default 100).
 *   GET /api/reports/ID[?format=html|json]
 *       The report as saved by `ember report`: a self-contained HTML page
 *       (default; its inline style sheet is swapped for report.css, as the
 *       server's CSP forbids inline styles) or its JSON.
 *   GET /api/reports/report.css
 *       The HTML report's style sheet.
 *
 * Errors as in api.c: 400 for a bad id or parameter, 404 for no such
 * report, 500 when the store fails.
 */
#ifndef EMBER_SERVER_REPORTS_API_H
#define EMBER_SERVER_REPORTS_API_H

#include <stdbool.h>
#include <stddef.h>

#include "server/api.h"
#include "store/store.h"

/* Whether path is one of the endpoints above ("/api/reports" or under it). */
bool ember_reports_api_path(const char *path);

/* Answer a GET of such a path from store.  Always fills reply. */
void ember_reports_api_handle(struct ember_store *store, const char *path,
			      const struct ember_api_param *params, size_t n,
			      struct ember_api_reply *reply);

#endif
