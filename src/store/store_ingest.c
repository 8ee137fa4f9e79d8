/*
 * store_ingest.c - adding a profile's counts to the store.
 *
 * One write transaction per profile.  Each target, frame and stack is
 * turned into a row id: first through the handle's in-memory cache (a stack
 * seen in an earlier ingest costs no SELECT at all), then by a lookup on the
 * unique columns, and only then by an INSERT.  Counts are added to the
 * sample row of (bucket, target, stack) with an upsert, and to its hour's
 * row in the samples_1h roll-up; the counts per (bucket, target) are summed
 * in memory and added to sample_totals once per ingest.  An ingest that
 * enters a new hour (or writes late rows to an old one) seals the finished
 * hours of the roll-up (store_seal.c) in the same transaction.
 *
 * Stacks are found by a 64-bit hash of their blob of frame ids.  The stored
 * blob is compared on a hash match; on a real collision the stack moves to
 * the hash computed with the next seed, so a lookup walks seeds 0, 1, ...
 * until it finds its blob or a free hash.
 *
 * If anything fails the transaction rolls back and the caches are dropped,
 * since they may hold ids of rows that were never committed.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/profile.h"

#define STACK_HASH_SEEDS 8
#define STACK_HASH_EXHAUSTED (-1) /* not an SQLite code */

/* Earliest and latest sample time of one profile target in this ingest. */
struct target_span {
	int64_t first, last;
	bool used;
};

static void cache_put(struct ember_store *s, struct store_idmap *m, const struct strbuf *key,
		      int64_t id)
{
	if (store_idmap_would_outgrow(m, key->len, STORE_CACHE_MAX_BYTES)) {
		store_idmap_clear(m);
		s->cache_clears++;
	}
	if (store_idmap_put(m, key->buf, key->len, id))
		store_idmap_clear(m); /* out of memory: the cache is only an optimization */
}

static void key_str(struct strbuf *key, const char *str)
{
	str = str ? str : "";
	sb_append(key, str, strlen(str) + 1);
}

/* ---- targets ---- */

/* Move the seen times of a cached target.  *found is false if its row is gone. */
static int touch_target(struct ember_store *s, int64_t id, const struct target_span *span,
			bool *found)
{
	sqlite3_stmt *st = store_stmt(s, STMT_TARGET_TOUCH);
	int rc;

	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, span->first);
	sqlite3_bind_int64(st, 3, span->last);
	rc = sqlite3_step(st);
	*found = sqlite3_changes(s->db) > 0;
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int upsert_target(struct ember_store *s, const struct ember_target *t,
			 enum ember_profile_type type, const char *service, const char *version,
			 const struct target_span *span, int64_t *id)
{
	sqlite3_stmt *st = store_stmt(s, STMT_TARGET_UPSERT);
	int rc;

	if (!st)
		return sqlite3_errcode(s->db);
	store_bind_text(st, 1, service);
	store_bind_text(st, 2, version);
	store_bind_text(st, 3, s->host);
	sqlite3_bind_int64(st, 4, t->pid);
	store_bind_text(st, 5, t->comm);
	store_bind_text(st, 6, t->exe);
	store_bind_text(st, 7, t->build_id);
	store_bind_text(st, 8, t->labels);
	sqlite3_bind_int64(st, 9, span->first);
	sqlite3_bind_int64(st, 10, span->last);
	sqlite3_bind_int64(st, 11, type);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	return rc;
}

static int resolve_target(struct ember_store *s, const struct ember_target *t,
			  enum ember_profile_type type, const struct target_span *span, int64_t *id,
			  char *err, size_t errlen)
{
	char short_id[EMBER_SHORT_BUILD_ID + 1];
	const char *service, *version;
	bool found = false;
	int64_t cached;
	int rc;

	ember_target_display_names(t, &service, &version, short_id);
	sb_reset(&s->key);
	key_str(&s->key, service);
	key_str(&s->key, version);
	key_str(&s->key, s->host);
	key_str(&s->key, t->comm);
	key_str(&s->key, t->exe);
	key_str(&s->key, t->build_id);
	key_str(&s->key, t->labels);
	sb_append(&s->key, &t->pid, sizeof(t->pid));
	sb_append(&s->key, &type, sizeof(type));
	if (s->key.oom)
		return store_error(s, err, errlen, -ENOMEM, "ingest: out of memory");

	if (store_idmap_get(&s->targets, s->key.buf, s->key.len, &cached)) {
		rc = touch_target(s, cached, span, &found);
		if (rc != SQLITE_OK)
			return store_sqlite_error(s, err, errlen, rc, "ingest: update target %s pid %u",
						  service, t->pid);
		if (found) {
			*id = cached;
			store_retention_touch(s, STORE_REF_TARGET, *id);
			return 0;
		}
	}
	rc = upsert_target(s, t, type, service, version, span, id);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "ingest: add target %s pid %u",
					  service, t->pid);
	cache_put(s, &s->targets, &s->key, *id);
	store_retention_touch(s, STORE_REF_TARGET, *id); /* in use: not to be collected */
	return 0;
}

int store_resolve_target(struct ember_store *s, const struct ember_target *t, int64_t first_ns,
			 int64_t last_ns, int64_t *id, char *err, size_t errlen)
{
	struct target_span span = {first_ns, last_ns, true};

	return resolve_target(s, t, EMBER_PROFILE_CPU, &span, id, err, errlen);
}

/* ---- frames ---- */

/* Parameters ?1..?7 of both STMT_FRAME_FIND and STMT_FRAME_INSERT. */
static void bind_frame(sqlite3_stmt *st, const struct ember_frame *f)
{
	store_bind_text(st, 1, f->function);
	store_bind_text(st, 2, f->file);
	sqlite3_bind_int64(st, 3, f->line);
	store_bind_text(st, 4, f->module);
	store_bind_text(st, 5, f->build_id);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)f->address);
	sqlite3_bind_int64(st, 7, f->flags);
}

static int find_or_insert_frame(struct ember_store *s, const struct ember_frame *f, int64_t *id)
{
	sqlite3_stmt *st = store_stmt(s, STMT_FRAME_FIND);
	int rc;

	if (!st)
		return sqlite3_errcode(s->db);
	bind_frame(st, f);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return SQLITE_OK;
	if (rc != SQLITE_DONE)
		return rc;

	st = store_stmt(s, STMT_FRAME_INSERT);
	if (!st)
		return sqlite3_errcode(s->db);
	bind_frame(st, f);
	sqlite3_bind_int64(st, 8, f->start_line);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	*id = sqlite3_last_insert_rowid(s->db);
	return SQLITE_OK;
}

static int resolve_frame(struct ember_store *s, const struct ember_frame *f, int64_t *id,
			 char *err, size_t errlen)
{
	char name[256];
	int rc;

	sb_reset(&s->key);
	key_str(&s->key, f->function);
	key_str(&s->key, f->file);
	key_str(&s->key, f->module);
	key_str(&s->key, f->build_id);
	sb_append(&s->key, &f->line, sizeof(f->line));
	sb_append(&s->key, &f->address, sizeof(f->address));
	sb_append(&s->key, &f->flags, sizeof(f->flags));
	if (s->key.oom)
		return store_error(s, err, errlen, -ENOMEM, "ingest: out of memory");
	if (store_idmap_get(&s->frames, s->key.buf, s->key.len, id)) {
		store_retention_touch(s, STORE_REF_FRAME, *id);
		return 0;
	}

	rc = find_or_insert_frame(s, f, id);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "ingest: add frame %s",
					  ember_frame_name(f, name, sizeof(name)));
	cache_put(s, &s->frames, &s->key, *id);
	store_retention_touch(s, STORE_REF_FRAME, *id);
	return 0;
}

/* ---- stacks ---- */

/* Find the stack whose blob is in s->blob, inserting it if new. */
static int find_or_insert_stack(struct ember_store *s, int64_t *id)
{
	const void *blob = s->blob.len ? s->blob.buf : ""; /* never bind NULL */
	int rc;

	for (uint64_t seed = 0; seed < STACK_HASH_SEEDS; seed++) {
		int64_t hash = (int64_t)ember_hash64(s->blob.buf, s->blob.len, seed);
		sqlite3_stmt *st = store_stmt(s, STMT_STACK_BY_HASH);
		bool same = false;

		if (!st)
			return sqlite3_errcode(s->db);
		sqlite3_bind_int64(st, 1, hash);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*id = sqlite3_column_int64(st, 0);
			same = (size_t)sqlite3_column_bytes(st, 1) == s->blob.len &&
			       (s->blob.len == 0 ||
				memcmp(sqlite3_column_blob(st, 1), s->blob.buf, s->blob.len) == 0);
		}
		sqlite3_reset(st);
		if (rc == SQLITE_ROW) {
			if (same)
				return SQLITE_OK;
			continue; /* collision: try the next seed */
		}
		if (rc != SQLITE_DONE)
			return rc;

		st = store_stmt(s, STMT_STACK_INSERT);
		if (!st)
			return sqlite3_errcode(s->db);
		sqlite3_bind_int64(st, 1, hash);
		sqlite3_bind_blob(st, 2, blob, (int)s->blob.len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
		*id = sqlite3_last_insert_rowid(s->db);
		return SQLITE_OK;
	}
	return STACK_HASH_EXHAUSTED; /* STACK_HASH_SEEDS collisions in a row: not plausible */
}

static int resolve_stack(struct ember_store *s, const struct ember_profile *p,
			 const struct ember_stack *stack, int64_t *frame_ids, int64_t *id,
			 char *err, size_t errlen)
{
	int ret, rc;

	for (uint32_t i = 0; i < stack->depth; i++) {
		uint32_t f = stack->frames[i];
		if (frame_ids[f])
			continue;
		ret = resolve_frame(s, &p->frames[f], &frame_ids[f], err, errlen);
		if (ret)
			return ret;
	}

	sb_reset(&s->blob);
	if (!sb_reserve(&s->blob, (size_t)stack->depth * STORE_VARINT_MAX + 1))
		return store_error(s, err, errlen, -ENOMEM, "ingest: out of memory");
	for (uint32_t i = 0; i < stack->depth; i++)
		s->blob.len += store_varint_put((unsigned char *)s->blob.buf + s->blob.len,
						(uint64_t)frame_ids[stack->frames[i]]);
	if (store_idmap_get(&s->stacks, s->blob.buf, s->blob.len, id)) {
		store_retention_touch(s, STORE_REF_STACK, *id);
		return 0;
	}

	rc = find_or_insert_stack(s, id);
	if (rc == STACK_HASH_EXHAUSTED)
		return store_error(s, err, errlen, -EIO, "ingest: %d stack hash collisions in a row",
				   STACK_HASH_SEEDS);
	if (rc != SQLITE_OK)
		return store_sqlite_error(s, err, errlen, rc, "ingest: add stack of %u frames",
					  stack->depth);
	cache_put(s, &s->stacks, &s->blob, *id);
	store_retention_touch(s, STORE_REF_STACK, *id);
	return 0;
}

/* ---- samples and the transaction ---- */

/* Samples of one (bucket, target) in this ingest, for sample_totals. */
struct bucket_total {
	int64_t bucket, target_id;
	uint64_t count;
};

struct totals {
	struct bucket_total *rows;
	size_t n, cap, last; /* last = the row hit most recently */
};

/* Add count to (bucket, target_id).  Ingests hold few buckets and targets. */
static int totals_add(struct totals *t, int64_t bucket, int64_t target_id, uint64_t count)
{
	if (t->last < t->n && t->rows[t->last].bucket == bucket &&
	    t->rows[t->last].target_id == target_id) {
		t->rows[t->last].count += count;
		return 0;
	}
	for (size_t i = t->n; i-- > 0;) {
		if (t->rows[i].bucket == bucket && t->rows[i].target_id == target_id) {
			t->rows[i].count += count;
			t->last = i;
			return 0;
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct bucket_total *rows = realloc(t->rows, cap * sizeof(*rows));
		if (!rows)
			return -ENOMEM;
		t->rows = rows;
		t->cap = cap;
	}
	t->rows[t->n] = (struct bucket_total){bucket, target_id, count};
	t->last = t->n++;
	return 0;
}

/* Run an upsert of (?1 time, ?2 target, [?3 stack,] ?4/?3 count). */
static int add_count(struct ember_store *s, enum store_stmt_id id, int64_t time, int64_t target_id,
		     int64_t stack_id, uint64_t count)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int col = 3, rc;

	if (!st)
		return sqlite3_errcode(s->db);
	sqlite3_bind_int64(st, 1, time);
	sqlite3_bind_int64(st, 2, target_id);
	if (stack_id)
		sqlite3_bind_int64(st, col++, stack_id);
	sqlite3_bind_int64(st, col, (sqlite3_int64)count);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A stack's count into its bucket's row and its hour's roll-up row. */
static int add_sample(struct ember_store *s, int64_t bucket, int64_t target_id, int64_t stack_id,
		      uint64_t count)
{
	int rc = add_count(s, STMT_SAMPLE_ADD, bucket, target_id, stack_id, count);

	if (rc == SQLITE_OK)
		rc = add_count(s, STMT_ROLLUP_ADD, store_floor_to(bucket, STORE_ROLLUP_NS),
			       target_id, stack_id, count);
	return rc;
}

/* Reject a profile whose indexes point outside its arrays. */
static int check_profile(struct ember_store *s, const struct ember_profile *p, char *err,
			 size_t errlen)
{
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *st = &p->stacks[i];
		if (st->target >= p->n_targets)
			return store_error(s, err, errlen, -EINVAL,
					   "ingest: stack %zu refers to target %u of %zu", i,
					   st->target, p->n_targets);
		if (st->depth && !st->frames)
			return store_error(s, err, errlen, -EINVAL, "ingest: stack %zu has no frames",
					   i);
		for (uint32_t j = 0; j < st->depth; j++)
			if (st->frames[j] >= p->n_frames)
				return store_error(s, err, errlen, -EINVAL,
						   "ingest: stack %zu refers to frame %u of %zu", i,
						   st->frames[j], p->n_frames);
	}
	return 0;
}

/* Hours of the roll-up rows one ingest wrote. */
struct hour_span {
	int64_t min, max;
	bool any;
};

/*
 * Seal the finished hours when this ingest entered a new hour or wrote to
 * an older one (the first ingest after opening always checks); *newest is
 * the newest hour afterwards.  Returns an SQLite code.
 */
static int seal_if_due(struct ember_store *s, const struct hour_span *hours, int64_t *newest)
{
	int rc;

	if (!hours->any) {
		*newest = s->newest_hour;
		return SQLITE_OK;
	}
	if (!s->known_hour) {
		rc = store_newest_hour(s, newest);
		return rc == SQLITE_OK ? store_seal_hours(s, *newest) : rc;
	}
	*newest = hours->max > s->newest_hour ? hours->max : s->newest_hour;
	if (hours->max > s->newest_hour || hours->min < *newest)
		return store_seal_hours(s, *newest);
	return SQLITE_OK;
}

/* Everything inside the transaction. */
static int ingest_rows(struct ember_store *s, const struct ember_profile *p, int64_t time_ns,
		       struct target_span *spans, int64_t *target_ids, int64_t *frame_ids,
		       int64_t *newest_hour, char *err, size_t errlen)
{
	struct totals totals = {0};
	struct hour_span hours = {0};
	int ret = 0, rc;

	for (size_t i = 0; i < p->n_targets; i++) {
		if (!spans[i].used)
			continue;
		ret = resolve_target(s, &p->targets[i], p->type, &spans[i], &target_ids[i], err,
				     errlen);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *st = &p->stacks[i];
		int64_t stack_id;

		if (!st->count)
			continue;
		ret = resolve_stack(s, p, st, frame_ids, &stack_id, err, errlen);
		if (ret)
			goto out;
		int64_t bucket = store_bucket_of(s, st->time_ns ? st->time_ns : time_ns);
		rc = add_sample(s, bucket, target_ids[st->target], stack_id, st->count);
		if (rc != SQLITE_OK) {
			ret = store_sqlite_error(s, err, errlen, rc, "ingest: add samples");
			goto out;
		}
		if (totals_add(&totals, bucket, target_ids[st->target], st->count)) {
			ret = store_error(s, err, errlen, -ENOMEM, "ingest: out of memory");
			goto out;
		}
		int64_t hour = store_floor_to(bucket, STORE_ROLLUP_NS);
		if (!hours.any || hour < hours.min)
			hours.min = hour;
		if (!hours.any || hour > hours.max)
			hours.max = hour;
		hours.any = true;
	}
	for (size_t i = 0; i < totals.n; i++) {
		const struct bucket_total *t = &totals.rows[i];
		rc = add_count(s, STMT_TOTAL_ADD, t->bucket, t->target_id, 0, t->count);
		if (rc != SQLITE_OK) {
			ret = store_sqlite_error(s, err, errlen, rc, "ingest: add sample totals");
			goto out;
		}
	}
	if (p->period_ns && p->period_ns != s->period_ns) {
		rc = store_meta_set_int(s, "period_ns", (int64_t)p->period_ns);
		if (rc != SQLITE_OK) {
			ret = store_sqlite_error(s, err, errlen, rc, "ingest: record period");
			goto out;
		}
	}
	rc = seal_if_due(s, &hours, newest_hour);
	if (rc != SQLITE_OK)
		ret = store_sqlite_error(s, err, errlen, rc, "ingest: seal finished hours");
out:
	free(totals.rows);
	return ret;
}

struct ingest_write {
	const struct ember_profile *p;
	int64_t time_ns;
	struct target_span *spans;
	int64_t *target_ids, *frame_ids;
	int64_t newest_hour; /* out */
};

static int ingest_write(struct ember_store *s, void *arg, char *err, size_t errlen)
{
	struct ingest_write *w = arg;

	return ingest_rows(s, w->p, w->time_ns, w->spans, w->target_ids, w->frame_ids,
			   &w->newest_hour, err, errlen);
}

int ember_store_ingest(struct ember_store *s, const struct ember_profile *p, int64_t time_ns,
		       char *err, size_t errlen)
{
	struct target_span *spans = NULL;
	int64_t *target_ids = NULL, *frame_ids = NULL;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	s->last_rc = SQLITE_OK;
	ret = check_profile(s, p, err, errlen);
	if (ret || !p->n_stacks)
		return ret;
	if (!time_ns)
		time_ns = store_now_ns();

	spans = calloc(p->n_targets, sizeof(*spans));
	target_ids = calloc(p->n_targets, sizeof(*target_ids));
	frame_ids = calloc(p->n_frames + 1, sizeof(*frame_ids)); /* 0 = not resolved yet */
	if (!spans || !target_ids || !frame_ids) {
		ret = store_error(s, err, errlen, -ENOMEM, "ingest: out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *st = &p->stacks[i];
		struct target_span *span = &spans[st->target];
		int64_t t = st->time_ns ? st->time_ns : time_ns;

		if (!st->count)
			continue;
		if (!span->used || t < span->first)
			span->first = t;
		if (!span->used || t > span->last)
			span->last = t;
		span->used = true;
	}

	struct ingest_write w = {p, time_ns, spans, target_ids, frame_ids, 0};
	ret = store_file_write(s, "ingest", ingest_write, &w, err, errlen);
	if (!ret) {
		if (p->period_ns)
			s->period_ns = p->period_ns;
		s->newest_hour = w.newest_hour;
		s->known_hour = true;
	}
out:
	free(spans);
	free(target_ids);
	free(frame_ids);
	return ret;
}

int store_target_id(struct ember_store *s, const struct ember_target *t, int64_t first_ns,
		    int64_t last_ns, int64_t *id, char *err, size_t errlen)
{
	struct target_span span = {.first = first_ns, .last = last_ns, .used = true};

	return resolve_target(s, t, EMBER_PROFILE_CPU, &span, id, err, errlen);
}

void ember_store_cache_stats(const struct ember_store *s, struct ember_store_cache_stats *st)
{
	const struct store_idmap *maps[] = {&s->targets, &s->frames, &s->stacks};

	*st = (struct ember_store_cache_stats){.max_bytes = 3ull * STORE_CACHE_MAX_BYTES,
					       .clears = s->cache_clears};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		st->entries += maps[i]->used;
		st->bytes += store_idmap_bytes(maps[i]);
	}
}
