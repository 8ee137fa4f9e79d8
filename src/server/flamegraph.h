/*
 * flamegraph.h - turn a profile into the flame-graph tree the web UI draws.
 *
 * Stacks are stored leaf first; a flame graph is drawn root first, so every
 * stack is walked from its outermost frame inwards and merged into a tree
 * whose children are keyed by (frame name, kernel flag).  Each node carries
 * `value` (samples in this frame and below) and `self` (samples that ended
 * in this frame).  Children are written largest first.
 *
 * The output is bounded: nodes below a fraction of the total are dropped and
 * at most max_nodes nodes are written; a parent keeps the value of children
 * it lost, so the graph stays proportionally right, and the result says
 * that it was truncated.
 */
#ifndef EMBER_SERVER_FLAMEGRAPH_H
#define EMBER_SERVER_FLAMEGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "core/strbuf.h"

#define EMBER_FLAME_MAX_NODES 200000      /* nodes written */
#define EMBER_FLAME_MIN_FRACTION 1e-5     /* nodes below total * this are dropped */
#define EMBER_FLAME_MAX_BUILD_NODES 2000000 /* nodes held while merging stacks */

struct ember_flame_limits {
	size_t max_nodes;    /* nodes written at most, root included; 0 = default */
	double min_fraction; /* drop nodes below total * this; 0 = default */
};

struct ember_flame_result {
	size_t nodes;   /* nodes written, the root included */
	bool truncated; /* some nodes were dropped or stacks were cut short */
};

/*
 * Append the tree as one JSON object to sb:
 *   {"name":"all","value":N,"self":0,"children":[
 *     {"name":"main","value":V,"self":S,"file":"m.c","line":3,
 *      "kernel":false,"inlined":false,"children":[...]}, ...]}
 * "file" and "line" are present only when known.  lim may be NULL (defaults).
 * res may be NULL.  Returns 0 or -ENOMEM.
 */
int ember_flamegraph_json(const struct ember_profile *p, const struct ember_flame_limits *lim,
			  struct strbuf *sb, struct ember_flame_result *res);

#endif
