/*
 * calltree.c - interned frame names and two-sided merged call trees.
 *
 * The same approach as flamegraph.c: names are interned in one hash set,
 * and the tree's children are found in one hash set keyed by (parent, name,
 * kernel flag), so merging a stack costs one probe per frame.  Each node
 * counts samples per side, which is what diffs need; single-sided users
 * leave side 1 at zero.
 */
#include "core/array.h"
#include "server/calltree.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


typedef uint64_t (*id_hash_fn)(const void *ctx, uint32_t id);

static int idset_grow(struct ct_idset *s, id_hash_fn hash, const void *ctx)
{
	size_t cap = s->cap ? s->cap * 2 : 1024;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slots[i])
			continue;
		size_t j = hash(ctx, s->slots[i] - 1) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

/* ---- names ---- */

static uint64_t str_hash(const char *s)
{
	return ember_hash64(s, strlen(s), 0);
}

static uint64_t name_hash(const void *ctx, uint32_t id)
{
	const struct ct_names *n = ctx;
	return str_hash(n->names[id]);
}

uint32_t ct_names_find(const struct ct_names *n, const char *name)
{
	if (!n->set.cap)
		return CT_NONE;
	size_t j = str_hash(name) & (n->set.cap - 1);
	while (n->set.slots[j]) {
		uint32_t id = n->set.slots[j] - 1;
		if (strcmp(n->names[id], name) == 0)
			return id;
		j = (j + 1) & (n->set.cap - 1);
	}
	return CT_NONE;
}

static uint32_t intern(struct ct_names *n, const char *name)
{
	struct ct_idset *s = &n->set;

	if ((s->used + 1) * 4 >= s->cap * 3 && idset_grow(s, name_hash, n))
		return CT_NONE;
	size_t j = str_hash(name) & (s->cap - 1);
	while (s->slots[j]) {
		uint32_t id = s->slots[j] - 1;
		if (strcmp(n->names[id], name) == 0)
			return id;
		j = (j + 1) & (s->cap - 1);
	}
	if (n->n >= UINT32_MAX - 1 || ember_array_grow((void **)&n->names, &n->cap, n->n + 1, sizeof(char *)))
		return CT_NONE;
	char *copy = strdup(name);
	if (!copy)
		return CT_NONE;
	n->names[n->n] = copy;
	s->slots[j] = (uint32_t)n->n + 1;
	s->used++;
	return (uint32_t)n->n++;
}

static const char *display_name(const struct ember_frame *f, char *buf, size_t size)
{
	if ((f->flags & EMBER_FRAME_TRUNCATED) && !(f->function && f->function[0]))
		return "[truncated]";
	return ember_frame_name(f, buf, size);
}

static int name_side(struct ct_names *n, int side)
{
	const struct ember_profile *p = n->p[side];
	char buf[512];

	n->frame_name[side] = calloc(p->n_frames ? p->n_frames : 1, sizeof(uint32_t));
	if (!n->frame_name[side])
		return -ENOMEM;
	for (size_t i = 0; i < p->n_frames; i++) {
		n->frame_name[side][i] = intern(n, display_name(&p->frames[i], buf, sizeof(buf)));
		if (n->frame_name[side][i] == CT_NONE)
			return -ENOMEM;
	}
	return 0;
}

int ct_names_init(struct ct_names *n, const struct ember_profile *p,
		  const struct ember_profile *q)
{
	int err;

	memset(n, 0, sizeof(*n));
	n->p[0] = p;
	n->p[1] = q;
	err = name_side(n, 0);
	if (!err && q)
		err = name_side(n, 1);
	return err;
}

void ct_names_free(struct ct_names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->names[i]);
	free(n->names);
	free(n->set.slots);
	free(n->frame_name[0]);
	free(n->frame_name[1]);
	memset(n, 0, sizeof(*n));
}

/* ---- the tree ---- */

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

static uint64_t child_hash(const void *ctx, uint32_t id)
{
	const struct calltree *t = ctx;
	const struct ct_node *n = &t->nodes[id];
	return mix3(n->parent, n->name, n->kernel);
}

int ct_init(struct calltree *t, struct ct_names *names, size_t max_nodes)
{
	memset(t, 0, sizeof(*t));
	t->names = names;
	t->max_nodes = max_nodes ? max_nodes : 1;
	if (ember_array_grow((void **)&t->nodes, &t->cap_nodes, 1, sizeof(*t->nodes)))
		return -ENOMEM;
	t->nodes[0] = (struct ct_node){.parent = CT_NONE, .name = CT_NONE, .frame = CT_NONE};
	t->n_nodes = 1;
	return 0;
}

void ct_free(struct calltree *t)
{
	free(t->nodes);
	free(t->child_set.slots);
	free(t->order);
	memset(t, 0, sizeof(*t));
}

/*
 * Find parent's child for (side, frame), adding it when new.  Returns the
 * node, CT_NONE with *oom set on allocation failure, CT_NONE alone when the
 * node budget is spent.
 */
static uint32_t child_of(struct calltree *t, uint32_t parent, int side, uint32_t frame,
			 bool *oom)
{
	struct ct_idset *s = &t->child_set;
	uint32_t name = t->names->frame_name[side][frame];
	bool kernel = t->names->p[side]->frames[frame].flags & EMBER_FRAME_KERNEL;

	if ((s->used + 1) * 4 >= s->cap * 3 && idset_grow(s, child_hash, t)) {
		*oom = true;
		return CT_NONE;
	}
	size_t j = mix3(parent, name, kernel) & (s->cap - 1);
	while (s->slots[j]) {
		const struct ct_node *n = &t->nodes[s->slots[j] - 1];
		if (n->parent == parent && n->name == name && n->kernel == kernel)
			return s->slots[j] - 1;
		j = (j + 1) & (s->cap - 1);
	}
	if (t->n_nodes >= t->max_nodes)
		return CT_NONE;
	if (ember_array_grow((void **)&t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(*t->nodes))) {
		*oom = true;
		return CT_NONE;
	}
	uint32_t id = (uint32_t)t->n_nodes++;
	t->nodes[id] = (struct ct_node){.parent = parent, .name = name, .frame = frame,
					.side = (uint8_t)side, .kernel = kernel};
	s->slots[j] = id + 1;
	s->used++;
	return id;
}

int ct_add(struct calltree *t, int side, const uint32_t *frames, uint32_t depth,
	   uint64_t count)
{
	const struct ember_profile *p = t->names->p[side];
	uint32_t cur = 0;
	bool oom = false, complete = true;

	t->nodes[0].value[side] += count;
	for (uint32_t i = depth; i-- > 0;) {
		if (frames[i] >= p->n_frames)
			continue; /* a dangling frame id: skip the frame, keep the stack */
		if (depth - i > CT_MAX_DEPTH) {
			complete = false;
			break;
		}
		uint32_t child = child_of(t, cur, side, frames[i], &oom);
		if (oom)
			return -ENOMEM;
		if (child == CT_NONE) {
			complete = false;
			break;
		}
		t->nodes[child].value[side] += count;
		cur = child;
	}
	if (complete)
		t->nodes[cur].self[side] += count;
	else
		t->truncated = true;
	return 0;
}

int ct_add_profile(struct calltree *t, int side)
{
	const struct ember_profile *p = t->names->p[side];

	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *st = &p->stacks[i];
		int err = ct_add(t, side, st->frames, st->depth, st->count);
		if (err)
			return err;
	}
	return 0;
}

struct order_ctx {
	const struct calltree *t;
	int (*cmp)(const void *a, const void *b, void *arg);
	void *arg;
};

static int by_parent(const void *pa, const void *pb, void *arg)
{
	const struct order_ctx *c = arg;
	uint32_t x = c->t->nodes[*(const uint32_t *)pa].parent;
	uint32_t y = c->t->nodes[*(const uint32_t *)pb].parent;

	if (x != y)
		return x < y ? -1 : 1;
	return c->cmp(pa, pb, c->arg);
}

int ct_order(struct calltree *t, bool (*keep)(const struct ct_node *n, void *arg),
	     int (*cmp)(const void *a, const void *b, void *arg), void *arg)
{
	struct order_ctx c = {.t = t, .cmp = cmp, .arg = arg};

	free(t->order);
	t->n_order = 0;
	t->order = malloc(t->n_nodes * sizeof(uint32_t));
	if (!t->order)
		return -ENOMEM;
	t->nodes[0].kept = true;
	t->nodes[0].n_children = 0;
	for (size_t i = 1; i < t->n_nodes; i++) {
		struct ct_node *n = &t->nodes[i];
		n->n_children = 0;
		n->kept = t->nodes[n->parent].kept && keep(n, arg);
		if (n->kept)
			t->order[t->n_order++] = (uint32_t)i;
		else
			t->truncated = true;
	}
	qsort_r(t->order, t->n_order, sizeof(uint32_t), by_parent, &c);
	for (size_t i = 0; i < t->n_order; i++) {
		struct ct_node *parent = &t->nodes[t->nodes[t->order[i]].parent];
		if (parent->n_children++ == 0)
			parent->first_child = (uint32_t)i;
	}
	return 0;
}

/* ---- single-sided trees: keep the heaviest nodes, write JSON ---- */

struct heaviest_ctx {
	const struct calltree *t;
	uint64_t min; /* smallest value kept */
};

static bool keep_heavy(const struct ct_node *n, void *arg)
{
	return n->value[0] >= ((const struct heaviest_ctx *)arg)->min;
}

/* Children by value, largest first, then by name (a stable, readable order). */
static int cmp_value(const void *pa, const void *pb, void *arg)
{
	const struct calltree *t = ((const struct heaviest_ctx *)arg)->t;
	const struct ct_node *x = &t->nodes[*(const uint32_t *)pa];
	const struct ct_node *y = &t->nodes[*(const uint32_t *)pb];

	if (x->value[0] != y->value[0])
		return x->value[0] > y->value[0] ? -1 : 1;
	int c = strcmp(t->names->names[x->name], t->names->names[y->name]);
	return c ? c : (int)x->kernel - (int)y->kernel;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

int ct_keep_heaviest(struct calltree *t, double fraction, size_t max_nodes)
{
	struct heaviest_ctx c = {.t = t};
	size_t n = 0;

	/* the fraction of the root, raised until at most max_nodes qualify */
	c.min = (uint64_t)ceil((double)t->nodes[0].value[0] * fraction);
	if (c.min < 1)
		c.min = 1;
	for (size_t i = 0; i < t->n_nodes; i++)
		n += t->nodes[i].value[0] >= c.min;
	if (max_nodes && n > max_nodes) {
		uint64_t *vals = malloc(n * sizeof(*vals));
		size_t k = 0;
		if (!vals)
			return -ENOMEM;
		for (size_t i = 0; i < t->n_nodes; i++)
			if (t->nodes[i].value[0] >= c.min)
				vals[k++] = t->nodes[i].value[0];
		qsort(vals, k, sizeof(*vals), cmp_u64_desc);
		/* strictly above the (max_nodes+1)-th largest: ties never overflow */
		c.min = vals[max_nodes] + 1;
		free(vals);
	}
	return ct_order(t, keep_heavy, cmp_value, &c);
}

void ct_write_frame_json(const struct calltree *t, const struct ct_node *n, struct strbuf *sb)
{
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

void ct_write_json(const struct calltree *t, uint32_t id, const char *root_name,
		   struct strbuf *sb)
{
	const struct ct_node *n = &t->nodes[id];

	sb_puts(sb, "{\"name\":");
	sb_json_str(sb, id == 0 ? root_name : t->names->names[n->name]);
	sb_printf(sb, ",\"value\":%" PRIu64 ",\"self\":%" PRIu64, n->value[0], n->self[0]);
	if (id != 0)
		ct_write_frame_json(t, n, sb);
	sb_puts(sb, ",\"children\":[");
	for (uint32_t i = 0; i < n->n_children; i++) {
		if (i)
			sb_putc(sb, ',');
		ct_write_json(t, ct_child(t, id, i), root_name, sb);
	}
	sb_puts(sb, "]}");
}
