/*
 * store_seal.c - sealing finished hours of the roll-up into packed rows.
 *
 * samples_1h holds one row per (hour, target, stack): a day of a busy
 * service is ~700k rows, and stepping through them dominated a 24 h flame
 * graph.  Once an hour is over its rows only ever get read, so they are
 * moved into one samples_1h_packed row per (hour, target) whose blob lists
 * the (stack, count) pairs in ascending stack order, each as two varints:
 * the stack id's distance from the previous one (>= 1), then the count
 * (>= 1).  A query decodes the blob in C (store_packed_next), ~10x cheaper
 * than stepping SQLite rows.
 *
 * When: an ingest that writes to an hour older than the newest it has seen
 * (late data) or that moves into a new hour seals every hour before the
 * newest (store_ingest.c), in the same transaction; so does the migration
 * to schema version 5.  Rows for an hour that is already sealed are merged
 * into its packed row.  samples_1h keeps only the current hour (and late
 * rows until the next seal); queries read both tables.
 */
#include "core/array.h"
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct seal_pair {
	int64_t stack;
	uint64_t count;
};

struct pairs {
	struct seal_pair *v;
	size_t n, cap;
};

/* One (hour, target) group of rows being sealed, and its packed row already there. */
struct seal_group {
	int64_t hour, target_id;
	struct pairs rows, old;
};

static int pairs_push(struct pairs *p, int64_t stack, uint64_t count)
{
	if (ember_array_grow(&p->v, &p->cap, p->n + 1, sizeof(*p->v)))
		return -ENOMEM;
	p->v[p->n++] = (struct seal_pair){stack, count};
	return 0;
}

/* Decode the packed row of (hour, target) if there is one.  SQLite code or -errno. */
static int read_old(struct ember_store *s, struct seal_group *g)
{
	sqlite3_stmt *st = store_stmt(s, STMT_PACKED_GET);
	int rc;

	g->old.n = 0;
	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_int64(st, 1, g->hour);
	sqlite3_bind_int64(st, 2, g->target_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct store_packed_iter it;
		int64_t stack;
		uint64_t count;
		int r;

		store_packed_init(&it, sqlite3_column_blob(st, 0),
				  (size_t)sqlite3_column_bytes(st, 0));
		while ((r = store_packed_next(&it, &stack, &count)) > 0)
			if (pairs_push(&g->old, stack, count)) {
				r = -ENOMEM;
				break;
			}
		rc = r == 0 ? SQLITE_DONE : r == -ENOMEM ? SQLITE_NOMEM : SQLITE_CORRUPT;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void put_pair(struct strbuf *blob, int64_t *prev, int64_t stack, uint64_t count)
{
	unsigned char buf[2 * STORE_VARINT_MAX];
	size_t n = store_varint_put(buf, (uint64_t)(stack - *prev));

	n += store_varint_put(buf + n, count);
	sb_append(blob, buf, n);
	*prev = stack;
}

/* Merge the group's new rows (ascending) with its old packed row and write it. */
static int write_group(struct ember_store *s, struct seal_group *g)
{
	struct strbuf *blob = &s->blob;
	int64_t prev = 0;
	size_t i = 0, j = 0;
	int rc = read_old(s, g);

	if (rc != SQLITE_OK)
		return rc;
	sb_reset(blob);
	const struct seal_pair *a = g->rows.v, *b = g->old.v;

	while (i < g->rows.n || j < g->old.n) {
		if (j == g->old.n || (i < g->rows.n && a[i].stack < b[j].stack)) {
			put_pair(blob, &prev, a[i].stack, a[i].count);
			i++;
		} else if (i == g->rows.n || b[j].stack < a[i].stack) {
			put_pair(blob, &prev, b[j].stack, b[j].count);
			j++;
		} else {
			put_pair(blob, &prev, a[i].stack, a[i].count + b[j].count);
			i++;
			j++;
		}
	}
	if (blob->oom)
		return SQLITE_NOMEM;

	sqlite3_stmt *st = store_stmt(s, STMT_PACKED_PUT);
	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_int64(st, 1, g->hour);
	sqlite3_bind_int64(st, 2, g->target_id);
	sqlite3_bind_blob(st, 3, blob->buf, (int)blob->len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store_seal_hours(struct ember_store *s, int64_t below)
{
	struct seal_group g = {0};
	sqlite3_stmt *st = store_stmt(s, STMT_ROLLUP_OLD);
	int rc = SQLITE_OK;
	bool any = false;

	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_int64(st, 1, below);
	/* rows come in primary key order: (hour, target) groups, stacks ascending */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t hour = sqlite3_column_int64(st, 0), target = sqlite3_column_int64(st, 1);
		int64_t stack = sqlite3_column_int64(st, 2);
		int64_t count = sqlite3_column_int64(st, 3);

		if (any && (hour != g.hour || target != g.target_id)) {
			rc = write_group(s, &g);
			if (rc != SQLITE_OK)
				break;
			g.rows.n = 0;
		}
		any = true;
		g.hour = hour;
		g.target_id = target;
		if (stack <= 0 || count <= 0 ||
		    (g.rows.n && stack <= g.rows.v[g.rows.n - 1].stack)) {
			rc = SQLITE_CORRUPT;
			break;
		}
		if (pairs_push(&g.rows, stack, (uint64_t)count)) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	if (rc == SQLITE_DONE && g.rows.n)
		rc = write_group(s, &g);
	else if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_reset(st);
	free(g.rows.v);
	free(g.old.v);
	if (rc != SQLITE_OK || !any)
		return rc;

	st = store_stmt(s, STMT_ROLLUP_DELETE_OLD);
	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_int64(st, 1, below);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store_newest_hour(struct ember_store *s, int64_t *hour)
{
	sqlite3_stmt *st = store_stmt(s, STMT_NEWEST_HOUR);
	int rc;

	*hour = INT64_MIN;
	if (!st)
		return sqlite3_errcode(s->db);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			*hour = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	return rc;
}
