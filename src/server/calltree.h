/*
 * calltree.h - function names and merged call trees over one or two profiles.
 *
 * The diff, top-functions and sandwich endpoints all compare frames by the
 * name users see (ember_frame_name, "[truncated]" for the unwinder's
 * marker) and the kernel flag, as the flame graph does.  This module interns
 * those names once across both sides of a comparison, so everything after
 * works on small integers, and merges stacks root first into a tree whose
 * nodes carry a value and a self count per side.
 *
 * Side 0 is "A" (or the base), side 1 is "B" (or the selection).  A tree
 * built from one profile uses side 0 only.
 */
#ifndef EMBER_SERVER_CALLTREE_H
#define EMBER_SERVER_CALLTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "core/strbuf.h"

#define CT_NONE UINT32_MAX
#define CT_MAX_DEPTH 4096 /* deeper stacks are cut (and reported truncated) */

/* An open-addressing set of uint32 ids; equality is decided by the caller. */
struct ct_idset {
	uint32_t *slots; /* id + 1, 0 = empty */
	size_t cap;      /* power of two */
	size_t used;
};

/* Interned display names, and per side the name of every frame of its profile. */
struct ct_names {
	char **names;
	size_t n, cap;
	struct ct_idset set;
	const struct ember_profile *p[2];
	uint32_t *frame_name[2]; /* frame id -> name id, per side */
};

/* Name the frames of p (side 0) and q (side 1, may be NULL).  Returns 0 or -ENOMEM. */
int ct_names_init(struct ct_names *n, const struct ember_profile *p,
		  const struct ember_profile *q);
void ct_names_free(struct ct_names *n);
/* The id of name, or CT_NONE when no frame has it. */
uint32_t ct_names_find(const struct ct_names *n, const char *name);

struct ct_node {
	uint32_t parent;
	uint32_t name;
	uint32_t frame; /* first frame merged here (of side `side`): file, line, flags */
	uint8_t side;
	bool kernel;
	bool kept;
	uint32_t first_child, n_children; /* into the tree's order[] once ordered */
	uint64_t value[2], self[2];
};

struct calltree {
	struct ct_names *names;
	struct ct_node *nodes; /* nodes[0] is the root */
	size_t n_nodes, cap_nodes, max_nodes;
	struct ct_idset child_set;
	bool truncated; /* a stack was cut (depth or node budget) */
	uint32_t *order; /* kept non-root nodes, grouped by parent (see ct_order) */
	size_t n_order;
};

/* An empty tree (root only) over names; at most max_nodes nodes.  0 or -ENOMEM. */
int ct_init(struct calltree *t, struct ct_names *names, size_t max_nodes);
void ct_free(struct calltree *t);

/*
 * Merge a stack of side's profile whose frames, root first, are
 * frames[depth-1], ..., frames[0] (leaf-first, as in ember_stack).
 * Returns 0 or -ENOMEM.
 */
int ct_add(struct calltree *t, int side, const uint32_t *frames, uint32_t depth,
	   uint64_t count);
/* Merge every stack of the side's profile. */
int ct_add_profile(struct calltree *t, int side);

/*
 * Keep the nodes keep(node) accepts (the root always; a dropped node's
 * subtree must be dropped too, which holds for monotone thresholds) and
 * order each parent's children with cmp (qsort_r-style on node ids; arg is
 * passed through).  Returns 0 or -ENOMEM.
 */
int ct_order(struct calltree *t, bool (*keep)(const struct ct_node *n, void *arg),
	     int (*cmp)(const void *a, const void *b, void *arg), void *arg);

/*
 * For a tree on side 0 only: keep the nodes whose value is at least the
 * root's times fraction, raised until at most max_nodes (root included)
 * remain, and order children by value, largest first.  0 or -ENOMEM.
 */
int ct_keep_heaviest(struct calltree *t, double fraction, size_t max_nodes);

/*
 * Append node id and its kept subtree (after ct_order) as the flame-graph
 * JSON the UI reads:
 *   {"name":N,"value":V,"self":S,"file":F,"line":L,"kernel":K,"inlined":I,
 *    "children":[...]}
 * file and line only when known; the root is named root_name and has no
 * file, kernel or inlined.
 */
void ct_write_json(const struct calltree *t, uint32_t id, const char *root_name,
		   struct strbuf *sb);

/* Append a non-root node's ,"file":F,"line":L,"kernel":K,"inlined":I (file and line when known). */
void ct_write_frame_json(const struct calltree *t, const struct ct_node *n, struct strbuf *sb);

/* Node child i of id, after ct_order. */
static inline uint32_t ct_child(const struct calltree *t, uint32_t id, uint32_t i)
{
	return t->order[t->nodes[id].first_child + i];
}

/* The frame a node came from. */
static inline const struct ember_frame *ct_frame(const struct calltree *t, const struct ct_node *n)
{
	return &t->names->p[n->side]->frames[n->frame];
}

#endif
