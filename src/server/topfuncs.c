/*
 * topfuncs.c - the "top functions" table: self and total per function.
 *
 * One pass over each profile's stacks.  A stack's total goes to every
 * distinct function in it: a per-function stamp (the index of the last
 * stack that counted it) keeps a recursive function from being counted
 * twice, without clearing anything between stacks.
 */
#include "server/topfuncs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void count_side(const struct ct_names *names, int side, struct ember_func_stat *st,
		       uint32_t *stamp)
{
	const struct ember_profile *p = names->p[side];
	const uint32_t *frame_name = names->frame_name[side];

	for (uint32_t i = 0; i < p->n_frames; i++) {
		struct ember_func_stat *f = &st[frame_name[i]];
		if (!f->seen) {
			f->seen = true;
			f->side = (uint8_t)side;
			f->frame = i;
		}
	}
	for (size_t s = 0; s < p->n_stacks; s++) {
		const struct ember_stack *stack = &p->stacks[s];
		uint32_t mark = (uint32_t)(s + 1);

		for (uint32_t j = 0; j < stack->depth; j++) {
			uint32_t frame = stack->frames[j];
			if (frame >= p->n_frames)
				continue;
			uint32_t name = frame_name[frame];
			if (j == 0)
				st[name].self[side] += stack->count;
			if (stamp[name] != mark) {
				stamp[name] = mark;
				st[name].total[side] += stack->count;
			}
		}
	}
}

int ember_func_stats(const struct ct_names *names, struct ember_func_stat **out)
{
	size_t n = names->n ? names->n : 1;
	struct ember_func_stat *st = calloc(n, sizeof(*st));
	uint32_t *stamp = calloc(n, sizeof(*stamp));

	*out = NULL;
	if (!st || !stamp) {
		free(st);
		free(stamp);
		return -ENOMEM;
	}
	count_side(names, 0, st, stamp);
	if (names->p[1]) {
		memset(stamp, 0, n * sizeof(*stamp));
		count_side(names, 1, st, stamp);
	}
	free(stamp);
	*out = st;
	return 0;
}

/* ---- the table ---- */

struct top_ctx {
	const struct ct_names *names;
	const struct ember_func_stat *st;
	double total[2]; /* side totals, 0 = none */
	enum ember_top_sort sort;
	bool ascending;
};

static double share(uint64_t v, double total)
{
	return total > 0 ? (double)v / total : 0.0;
}

static double sort_key(const struct top_ctx *c, uint32_t id)
{
	const struct ember_func_stat *f = &c->st[id];

	switch (c->sort) {
	case EMBER_TOP_TOTAL:
		return (double)f->total[0];
	case EMBER_TOP_DIFF:
		return share(f->self[0], c->total[0]) - share(f->self[1], c->total[1]);
	case EMBER_TOP_DIFF_TOTAL:
		return share(f->total[0], c->total[0]) - share(f->total[1], c->total[1]);
	default:
		return (double)f->self[0];
	}
}

static int cmp_funcs(const void *pa, const void *pb, void *arg)
{
	const struct top_ctx *c = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	double x = sort_key(c, a), y = sort_key(c, b);

	if (x != y)
		return (x > y) != c->ascending ? -1 : 1;
	if (c->st[a].total[0] != c->st[b].total[0])
		return c->st[a].total[0] > c->st[b].total[0] ? -1 : 1;
	return strcmp(c->names->names[a], c->names->names[b]);
}

static void json_share(struct strbuf *sb, const char *key, bool has, double v)
{
	if (has)
		sb_printf(sb, ",\"%s\":%.6g", key, v);
	else
		sb_printf(sb, ",\"%s\":null", key);
}

static void write_func(const struct top_ctx *c, uint32_t id, bool has_base, struct strbuf *sb)
{
	const struct ember_func_stat *f = &c->st[id];
	const struct ember_frame *fr = &c->names->p[f->side]->frames[f->frame];
	double ss = share(f->self[0], c->total[0]), ts = share(f->total[0], c->total[0]);
	double bss = share(f->self[1], c->total[1]), bts = share(f->total[1], c->total[1]);

	sb_puts(sb, "{\"name\":");
	sb_json_str(sb, c->names->names[id]);
	sb_puts(sb, ",\"file\":");
	sb_json_str(sb, fr->file && fr->file[0] ? fr->file : NULL);
	if (fr->line)
		sb_printf(sb, ",\"line\":%" PRIu32, fr->line);
	sb_printf(sb, ",\"kernel\":%s,\"self\":%" PRIu64 ",\"total\":%" PRIu64,
		  (fr->flags & EMBER_FRAME_KERNEL) ? "true" : "false", f->self[0], f->total[0]);
	json_share(sb, "self_share", true, ss);
	json_share(sb, "total_share", true, ts);
	json_share(sb, "base_self_share", has_base, bss);
	json_share(sb, "base_total_share", has_base, bts);
	json_share(sb, "diff_self", has_base, ss - bss);
	json_share(sb, "diff_total", has_base, ts - bts);
	sb_putc(sb, '}');
}

int ember_top_json(const struct ember_profile *p, const struct ember_profile *base,
		   enum ember_top_sort sort, bool ascending, size_t limit, struct strbuf *sb)
{
	struct ct_names names;
	struct ember_func_stat *st = NULL;
	uint32_t *ids = NULL;
	size_t n = 0;
	int err;

	if (!limit)
		limit = EMBER_TOP_DEFAULT_LIMIT;
	err = ct_names_init(&names, p, base);
	if (!err)
		err = ember_func_stats(&names, &st);
	if (!err && !(ids = malloc((names.n + 1) * sizeof(*ids))))
		err = -ENOMEM;
	if (err)
		goto out;

	struct top_ctx c = {.names = &names, .st = st, .sort = sort, .ascending = ascending,
			    .total = {(double)p->total, base ? (double)base->total : 0}};
	if (!base && (sort == EMBER_TOP_DIFF || sort == EMBER_TOP_DIFF_TOTAL))
		c.sort = EMBER_TOP_SELF;
	for (uint32_t i = 0; i < names.n; i++)
		if (st[i].total[0] || st[i].total[1])
			ids[n++] = i;
	qsort_r(ids, n, sizeof(*ids), cmp_funcs, &c);

	sb_printf(sb, "{\"total\":%" PRIu64 ",\"base_total\":", p->total);
	if (base)
		sb_printf(sb, "%" PRIu64, base->total);
	else
		sb_puts(sb, "null");
	sb_printf(sb, ",\"functions_total\":%zu,\"functions\":[", n);
	for (size_t i = 0; i < n && i < limit; i++) {
		if (i)
			sb_putc(sb, ',');
		write_func(&c, ids[i], base != NULL, sb);
	}
	sb_puts(sb, "]}");
	if (sb->oom)
		err = -ENOMEM;
out:
	free(ids);
	free(st);
	ct_names_free(&names);
	return err;
}
