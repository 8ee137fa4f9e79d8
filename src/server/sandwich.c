/*
 * sandwich.c - the callers tree and the callees tree of one function.
 *
 * Both trees are calltree.c trees over the one profile, fed with derived
 * stacks: for the callees the frames below the function's outermost
 * occurrence (leaf first, as stored), for the callers the frames above it
 * in reverse, so that walking the derived stack "root first" goes from the
 * nearest caller out to main.  The function itself is each tree's root.
 */
#include "server/sandwich.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/calltree.h"

struct tree_ctx {
	const struct calltree *t;
	uint64_t min; /* smallest value written */
};

static bool keep_node(const struct ct_node *n, void *arg)
{
	const struct tree_ctx *c = arg;
	return n->value[0] >= c->min;
}

static int cmp_value(const void *pa, const void *pb, void *arg)
{
	const struct tree_ctx *c = arg;
	const struct ct_node *x = &c->t->nodes[*(const uint32_t *)pa];
	const struct ct_node *y = &c->t->nodes[*(const uint32_t *)pb];

	if (x->value[0] != y->value[0])
		return x->value[0] > y->value[0] ? -1 : 1;
	int r = strcmp(c->t->names->names[x->name], c->t->names->names[y->name]);
	return r ? r : (int)x->kernel - (int)y->kernel;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Value threshold: the fraction of the root, raised until at most max nodes qualify. */
static int choose_min(const struct calltree *t, size_t max, uint64_t *out)
{
	uint64_t min = (uint64_t)ceil((double)t->nodes[0].value[0] * EMBER_SANDWICH_MIN_FRACTION);
	size_t n = 0;

	if (min < 1)
		min = 1;
	for (size_t i = 1; i < t->n_nodes; i++)
		n += t->nodes[i].value[0] >= min;
	if (n > max) {
		uint64_t *v = malloc(n * sizeof(*v));
		size_t k = 0;
		if (!v)
			return -ENOMEM;
		for (size_t i = 1; i < t->n_nodes; i++)
			if (t->nodes[i].value[0] >= min)
				v[k++] = t->nodes[i].value[0];
		qsort(v, k, sizeof(*v), cmp_u64_desc);
		min = v[max] + 1;
		free(v);
	}
	*out = min;
	return 0;
}

static void write_node(const struct calltree *t, uint32_t id, const char *root_name,
		       struct strbuf *sb)
{
	const struct ct_node *n = &t->nodes[id];

	sb_puts(sb, "{\"name\":");
	if (id == 0) {
		sb_json_str(sb, root_name);
	} else {
		sb_json_str(sb, t->names->names[n->name]);
	}
	sb_printf(sb, ",\"value\":%" PRIu64 ",\"self\":%" PRIu64, n->value[0], n->self[0]);
	if (id != 0) {
		const struct ember_frame *f = ct_frame(t, n);
		if (f->file && f->file[0]) {
			sb_puts(sb, ",\"file\":");
			sb_json_str(sb, f->file);
			if (f->line)
				sb_printf(sb, ",\"line\":%" PRIu32, f->line);
		}
		sb_printf(sb, ",\"kernel\":%s,\"inlined\":%s", n->kernel ? "true" : "false",
			  (f->flags & EMBER_FRAME_INLINED) ? "true" : "false");
	}
	sb_puts(sb, ",\"children\":[");
	for (uint32_t i = 0; i < n->n_children; i++) {
		if (i)
			sb_putc(sb, ',');
		write_node(t, ct_child(t, id, i), root_name, sb);
	}
	sb_puts(sb, "]}");
}

static int write_tree(struct calltree *t, const char *name, struct strbuf *sb)
{
	struct tree_ctx c = {.t = t};
	int err = choose_min(t, EMBER_SANDWICH_MAX_NODES, &c.min);

	if (!err)
		err = ct_order(t, keep_node, cmp_value, &c);
	if (!err)
		write_node(t, 0, name, sb);
	return err;
}

/* Index of the outermost frame named fn in the stack, or -1. */
static long outermost(const struct ct_names *names, const struct ember_stack *st, uint32_t fn)
{
	const struct ember_profile *p = names->p[0];

	for (uint32_t i = st->depth; i-- > 0;)
		if (st->frames[i] < p->n_frames && names->frame_name[0][st->frames[i]] == fn)
			return (long)i;
	return -1;
}

/* Feed both trees; total and self of the function. */
static int split_stacks(const struct ct_names *names, uint32_t fn, struct calltree *callers,
			struct calltree *callees, uint64_t *total, uint64_t *self)
{
	const struct ember_profile *p = names->p[0];
	uint32_t max_depth = 0;
	uint32_t *buf;
	int err = 0;

	for (size_t i = 0; i < p->n_stacks; i++)
		if (p->stacks[i].depth > max_depth)
			max_depth = p->stacks[i].depth;
	buf = malloc((max_depth + 1) * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_stacks && !err; i++) {
		const struct ember_stack *st = &p->stacks[i];
		long k = outermost(names, st, fn);
		if (k < 0)
			continue;
		*total += st->count;
		if (st->frames[0] < p->n_frames && names->frame_name[0][st->frames[0]] == fn)
			*self += st->count;
		/* callees: frames[0..k) are already leaf first */
		err = ct_add(callees, 0, st->frames, (uint32_t)k, st->count);
		/* callers: frames (k, depth) reversed, nearest caller walked first */
		uint32_t n = 0;
		for (uint32_t j = st->depth; j-- > (uint32_t)k + 1;)
			buf[n++] = st->frames[j];
		if (!err)
			err = ct_add(callers, 0, buf, n, st->count);
	}
	free(buf);
	return err;
}

int ember_sandwich_json(const struct ember_profile *p, const char *function, struct strbuf *sb)
{
	struct ct_names names;
	struct calltree callers = {0}, callees = {0};
	uint64_t total = 0, self = 0;
	int err;

	err = ct_names_init(&names, p, NULL);
	if (!err)
		err = ct_init(&callers, &names, 2000000);
	if (!err)
		err = ct_init(&callees, &names, 2000000);
	if (!err) {
		uint32_t fn = ct_names_find(&names, function);
		if (fn != CT_NONE)
			err = split_stacks(&names, fn, &callers, &callees, &total, &self);
	}
	if (!err) {
		sb_puts(sb, "{\"function\":");
		sb_json_str(sb, function);
		sb_printf(sb,
			  ",\"total\":%" PRIu64 ",\"self\":%" PRIu64 ",\"total_share\":%.6g"
			  ",\"samples\":%" PRIu64 ",\"callers\":",
			  total, self, p->total ? (double)total / (double)p->total : 0.0, p->total);
		err = write_tree(&callers, function, sb);
		sb_puts(sb, ",\"callees\":");
		if (!err)
			err = write_tree(&callees, function, sb);
		sb_putc(sb, '}');
		if (!err && sb->oom)
			err = -ENOMEM;
	}
	ct_free(&callers);
	ct_free(&callees);
	ct_names_free(&names);
	return err;
}
