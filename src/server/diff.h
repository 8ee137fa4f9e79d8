/*
 * diff.h - the differential flame graph of two profiles, A and B.
 *
 * Both profiles' stacks are merged root first into one tree keyed by
 * (frame name, kernel flag).  Every node carries its samples on each side
 * (value and self), and the change of its share of all samples:
 *   delta      = b / B_total - a / A_total
 *   delta_self = b_self / B_total - a_self / A_total
 * Normalizing by each side's total keeps a difference in load (B ran twice
 * as long, or on more machines) from showing up as a regression.
 *
 * Functions present in A but absent from every stack of B are listed apart
 * ("vanished"), since the tree drawn from B's widths cannot show them.
 */
#ifndef EMBER_SERVER_DIFF_H
#define EMBER_SERVER_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/profile.h"
#include "core/strbuf.h"

#define EMBER_DIFF_MIN_SHARE 0.0001   /* default: nodes below this share on both sides are dropped */
#define EMBER_DIFF_MAX_NODES 200000   /* nodes written at most */
#define EMBER_DIFF_MAX_VANISHED 200   /* vanished functions listed at most */

struct ember_diff_options {
	double min_share; /* < 0 = default; 0 keeps every node (up to max_nodes) */
	size_t max_nodes; /* 0 = default */
};

/*
 * Append
 *   {"a_total":NA,"b_total":NB,"nodes":K,"truncated":false,
 *    "root":{"name":"all","a":NA,"b":NB,"a_self":0,"b_self":0,"delta":0,
 *            "delta_self":0,"children":[{"name":..,"file":..,"line":..,
 *            "kernel":false,"inlined":false,"a":..,"b":..,"a_self":..,"b_self":..,
 *            "delta":..,"delta_self":..,"children":[...]}, ...]},
 *    "vanished":[{"name":..,"a_total_share":..,"a_self_share":..}, ...]}
 * to sb.  Children are sorted by max(a / NA, b / NB), largest first.
 * opt may be NULL.  Returns 0 or -ENOMEM.
 */
int ember_diff_json(const struct ember_profile *a, const struct ember_profile *b,
		    const struct ember_diff_options *opt, struct strbuf *sb);

#endif
