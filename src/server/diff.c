/*
 * diff.c - merge A and B into one call tree and write it with share changes.
 *
 * Steps: intern the frame names of both profiles (calltree.c), merge every
 * stack of A on side 0 and of B on side 1, keep the nodes whose larger
 * share reaches the threshold (raised until at most max_nodes qualify),
 * order siblings by that share and write the tree recursively; then the
 * functions of A that no stack of B contains.
 *
 * A node's share on each side is never larger than its parent's, so a
 * threshold on max(share A, share B) keeps a connected tree.
 */
#include "server/diff.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/calltree.h"
#include "server/topfuncs.h"

struct diff_ctx {
	const struct calltree *t;
	double na, nb; /* side totals */
	double min;    /* threshold on the larger share */
};

static double share(uint64_t v, double total)
{
	return total > 0 ? (double)v / total : 0.0;
}

static double max_share(const struct diff_ctx *c, const struct ct_node *n)
{
	double a = share(n->value[0], c->na), b = share(n->value[1], c->nb);
	return a > b ? a : b;
}

static bool keep_node(const struct ct_node *n, void *arg)
{
	const struct diff_ctx *c = arg;
	return (n->value[0] || n->value[1]) && max_share(c, n) >= c->min;
}

static int cmp_share(const void *pa, const void *pb, void *arg)
{
	const struct diff_ctx *c = arg;
	const struct ct_node *x = &c->t->nodes[*(const uint32_t *)pa];
	const struct ct_node *y = &c->t->nodes[*(const uint32_t *)pb];
	double sx = max_share(c, x), sy = max_share(c, y);

	if (sx != sy)
		return sx > sy ? -1 : 1;
	int r = strcmp(c->t->names->names[x->name], c->t->names->names[y->name]);
	return r ? r : (int)x->kernel - (int)y->kernel;
}

static int cmp_double_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Raise c->min until at most max_nodes non-root nodes reach it. */
static int choose_threshold(struct diff_ctx *c, size_t max_nodes)
{
	const struct calltree *t = c->t;
	size_t n = 0;

	for (size_t i = 1; i < t->n_nodes; i++)
		n += keep_node(&t->nodes[i], c);
	if (n <= max_nodes)
		return 0;
	double *v = malloc(n * sizeof(*v));
	size_t k = 0;
	if (!v)
		return -ENOMEM;
	for (size_t i = 1; i < t->n_nodes; i++)
		if (keep_node(&t->nodes[i], c))
			v[k++] = max_share(c, &t->nodes[i]);
	qsort(v, k, sizeof(*v), cmp_double_desc);
	/* strictly above the (max_nodes+1)-th largest: ties never overflow */
	c->min = nextafter(v[max_nodes], INFINITY);
	free(v);
	return 0;
}

static void write_node(const struct diff_ctx *c, uint32_t id, struct strbuf *sb)
{
	const struct calltree *t = c->t;
	const struct ct_node *n = &t->nodes[id];
	double delta = share(n->value[1], c->nb) - share(n->value[0], c->na);
	double delta_self = share(n->self[1], c->nb) - share(n->self[0], c->na);

	if (id == 0) {
		sb_puts(sb, "{\"name\":\"all\"");
	} else {
		sb_puts(sb, "{\"name\":");
		sb_json_str(sb, t->names->names[n->name]);
		ct_write_frame_json(t, n, sb);
	}
	sb_printf(sb,
		  ",\"a\":%" PRIu64 ",\"b\":%" PRIu64 ",\"a_self\":%" PRIu64 ",\"b_self\":%" PRIu64
		  ",\"delta\":%.6g,\"delta_self\":%.6g,\"children\":[",
		  n->value[0], n->value[1], n->self[0], n->self[1], delta, delta_self);
	for (uint32_t i = 0; i < n->n_children; i++) {
		if (i)
			sb_putc(sb, ',');
		write_node(c, ct_child(t, id, i), sb);
	}
	sb_puts(sb, "]}");
}

/* ---- functions of A that B never ran ---- */

struct vanished_ctx {
	const struct ember_func_stat *st;
	const struct ct_names *names;
};

static int cmp_vanished(const void *pa, const void *pb, void *arg)
{
	const struct vanished_ctx *c = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	if (c->st[a].total[0] != c->st[b].total[0])
		return c->st[a].total[0] > c->st[b].total[0] ? -1 : 1;
	return strcmp(c->names->names[a], c->names->names[b]);
}

static int write_vanished(const struct ct_names *names, double na, double min,
			  struct strbuf *sb)
{
	struct ember_func_stat *st;
	uint32_t *ids;
	size_t n = 0;

	if (ember_func_stats(names, &st))
		return -ENOMEM;
	ids = malloc((names->n + 1) * sizeof(*ids));
	if (!ids) {
		free(st);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < names->n; i++)
		if (st[i].total[0] && !st[i].total[1] && share(st[i].total[0], na) >= min)
			ids[n++] = i;
	qsort_r(ids, n, sizeof(*ids), cmp_vanished, &(struct vanished_ctx){st, names});
	sb_puts(sb, "[");
	for (size_t i = 0; i < n && i < EMBER_DIFF_MAX_VANISHED; i++) {
		sb_puts(sb, i ? ",{\"name\":" : "{\"name\":");
		sb_json_str(sb, names->names[ids[i]]);
		sb_printf(sb, ",\"a_total_share\":%.6g,\"a_self_share\":%.6g}",
			  share(st[ids[i]].total[0], na), share(st[ids[i]].self[0], na));
	}
	sb_puts(sb, "]");
	free(ids);
	free(st);
	return 0;
}

int ember_diff_json(const struct ember_profile *a, const struct ember_profile *b,
		    const struct ember_diff_options *opt, struct strbuf *sb)
{
	size_t max_nodes = opt && opt->max_nodes ? opt->max_nodes : EMBER_DIFF_MAX_NODES;
	double min = opt && opt->min_share >= 0 ? opt->min_share : EMBER_DIFF_MIN_SHARE;
	struct ct_names names;
	struct calltree t = {0};
	struct diff_ctx c = {.t = &t, .na = (double)a->total, .nb = (double)b->total, .min = min};
	int err;

	err = ct_names_init(&names, a, b);
	/* merging holds more nodes than are written: the threshold prunes later */
	if (!err)
		err = ct_init(&t, &names, max_nodes * 10 > max_nodes ? max_nodes * 10 : max_nodes);
	if (!err)
		err = ct_add_profile(&t, 0);
	if (!err)
		err = ct_add_profile(&t, 1);
	if (!err)
		err = choose_threshold(&c, max_nodes);
	if (!err)
		err = ct_order(&t, keep_node, cmp_share, &c);
	if (!err) {
		sb_printf(sb,
			  "{\"a_total\":%" PRIu64 ",\"b_total\":%" PRIu64
			  ",\"nodes\":%zu,\"truncated\":%s,\"root\":",
			  a->total, b->total, t.n_order + 1, t.truncated ? "true" : "false");
		write_node(&c, 0, sb);
		sb_puts(sb, ",\"vanished\":");
		err = write_vanished(&names, c.na, min, sb);
		sb_putc(sb, '}');
		if (!err && sb->oom)
			err = -ENOMEM;
	}
	ct_free(&t);
	ct_names_free(&names);
	return err;
}
