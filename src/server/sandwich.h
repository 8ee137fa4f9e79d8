/*
 * sandwich.h - callers and callees of one function.
 *
 * For every stack that contains the function, its outermost occurrence
 * splits the stack in two: the frames above it (its callers, walked from
 * the function toward the root) and the frames below it (its callees, down
 * to the leaf).  Each half is merged into a tree rooted at the function, so
 * both roots have the function's total as their value.  A recursive
 * function is counted once per stack; its inner calls appear among its
 * callees.
 */
#ifndef EMBER_SERVER_SANDWICH_H
#define EMBER_SERVER_SANDWICH_H

#include "core/profile.h"
#include "core/strbuf.h"

#define EMBER_SANDWICH_MAX_NODES 100000 /* nodes written per tree */
#define EMBER_SANDWICH_MIN_FRACTION 1e-5 /* nodes below total * this are dropped */

/*
 * Append
 *   {"function":NAME,"total":N,"self":n,"total_share":f,"samples":ALL,
 *    "callers":{"name":NAME,"value":N,"self":n0,"children":[...]},
 *    "callees":{"name":NAME,"value":N,"self":n1,"children":[...]}}
 * where tree nodes are {"name","value","self","file","line","kernel",
 * "inlined","children"} as in the flame graph.  "self" at the top is the
 * samples whose leaf is the function; a callers root's self counts stacks
 * where the function has no caller, a callees root's those where its
 * outermost call is the leaf.  A function no stack contains gives total 0
 * and empty trees.  Returns 0 or -ENOMEM.
 */
int ember_sandwich_json(const struct ember_profile *p, const char *function, struct strbuf *sb);

#endif
