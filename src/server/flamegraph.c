/*
 * flamegraph.c - merge a profile's stacks into a tree and write it as JSON.
 *
 * Three steps:
 *   1. name every frame once (function, else module+offset) and intern the
 *      names, so merging compares small integers instead of strings;
 *   2. walk every stack root first and find or add the child keyed by
 *      (parent, name, kernel flag) in one hash table for the whole tree;
 *   3. pick the nodes worth writing (value threshold, node cap), order each
 *      parent's children by value, and write the JSON recursively.
 * All three are calltree.c's, with the one profile on side 0.
 *
 * A parent's value is never smaller than a child's, so dropping every node
 * below a value threshold keeps a connected tree: no kept node loses its
 * parent.  That is why the node cap is applied as a threshold too.
 */
#include "server/flamegraph.h"

#include <errno.h>

#include "server/calltree.h"

int ember_flamegraph_json(const struct ember_profile *p, const struct ember_flame_limits *lim,
			  struct strbuf *sb, struct ember_flame_result *res)
{
	size_t max_nodes = lim && lim->max_nodes ? lim->max_nodes : EMBER_FLAME_MAX_NODES;
	size_t max_build = EMBER_FLAME_MAX_BUILD_NODES;
	double fraction = lim && lim->min_fraction > 0 ? lim->min_fraction
						       : EMBER_FLAME_MIN_FRACTION;
	struct ct_names names;
	struct calltree t = {0};
	int err;

	if (max_nodes > max_build)
		max_build = max_nodes;
	err = ct_names_init(&names, p, NULL);
	if (!err)
		err = ct_init(&t, &names, max_build);
	if (!err)
		err = ct_add_profile(&t, 0);
	if (!err)
		err = ct_keep_heaviest(&t, fraction, max_nodes);
	if (!err) {
		ct_write_json(&t, 0, "all", sb);
		if (sb->oom)
			err = -ENOMEM;
	}
	if (res) {
		res->nodes = err ? 0 : t.n_order + 1;
		res->truncated = t.truncated;
	}
	ct_free(&t);
	ct_names_free(&names);
	return err;
}
