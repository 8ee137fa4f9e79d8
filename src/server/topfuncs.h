/*
 * topfuncs.h - per-function self and total samples, optionally against a base.
 *
 * A function is a frame name as the flame graph shows it.  Its self count
 * is the samples whose leaf frame it is; its total is the samples whose
 * stack contains it, counted once per stack even when it recurses.  With a
 * base profile every share is also computed on the base, and the diff
 * columns are share in the selection minus share in the base, so a
 * selection with twice the load of its base shows no change.
 */
#ifndef EMBER_SERVER_TOPFUNCS_H
#define EMBER_SERVER_TOPFUNCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "core/strbuf.h"
#include "server/calltree.h"

#define EMBER_TOP_DEFAULT_LIMIT 100
#define EMBER_TOP_MAX_LIMIT 10000

/* Counts of one function (indexed by name id); side 0 and side 1 as in ct_names. */
struct ember_func_stat {
	uint64_t self[2], total[2];
	uint8_t side;   /* side and frame of its first frame: file, line, flags */
	uint32_t frame;
	bool seen;      /* some frame of either profile has this name */
};

/*
 * Count every function of names' profiles.  *out (names->n entries, indexed
 * by name id) is freed by the caller.  Returns 0 or -ENOMEM.
 */
int ember_func_stats(const struct ct_names *names, struct ember_func_stat **out);

enum ember_top_sort { EMBER_TOP_SELF, EMBER_TOP_TOTAL, EMBER_TOP_DIFF, EMBER_TOP_DIFF_TOTAL };

/*
 * Append {"total":N,"base_total":M|null,"functions":[{"name","file","line",
 * "self","total","self_share","total_share","base_self_share",
 * "base_total_share","diff_self","diff_total"}, ...]} to sb: at most limit
 * functions (0 = default), sorted by self, total, diff_self or diff_total,
 * largest first (smallest first when ascending: the most negative changes,
 * the improvements, come first).  base may be NULL (then the base and diff
 * fields are null and the diff sorts sort by self).  Returns 0 or -ENOMEM.
 */
int ember_top_json(const struct ember_profile *p, const struct ember_profile *base,
		   enum ember_top_sort sort, bool ascending, size_t limit, struct strbuf *sb);

#endif
