/*
 * store_reports.c - saved regression reports (`ember report`), for the UI's list.
 *
 * A report is kept twice, as rendered HTML (links relative to the server
 * that serves it) and as JSON, with the few fields the list shows.  Reports
 * are small (tens of KiB) and daily; the newest EMBER_STORE_MAX_REPORTS are
 * kept, older ones deleted when a new one is saved; `ember report --keep N`
 * keeps N (ember_store_prune_reports), and retention deletes those older
 * than the retention period (store_retention.c).  The table comes from
 * schema migration 3 (store_schema.c).
 */
#include "store/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SAVE_SQL                                                                           \
	"INSERT INTO reports(created_ns, from_ns, to_ns, baseline, service, summary,"       \
	" regressions, improvements, html, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
#define PRUNE_SQL "DELETE FROM reports WHERE id <= (SELECT id FROM reports ORDER BY id DESC" \
		  " LIMIT 1 OFFSET ?1)"
#define LIST_SQL                                                                           \
	"SELECT id, created_ns, from_ns, to_ns, baseline, service, summary, regressions,"   \
	" improvements FROM reports ORDER BY id DESC LIMIT ?1"

static int finish(struct ember_store *s, sqlite3_stmt *st, char *err, size_t errlen, int rc,
		  const char *what)
{
	int ret = rc == SQLITE_DONE || rc == SQLITE_OK ? 0
						       : store_sqlite_error(s, err, errlen, rc, "%s", what);

	sqlite3_finalize(st);
	return ret;
}

static int exec_one(struct ember_store *s, const char *sql, int64_t arg, char *err, size_t errlen,
		    const char *what)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "%s", what);
	sqlite3_bind_int64(st, 1, arg);
	return finish(s, st, err, errlen, sqlite3_step(st), what);
}

int ember_store_save_report(struct ember_store *s, const struct ember_report_row *row,
			    const char *html, const char *json, int64_t *id, char *err,
			    size_t errlen)
{
	sqlite3_stmt *st;
	int rc, ret;

	if (err && errlen)
		err[0] = '\0';
	if (!html || !json)
		return store_error(s, err, errlen, -EINVAL, "save report: no content");
	if ((ret = store_refresh(s, err, errlen)))
		return ret;
	rc = store_exec(s, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "save report: begin");
	rc = sqlite3_prepare_v2(s->db, SAVE_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "save report");
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, row->created_ns);
	sqlite3_bind_int64(st, 2, row->from_ns);
	sqlite3_bind_int64(st, 3, row->to_ns);
	store_bind_text(st, 4, row->baseline);
	store_bind_text(st, 5, row->service);
	store_bind_text(st, 6, row->summary);
	sqlite3_bind_int64(st, 7, row->regressions);
	sqlite3_bind_int64(st, 8, row->improvements);
	sqlite3_bind_text(st, 9, html, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, json, -1, SQLITE_STATIC);
	ret = finish(s, st, err, errlen, sqlite3_step(st), "save report");
	if (ret)
		goto rollback;
	if (id)
		*id = sqlite3_last_insert_rowid(s->db);
	ret = exec_one(s, PRUNE_SQL, EMBER_STORE_MAX_REPORTS, err, errlen, "delete old reports");
	if (ret)
		goto rollback;
	rc = store_exec(s, "COMMIT");
	if (rc == SQLITE_OK)
		return 0;
	ret = store_sqlite_error(s, err, errlen, rc, "save report: commit");
rollback:
	store_exec(s, "ROLLBACK");
	return ret;
}

int ember_store_prune_reports(struct ember_store *s, uint32_t keep, uint64_t *deleted, char *err,
			      size_t errlen)
{
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (deleted)
		*deleted = 0;
	if (!keep)
		return store_error(s, err, errlen, -EINVAL, "prune reports: keep at least one");
	if ((ret = store_refresh(s, err, errlen)))
		return ret;
	ret = exec_one(s, PRUNE_SQL, keep, err, errlen, "delete old reports");
	if (!ret && deleted)
		*deleted = (uint64_t)sqlite3_changes(s->db);
	return ret;
}

int ember_store_list_reports(struct ember_store *s, size_t limit,
			     int (*fn)(const struct ember_report_row *row, void *arg), void *arg,
			     char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if ((rc = store_refresh(s, err, errlen)))
		return rc;
	rc = sqlite3_prepare_v2(s->db, LIST_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "list reports");
	sqlite3_bind_int64(st, 1, limit && limit < EMBER_STORE_MAX_REPORTS ? (int64_t)limit
									   : EMBER_STORE_MAX_REPORTS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ember_report_row row = {
			.id = sqlite3_column_int64(st, 0),
			.created_ns = sqlite3_column_int64(st, 1),
			.from_ns = sqlite3_column_int64(st, 2),
			.to_ns = sqlite3_column_int64(st, 3),
			.baseline = (const char *)sqlite3_column_text(st, 4),
			.service = store_column_text_or_null(st, 5),
			.summary = (const char *)sqlite3_column_text(st, 6),
			.regressions = (uint32_t)sqlite3_column_int64(st, 7),
			.improvements = (uint32_t)sqlite3_column_int64(st, 8),
		};
		if (fn(&row, arg)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	return finish(s, st, err, errlen, rc, "list reports");
}

int ember_store_get_report(struct ember_store *s, int64_t id, const char *format, char **body,
			   size_t *len, char *err, size_t errlen)
{
	const char *sql;
	sqlite3_stmt *st;
	int rc, ret;

	*body = NULL;
	*len = 0;
	if (err && errlen)
		err[0] = '\0';
	if (format && strcmp(format, "json") == 0)
		sql = "SELECT json FROM reports WHERE id = ?1";
	else if (!format || strcmp(format, "html") == 0)
		sql = "SELECT html FROM reports WHERE id = ?1";
	else
		return store_error(s, err, errlen, -EINVAL, "report format %.20s: not html or json",
				   format);
	if ((ret = store_refresh(s, err, errlen)))
		return ret;
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "read report %lld", (long long)id);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *text = sqlite3_column_text(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		*body = malloc(n + 1);
		if (!*body) {
			sqlite3_finalize(st);
			return store_error(s, err, errlen, -ENOMEM, "read report: out of memory");
		}
		if (n)
			memcpy(*body, text, n);
		(*body)[n] = '\0';
		*len = n;
		sqlite3_finalize(st);
		return 0;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return store_error(s, err, errlen, -ENOENT, "no report %lld", (long long)id);
	}
	ret = store_sqlite_error(s, err, errlen, rc, "read report %lld", (long long)id);
	sqlite3_finalize(st);
	return ret;
}
