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
#include <stdlib.h>
#include <string.h>

#include "server/calltree.h"

static int write_tree(struct calltree *t, const char *name, struct strbuf *sb)
{
	int err = ct_keep_heaviest(t, EMBER_SANDWICH_MIN_FRACTION, EMBER_SANDWICH_MAX_NODES);

	if (!err)
		ct_write_json(t, 0, name, sb);
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
