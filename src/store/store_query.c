/*
 * store_query.c - turning selected samples back into an ember_profile.
 *
 * A query runs in one read transaction (a consistent snapshot while the
 * agent keeps writing) and never runs a statement per stack or per frame:
 *
 *  1. One statement reads the selected sample rows; they are summed per
 *     (target, stack) in a hash map here, which is cheaper than an SQL
 *     GROUP BY (a sort) when a day holds millions of rows.
 *  2. Over max_stacks pairs: keep the heaviest max_stacks.
 *  3. The stacks' blobs are loaded and decoded; every distinct frame id
 *     gets a slot.  4. The frames are loaded and interned into the profile.
 *  5. Targets (few) are loaded by id and every stack is added to the profile.
 *
 * Loading rows by id (steps 3 and 4): when the wanted ids are a good part of
 * the table, one scan of the table skipping unwanted rows is fastest;
 * otherwise the ids go into a temp table joined with the table.
 *
 * Time selection is by bucket: a bucket is selected when it overlaps
 * [from_ns, to_ns), i.e. its start is >= the start of from_ns's bucket and
 * < to_ns.  The whole hours inside that range are read from the hourly
 * roll-up (samples_1h for the current hour, samples_1h_packed for sealed
 * ones: one blob per hour and target, decoded here), the buckets before
 * and after them from samples: a day costs ~24 pairs per distinct
 * (target, stack) instead of up to 8640 rows.
 *
 * Before the full-resolution window (retention deleted those buckets,
 * store_retention.c) a range is widened to whole hours of the roll-up.
 *
 * When more than max_stacks (target, stack) pairs match, the heaviest
 * max_stacks are returned, a warning is logged and err says so, but the
 * return value is still 0: a flame graph of the heaviest stacks beats none.
 */
#include "core/array.h"
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/profile.h"
#include "spans/endpoint.h"

/* Scan the whole table when wanted ids * SCAN_RATIO >= its largest id. */
#define SCAN_RATIO 8

/* One selected (target, stack) pair with its summed count. */
struct qrow {
	uint32_t target; /* index into query->target_ids */
	uint32_t stack;  /* index into query->stacks */
	uint64_t count;
};

struct qstack {
	int64_t id;
	size_t off;     /* first slot of its frames */
	uint32_t depth;
	bool wanted, loaded;
};

struct query {
	struct qrow *rows;
	size_t n_rows, cap_rows;
	struct qstack *stacks;
	size_t n_stacks, cap_stacks;
	int64_t *target_ids;       /* distinct target row ids */
	uint32_t *target_index;    /* per target: profile target index, UINT32_MAX = not yet */
	size_t n_targets, cap_targets;
	uint32_t *slots;           /* frames of every loaded stack: index into frame_ids */
	size_t n_slots, cap_slots;
	int64_t *frame_ids;        /* distinct frame row ids, in order of first use */
	uint32_t *frame_index;     /* per frame id: profile frame index */
	size_t n_frames, cap_frames;
	struct store_intmap target_map; /* target row id -> index into target_ids */
	struct store_intmap stack_map;  /* stack row id -> index into stacks */
	struct store_intmap pair_map;   /* stack row id << 24 | target index -> row
					   (merged: stack row id -> row) */
	uint32_t last_target;           /* index of the last target seen */
	bool merge;                     /* sel->merge_targets: one target for all rows */
	struct store_intmap frame_map;  /* frame row id -> index into frame_ids */
	uint32_t max_depth;
};

static void query_free(struct query *q)
{
	free(q->rows);
	free(q->stacks);
	free(q->target_ids);
	free(q->target_index);
	free(q->slots);
	free(q->frame_ids);
	free(q->frame_index);
	store_intmap_free(&q->target_map);
	store_intmap_free(&q->stack_map);
	store_intmap_free(&q->pair_map);
	store_intmap_free(&q->frame_map);
}


static int oom(struct ember_store *s, char *err, size_t errlen)
{
	return store_error(s, err, errlen, -ENOMEM, "query: out of memory");
}

/* ---- selections ---- */

void store_append_target_filter(struct strbuf *sql, const struct ember_selection *sel)
{
	size_t nv = sel->n_versions + (sel->version ? 1 : 0);

	if (sel->target_id)
		sb_puts(sql, " AND target_id = :target");
	if (!sel->service && !nv && !sel->pid && !sel->endpoint)
		return;
	sb_puts(sql, " AND target_id IN (SELECT id FROM targets WHERE 1");
	if (sel->service)
		sb_puts(sql, " AND service = :service");
	if (nv) {
		sb_puts(sql, " AND version IN (");
		for (size_t i = 0; i < nv; i++)
			sb_printf(sql, "%s:v%zu", i ? "," : "", i);
		sb_puts(sql, ")");
	}
	if (sel->pid)
		sb_puts(sql, " AND pid = :pid");
	/* the endpoint label is the last of a target's labels */
	if (sel->endpoint)
		sb_puts(sql, " AND (labels = :eplabel OR substr(labels, -length(:eplabel) - 1) = ',' || :eplabel)");
	sb_puts(sql, ")");
}

static void bind_int(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);
	if (i)
		sqlite3_bind_int64(st, i, v);
}

static void bind_str(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);
	if (i)
		sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

void store_bind_selection(sqlite3_stmt *st, const struct ember_selection *sel)
{
	size_t v = 0;
	char name[32];

	bind_int(st, ":target", sel->target_id);
	bind_str(st, ":service", sel->service);
	bind_int(st, ":pid", sel->pid);
	if (sel->endpoint) {
		char label[EMBER_ENDPOINT_MAX + sizeof(EMBER_ENDPOINT_LABEL) + 8];
		int i = sqlite3_bind_parameter_index(st, ":eplabel");
		if (i)
			sqlite3_bind_text(st, i, ember_endpoint_label(sel->endpoint, label, sizeof(label)), -1,
					  SQLITE_TRANSIENT);
	}
	if (sel->version) {
		snprintf(name, sizeof(name), ":v%zu", v++);
		bind_str(st, name, sel->version);
	}
	for (size_t i = 0; i < sel->n_versions; i++) {
		snprintf(name, sizeof(name), ":v%zu", v++);
		bind_str(st, name, sel->versions[i]);
	}
}

int store_check_selection(struct ember_store *s, const struct ember_selection *sel, char *err,
			  size_t errlen)
{
	if (sel->n_versions > EMBER_STORE_MAX_VERSIONS || (sel->n_versions && !sel->versions))
		return store_error(s, err, errlen, -EINVAL,
				   "query: %zu versions selected (at most %d)", sel->n_versions,
				   EMBER_STORE_MAX_VERSIONS);
	return 0;
}

/* ---- 1. selected samples, summed per (target, stack) ---- */

/*
 * full_res_from: retention deleted the 10 s buckets before it (an hour
 * boundary, store_retention.c); there the range is widened to whole hours
 * of the roll-up, which still holds them.
 */
void store_plan_reads(const struct ember_store *s, const struct ember_selection *sel,
		      int64_t full_res_from, struct store_read_plan *plan)
{
	*plan = (struct store_read_plan){.has_lo = sel->from_ns != 0, .has_hi = sel->to_ns != 0};
	/* a bucket is selected when its start is in [bucket of from, to) */
	if (plan->has_lo)
		plan->lo = store_bucket_of(s, sel->from_ns);
	if (plan->has_hi)
		plan->hi = store_ceil_to(sel->to_ns, s->bucket_ns);
	/* the roll-up holds whole hours only when buckets tile an hour */
	if (STORE_ROLLUP_NS % s->bucket_ns)
		return;
	plan->hour_lo = plan->has_lo ? store_ceil_to(plan->lo, STORE_ROLLUP_NS) : INT64_MIN;
	plan->hour_hi = plan->has_hi ? store_floor_to(plan->hi, STORE_ROLLUP_NS) : INT64_MAX;
	if (full_res_from && plan->has_lo && plan->lo < full_res_from)
		plan->hour_lo = store_floor_to(plan->lo, STORE_ROLLUP_NS);
	if (full_res_from && plan->has_hi && plan->hi <= full_res_from)
		plan->hour_hi = store_ceil_to(plan->hi, STORE_ROLLUP_NS);
	plan->hourly = plan->hour_lo < plan->hour_hi;
}

/* Columns: target, stack, count. */
static void select_part(struct strbuf *sql, const struct ember_selection *sel, bool hourly,
			const char *lo, const char *hi)
{
	if (hourly)
		sb_puts(sql, "SELECT target_id, stack_id, count FROM samples_1h WHERE 1");
	else
		sb_puts(sql, "SELECT target_id, stack_id, count FROM samples WHERE 1");
	if (lo)
		sb_printf(sql, " AND %s >= %s", hourly ? "hour_ns" : "bucket_ns", lo);
	if (hi)
		sb_printf(sql, " AND %s < %s", hourly ? "hour_ns" : "bucket_ns", hi);
	store_append_target_filter(sql, sel);
}

static void build_sql(struct strbuf *sql, const struct ember_selection *sel,
		      const struct store_read_plan *plan)
{
	if (!plan->hourly) {
		select_part(sql, sel, false, plan->has_lo ? ":lo" : NULL,
			    plan->has_hi ? ":hi" : NULL);
		return;
	}
	select_part(sql, sel, true, plan->has_lo ? ":hour_lo" : NULL,
		    plan->has_hi ? ":hour_hi" : NULL);
	if (plan->has_lo && plan->lo < plan->hour_lo) {
		sb_puts(sql, " UNION ALL ");
		select_part(sql, sel, false, ":lo", ":hour_lo");
	}
	if (plan->has_hi && plan->hour_hi < plan->hi) {
		sb_puts(sql, " UNION ALL ");
		select_part(sql, sel, false, ":hour_hi", ":hi");
	}
}

/* Index of a row id in ids[] via map, appending it when new.  Returns 0 or -ENOMEM. */
static int intern_id(struct store_intmap *map, int64_t **ids, size_t *n, size_t *cap,
		     int64_t id, uint32_t *index)
{
	if (store_intmap_get(map, (uint64_t)id, index))
		return 0;
	if (*n >= UINT32_MAX || ember_array_grow((void **)ids, cap, *n + 1, sizeof(**ids)))
		return -ENOMEM;
	*index = (uint32_t)*n;
	if (store_intmap_put(map, (uint64_t)id, *index))
		return -ENOMEM;
	(*ids)[(*n)++] = id;
	return 0;
}

/*
 * Rows come grouped by target (the primary keys start with time, then
 * target), so the last target is remembered; the (stack row id, target)
 * pair is looked up first, the stack's own slot only for a new pair: one
 * hash probe per row in the common case.
 */
static int add_sample(struct query *q, int64_t target_id, int64_t stack_id, uint64_t count)
{
	uint32_t target, stack, row;

	if (q->merge)
		target_id = 0; /* every row counts for the one merged target */
	if (q->n_targets && q->target_ids[q->last_target] == target_id) {
		target = q->last_target;
	} else {
		if (intern_id(&q->target_map, &q->target_ids, &q->n_targets, &q->cap_targets,
			      target_id, &target))
			return -ENOMEM;
		q->last_target = target;
	}
	if (stack_id <= 0 || stack_id >= (int64_t)1 << 40 || target >= 1u << 24)
		return -EOVERFLOW;
	/* merged, the target is always 0: the stack id alone is a dense key */
	uint64_t pair = q->merge ? (uint64_t)stack_id : (uint64_t)stack_id << 24 | target;
	if (store_intmap_get(&q->pair_map, pair, &row)) {
		q->rows[row].count += count;
		return 0;
	}
	if (!store_intmap_get(&q->stack_map, (uint64_t)stack_id, &stack)) {
		if (q->n_stacks >= UINT32_MAX ||
		    ember_array_grow((void **)&q->stacks, &q->cap_stacks, q->n_stacks + 1, sizeof(*q->stacks)))
			return -ENOMEM;
		stack = (uint32_t)q->n_stacks;
		if (store_intmap_put(&q->stack_map, (uint64_t)stack_id, stack))
			return -ENOMEM;
		q->stacks[q->n_stacks++] = (struct qstack){.id = stack_id};
	}
	if (q->n_rows >= UINT32_MAX ||
	    ember_array_grow((void **)&q->rows, &q->cap_rows, q->n_rows + 1, sizeof(*q->rows)) ||
	    store_intmap_put(&q->pair_map, pair, (uint32_t)q->n_rows))
		return -ENOMEM;
	q->rows[q->n_rows++] = (struct qrow){.target = target, .stack = stack, .count = count};
	return 0;
}

/* Columns: target, packed blob of the sealed hours inside the plan's whole hours. */
static void build_packed_sql(struct strbuf *sql, const struct ember_selection *sel,
			     const struct store_read_plan *plan)
{
	sb_puts(sql, "SELECT target_id, stacks FROM samples_1h_packed WHERE 1");
	if (plan->has_lo)
		sb_puts(sql, " AND hour_ns >= :hour_lo");
	if (plan->has_hi)
		sb_puts(sql, " AND hour_ns < :hour_hi");
	store_append_target_filter(sql, sel);
}

static int bad_row(struct ember_store *s, int64_t target_id, int64_t stack_id, char *err,
		   size_t errlen)
{
	return store_error(s, err, errlen, -EIO,
			   "query: corrupt database or too many targets: stack %" PRId64
			   " of target %" PRId64, stack_id, target_id);
}

/* Add the pairs of one packed row. */
static int add_packed(struct ember_store *s, struct query *q, sqlite3_stmt *st, char *err,
		      size_t errlen)
{
	int64_t target_id = sqlite3_column_int64(st, 0), stack_id = 0;
	struct store_packed_iter it;
	uint64_t count;
	int r;

	store_packed_init(&it, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
	while ((r = store_packed_next(&it, &stack_id, &count)) > 0) {
		r = add_sample(q, target_id, stack_id, count);
		if (r == -EOVERFLOW)
			return bad_row(s, target_id, stack_id, err, errlen);
		if (r)
			return oom(s, err, errlen);
	}
	if (r)
		return store_error(s, err, errlen, -EIO,
				   "query: corrupt database: bad sealed hour of target %" PRId64,
				   target_id);
	return 0;
}

/* Run the statement in sql (rows or packed rows) and add what it returns. */
static int read_samples(struct ember_store *s, struct query *q, const struct ember_selection *sel,
			const struct store_read_plan *plan, struct strbuf *sql, bool packed, char *err,
			size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	if (sql->oom)
		return oom(s, err, errlen);
	rc = sqlite3_prepare_v2(s->db, sql->buf, (int)sql->len, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "query: prepare");
	bind_int(st, ":lo", plan->lo);
	bind_int(st, ":hi", plan->hi);
	bind_int(st, ":hour_lo", plan->hour_lo);
	bind_int(st, ":hour_hi", plan->hour_hi);
	store_bind_selection(st, sel);

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (packed) {
			ret = add_packed(s, q, st, err, errlen);
			if (ret)
				break;
			continue;
		}
		int64_t target_id = sqlite3_column_int64(st, 0), stack_id = sqlite3_column_int64(st, 1);
		int r = add_sample(q, target_id, stack_id, (uint64_t)sqlite3_column_int64(st, 2));
		if (r) {
			ret = r == -EOVERFLOW ? bad_row(s, target_id, stack_id, err, errlen)
					      : oom(s, err, errlen);
			break;
		}
	}
	if (!ret && rc != SQLITE_DONE)
		ret = store_sqlite_error(s, err, errlen, rc, "query: read samples");
	sqlite3_finalize(st);
	return ret;
}

static int select_samples(struct ember_store *s, struct query *q,
			  const struct ember_selection *sel, char *err, size_t errlen)
{
	struct strbuf sql;
	struct store_read_plan plan;
	int64_t full_res_from;
	int ret, rc;

	rc = store_full_res_from(s, &full_res_from);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "query: read meta");
	store_plan_reads(s, sel, full_res_from, &plan);
	sb_init(&sql);
	build_sql(&sql, sel, &plan);
	ret = read_samples(s, q, sel, &plan, &sql, false, err, errlen);
	if (!ret && plan.hourly) {
		sb_reset(&sql);
		build_packed_sql(&sql, sel, &plan);
		ret = read_samples(s, q, sel, &plan, &sql, true, err, errlen);
	}
	sb_free(&sql);
	return ret;
}

/* ---- 2. the bound on stacks ---- */

static int heavier_first(const void *a, const void *b)
{
	const struct qrow *x = a, *y = b;
	return (x->count < y->count) - (x->count > y->count);
}

static bool keep_heaviest(struct query *q, size_t max_stacks)
{
	if (q->n_rows <= max_stacks)
		return false;
	qsort(q->rows, q->n_rows, sizeof(*q->rows), heavier_first);
	q->n_rows = max_stacks;
	return true;
}

/* ---- loading rows by id (steps 3 and 4) ---- */

typedef int (*row_fn)(struct ember_store *s, struct query *q, sqlite3_stmt *st,
		      struct ember_profile *p, char *err, size_t errlen);

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int64_t max_id(struct ember_store *s, enum store_stmt_id id)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int64_t max = 0;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		max = sqlite3_column_int64(st, 0);
	if (st)
		sqlite3_reset(st);
	return max;
}

/* Put ids into temp.query_ids in ascending order (appending to its b-tree). */
static int fill_ids(struct ember_store *s, const int64_t *ids, size_t n)
{
	int64_t *sorted = malloc((n + 1) * sizeof(*sorted));
	int rc = SQLITE_OK;

	if (!sorted)
		return SQLITE_NOMEM;
	memcpy(sorted, ids, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_i64);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_stmt *st = store_stmt(s, STMT_IDS_ADD);
		if (!st) {
			rc = sqlite3_errcode(s->db);
			break;
		}
		sqlite3_bind_int64(st, 1, sorted[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	free(sorted);
	return rc;
}

/* Call fn for the rows of ids (and maybe others: fn skips rows it does not want). */
static int load_by_ids(struct ember_store *s, struct query *q, const int64_t *ids, size_t n,
		       enum store_stmt_id max_stmt, enum store_stmt_id scan_stmt,
		       enum store_stmt_id join_stmt, row_fn fn, struct ember_profile *p,
		       const char *what, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	bool scan;
	int rc, ret = 0;

	if (!n)
		return 0;
	scan = (int64_t)(n * SCAN_RATIO) >= max_id(s, max_stmt);
	if (!scan) {
		rc = fill_ids(s, ids, n);
		if (rc != SQLITE_OK) {
			ret = store_sqlite_error(s, err, errlen, rc, "query: %s ids", what);
			goto out;
		}
	}
	st = store_stmt(s, scan ? scan_stmt : join_stmt);
	if (!st) {
		ret = store_sqlite_error(s, err, errlen, sqlite3_errcode(s->db), "query: %s", what);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = fn(s, q, st, p, err, errlen);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = store_sqlite_error(s, err, errlen, rc, "query: read %s", what);
	sqlite3_reset(st);
out:
	if (!scan)
		store_step_done(s, STMT_IDS_CLEAR);
	return ret;
}

/* ---- 3. stacks ---- */

/* Decode a stack blob into q->slots, giving new frame ids a slot in frame_ids. */
static int stack_row(struct ember_store *s, struct query *q, sqlite3_stmt *st,
		     struct ember_profile *p, char *err, size_t errlen)
{
	int64_t id = sqlite3_column_int64(st, 0);
	uint32_t index;

	if (!store_intmap_get(&q->stack_map, (uint64_t)id, &index) || !q->stacks[index].wanted ||
	    q->stacks[index].loaded)
		return 0;

	struct qstack *stack = &q->stacks[index];
	const unsigned char *blob = sqlite3_column_blob(st, 1);
	size_t len = (size_t)sqlite3_column_bytes(st, 1);
	const unsigned char *end = blob + len;

	if (ember_array_grow((void **)&q->slots, &q->cap_slots, q->n_slots + len, sizeof(*q->slots)))
		return oom(s, err, errlen);
	stack->off = q->n_slots;
	while (blob < end) {
		uint64_t frame_id;
		uint32_t slot;

		if (!store_varint_get(&blob, end, &frame_id))
			return store_error(s, err, errlen, -EIO,
					   "query: corrupt database: bad blob in stack %" PRId64, id);
		if (intern_id(&q->frame_map, &q->frame_ids, &q->n_frames, &q->cap_frames,
			      (int64_t)frame_id, &slot))
			return oom(s, err, errlen);
		q->slots[q->n_slots++] = slot; /* a varint is >= 1 byte: slots suffice */
		stack->depth++;
	}
	if (stack->depth > q->max_depth)
		q->max_depth = stack->depth;
	stack->loaded = true;
	return 0;
}

static int load_stacks(struct ember_store *s, struct query *q, struct ember_profile *p,
		       char *err, size_t errlen)
{
	int64_t *ids = malloc((q->n_rows + 1) * sizeof(*ids));
	size_t n = 0;
	int ret;

	if (!ids)
		return oom(s, err, errlen);
	for (size_t i = 0; i < q->n_rows; i++) {
		struct qstack *stack = &q->stacks[q->rows[i].stack];
		if (!stack->wanted) {
			stack->wanted = true;
			ids[n++] = stack->id;
		}
	}
	ret = load_by_ids(s, q, ids, n, STMT_STACKS_MAX_ID, STMT_STACKS_SCAN, STMT_STACKS_JOIN,
			  stack_row, p, "stacks", err, errlen);
	free(ids);
	if (ret)
		return ret;
	for (size_t i = 0; i < q->n_stacks; i++)
		if (q->stacks[i].wanted && !q->stacks[i].loaded)
			return store_error(s, err, errlen, -EIO,
					   "query: corrupt database: samples refer to missing stack %" PRId64,
					   q->stacks[i].id);
	return 0;
}

/* ---- 4. frames ---- */

static int frame_row(struct ember_store *s, struct query *q, sqlite3_stmt *st,
		     struct ember_profile *p, char *err, size_t errlen)
{
	uint32_t slot;

	if (!store_intmap_get(&q->frame_map, (uint64_t)sqlite3_column_int64(st, 0), &slot))
		return 0;
	struct ember_frame f = {
		.function = store_column_text_or_null(st, 1),
		.file = store_column_text_or_null(st, 2),
		.line = (uint32_t)sqlite3_column_int64(st, 3),
		.module = store_column_text_or_null(st, 4),
		.build_id = store_column_text_or_null(st, 5),
		.address = (uint64_t)sqlite3_column_int64(st, 6),
		.flags = (uint32_t)sqlite3_column_int64(st, 7),
		.start_line = (uint32_t)sqlite3_column_int64(st, 8),
	};
	q->frame_index[slot] = ember_profile_frame(p, &f);
	if (q->frame_index[slot] == UINT32_MAX)
		return oom(s, err, errlen);
	return 0;
}

static int load_frames(struct ember_store *s, struct query *q, struct ember_profile *p,
		       char *err, size_t errlen)
{
	int ret;

	q->frame_index = malloc((q->n_frames + 1) * sizeof(*q->frame_index));
	if (!q->frame_index)
		return oom(s, err, errlen);
	for (size_t i = 0; i < q->n_frames; i++)
		q->frame_index[i] = UINT32_MAX;
	ret = load_by_ids(s, q, q->frame_ids, q->n_frames, STMT_FRAMES_MAX_ID, STMT_FRAMES_SCAN,
			  STMT_FRAMES_JOIN, frame_row, p, "frames", err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < q->n_frames; i++)
		if (q->frame_index[i] == UINT32_MAX)
			return store_error(s, err, errlen, -EIO,
					   "query: corrupt database: stacks refer to missing frame %" PRId64,
					   q->frame_ids[i]);
	return 0;
}

/* ---- 5. targets and stacks ---- */

static int intern_target(struct ember_store *s, struct query *q, struct ember_profile *p,
			 uint32_t target, char *err, size_t errlen)
{
	int64_t id = q->target_ids[target];
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (q->merge) {
		static const struct ember_target merged = {.comm = "*", .service = "*",
							   .version = "*"};
		q->target_index[target] = ember_profile_target(p, &merged);
		return q->target_index[target] == UINT32_MAX ? oom(s, err, errlen) : 0;
	}
	st = store_stmt(s, STMT_TARGET_BY_ID);
	if (!st)
		return store_sqlite_error(s, err, errlen, sqlite3_errcode(s->db), "query: targets");
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct ember_target t = {
			.service = (const char *)sqlite3_column_text(st, 0),
			.version = (const char *)sqlite3_column_text(st, 1),
			.pid = (uint32_t)sqlite3_column_int64(st, 2),
			.comm = (const char *)sqlite3_column_text(st, 3),
			.exe = store_column_text_or_null(st, 4),
			.build_id = store_column_text_or_null(st, 5),
			.labels = store_column_text_or_null(st, 6),
		};
		q->target_index[target] = ember_profile_target(p, &t);
		if (q->target_index[target] == UINT32_MAX)
			ret = oom(s, err, errlen);
	} else if (rc == SQLITE_DONE) {
		ret = store_error(s, err, errlen, -EIO,
				  "query: corrupt database: samples refer to missing target %" PRId64,
				  id);
	} else {
		ret = store_sqlite_error(s, err, errlen, rc, "query: read target %" PRId64, id);
	}
	sqlite3_reset(st);
	return ret;
}

static int add_stacks(struct ember_store *s, struct query *q, struct ember_profile *p,
		      char *err, size_t errlen)
{
	uint32_t *frames = malloc((q->max_depth + 1) * sizeof(*frames));
	int ret = 0;

	q->target_index = malloc((q->n_targets + 1) * sizeof(*q->target_index));
	if (!frames || !q->target_index) {
		free(frames);
		return oom(s, err, errlen);
	}
	for (size_t i = 0; i < q->n_targets; i++)
		q->target_index[i] = UINT32_MAX;
	for (size_t i = 0; i < q->n_rows && !ret; i++) {
		const struct qrow *row = &q->rows[i];
		const struct qstack *stack = &q->stacks[row->stack];

		if (q->target_index[row->target] == UINT32_MAX) {
			ret = intern_target(s, q, p, row->target, err, errlen);
			if (ret)
				break;
		}
		for (uint32_t j = 0; j < stack->depth; j++)
			frames[j] = q->frame_index[q->slots[stack->off + j]];
		if (ember_profile_add(p, q->target_index[row->target], frames, stack->depth,
				      row->count, 0))
			ret = oom(s, err, errlen);
	}
	free(frames);
	return ret;
}

/* ---- the whole query ---- */

static int64_t read_period(struct ember_store *s)
{
	sqlite3_stmt *st = store_stmt(s, STMT_META_GET);
	int64_t period = 0;

	if (!st)
		return 0;
	sqlite3_bind_text(st, 1, "period_ns", -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		period = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return period > 0 ? period : 0;
}

int store_sample_span(struct ember_store *s, const struct ember_selection *sel, int64_t *lo,
		      int64_t *hi, bool *any)
{
	struct strbuf sql;
	sqlite3_stmt *st;
	int rc;

	*any = false;
	*lo = sel->from_ns ? store_bucket_of(s, sel->from_ns) : INT64_MIN;
	*hi = sel->to_ns ? store_ceil_to(sel->to_ns, s->bucket_ns) : INT64_MAX;
	sb_init(&sql);
	sb_puts(&sql, "SELECT min(bucket_ns), max(bucket_ns) FROM sample_totals"
		      " WHERE bucket_ns >= :lo AND bucket_ns < :hi");
	store_append_target_filter(&sql, sel);
	if (sql.oom) {
		sb_free(&sql);
		return SQLITE_NOMEM;
	}
	rc = sqlite3_prepare_v2(s->db, sql.buf, (int)sql.len, &st, NULL);
	sb_free(&sql);
	if (rc != SQLITE_OK)
		return rc;
	bind_int(st, ":lo", *lo);
	bind_int(st, ":hi", *hi);
	store_bind_selection(st, sel);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = SQLITE_OK;
		if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
			*any = true;
			*lo = sqlite3_column_int64(st, 0);
			*hi = sqlite3_column_int64(st, 1) + s->bucket_ns;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* The profile's window: the selection's bounds, else the buckets holding its samples. */
static void set_window(struct ember_store *s, const struct query *q,
		       const struct ember_selection *sel, struct ember_profile *p)
{
	int64_t lo = 0, hi = 0;
	bool any = false;

	if (q->n_rows && (!sel->from_ns || !sel->to_ns) &&
	    store_sample_span(s, sel, &lo, &hi, &any) != SQLITE_OK)
		any = false;
	int64_t start = sel->from_ns ? sel->from_ns : any ? lo : 0;
	int64_t end = sel->to_ns ? sel->to_ns : any ? hi : 0;

	p->period_ns = (uint64_t)read_period(s);
	p->start_ns = start;
	p->duration_ns = end > start ? end - start : 0;
}

/* Row ids below this many are mapped through direct arrays (4 bytes each). */
#define DENSE_IDS_MAX (1u << 22)

/* Map stack and frame row ids (and merged pairs) through direct arrays when they are small. */
static int use_dense_maps(struct ember_store *s, struct query *q)
{
	int64_t stacks = max_id(s, STMT_STACKS_MAX_ID), frames = max_id(s, STMT_FRAMES_MAX_ID);

	if (stacks < DENSE_IDS_MAX) {
		if (store_intmap_dense(&q->stack_map, (uint64_t)stacks + 1))
			return -ENOMEM;
		if (q->merge && store_intmap_dense(&q->pair_map, (uint64_t)stacks + 1))
			return -ENOMEM;
	}
	if (frames < DENSE_IDS_MAX && store_intmap_dense(&q->frame_map, (uint64_t)frames + 1))
		return -ENOMEM;
	return 0;
}

static int run_query(struct ember_store *s, struct query *q, const struct ember_selection *sel,
		     size_t max_stacks, struct ember_profile *p, char *err, size_t errlen)
{
	bool truncated;
	int ret;

	q->merge = sel->merge_targets;
	if (use_dense_maps(s, q))
		return oom(s, err, errlen);
	ret = select_samples(s, q, sel, err, errlen);
	if (ret)
		return ret;
	truncated = keep_heaviest(q, max_stacks);
	ret = load_stacks(s, q, p, err, errlen);
	if (!ret)
		ret = load_frames(s, q, p, err, errlen);
	if (!ret)
		ret = add_stacks(s, q, p, err, errlen);
	if (ret)
		return ret;
	set_window(s, q, sel, p);
	if (truncated) {
		store_error(s, err, errlen, 0,
			    "query matched more than %zu stacks; returning the heaviest %zu",
			    max_stacks, max_stacks);
		ember_warn("store %s: query matched more than %zu stacks; returning the heaviest %zu",
			   s->path, max_stacks, max_stacks);
	}
	return 0;
}

int ember_store_query(struct ember_store *s, const struct ember_selection *sel,
		      struct ember_profile **out, char *err, size_t errlen)
{
	static const struct ember_selection all;
	struct query q = {0};
	struct ember_profile *p;
	size_t max_stacks;
	int rc, ret;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	sel = sel ? sel : &all;
	ret = store_check_selection(s, sel, err, errlen);
	if (!ret)
		ret = store_refresh(s, err, errlen);
	if (ret)
		return ret;
	max_stacks = sel->max_stacks ? sel->max_stacks : EMBER_STORE_MAX_STACKS;
	p = ember_profile_new();
	if (!p)
		return oom(s, err, errlen);

	rc = store_begin_read(s);
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "query: begin");
		goto out;
	}
	ret = run_query(s, &q, sel, max_stacks, p, err, errlen);
	store_end_read(s);
out:
	query_free(&q);
	if (ret) {
		ember_profile_free(p);
		return ret;
	}
	*out = p;
	return 0;
}
