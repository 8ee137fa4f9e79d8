/*
 * store_info.c - what the store holds: its targets and its totals.
 *
 * Both are read by the HTTP server for its target picker and stats page.
 * Per-target sample totals come from the samples_by_target index, which
 * carries the count, so they never read the samples table itself.
 */
#include "store/store_internal.h"

#include <errno.h>

#define LIST_TARGETS_SQL                                                                   \
	"SELECT t.id, t.service, t.version, t.host, t.comm, t.exe, t.build_id, t.labels,"  \
	" t.pid, t.first_seen_ns, t.last_seen_ns,"                                          \
	" (SELECT coalesce(sum(s.count), 0) FROM samples AS s WHERE s.target_id = t.id)"    \
	" FROM targets AS t ORDER BY t.last_seen_ns DESC, t.id DESC"

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

int ember_store_stats(struct ember_store *s, struct ember_store_stats *stats, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (err && errlen)
		err[0] = '\0';
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
