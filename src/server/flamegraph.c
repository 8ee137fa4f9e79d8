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
 *
 * A parent's value is never smaller than a child's, so dropping every node
 * below a value threshold keeps a connected tree: no kept node loses its
 * parent.  That is why the node cap is applied as a threshold too.
 */
#include "core/array.h"
#include "server/flamegraph.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define MAX_TREE_DEPTH 4096 /* deeper stacks are cut (and reported truncated) */

struct fnode {
	uint32_t parent;
	uint32_t name;        /* index into names */
	uint32_t frame;       /* first frame merged here: file, line, flags */
	uint32_t first_child; /* index into the sorted child order */
	uint32_t n_children;
	bool kernel;
	bool kept;
	uint64_t value, self;
};

/* An open-addressing set of uint32 ids; equality is decided by the caller. */
struct idset {
	uint32_t *slots; /* id + 1, 0 = empty */
	size_t cap;      /* power of two */
	size_t used;
};

struct builder {
	const struct ember_profile *p;
	char **names;
	size_t n_names, cap_names;
	struct idset name_set;
	uint32_t *frame_name; /* frame id -> name id */

	struct fnode *nodes;
	size_t n_nodes, cap_nodes, max_build_nodes;
	struct idset child_set;
	bool truncated;

	uint32_t *order; /* kept non-root nodes sorted by (parent, value desc) */
	size_t n_order;
};

static uint64_t mix3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ULL;

	h ^= b + 0x632be59bd9b4e019ULL + (h << 6) + (h >> 2);
	h ^= c + 0x94d049bb133111ebULL + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return h;
}

static int idset_grow(struct idset *s, uint64_t (*hash)(struct builder *, uint32_t),
		      struct builder *b)
{
	size_t cap = s->cap ? s->cap * 2 : 1024;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slots[i])
			continue;
		size_t j = hash(b, s->slots[i] - 1) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}


/* ---- step 1: frame names ---- */

static uint64_t name_hash(struct builder *b, uint32_t id)
{
	return ember_hash64(b->names[id], strlen(b->names[id]), 0);
}

/* Return the id of name, adding a copy when new; NONE on OOM. */
static uint32_t intern_name(struct builder *b, const char *name)
{
	struct idset *s = &b->name_set;
	uint64_t h = ember_hash64(name, strlen(name), 0);

	if ((s->used + 1) * 4 >= s->cap * 3 && idset_grow(s, name_hash, b))
		return NONE;
	size_t j = h & (s->cap - 1);
	while (s->slots[j]) {
		uint32_t id = s->slots[j] - 1;
		if (strcmp(b->names[id], name) == 0)
			return id;
		j = (j + 1) & (s->cap - 1);
	}
	if (ember_array_grow((void **)&b->names, &b->cap_names, b->n_names + 1, sizeof(char *)))
		return NONE;
	char *copy = strdup(name);
	if (!copy)
		return NONE;
	b->names[b->n_names] = copy;
	s->slots[j] = (uint32_t)b->n_names + 1;
	s->used++;
	return (uint32_t)b->n_names++;
}

static const char *display_name(const struct ember_frame *f, char *buf, size_t size)
{
	if ((f->flags & EMBER_FRAME_TRUNCATED) && !(f->function && f->function[0]))
		return "[truncated]";
	return ember_frame_name(f, buf, size);
}

static int name_frames(struct builder *b)
{
	const struct ember_profile *p = b->p;
	char buf[512];

	b->frame_name = calloc(p->n_frames ? p->n_frames : 1, sizeof(uint32_t));
	if (!b->frame_name)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_frames; i++) {
		b->frame_name[i] = intern_name(b, display_name(&p->frames[i], buf, sizeof(buf)));
		if (b->frame_name[i] == NONE)
			return -ENOMEM;
	}
	return 0;
}

/* ---- step 2: the tree ---- */

static uint64_t child_hash_of(uint32_t parent, uint32_t name, bool kernel)
{
	return mix3(parent, name, kernel);
}

static uint64_t child_hash(struct builder *b, uint32_t id)
{
	const struct fnode *n = &b->nodes[id];
	return child_hash_of(n->parent, n->name, n->kernel);
}

static uint32_t add_node(struct builder *b, uint32_t parent, uint32_t name, uint32_t frame,
			 bool kernel)
{
	if (ember_array_grow((void **)&b->nodes, &b->cap_nodes, b->n_nodes + 1, sizeof(struct fnode)))
		return NONE;
	b->nodes[b->n_nodes] = (struct fnode){.parent = parent, .name = name, .frame = frame,
					      .kernel = kernel};
	return (uint32_t)b->n_nodes++;
}

/*
 * Find parent's child (name, kernel), adding it when new.  Returns the node,
 * NONE with *oom set on allocation failure, NONE alone when the node budget
 * is spent.
 */
static uint32_t child_of(struct builder *b, uint32_t parent, uint32_t frame, bool *oom)
{
	struct idset *s = &b->child_set;
	uint32_t name = b->frame_name[frame];
	bool kernel = b->p->frames[frame].flags & EMBER_FRAME_KERNEL;
	uint64_t h = child_hash_of(parent, name, kernel);

	if ((s->used + 1) * 4 >= s->cap * 3 && idset_grow(s, child_hash, b)) {
		*oom = true;
		return NONE;
	}
	size_t j = h & (s->cap - 1);
	while (s->slots[j]) {
		const struct fnode *n = &b->nodes[s->slots[j] - 1];
		if (n->parent == parent && n->name == name && n->kernel == kernel)
			return s->slots[j] - 1;
		j = (j + 1) & (s->cap - 1);
	}
	if (b->n_nodes >= b->max_build_nodes)
		return NONE;
	uint32_t id = add_node(b, parent, name, frame, kernel);
	if (id == NONE) {
		*oom = true;
		return NONE;
	}
	s->slots[j] = id + 1;
	s->used++;
	return id;
}

/* Merge one stack, outermost frame first. */
static int add_stack(struct builder *b, const struct ember_stack *st)
{
	uint32_t cur = 0;
	bool oom = false, complete = true;

	b->nodes[0].value += st->count;
	for (uint32_t i = st->depth; i-- > 0;) {
		uint32_t frame = st->frames[i];
		if (frame >= b->p->n_frames)
			continue; /* a dangling frame id: skip the frame, keep the stack */
		if (st->depth - i > MAX_TREE_DEPTH) {
			complete = false;
			break;
		}
		uint32_t child = child_of(b, cur, frame, &oom);
		if (oom)
			return -ENOMEM;
		if (child == NONE) {
			complete = false;
			break;
		}
		b->nodes[child].value += st->count;
		cur = child;
	}
	if (complete)
		b->nodes[cur].self += st->count;
	else
		b->truncated = true;
	return 0;
}

static int build_tree(struct builder *b)
{
	int err = name_frames(b);

	if (err)
		return err;
	if (add_node(b, NONE, NONE, NONE, false) == NONE)
		return -ENOMEM;
	for (size_t i = 0; i < b->p->n_stacks; i++) {
		err = add_stack(b, &b->p->stacks[i]);
		if (err)
			return err;
	}
	return 0;
}

/* ---- step 3: choose, order, write ---- */

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * The smallest value a node needs to be written: the fraction of the total,
 * raised until at most max_nodes nodes qualify.
 */
static int choose_threshold(struct builder *b, double fraction, size_t max_nodes,
			    uint64_t *out)
{
	uint64_t min = (uint64_t)ceil((double)b->nodes[0].value * fraction);
	size_t n = 0;

	if (min < 1)
		min = 1;
	for (size_t i = 0; i < b->n_nodes; i++)
		n += b->nodes[i].value >= min;
	if (n > max_nodes) {
		uint64_t *vals = malloc(n * sizeof(*vals));
		size_t k = 0;
		if (!vals)
			return -ENOMEM;
		for (size_t i = 0; i < b->n_nodes; i++)
			if (b->nodes[i].value >= min)
				vals[k++] = b->nodes[i].value;
		qsort(vals, k, sizeof(*vals), cmp_u64_desc);
		/* strictly above the (max_nodes+1)-th largest: ties never overflow */
		min = vals[max_nodes] + 1;
		free(vals);
	}
	*out = min;
	return 0;
}

static int cmp_children(const void *pa, const void *pb, void *arg)
{
	const struct builder *b = arg;
	const struct fnode *x = &b->nodes[*(const uint32_t *)pa];
	const struct fnode *y = &b->nodes[*(const uint32_t *)pb];

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (x->value != y->value)
		return x->value > y->value ? -1 : 1;
	int c = strcmp(b->names[x->name], b->names[y->name]);
	if (c)
		return c;
	return (int)x->kernel - (int)y->kernel;
}

static int order_children(struct builder *b, uint64_t min)
{
	b->nodes[0].kept = true;
	for (size_t i = 1; i < b->n_nodes; i++) {
		b->nodes[i].kept = b->nodes[i].value >= min;
		if (!b->nodes[i].kept && b->nodes[i].value > 0)
			b->truncated = true;
	}
	b->order = malloc(b->n_nodes * sizeof(uint32_t));
	if (!b->order)
		return -ENOMEM;
	for (size_t i = 1; i < b->n_nodes; i++)
		if (b->nodes[i].kept)
			b->order[b->n_order++] = (uint32_t)i;
	qsort_r(b->order, b->n_order, sizeof(uint32_t), cmp_children, b);
	for (size_t i = 0; i < b->n_order; i++) {
		struct fnode *parent = &b->nodes[b->nodes[b->order[i]].parent];
		if (parent->n_children++ == 0)
			parent->first_child = (uint32_t)i;
	}
	return 0;
}

static void write_node(struct builder *b, uint32_t id, struct strbuf *sb)
{
	const struct fnode *n = &b->nodes[id];

	if (id == 0) {
		sb_printf(sb, "{\"name\":\"all\",\"value\":%" PRIu64 ",\"self\":0", n->value);
	} else {
		const struct ember_frame *f = &b->p->frames[n->frame];
		sb_puts(sb, "{\"name\":");
		sb_json_str(sb, b->names[n->name]);
		sb_printf(sb, ",\"value\":%" PRIu64 ",\"self\":%" PRIu64, n->value, n->self);
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
		write_node(b, b->order[n->first_child + i], sb);
	}
	sb_puts(sb, "]}");
}

static void builder_free(struct builder *b)
{
	for (size_t i = 0; i < b->n_names; i++)
		free(b->names[i]);
	free(b->names);
	free(b->name_set.slots);
	free(b->frame_name);
	free(b->nodes);
	free(b->child_set.slots);
	free(b->order);
}

int ember_flamegraph_json(const struct ember_profile *p, const struct ember_flame_limits *lim,
			  struct strbuf *sb, struct ember_flame_result *res)
{
	struct builder b = {.p = p, .max_build_nodes = EMBER_FLAME_MAX_BUILD_NODES};
	size_t max_nodes = lim && lim->max_nodes ? lim->max_nodes : EMBER_FLAME_MAX_NODES;
	double fraction = lim && lim->min_fraction > 0 ? lim->min_fraction
						       : EMBER_FLAME_MIN_FRACTION;
	uint64_t min;
	int err;

	if (max_nodes > b.max_build_nodes)
		b.max_build_nodes = max_nodes;
	err = build_tree(&b);
	if (!err)
		err = choose_threshold(&b, fraction, max_nodes, &min);
	if (!err)
		err = order_children(&b, min);
	if (!err) {
		write_node(&b, 0, sb);
		if (sb->oom)
			err = -ENOMEM;
	}
	if (res) {
		res->nodes = err ? 0 : b.n_order + 1;
		res->truncated = b.truncated;
	}
	builder_free(&b);
	return err;
}
