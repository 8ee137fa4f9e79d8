/*
 * pprof.c - the pprof encoder: ember_profile -> profile.proto -> gzip.
 *
 * pprof normalizes what Ember's model keeps per frame into four tables that
 * samples refer to by id (ids start at 1):
 *
 *   Mapping   one per distinct (module, build-id): the file a frame's code
 *             lives in.  Kernel frames go to a "[kernel]" mapping.  The
 *             has_* flags say truthfully how much symbol information the
 *             mapping's locations carry; `go tool pprof` re-symbolizes a
 *             mapping without functions when it finds the binary locally.
 *   Function  one per distinct (name, file), with the start line when known.  Frames with no function name
 *             get the name ember_frame_name() gives them ("libfoo.so+0x1a2b")
 *             so pprof shows what the folded text and the UI show.
 *   Location  one per distinct run of frames at one (module, address): an
 *             inline chain (frames flagged EMBER_FRAME_INLINED followed by
 *             the function they were inlined into, all at the same address)
 *             is folded into one Location whose Lines are innermost first.
 *   Sample    one per stack of the profile: location ids leaf first, values
 *             {count, count * period_ns}, optional labels.
 *
 * Every string goes into one string table (entry 0 is "").  Each table is
 * deduplicated through a small open-addressing index of (hash, element
 * number).  Results are cached per frame id, since the same frame appears in
 * many stacks.  Everything is allocated in growable arrays owned by the
 * encoder and freed at the end; protobuf-c only reads them while packing.
 */
#include "core/array.h"
#include "pprof/pprof.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/log.h"
#include "core/safefile.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile pb_profile;
typedef Perftools__Profiles__ValueType pb_value_type;
typedef Perftools__Profiles__Sample pb_sample;
typedef Perftools__Profiles__Label pb_label;
typedef Perftools__Profiles__Mapping pb_mapping;
typedef Perftools__Profiles__Location pb_location;
typedef Perftools__Profiles__Line pb_line;
typedef Perftools__Profiles__Function pb_function;

#define NOT_CACHED UINT32_MAX
#define NO_MAPPING (UINT32_MAX - 1)

/* ---- a dedup index: hash -> element number ---------------------------- */

struct ix_slot {
	uint64_t hash; /* 0 = empty; ember_hash64 never returns 0 */
	uint32_t idx;
};

struct ix {
	struct ix_slot *slots;
	size_t cap, used;
};

struct enc;
typedef bool (*ix_eq_fn)(const struct enc *e, uint32_t idx, const void *key);

static int ix_grow(struct ix *t)
{
	size_t cap = t->cap ? t->cap * 2 : 256;
	struct ix_slot *s = calloc(cap, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->slots[i].hash)
			continue;
		size_t j = t->slots[i].hash & (cap - 1);
		while (s[j].hash)
			j = (j + 1) & (cap - 1);
		s[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = s;
	t->cap = cap;
	return 0;
}

/* The slot holding an element equal to key, or the empty slot for it; NULL on OOM. */
static struct ix_slot *ix_find(struct ix *t, uint64_t hash, ix_eq_fn eq, const struct enc *e,
			       const void *key)
{
	if ((t->used + 1) * 4 >= t->cap * 3 && ix_grow(t))
		return NULL;
	size_t j = hash & (t->cap - 1);
	while (t->slots[j].hash) {
		if (t->slots[j].hash == hash && eq(e, t->slots[j].idx, key))
			return &t->slots[j];
		j = (j + 1) & (t->cap - 1);
	}
	return &t->slots[j];
}

static void ix_claim(struct ix *t, struct ix_slot *slot, uint64_t hash, size_t idx)
{
	slot->hash = hash;
	slot->idx = (uint32_t)idx;
	t->used++;
}


/* ---- encoder state ------------------------------------------------------ */

/* What identifies a Location: a run of frame ids, or (for a root frame) a name. */
struct loc_key {
	size_t run_off;  /* into enc.run_pool */
	uint32_t run_len;
	int64_t root;    /* string id of a process root frame, 0 otherwise */
	size_t line_off; /* into enc.lines */
};

struct lookup_run {
	const uint32_t *frames;
	uint32_t n;
	int64_t root;
};

struct label_set {
	pb_label *labels;
	pb_label **ptrs;
	size_t n;
};

struct enc {
	const struct ember_profile *p;
	struct ember_pprof_options opt;

	char **strs; /* the string table, each string owned */
	size_t *str_lens;
	size_t n_strs, cap_strs, cap_str_lens;
	struct ix str_ix;

	pb_mapping *maps;
	size_t n_maps, cap_maps;
	struct ix map_ix;

	pb_function *funcs;
	size_t n_funcs, cap_funcs;
	struct ix func_ix;

	pb_location *locs;
	struct loc_key *loc_keys;
	size_t n_locs, cap_locs, cap_loc_keys;
	struct ix loc_ix;
	uint32_t *run_pool;
	size_t n_run_pool, cap_run_pool;
	pb_line *lines;
	size_t n_lines, cap_lines;

	uint32_t *frame_map;  /* per frame id: mapping index, NO_MAPPING or NOT_CACHED */
	uint32_t *frame_func; /* per frame id: function index or NOT_CACHED */
	uint32_t *frame_loc;  /* per frame id: location of a one-frame run, or NOT_CACHED */

	struct label_set *target_labels; /* per target */
	uint32_t *target_root;           /* per target: root location, or NOT_CACHED */

	pb_sample *samples;
	size_t n_samples;
	uint64_t *loc_ids;
	int64_t *values;
};

static void enc_free(struct enc *e)
{
	for (size_t i = 0; i < e->n_strs; i++)
		free(e->strs[i]);
	free(e->strs);
	free(e->str_lens);
	free(e->str_ix.slots);
	free(e->maps);
	free(e->map_ix.slots);
	free(e->funcs);
	free(e->func_ix.slots);
	free(e->locs);
	free(e->loc_keys);
	free(e->loc_ix.slots);
	free(e->run_pool);
	free(e->lines);
	free(e->frame_map);
	free(e->frame_func);
	free(e->frame_loc);
	if (e->target_labels) {
		for (size_t i = 0; i < e->p->n_targets; i++) {
			free(e->target_labels[i].labels);
			free(e->target_labels[i].ptrs);
		}
	}
	free(e->target_labels);
	free(e->target_root);
	free(e->samples);
	free(e->loc_ids);
	free(e->values);
}

/* ---- strings ------------------------------------------------------------ */

struct lookup_str {
	const char *s;
	size_t len;
};

static bool str_eq(const struct enc *e, uint32_t idx, const void *key)
{
	const struct lookup_str *k = key;
	return e->str_lens[idx] == k->len && memcmp(e->strs[idx], k->s, k->len) == 0;
}

/* String-table index of s[0..len), added if new.  Returns 0 or -ENOMEM. */
static int str_id_n(struct enc *e, const char *s, size_t len, int64_t *id)
{
	struct lookup_str k = {s, len};
	uint64_t h = ember_hash64(s, len, 0x737472);
	struct ix_slot *slot = ix_find(&e->str_ix, h, str_eq, e, &k);

	if (!slot)
		return -ENOMEM;
	if (slot->hash) {
		*id = slot->idx;
		return 0;
	}
	if (ember_array_grow(&e->strs, &e->cap_strs, e->n_strs + 1, sizeof(*e->strs)) ||
	    ember_array_grow(&e->str_lens, &e->cap_str_lens, e->n_strs + 1, sizeof(*e->str_lens)))
		return -ENOMEM;
	char *copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s, len);
	copy[len] = '\0';
	e->strs[e->n_strs] = copy;
	e->str_lens[e->n_strs] = len;
	ix_claim(&e->str_ix, slot, h, e->n_strs);
	*id = (int64_t)e->n_strs++;
	return 0;
}

/* Same for a C string; NULL is the empty string (index 0). */
static int str_id(struct enc *e, const char *s, int64_t *id)
{
	return str_id_n(e, s ? s : "", s ? strlen(s) : 0, id);
}

/* ---- mappings ----------------------------------------------------------- */

struct lookup_map {
	int64_t filename, build_id;
};

static bool map_eq(const struct enc *e, uint32_t idx, const void *key)
{
	const struct lookup_map *k = key;
	return e->maps[idx].filename == k->filename && e->maps[idx].build_id == k->build_id;
}

/* The file a frame's code lives in, or NULL when unknown. */
static const char *frame_module(const struct ember_frame *f)
{
	if (f->module && f->module[0])
		return f->module;
	return (f->flags & EMBER_FRAME_KERNEL) ? "[kernel]" : NULL;
}

/* Mapping index of frame fid (NO_MAPPING when its module is unknown). */
static int frame_mapping(struct enc *e, uint32_t fid, uint32_t *out)
{
	const struct ember_frame *f = &e->p->frames[fid];
	const char *module = frame_module(f);
	struct lookup_map k;
	uint64_t h;
	int err;

	if (e->frame_map[fid] != NOT_CACHED) {
		*out = e->frame_map[fid];
		return 0;
	}
	if (!module) {
		*out = e->frame_map[fid] = NO_MAPPING;
		return 0;
	}
	if ((err = str_id(e, module, &k.filename)) || (err = str_id(e, f->build_id, &k.build_id)))
		return err;
	h = ember_hash64(&k, sizeof(k), 0x6d6170);
	struct ix_slot *slot = ix_find(&e->map_ix, h, map_eq, e, &k);
	if (!slot)
		return -ENOMEM;
	if (!slot->hash) {
		if (ember_array_grow(&e->maps, &e->cap_maps, e->n_maps + 1, sizeof(*e->maps)))
			return -ENOMEM;
		pb_mapping m = PERFTOOLS__PROFILES__MAPPING__INIT;
		m.filename = k.filename;
		m.build_id = k.build_id;
		e->maps[e->n_maps] = m;
		ix_claim(&e->map_ix, slot, h, e->n_maps++);
	}
	/* Each distinct frame adds what it knows to its mapping's flags, once. */
	pb_mapping *m = &e->maps[slot->idx];
	m->has_functions |= f->function && f->function[0];
	m->has_filenames |= f->file && f->file[0];
	m->has_line_numbers |= f->line != 0;
	m->has_inline_frames |= (f->flags & EMBER_FRAME_INLINED) != 0;
	*out = e->frame_map[fid] = slot->idx;
	return 0;
}

/* ---- functions ---------------------------------------------------------- */

struct lookup_func {
	int64_t name, filename;
};

static bool func_eq(const struct enc *e, uint32_t idx, const void *key)
{
	const struct lookup_func *k = key;
	return e->funcs[idx].name == k->name && e->funcs[idx].filename == k->filename;
}

/* Function index for (name, filename) string ids, added if new. */
static int function_index(struct enc *e, int64_t name, int64_t filename, uint32_t start_line,
			  uint32_t *out)
{
	struct lookup_func k = {name, filename};
	uint64_t h = ember_hash64(&k, sizeof(k), 0x666e63);
	struct ix_slot *slot = ix_find(&e->func_ix, h, func_eq, e, &k);

	if (!slot)
		return -ENOMEM;
	if (!slot->hash) {
		if (ember_array_grow(&e->funcs, &e->cap_funcs, e->n_funcs + 1, sizeof(*e->funcs)))
			return -ENOMEM;
		pb_function fn = PERFTOOLS__PROFILES__FUNCTION__INIT;
		fn.name = name;
		fn.system_name = name;
		fn.filename = filename;
		fn.start_line = start_line;
		e->funcs[e->n_funcs] = fn;
		ix_claim(&e->func_ix, slot, h, e->n_funcs++);
	}
	*out = slot->idx;
	return 0;
}

static int frame_function(struct enc *e, uint32_t fid, uint32_t *out)
{
	const struct ember_frame *f = &e->p->frames[fid];
	char buf[512];
	const char *name;
	int64_t name_id, file_id;
	int err;

	if (e->frame_func[fid] != NOT_CACHED) {
		*out = e->frame_func[fid];
		return 0;
	}
	/* Long C++ names are used as they are; only synthesized names go through buf. */
	name = f->function && f->function[0] ? f->function : ember_frame_name(f, buf, sizeof(buf));
	if ((err = str_id(e, name, &name_id)) || (err = str_id(e, f->file, &file_id)) ||
	    (err = function_index(e, name_id, file_id, f->start_line, out)))
		return err;
	e->frame_func[fid] = *out;
	return 0;
}

/* ---- locations ---------------------------------------------------------- */

static bool loc_eq(const struct enc *e, uint32_t idx, const void *key)
{
	const struct lookup_run *k = key;
	const struct loc_key *l = &e->loc_keys[idx];

	return l->root == k->root && l->run_len == k->n &&
	       memcmp(e->run_pool + l->run_off, k->frames, k->n * sizeof(uint32_t)) == 0;
}

/* Append a Location for run (no lines yet); its index goes to *out. */
static int new_location(struct enc *e, const struct lookup_run *k, struct ix_slot *slot,
			uint64_t h, uint32_t *out)
{
	if (ember_array_grow(&e->locs, &e->cap_locs, e->n_locs + 1, sizeof(*e->locs)) ||
	    ember_array_grow(&e->loc_keys, &e->cap_loc_keys, e->n_locs + 1, sizeof(*e->loc_keys)) ||
	    ember_array_grow(&e->run_pool, &e->cap_run_pool, e->n_run_pool + k->n, sizeof(*e->run_pool)) ||
	    ember_array_grow(&e->lines, &e->cap_lines, e->n_lines + (k->n ? k->n : 1), sizeof(*e->lines)))
		return -ENOMEM;
	pb_location loc = PERFTOOLS__PROFILES__LOCATION__INIT;
	e->locs[e->n_locs] = loc;
	e->loc_keys[e->n_locs] = (struct loc_key){
		.run_off = e->n_run_pool, .run_len = k->n, .root = k->root, .line_off = e->n_lines};
	if (k->n)
		memcpy(e->run_pool + e->n_run_pool, k->frames, k->n * sizeof(uint32_t));
	e->n_run_pool += k->n;
	ix_claim(&e->loc_ix, slot, h, e->n_locs);
	*out = (uint32_t)e->n_locs++;
	return 0;
}

static void add_line(struct enc *e, pb_location *loc, uint32_t func, uint32_t line)
{
	pb_line l = PERFTOOLS__PROFILES__LINE__INIT;

	l.function_id = (uint64_t)func + 1;
	l.line = line;
	e->lines[e->n_lines++] = l; /* room reserved by new_location */
	loc->n_line++;
}

/*
 * Location of a run of frames at one address (an inline chain, innermost
 * first, or a single frame).  Its Lines are the run's frames in order.
 */
static int run_location(struct enc *e, const uint32_t *run, uint32_t n, uint32_t *out)
{
	struct lookup_run k = {run, n, 0};
	uint64_t h = ember_hash64(run, n * sizeof(uint32_t), 0x6c6f63 + n);
	struct ix_slot *slot;
	uint32_t map, func, idx;
	int err;

	if (n == 1 && e->frame_loc[run[0]] != NOT_CACHED) {
		*out = e->frame_loc[run[0]];
		return 0;
	}
	slot = ix_find(&e->loc_ix, h, loc_eq, e, &k);
	if (!slot)
		return -ENOMEM;
	if (slot->hash) {
		*out = slot->idx;
		return 0;
	}
	/*
	 * Resolve everything that can fail before the Location exists (this
	 * touches the string, mapping and function indexes, not loc_ix, so
	 * the slot stays valid).
	 */
	if ((err = frame_mapping(e, run[0], &map)))
		return err;
	for (uint32_t i = 0; i < n; i++)
		if ((err = frame_function(e, run[i], &func)))
			return err;
	if ((err = new_location(e, &k, slot, h, &idx)))
		return err;
	pb_location *loc = &e->locs[idx];
	loc->mapping_id = map == NO_MAPPING ? 0 : (uint64_t)map + 1;
	loc->address = e->p->frames[run[0]].address;
	for (uint32_t i = 0; i < n; i++)
		add_line(e, loc, e->frame_func[run[i]], e->p->frames[run[i]].line);
	if (n == 1)
		e->frame_loc[run[0]] = idx;
	*out = idx;
	return 0;
}

/* The process name a target shows as (comm, else the executable's basename). */
static const char *target_name(const struct ember_target *t)
{
	if (t->comm && t->comm[0])
		return t->comm;
	if (t->exe && t->exe[0])
		return ember_basename(t->exe);
	return "[unknown]";
}

/* Location of the synthetic root frame naming target ti's process. */
static int root_location(struct enc *e, uint32_t ti, uint32_t *out)
{
	struct lookup_run k = {NULL, 0, 0};
	uint32_t func, idx;
	uint64_t h;
	int err;

	if (e->target_root[ti] != NOT_CACHED) {
		*out = e->target_root[ti];
		return 0;
	}
	if ((err = str_id(e, target_name(&e->p->targets[ti]), &k.root)) ||
	    (err = function_index(e, k.root, 0, 0, &func)))
		return err;
	h = ember_hash64(&k.root, sizeof(k.root), 0x726f6f74);
	struct ix_slot *slot = ix_find(&e->loc_ix, h, loc_eq, e, &k);
	if (!slot)
		return -ENOMEM;
	if (!slot->hash) {
		if ((err = new_location(e, &k, slot, h, &idx)))
			return err;
		add_line(e, &e->locs[idx], func, 0);
	} else {
		idx = slot->idx;
	}
	*out = e->target_root[ti] = idx;
	return 0;
}

/* ---- labels ------------------------------------------------------------- */

static int add_str_label(struct enc *e, struct label_set *ls, const char *key,
			 const char *val, size_t val_len)
{
	pb_label l = PERFTOOLS__PROFILES__LABEL__INIT;
	int err;

	if ((err = str_id(e, key, &l.key)) || (err = str_id_n(e, val, val_len, &l.str)))
		return err;
	ls->labels[ls->n++] = l;
	return 0;
}

/* Add the labels of a "k=v,k=v" string; pieces without a key are skipped. */
static int add_kv_labels(struct enc *e, struct label_set *ls, const char *kv)
{
	while (*kv) {
		size_t len = strcspn(kv, ",");
		const char *eq = memchr(kv, '=', len);

		if (eq && eq > kv) {
			char key[128];
			size_t klen = (size_t)(eq - kv);

			if (klen >= sizeof(key))
				klen = sizeof(key) - 1;
			memcpy(key, kv, klen);
			key[klen] = '\0';
			int err = add_str_label(e, ls, key, eq + 1, len - (size_t)(eq - kv) - 1);
			if (err)
				return err;
		}
		kv += len;
		if (*kv == ',')
			kv++;
	}
	return 0;
}

static int build_target_labels(struct enc *e, uint32_t ti)
{
	const struct ember_target *t = &e->p->targets[ti];
	struct label_set *ls = &e->target_labels[ti];
	size_t max = 4;
	int err;

	if (t->labels)
		for (const char *c = t->labels; *c; c++)
			max += *c == ',';
	max += t->labels ? 1 : 0;
	ls->labels = calloc(max, sizeof(*ls->labels));
	if (!ls->labels)
		return -ENOMEM;
	if (e->opt.process_labels) {
		const char *name = target_name(t);
		if ((err = add_str_label(e, ls, "process", name, strlen(name))))
			return err;
		if (t->pid) {
			pb_label l = PERFTOOLS__PROFILES__LABEL__INIT;
			if ((err = str_id(e, "pid", &l.key)))
				return err;
			l.num = t->pid;
			ls->labels[ls->n++] = l;
		}
	}
	if (e->opt.target_labels) {
		if (t->service && (err = add_str_label(e, ls, "service", t->service,
						       strlen(t->service))))
			return err;
		if (t->version && (err = add_str_label(e, ls, "version", t->version,
						       strlen(t->version))))
			return err;
		if (t->labels && (err = add_kv_labels(e, ls, t->labels)))
			return err;
	}
	ls->ptrs = calloc(ls->n ? ls->n : 1, sizeof(*ls->ptrs));
	if (!ls->ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < ls->n; i++)
		ls->ptrs[i] = &ls->labels[i];
	return 0;
}

/* ---- samples ------------------------------------------------------------ */

static bool same_site(const struct ember_frame *a, const struct ember_frame *b)
{
	if (a->address != b->address)
		return false;
	if (!a->module || !b->module)
		return a->module == b->module;
	return strcmp(a->module, b->module) == 0;
}

/* Length of the run starting at frames[i]: an inline chain ends at its first un-inlined frame. */
static uint32_t run_length(const struct ember_profile *p, const struct ember_stack *s, uint32_t i)
{
	uint32_t j = i + 1;

	while (j < s->depth && (p->frames[s->frames[j - 1]].flags & EMBER_FRAME_INLINED) &&
	       same_site(&p->frames[s->frames[j - 1]], &p->frames[s->frames[j]]))
		j++;
	return j - i;
}

/*
 * Fill sample e->samples[e->n_samples] from stack s, its location ids into
 * ids[] and its values into vals[].  A stack whose target is not in the
 * profile gets neither labels nor a root frame.
 */
static int encode_sample(struct enc *e, const struct ember_stack *s, uint64_t *ids, int64_t *vals)
{
	const struct ember_profile *p = e->p;
	pb_sample sample = PERFTOOLS__PROFILES__SAMPLE__INIT;
	uint32_t loc;
	int err;

	sample.location_id = ids;
	for (uint32_t i = 0, n; i < s->depth; i += n) {
		n = run_length(p, s, i);
		if ((err = run_location(e, s->frames + i, n, &loc)))
			return err;
		ids[sample.n_location_id++] = (uint64_t)loc + 1;
	}
	if (e->opt.process_root && s->target < p->n_targets) {
		if ((err = root_location(e, s->target, &loc)))
			return err;
		ids[sample.n_location_id++] = (uint64_t)loc + 1;
	}
	vals[0] = (int64_t)s->count;
	vals[1] = (int64_t)(s->count * p->period_ns);
	sample.value = vals;
	sample.n_value = 2;
	if (e->target_labels && s->target < p->n_targets) {
		struct label_set *ls = &e->target_labels[s->target];
		if (!ls->ptrs && (err = build_target_labels(e, s->target)))
			return err;
		sample.label = ls->ptrs;
		sample.n_label = ls->n;
	}
	e->samples[e->n_samples++] = sample;
	return 0;
}

static int check_profile(const struct ember_profile *p)
{
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *s = &p->stacks[i];

		for (uint32_t j = 0; j < s->depth; j++)
			if (s->frames[j] >= p->n_frames)
				return -EINVAL;
	}
	return 0;
}

static int encode_samples(struct enc *e)
{
	const struct ember_profile *p = e->p;
	size_t n_ids = 0, off = 0;
	int err;

	for (size_t i = 0; i < p->n_stacks; i++)
		n_ids += p->stacks[i].depth + 1;
	e->samples = calloc(p->n_stacks ? p->n_stacks : 1, sizeof(*e->samples));
	e->loc_ids = calloc(n_ids ? n_ids : 1, sizeof(*e->loc_ids));
	e->values = calloc(p->n_stacks ? 2 * p->n_stacks : 1, sizeof(*e->values));
	if (!e->samples || !e->loc_ids || !e->values)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *s = &p->stacks[i];

		if (s->count == 0)
			continue;
		if ((err = encode_sample(e, s, e->loc_ids + off, e->values + 2 * e->n_samples)))
			return err;
		off += s->depth + 1;
	}
	return 0;
}

/*
 * pprof shows mapping 0 as the profile's "File:".  Give that place to the
 * first target's executable, when its code appears in the profile.
 */
static int seed_main_mapping(struct enc *e)
{
	const struct ember_profile *p = e->p;
	const char *exe = p->n_targets ? p->targets[0].exe : NULL;
	uint32_t map;

	if (!exe)
		return 0;
	for (size_t i = 0; i < p->n_frames; i++) {
		const struct ember_frame *f = &p->frames[i];
		if (!(f->flags & EMBER_FRAME_KERNEL) && f->module && strcmp(f->module, exe) == 0)
			return frame_mapping(e, (uint32_t)i, &map);
	}
	return 0;
}

static int enc_init(struct enc *e, const struct ember_profile *p,
		    const struct ember_pprof_options *opt)
{
	int64_t empty;
	bool labels = opt && (opt->process_labels || opt->target_labels);
	size_t nf = p->n_frames ? p->n_frames : 1, nt = p->n_targets ? p->n_targets : 1;

	memset(e, 0, sizeof(*e));
	e->p = p;
	if (opt)
		e->opt = *opt;
	e->frame_map = malloc(nf * sizeof(uint32_t));
	e->frame_func = malloc(nf * sizeof(uint32_t));
	e->frame_loc = malloc(nf * sizeof(uint32_t));
	e->target_root = malloc(nt * sizeof(uint32_t));
	if (!e->frame_map || !e->frame_func || !e->frame_loc || !e->target_root)
		return -ENOMEM;
	memset(e->frame_map, 0xff, nf * sizeof(uint32_t));
	memset(e->frame_func, 0xff, nf * sizeof(uint32_t));
	memset(e->frame_loc, 0xff, nf * sizeof(uint32_t));
	memset(e->target_root, 0xff, nt * sizeof(uint32_t));
	if (labels && p->n_targets) {
		e->target_labels = calloc(p->n_targets, sizeof(*e->target_labels));
		if (!e->target_labels)
			return -ENOMEM;
	}
	return str_id(e, "", &empty); /* string_table[0] must be "" */
}

/* ---- assembly, packing and compression ---------------------------------- */

static int value_type(struct enc *e, pb_value_type *vt, const char *type, const char *unit)
{
	pb_value_type init = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	int err;

	*vt = init;
	if ((err = str_id(e, type, &vt->type)) || (err = str_id(e, unit, &vt->unit)))
		return err;
	return 0;
}

/* gzip in[0..in_len) into a malloc'd buffer. */
static int gzip_bytes(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	z_stream zs;
	size_t cap, produced = 0, consumed = 0;
	uint8_t *buf;
	int ret;

	memset(&zs, 0, sizeof(zs));
	/* windowBits 15 + 16: a gzip header and trailer around the deflate stream. */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&zs, in_len) + 64;
	buf = malloc(cap);
	if (!buf) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	for (;;) {
		if (produced == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		if (zs.avail_in == 0 && consumed < in_len) {
			size_t chunk = in_len - consumed < UINT_MAX ? in_len - consumed : UINT_MAX;
			zs.next_in = (Bytef *)in + consumed;
			zs.avail_in = (uInt)chunk;
			consumed += chunk;
		}
		size_t room = cap - produced < UINT_MAX ? cap - produced : UINT_MAX;
		zs.next_out = buf + produced;
		zs.avail_out = (uInt)room;
		ret = deflate(&zs, consumed < in_len ? Z_NO_FLUSH : Z_FINISH);
		produced = (size_t)(zs.next_out - buf);
		if (ret == Z_STREAM_END)
			break;
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			goto fail;
	}
	deflateEnd(&zs);
	*out = buf;
	*out_len = produced;
	return 0;
fail:
	deflateEnd(&zs);
	free(buf);
	return -ENOMEM;
}

/* Point the Profile message at the encoder's tables, pack it and gzip it. */
static int pack_profile(struct enc *e, uint8_t **out, size_t *out_len)
{
	const struct ember_profile *p = e->p;
	pb_profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	pb_value_type types[2], period;
	pb_value_type *type_ptrs[2] = {&types[0], &types[1]};
	void **ptrs = NULL;
	uint8_t *packed = NULL;
	int64_t comment = 0;
	int err;

	if ((err = value_type(e, &types[0], "samples", "count")) ||
	    (err = value_type(e, &types[1], "cpu", "nanoseconds")) ||
	    (err = value_type(e, &period, "cpu", "nanoseconds")))
		return err;
	if (e->opt.comment && (err = str_id(e, e->opt.comment, &comment)))
		return err;

	/* One array of pointers serves every repeated message field. */
	size_t n_ptrs = e->n_samples + e->n_maps + e->n_funcs + e->n_locs + e->n_lines;
	ptrs = calloc(n_ptrs ? n_ptrs : 1, sizeof(*ptrs));
	if (!ptrs)
		return -ENOMEM;
	void **next = ptrs;

	prof.sample = (pb_sample **)next;
	for (size_t i = 0; i < e->n_samples; i++)
		*next++ = &e->samples[i];
	prof.n_sample = e->n_samples;
	prof.mapping = (pb_mapping **)next;
	for (size_t i = 0; i < e->n_maps; i++) {
		e->maps[i].id = i + 1;
		*next++ = &e->maps[i];
	}
	prof.n_mapping = e->n_maps;
	prof.function = (pb_function **)next;
	for (size_t i = 0; i < e->n_funcs; i++) {
		e->funcs[i].id = i + 1;
		*next++ = &e->funcs[i];
	}
	prof.n_function = e->n_funcs;
	void **line_ptrs = next;
	for (size_t i = 0; i < e->n_lines; i++)
		*next++ = &e->lines[i];
	prof.location = (pb_location **)next;
	for (size_t i = 0; i < e->n_locs; i++) {
		e->locs[i].id = i + 1;
		e->locs[i].line = (pb_line **)(line_ptrs + e->loc_keys[i].line_off);
		*next++ = &e->locs[i];
	}
	prof.n_location = e->n_locs;

	prof.n_sample_type = 2;
	prof.sample_type = type_ptrs;
	prof.period_type = &period;
	prof.period = (int64_t)p->period_ns;
	prof.time_nanos = p->start_ns;
	prof.duration_nanos = p->duration_ns;
	if (comment) {
		prof.n_comment = 1;
		prof.comment = &comment;
	}
	prof.n_string_table = e->n_strs;
	prof.string_table = e->strs;

	size_t len = perftools__profiles__profile__get_packed_size(&prof);
	packed = malloc(len ? len : 1);
	if (!packed) {
		err = -ENOMEM;
		goto out;
	}
	if (perftools__profiles__profile__pack(&prof, packed) != len) {
		err = -EINVAL;
		goto out;
	}
	err = gzip_bytes(packed, len, out, out_len);
out:
	free(packed);
	free(ptrs);
	return err;
}

int ember_pprof_encode(const struct ember_profile *p, const struct ember_pprof_options *opt,
		       uint8_t **out, size_t *out_len)
{
	struct enc e;
	int err;

	*out = NULL;
	*out_len = 0;
	err = check_profile(p);
	if (err) {
		ember_err("pprof: profile has a stack naming a missing frame");
		return err;
	}
	err = enc_init(&e, p, opt);
	if (!err)
		err = seed_main_mapping(&e);
	if (!err)
		err = encode_samples(&e);
	if (!err)
		err = pack_profile(&e, out, out_len);
	enc_free(&e);
	return err;
}

int ember_pprof_write_file(const struct ember_profile *p, const struct ember_pprof_options *opt,
			   const char *path)
{
	uint8_t *data;
	size_t len;
	int err;

	err = ember_pprof_encode(p, opt, &data, &len);
	if (err) {
		ember_err("pprof: cannot encode profile for %s: %s", path, strerror(-err));
		return err;
	}
	/* a safe temporary renamed into place, not world-readable (core/safefile.h) */
	err = ember_safefile_write(path, data, len, EMBER_FILE_MODE, true);
	if (err)
		ember_err("pprof: cannot write %s: %s", path, strerror(-err));
	free(data);
	return err;
}
