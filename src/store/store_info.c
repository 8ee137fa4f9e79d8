/*
 * store_info.c - what the store holds: targets, services and versions,
 * samples over time, and totals.
 *
 * All are read by the HTTP server for its pickers, timeline and stats page.
 * Per-target, per-version and per-step sample totals come from the
 * sample_totals table (one row per bucket and target), so none of them
 * reads the samples themselves.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LIST_TARGETS_SQL                                                                   \
	"SELECT t.id, t.service, t.version, t.host, t.comm, t.exe, t.build_id, t.labels,"  \
	" t.pid, t.first_seen_ns, t.last_seen_ns,"                                          \
	" (SELECT coalesce(sum(s.count), 0) FROM sample_totals AS s WHERE s.target_id = t.id)" \
	" FROM targets AS t ORDER BY t.last_seen_ns DESC, t.id DESC"

#define LIST_VERSIONS_SQL                                                                  \
	"SELECT t.service, t.version, min(t.first_seen_ns), max(t.last_seen_ns), count(*),"  \
	" sum((SELECT coalesce(sum(s.count), 0) FROM sample_totals AS s"                     \
	"      WHERE s.target_id = t.id))"                                                    \
	" FROM targets AS t GROUP BY t.service, t.version"                                   \
	" ORDER BY t.service, max(t.last_seen_ns) DESC, t.version"

#define TIMELINE_MAX_POINTS 2000

#define STATS_SQL                                                                          \
	"SELECT (SELECT count(*) FROM targets), (SELECT count(*) FROM frames),"             \
	" (SELECT count(*) FROM stacks), count(*), coalesce(sum(count), 0),"                \
	" coalesce(min(bucket_ns), 0), coalesce(max(bucket_ns), 0) FROM samples"

int ember_store_list_targets(struct ember_store *s,
			     int (*fn)(const struct ember_target_row *row, void *arg), void *arg,
			     char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if ((rc = store_refresh(s, err, errlen)))
		return rc;
	rc = sqlite3_prepare_v2(s->db, LIST_TARGETS_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "list targets");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ember_target_row row = {
			.id = sqlite3_column_int64(st, 0),
			.service = (const char *)sqlite3_column_text(st, 1),
			.version = (const char *)sqlite3_column_text(st, 2),
			.host = (const char *)sqlite3_column_text(st, 3),
			.comm = (const char *)sqlite3_column_text(st, 4),
			.exe = store_column_text_or_null(st, 5),
			.build_id = store_column_text_or_null(st, 6),
			.labels = store_column_text_or_null(st, 7),
			.pid = (uint32_t)sqlite3_column_int64(st, 8),
			.first_seen_ns = sqlite3_column_int64(st, 9),
			.last_seen_ns = sqlite3_column_int64(st, 10),
			.samples = (uint64_t)sqlite3_column_int64(st, 11),
		};
		if (fn(&row, arg)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	int ret = rc == SQLITE_DONE ? 0 : store_sqlite_error(s, err, errlen, rc, "list targets");
	sqlite3_finalize(st);
	return ret;
}

int ember_store_list_versions(struct ember_store *s,
			      int (*fn)(const struct ember_version_row *row, void *arg), void *arg,
			      char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if ((rc = store_refresh(s, err, errlen)))
		return rc;
	rc = sqlite3_prepare_v2(s->db, LIST_VERSIONS_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "list versions");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ember_version_row row = {
			.service = (const char *)sqlite3_column_text(st, 0),
			.version = (const char *)sqlite3_column_text(st, 1),
			.first_seen_ns = sqlite3_column_int64(st, 2),
			.last_seen_ns = sqlite3_column_int64(st, 3),
			.targets = (uint64_t)sqlite3_column_int64(st, 4),
			.samples = (uint64_t)sqlite3_column_int64(st, 5),
		};
		if (fn(&row, arg)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	int ret = rc == SQLITE_DONE ? 0 : store_sqlite_error(s, err, errlen, rc, "list versions");
	sqlite3_finalize(st);
	return ret;
}

/* ---- timeline ---- */

void ember_timeline_free(struct ember_timeline *t)
{
	if (!t)
		return;
	free(t->t_ns);
	free(t->samples);
	memset(t, 0, sizeof(*t));
}

static int prepare_filtered(struct ember_store *s, const char *head,
			    const struct ember_selection *sel, const char *tail,
			    sqlite3_stmt **st)
{
	struct strbuf sql;
	int rc;

	sb_init(&sql);
	sb_puts(&sql, head);
	store_append_target_filter(&sql, sel);
	sb_puts(&sql, tail);
	if (sql.oom) {
		sb_free(&sql);
		return SQLITE_NOMEM;
	}
	rc = sqlite3_prepare_v2(s->db, sql.buf, (int)sql.len, st, NULL);
	sb_free(&sql);
	if (rc == SQLITE_OK)
		store_bind_selection(*st, sel);
	return rc;
}

/* The span: the selection's bounds where given, else its first and last buckets. */
static int timeline_span(struct ember_store *s, const struct ember_selection *sel, int64_t *lo,
			 int64_t *hi, bool *any)
{
	int rc = SQLITE_OK;

	*any = true;
	*lo = sel->from_ns ? store_bucket_of(s, sel->from_ns) : 0;
	*hi = sel->to_ns ? store_ceil_to(sel->to_ns, s->bucket_ns) : 0;
	if (!sel->from_ns || !sel->to_ns) {
		int64_t first, end;
		rc = store_sample_span(s, sel, &first, &end, any);
		if (!sel->from_ns)
			*lo = *any ? first : sel->to_ns ? *hi : 0;
		if (!sel->to_ns)
			*hi = *any ? end : *lo;
	}
	return rc;
}

/* step rounded up to whole buckets and raised until [lo, hi) holds at most max steps. */
static int64_t timeline_step(const struct ember_store *s, int64_t step, int64_t lo, int64_t hi,
			     size_t max)
{
	int64_t b = s->bucket_ns;
	uint64_t span = hi > lo ? (uint64_t)hi - (uint64_t)lo : 0;

	if (step < b)
		step = b;
	if (step > INT64_MAX / 2)
		step = INT64_MAX / 2;
	step = store_ceil_to(step, b);
	if (span / (uint64_t)step >= max) {
		uint64_t need = span / max + 1;
		step = need > (uint64_t)(INT64_MAX / 2) ? INT64_MAX / 2 : (int64_t)need;
		step = store_ceil_to(step, b);
	}
	return step;
}

static int timeline_points(struct ember_store *s, const struct ember_selection *sel,
			   struct ember_timeline *out, size_t max, int64_t lo, int64_t hi)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare_filtered(s, "SELECT bucket_ns - ((bucket_ns % :step) + :step) % :step AS t,"
			      " sum(count) FROM sample_totals"
			      " WHERE bucket_ns >= :lo AND bucket_ns < :hi",
			      sel, " GROUP BY t ORDER BY t", &st);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":step"), out->step_ns);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":lo"), lo);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":hi"), hi);
	out->t_ns = malloc((max + 2) * sizeof(*out->t_ns));
	out->samples = malloc((max + 2) * sizeof(*out->samples));
	if (!out->t_ns || !out->samples) {
		sqlite3_finalize(st);
		return SQLITE_NOMEM;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n < max + 2) {
		out->t_ns[out->n] = sqlite3_column_int64(st, 0);
		out->samples[out->n++] = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int ember_store_timeline(struct ember_store *s, const struct ember_selection *sel,
			 int64_t step_ns, size_t max_points, struct ember_timeline *out, char *err,
			 size_t errlen)
{
	static const struct ember_selection all;
	int64_t lo, hi;
	bool any;
	int rc, ret;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	sel = sel ? sel : &all;
	ret = store_check_selection(s, sel, err, errlen);
	if (!ret)
		ret = store_refresh(s, err, errlen);
	if (ret)
		return ret;
	if (!max_points)
		max_points = TIMELINE_MAX_POINTS;

	rc = store_begin_read(s);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "timeline: begin");
	rc = timeline_span(s, sel, &lo, &hi, &any);
	if (rc == SQLITE_OK) {
		out->step_ns = timeline_step(s, step_ns, lo, hi, max_points);
		out->from_ns = store_floor_to(lo, out->step_ns);
		out->to_ns = hi > out->from_ns ? hi : out->from_ns;
		if (any && hi > lo)
			rc = timeline_points(s, sel, out, max_points, lo, hi);
	}
	if (rc != SQLITE_OK)
		ret = store_sqlite_error(s, err, errlen, rc, "timeline");
	store_end_read(s);
	if (ret)
		ember_timeline_free(out);
	return ret;
}

int ember_store_stats(struct ember_store *s, struct ember_store_stats *stats, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (err && errlen)
		err[0] = '\0';
	if ((ret = store_refresh(s, err, errlen)))
		return ret;
	rc = sqlite3_prepare_v2(s->db, STATS_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "stats");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		stats->targets = (uint64_t)sqlite3_column_int64(st, 0);
		stats->frames = (uint64_t)sqlite3_column_int64(st, 1);
		stats->stacks = (uint64_t)sqlite3_column_int64(st, 2);
		stats->sample_rows = (uint64_t)sqlite3_column_int64(st, 3);
		stats->samples = (uint64_t)sqlite3_column_int64(st, 4);
		stats->oldest_ns = sqlite3_column_int64(st, 5);
		stats->newest_ns = sqlite3_column_int64(st, 6);
	} else {
		ret = store_sqlite_error(s, err, errlen, rc, "stats");
	}
	sqlite3_finalize(st);
	return ret;
}
