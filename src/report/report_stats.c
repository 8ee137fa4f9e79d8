/*
 * report_stats.c - which functions' shares changed, and which changes are real.
 *
 * Input: the stacks of a baseline (side 0) and of a current window (side 1),
 * with function names (frame names as the UI shows them).  Per function:
 *   self  = samples whose leaf it is,
 *   total = samples whose stack contains it (once per stack),
 * each as a share of its side's samples.
 *
 * 1. Test.  Each function's self share and total share (one test when they
 *    are equal, a function that never calls anything) is compared with a
 *    two-proportion z-test, when either side has min_function_samples of
 *    it.  The p-values of all tests are corrected together (Benjamini-
 *    Hochberg by default, Holm on request).  A change is a candidate when
 *    its corrected p-value is at most alpha AND it moves the share by at
 *    least min_delta (absolute) AND by at least min_relative of the
 *    baseline share: significance alone would flag tiny changes of busy
 *    services, thresholds alone would flag noise of quiet ones.
 *
 * 2. Dilution.  Shares are relative: when one function gets slower, every
 *    other function's share shrinks although nothing happened to it.  So
 *    candidates are taken one at a time, largest change first (a self
 *    change is preferred to a total change at least 90% as large: it is more
 *    specific), and the rest is re-tested on the samples the findings so far
 *    do not explain (a self finding removes the samples whose leaf it is, a
 *    total finding those whose stack contains it), until nothing passes or
 *    max_findings is reached.  A first-round candidate never picked this way
 *    is suppressed as "diluted".  A picked change is reported only when it
 *    also passes the thresholds as a share of all samples (what the report
 *    shows), else it counts as small.
 *
 * 3. Moved cost.  A picked self-share change is suppressed as "moved" when
 *    (a) the function's own total share stayed (not significant or under
 *        min_delta): cost moved between it and its callees (a helper split
 *        out, or no longer inlined), or
 *    (b) its main caller's total share stayed and the caller's self share
 *        moved the other way by (nearly) as much: cost moved between the
 *        caller and it (the rest after subtracting the caller's change is
 *        under the thresholds).
 *    The subtree whose total stayed (the function's in (a), the caller's in
 *    (b)) leaves the next rounds, so the pair does not distort the rest, and
 *    first-round candidates lying mostly inside it count as moved too.  A
 *    callee that gains while its caller's total stays but the caller's own
 *    self share does not fall (its siblings' shares fall) is kept: with
 *    shares only, that is a slower callee diluting its siblings.
 *
 * Finally each finding gets its kind (new / vanished when its total is 0 on
 * one side), the caller (self) or callee (total) through which most of the
 * change came, and the version change that coincides with it: a version
 * seen in the current window and not in the baseline, the one where the
 * function's share is furthest in the finding's direction.
 */
#include "core/array.h"
#include "report/report_stats.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define MAX_SUPPRESSED_LISTED 200
#define SELF_PREFERENCE 0.9 /* a self change this close to the largest total change wins */

enum { EX_NONE, EX_SELF, EX_TOTAL };

struct rs_func {
	char *name, *file;
	uint32_t line;
	uint64_t self[2], total[2];   /* over every sample */
	uint64_t rself[2], rtotal[2]; /* over the samples no finding explains yet */
	uint64_t stamp;
	uint8_t excluded;    /* EX_*: found, its samples leave the next rounds */
	bool cand[2];        /* first-round candidate, per metric */
	bool sig[2];         /* first-round significant change, per metric */
	bool moved_root;     /* its subtree was taken out as moved cost */
	uint64_t under_moved; /* samples under a moved_root (classify_leftovers) */
	uint32_t moved_by;
	double cand_delta[2];
};

struct rs_stack {
	uint32_t first, depth; /* function ids in rc->frames, leaf first */
	uint64_t count;
	uint32_t version;
	uint8_t side;
};

struct rs_version {
	char *name; /* NULL = unknown */
	int side;
	uint64_t samples;
};

struct rs_compare {
	struct rs_func *funcs;
	size_t n_funcs, cap_funcs;
	uint32_t *map; /* open addressing: function id + 1, 0 = empty */
	size_t map_cap;
	uint32_t *frames;
	size_t n_frames, cap_frames;
	struct rs_stack *stacks;
	size_t n_stacks, cap_stacks;
	struct rs_version *versions;
	size_t n_versions;
	uint64_t n[2];
	uint64_t stamp;
};

struct rs_test {
	uint32_t fn;
	uint8_t metric;
	uint64_t x[2];
	double delta, base_share, z, p, q;
};

/* ---- statistics ---- */

double rs_z_two_proportions(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2)
{
	if (!n1 || !n2)
		return 0;
	double p1 = (double)x1 / (double)n1, p2 = (double)x2 / (double)n2;
	double pool = (double)(x1 + x2) / (double)(n1 + n2);
	double var = pool * (1 - pool) * (1.0 / (double)n1 + 1.0 / (double)n2);

	if (var <= 0)
		return 0;
	return (p2 - p1) / sqrt(var);
}

double rs_p_two_sided(double z)
{
	return erfc(fabs(z) / M_SQRT2);
}

static const double *sort_keys;

static int by_key(const void *a, const void *b)
{
	double x = sort_keys[*(const size_t *)a], y = sort_keys[*(const size_t *)b];

	return x < y ? -1 : x > y ? 1 : 0;
}

int rs_adjust(const double *p, double *q, size_t m, enum ember_correction c)
{
	size_t *order;

	if (!m)
		return 0;
	order = malloc(m * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < m; i++)
		order[i] = i;
	sort_keys = p; /* single-threaded: the report runs on one thread */
	qsort(order, m, sizeof(*order), by_key);
	if (c == EMBER_CORRECTION_HOLM) {
		double run = 0;
		for (size_t k = 0; k < m; k++) {
			double v = fmin(1.0, (double)(m - k) * p[order[k]]);
			run = fmax(run, v);
			q[order[k]] = run;
		}
	} else {
		double run = 1.0;
		for (size_t k = m; k-- > 0;) {
			double v = fmin(1.0, p[order[k]] * (double)m / (double)(k + 1));
			run = fmin(run, v);
			q[order[k]] = run;
		}
	}
	free(order);
	return 0;
}

/* ---- building the input ---- */

struct rs_compare *rs_compare_new(void)
{
	return calloc(1, sizeof(struct rs_compare));
}

void rs_compare_free(struct rs_compare *rc)
{
	if (!rc)
		return;
	for (size_t i = 0; i < rc->n_funcs; i++) {
		free(rc->funcs[i].name);
		free(rc->funcs[i].file);
	}
	for (size_t i = 0; i < rc->n_versions; i++)
		free(rc->versions[i].name);
	free(rc->funcs);
	free(rc->map);
	free(rc->frames);
	free(rc->stacks);
	free(rc->versions);
	free(rc);
}


static int map_rehash(struct rs_compare *rc)
{
	size_t cap = rc->map_cap ? rc->map_cap * 2 : 1024;
	uint32_t *map = calloc(cap, sizeof(*map));

	if (!map)
		return -ENOMEM;
	for (size_t i = 0; i < rc->n_funcs; i++) {
		const char *name = rc->funcs[i].name;
		size_t h = ember_hash64(name, strlen(name), 0) & (cap - 1);
		while (map[h])
			h = (h + 1) & (cap - 1);
		map[h] = (uint32_t)i + 1;
	}
	free(rc->map);
	rc->map = map;
	rc->map_cap = cap;
	return 0;
}

/* The id of the function called name, added when new; NONE on OOM. */
static uint32_t func_id(struct rs_compare *rc, const char *name, const struct ember_frame *f)
{
	size_t h;

	if ((rc->n_funcs + 1) * 2 > rc->map_cap && map_rehash(rc))
		return NONE;
	h = ember_hash64(name, strlen(name), 0) & (rc->map_cap - 1);
	while (rc->map[h]) {
		uint32_t id = rc->map[h] - 1;
		if (strcmp(rc->funcs[id].name, name) == 0)
			return id;
		h = (h + 1) & (rc->map_cap - 1);
	}
	if (rc->n_funcs >= NONE - 1 ||
	    ember_array_grow((void **)&rc->funcs, &rc->cap_funcs, rc->n_funcs + 1, sizeof(*rc->funcs)))
		return NONE;
	struct rs_func *fn = &rc->funcs[rc->n_funcs];
	memset(fn, 0, sizeof(*fn));
	fn->name = strdup(name);
	fn->file = f->file ? strdup(f->file) : NULL;
	fn->line = f->line;
	if (!fn->name || (f->file && !fn->file)) {
		free(fn->name);
		free(fn->file);
		return NONE;
	}
	rc->map[h] = (uint32_t)rc->n_funcs + 1;
	return (uint32_t)rc->n_funcs++;
}

static int version_id(struct rs_compare *rc, int side, const char *name, uint32_t *out)
{
	struct rs_version *v;

	for (size_t i = 0; i < rc->n_versions; i++) {
		v = &rc->versions[i];
		if (v->side == side && ((!v->name && !name) ||
					(v->name && name && strcmp(v->name, name) == 0))) {
			*out = (uint32_t)i;
			return 0;
		}
	}
	v = realloc(rc->versions, (rc->n_versions + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	rc->versions = v;
	v = &rc->versions[rc->n_versions];
	v->name = name ? strdup(name) : NULL;
	if (name && !v->name)
		return -ENOMEM;
	v->side = side;
	v->samples = 0;
	*out = (uint32_t)rc->n_versions++;
	return 0;
}

int rs_compare_add(struct rs_compare *rc, int side, const char *version,
		   const struct ember_profile *p)
{
	uint32_t *fid, vid;
	char name[512];
	int ret;

	if (side != RS_BASE && side != RS_CUR)
		return -EINVAL;
	ret = version_id(rc, side, version, &vid);
	if (ret)
		return ret;
	fid = malloc((p->n_frames ? p->n_frames : 1) * sizeof(*fid));
	if (!fid)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_frames; i++) {
		fid[i] = func_id(rc, ember_frame_name(&p->frames[i], name, sizeof(name)),
				 &p->frames[i]);
		if (fid[i] == NONE) {
			free(fid);
			return -ENOMEM;
		}
	}
	for (size_t s = 0; s < p->n_stacks; s++) {
		const struct ember_stack *st = &p->stacks[s];
		struct rs_stack *out;

		if (!st->depth || !st->count)
			continue;
		if (ember_array_grow((void **)&rc->stacks, &rc->cap_stacks, rc->n_stacks + 1,
			 sizeof(*rc->stacks)) ||
		    ember_array_grow((void **)&rc->frames, &rc->cap_frames, rc->n_frames + st->depth,
			 sizeof(*rc->frames))) {
			free(fid);
			return -ENOMEM;
		}
		out = &rc->stacks[rc->n_stacks++];
		out->first = (uint32_t)rc->n_frames;
		out->depth = 0;
		for (uint32_t j = 0; j < st->depth; j++) {
			if (st->frames[j] >= p->n_frames)
				continue; /* malformed: skip the frame, keep the stack */
			rc->frames[rc->n_frames++] = fid[st->frames[j]];
			out->depth++;
		}
		out->count = st->count;
		out->version = vid;
		out->side = (uint8_t)side;
		if (!out->depth) {
			rc->n_stacks--;
			continue;
		}
		rc->n[side] += st->count;
		rc->versions[vid].samples += st->count;
	}
	free(fid);
	return 0;
}

uint64_t rs_compare_samples(const struct rs_compare *rc, int side)
{
	return side == RS_BASE || side == RS_CUR ? rc->n[side] : 0;
}

/* ---- counting ---- */

static bool stack_excluded(const struct rs_compare *rc, const struct rs_stack *st, bool any_total)
{
	const uint32_t *fr = &rc->frames[st->first];

	if (rc->funcs[fr[0]].excluded == EX_SELF)
		return true;
	if (any_total)
		for (uint32_t j = 0; j < st->depth; j++)
			if (rc->funcs[fr[j]].excluded == EX_TOTAL)
				return true;
	return false;
}

/* Count self and total over the samples no finding explains; returns them per side. */
static void count_round(struct rs_compare *rc, uint64_t nr[2])
{
	bool any_total = false;

	nr[0] = nr[1] = 0;
	for (size_t i = 0; i < rc->n_funcs; i++) {
		struct rs_func *f = &rc->funcs[i];
		memset(f->rself, 0, sizeof(f->rself));
		memset(f->rtotal, 0, sizeof(f->rtotal));
		any_total |= f->excluded == EX_TOTAL;
	}
	for (size_t s = 0; s < rc->n_stacks; s++) {
		const struct rs_stack *st = &rc->stacks[s];
		const uint32_t *fr = &rc->frames[st->first];
		int side = st->side;

		if (stack_excluded(rc, st, any_total))
			continue;
		nr[side] += st->count;
		rc->funcs[fr[0]].rself[side] += st->count;
		rc->stamp++;
		for (uint32_t j = 0; j < st->depth; j++) {
			struct rs_func *f = &rc->funcs[fr[j]];
			if (f->stamp != rc->stamp) {
				f->stamp = rc->stamp;
				f->rtotal[side] += st->count;
			}
		}
	}
}

/* ---- one round of tests ---- */

static void fill_test(struct rs_test *t, uint32_t fn, int metric, const uint64_t x[2],
		      const uint64_t n[2])
{
	t->fn = fn;
	t->metric = (uint8_t)metric;
	t->x[0] = x[0];
	t->x[1] = x[1];
	t->base_share = (double)x[0] / (double)n[0];
	t->delta = (double)x[1] / (double)n[1] - t->base_share;
	t->z = rs_z_two_proportions(x[0], n[0], x[1], n[1]);
	t->p = rs_p_two_sided(t->z);
	t->q = 1;
}

/*
 * Test every function still in play.  *tests (malloc'd, *n_tests) gets the
 * tests with corrected p-values.  Returns 0 or -ENOMEM.
 */
static int run_tests(struct rs_compare *rc, const uint64_t nr[2],
		     const struct ember_report_thresholds *th, struct rs_test **tests,
		     size_t *n_tests)
{
	struct rs_test *t = NULL;
	double *p = NULL, *q = NULL;
	size_t n = 0;
	int ret = 0;

	*tests = NULL;
	*n_tests = 0;
	if (!nr[0] || !nr[1])
		return 0;
	t = malloc((rc->n_funcs * 2 + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < rc->n_funcs; i++) {
		const struct rs_func *f = &rc->funcs[i];
		uint64_t m = th->min_function_samples;

		if (f->excluded)
			continue;
		if (f->rself[0] >= m || f->rself[1] >= m)
			fill_test(&t[n++], (uint32_t)i, EMBER_METRIC_SELF, f->rself, nr);
		if ((f->rtotal[0] >= m || f->rtotal[1] >= m) &&
		    (f->rtotal[0] != f->rself[0] || f->rtotal[1] != f->rself[1]))
			fill_test(&t[n++], (uint32_t)i, EMBER_METRIC_TOTAL, f->rtotal, nr);
	}
	p = malloc((n + 1) * sizeof(*p));
	q = malloc((n + 1) * sizeof(*q));
	if (!p || !q) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = t[i].p;
	ret = rs_adjust(p, q, n, th->correction);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++)
		t[i].q = q[i];
	*tests = t;
	*n_tests = n;
	t = NULL;
out:
	free(t);
	free(p);
	free(q);
	return ret;
}

static bool significant(const struct rs_test *t, const struct ember_report_thresholds *th)
{
	return t->q <= th->alpha && t->delta != 0;
}

static bool large_enough(double delta, double base_share, const struct ember_report_thresholds *th)
{
	if (fabs(delta) < th->min_delta)
		return false;
	return base_share <= 0 || fabs(delta) / base_share >= th->min_relative;
}

static bool is_candidate(const struct rs_test *t, const struct ember_report_thresholds *th)
{
	return significant(t, th) && large_enough(t->delta, t->base_share, th);
}

/* The candidate to take next, or NULL. */
static const struct rs_test *pick(const struct rs_compare *rc, const struct rs_test *t, size_t n,
				  const struct ember_report_thresholds *th)
{
	const struct rs_test *best[2] = {NULL, NULL};

	for (size_t i = 0; i < n; i++) {
		const struct rs_test *c = &t[i], *b = best[c->metric];
		if (!is_candidate(c, th))
			continue;
		if (!b || fabs(c->delta) > fabs(b->delta) ||
		    (fabs(c->delta) == fabs(b->delta) &&
		     strcmp(rc->funcs[c->fn].name, rc->funcs[b->fn].name) < 0))
			best[c->metric] = c;
	}
	if (best[EMBER_METRIC_SELF] &&
	    (!best[EMBER_METRIC_TOTAL] || fabs(best[EMBER_METRIC_SELF]->delta) >=
						  SELF_PREFERENCE * fabs(best[EMBER_METRIC_TOTAL]->delta)))
		return best[EMBER_METRIC_SELF];
	return best[EMBER_METRIC_TOTAL];
}

/* ---- results ---- */

static double share(uint64_t x, uint64_t n)
{
	return n ? (double)x / (double)n : 0;
}

static void fill_counts(const struct rs_compare *rc, const struct rs_func *f, int side,
			struct ember_report_counts *c)
{
	c->self = f->self[side];
	c->total = f->total[side];
	c->self_share = share(f->self[side], rc->n[side]);
	c->total_share = share(f->total[side], rc->n[side]);
}

static double plain_delta(const struct rs_compare *rc, const struct rs_func *f, int metric)
{
	const uint64_t *x = metric == EMBER_METRIC_SELF ? f->self : f->total;

	return share(x[1], rc->n[1]) - share(x[0], rc->n[0]);
}

/*
 * A change found on the samples the earlier findings leave is reported only
 * when it also passes the thresholds, the same way, as a share of all the
 * samples: what the report shows is the plain change.
 */
static bool plain_large_enough(const struct rs_compare *rc, const struct rs_func *f,
			       const struct rs_test *t, const struct ember_report_thresholds *th)
{
	const uint64_t *x = t->metric == EMBER_METRIC_SELF ? f->self : f->total;
	double d = plain_delta(rc, f, t->metric);

	return d * t->delta > 0 && large_enough(d, share(x[0], rc->n[0]), th);
}

static enum ember_finding_kind kind_of(const struct rs_func *f, double delta)
{
	if (!f->total[RS_BASE])
		return EMBER_FINDING_NEW;
	if (!f->total[RS_CUR])
		return EMBER_FINDING_VANISHED;
	return delta > 0 ? EMBER_FINDING_REGRESSION : EMBER_FINDING_IMPROVEMENT;
}

static int add_finding(struct rs_compare *rc, struct ember_report_service *out,
		       const struct rs_test *t)
{
	const struct rs_func *f = &rc->funcs[t->fn];
	struct ember_report_finding *fd;

	fd = realloc(out->findings, (out->n_findings + 1) * sizeof(*fd));
	if (!fd)
		return -ENOMEM;
	out->findings = fd;
	fd = &fd[out->n_findings];
	memset(fd, 0, sizeof(*fd));
	fd->function = strdup(f->name);
	fd->file = f->file ? strdup(f->file) : NULL;
	if (!fd->function || (f->file && !fd->file)) {
		free(fd->function);
		free(fd->file);
		return -ENOMEM;
	}
	out->n_findings++;
	fd->line = f->line;
	fd->metric = t->metric;
	fill_counts(rc, f, RS_BASE, &fd->base);
	fill_counts(rc, f, RS_CUR, &fd->cur);
	fd->delta = plain_delta(rc, f, t->metric);
	fd->tested_delta = t->delta;
	fd->kind = kind_of(f, t->delta);
	{
		double b = t->metric == EMBER_METRIC_SELF ? fd->base.self_share
							  : fd->base.total_share;
		fd->relative = b > 0 ? fd->delta / b : 0;
	}
	fd->z = t->z;
	fd->p = t->p;
	fd->q = t->q;
	return 0;
}

static int add_suppressed(struct ember_report_service *out, const char *name,
			  enum ember_suppress_reason reason, enum ember_finding_kind kind,
			  int metric, double delta, const char *other)
{
	struct ember_report_suppressed *s;

	out->suppressed_by[reason]++;
	if (out->n_suppressed >= MAX_SUPPRESSED_LISTED)
		return 0; /* counted, not listed */
	s = realloc(out->suppressed, (out->n_suppressed + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	out->suppressed = s;
	s = &s[out->n_suppressed];
	s->function = strdup(name);
	s->other = other ? strdup(other) : NULL;
	if (!s->function || (other && !s->other)) {
		free(s->function);
		free(s->other);
		return -ENOMEM;
	}
	s->reason = reason;
	s->kind = kind;
	s->metric = (enum ember_metric)metric;
	s->delta = delta;
	out->n_suppressed++;
	return 0;
}

/* ---- per-function detail: callers/callees and versions ---- */

struct detail {
	uint64_t *via[2];   /* per function and side */
	uint64_t *ver;      /* per version */
	uint32_t *touched;  /* functions with via counts */
	size_t n_touched;
	uint32_t main_caller; /* self: the caller with the largest share, NONE */
};

static int detail_init(struct detail *d, const struct rs_compare *rc)
{
	d->via[0] = calloc(rc->n_funcs + 1, sizeof(uint64_t));
	d->via[1] = calloc(rc->n_funcs + 1, sizeof(uint64_t));
	d->touched = calloc(rc->n_funcs + 1, sizeof(uint32_t));
	d->ver = calloc(rc->n_versions + 1, sizeof(uint64_t));
	d->n_touched = 0;
	return d->via[0] && d->via[1] && d->touched && d->ver ? 0 : -ENOMEM;
}

static void detail_free(struct detail *d)
{
	free(d->via[0]);
	free(d->via[1]);
	free(d->touched);
	free(d->ver);
}

/* The function a stack's part under f is attributed to: caller or callee. */
static uint32_t neighbour(const uint32_t *fr, uint32_t depth, uint32_t fn, int metric, bool *hit)
{
	*hit = false;
	if (metric == EMBER_METRIC_SELF) {
		if (fr[0] != fn)
			return NONE;
		*hit = true;
		for (uint32_t j = 1; j < depth; j++)
			if (fr[j] != fn)
				return fr[j];
		return NONE;
	}
	for (uint32_t j = depth; j-- > 0;) { /* outermost occurrence */
		if (fr[j] != fn)
			continue;
		*hit = true;
		while (j-- > 0)
			if (fr[j] != fn)
				return fr[j];
		return NONE; /* its own samples */
	}
	return NONE;
}

/* One pass over every sample: f's samples per caller (self) or callee (total), per version. */
static void collect_detail(struct rs_compare *rc, uint32_t fn, int metric, struct detail *d)
{
	double best = 0;

	for (size_t i = 0; i < d->n_touched; i++) {
		d->via[0][d->touched[i]] = 0;
		d->via[1][d->touched[i]] = 0;
	}
	d->n_touched = 0;
	memset(d->ver, 0, rc->n_versions * sizeof(*d->ver));
	d->main_caller = NONE;
	if (fn == NONE)
		return;
	for (size_t s = 0; s < rc->n_stacks; s++) {
		const struct rs_stack *st = &rc->stacks[s];
		bool hit;
		uint32_t nb = neighbour(&rc->frames[st->first], st->depth, fn, metric, &hit);

		if (!hit)
			continue;
		d->ver[st->version] += st->count;
		if (nb == NONE)
			continue;
		if (!d->via[0][nb] && !d->via[1][nb])
			d->touched[d->n_touched++] = nb;
		d->via[st->side][nb] += st->count;
	}
	for (size_t i = 0; i < d->n_touched; i++) {
		uint32_t g = d->touched[i];
		double w = share(d->via[0][g], rc->n[0]) + share(d->via[1][g], rc->n[1]);
		if (w > best) {
			best = w;
			d->main_caller = g;
		}
	}
}

static int set_via(struct rs_compare *rc, struct ember_report_finding *fd, const struct detail *d)
{
	double best = 0;
	uint32_t via = NONE;
	double sign = fd->delta >= 0 ? 1 : -1;

	for (size_t i = 0; i < d->n_touched; i++) {
		uint32_t g = d->touched[i];
		double dd = share(d->via[1][g], rc->n[1]) - share(d->via[0][g], rc->n[0]);
		if (dd * sign > best) {
			best = dd * sign;
			via = g;
		}
	}
	if (via == NONE)
		return 0;
	fd->via = strdup(rc->funcs[via].name);
	fd->via_delta = best * sign;
	return fd->via ? 0 : -ENOMEM;
}

/* The baseline's version with most samples (NULL when none has a name). */
static const char *main_base_version(const struct rs_compare *rc)
{
	const struct rs_version *best = NULL;

	for (size_t i = 0; i < rc->n_versions; i++) {
		const struct rs_version *v = &rc->versions[i];
		if (v->side == RS_BASE && v->name && v->samples && (!best || v->samples > best->samples))
			best = v;
	}
	return best ? best->name : NULL;
}

static bool in_base(const struct rs_compare *rc, const char *name)
{
	for (size_t i = 0; i < rc->n_versions; i++) {
		const struct rs_version *v = &rc->versions[i];
		if (v->side == RS_BASE && v->samples && v->name && name &&
		    strcmp(v->name, name) == 0)
			return true;
	}
	return false;
}

/* The new version of the current window that best matches the finding. */
static int set_version(struct rs_compare *rc, struct ember_report_finding *fd,
		       const struct detail *d)
{
	bool up = fd->kind == EMBER_FINDING_REGRESSION || fd->kind == EMBER_FINDING_NEW;
	const struct rs_version *best = NULL;
	double best_share = 0;

	for (size_t i = 0; i < rc->n_versions; i++) {
		const struct rs_version *v = &rc->versions[i];
		if (v->side != RS_CUR || !v->samples || !v->name || in_base(rc, v->name))
			continue;
		double sh = share(d->ver[i], v->samples);
		if (!best || (up ? sh > best_share : sh < best_share)) {
			best = v;
			best_share = sh;
		}
	}
	if (!best)
		return 0;
	const char *base = main_base_version(rc);
	fd->version_cur = strdup(best->name);
	fd->version_base = base ? strdup(base) : NULL;
	fd->version_share = best_share;
	return fd->version_cur && (!base || fd->version_base) ? 0 : -ENOMEM;
}

static uint32_t find_func(const struct rs_compare *rc, const char *name)
{
	size_t h = ember_hash64(name, strlen(name), 0) & (rc->map_cap - 1);

	while (rc->map[h]) {
		uint32_t id = rc->map[h] - 1;
		if (strcmp(rc->funcs[id].name, name) == 0)
			return id;
		h = (h + 1) & (rc->map_cap - 1);
	}
	return NONE;
}

/* ---- moved cost ---- */

/*
 * A function's total share "stayed" when its first-round change was not
 * significant or under min_delta (the relative threshold is left out: a
 * large total share would hide a change of several points behind it).
 */
static bool total_stayed(const struct rs_compare *rc, const struct rs_func *f,
			 const struct ember_report_thresholds *th)
{
	return !f->sig[EMBER_METRIC_TOTAL] ||
	       fabs(plain_delta(rc, f, EMBER_METRIC_TOTAL)) < th->min_delta;
}

enum { MOVED_NO, MOVED_CALLEES, MOVED_CALLER };

/* The "moved" rules (top of file) for a self-share change of f. */
static int moved_cost(const struct rs_compare *rc, uint32_t id, uint32_t main_caller,
		      const struct ember_report_thresholds *th)
{
	const struct rs_func *f = &rc->funcs[id], *c;
	double df = plain_delta(rc, f, EMBER_METRIC_SELF), dc, residual;

	if (!f->total[0] || !f->total[1])
		return MOVED_NO; /* new or vanished */
	/* (a) its own total did not change, and it has callees */
	if (total_stayed(rc, f, th) && (f->total[0] - f->self[0] >= th->min_function_samples ||
					f->total[1] - f->self[1] >= th->min_function_samples))
		return MOVED_CALLEES;
	/* (b) its caller's total did not change and the caller's self moved the other way */
	if (main_caller == NONE)
		return MOVED_NO;
	c = &rc->funcs[main_caller];
	dc = plain_delta(rc, c, EMBER_METRIC_SELF);
	if (!total_stayed(rc, c, th) || dc * df >= 0)
		return MOVED_NO;
	residual = fabs(df) - fabs(dc);
	if (residual <= 0 || !large_enough(residual, share(f->self[0], rc->n[0]), th))
		return MOVED_CALLER;
	return MOVED_NO;
}

/*
 * Handle a picked self change that is moved cost: suppress it (and its
 * caller's opposite change) and take the subtree whose total stayed out of
 * the next rounds, so the rest is compared without the pair.  Returns 1
 * when it was moved cost, 0 when it is a finding, or -ENOMEM.
 */
static int take_moved(struct rs_compare *rc, const struct rs_test *t, struct detail *d,
		      const struct ember_report_thresholds *th, struct ember_report_service *out)
{
	struct rs_func *f = &rc->funcs[t->fn], *c;
	int m, ret;

	if (t->metric != EMBER_METRIC_SELF)
		return 0;
	collect_detail(rc, t->fn, EMBER_METRIC_SELF, d);
	m = moved_cost(rc, t->fn, d->main_caller, th);
	if (m == MOVED_NO)
		return 0;
	double df = plain_delta(rc, f, EMBER_METRIC_SELF);
	if (m == MOVED_CALLEES) {
		f->excluded = EX_TOTAL;
		f->moved_root = true;
		ret = add_suppressed(out, f->name, EMBER_SUPPRESS_MOVED, kind_of(f, df),
				     EMBER_METRIC_SELF, df, "its callees");
		return ret ? ret : 1;
	}
	c = &rc->funcs[d->main_caller];
	f->excluded = EX_SELF;
	ret = add_suppressed(out, f->name, EMBER_SUPPRESS_MOVED, kind_of(f, df), EMBER_METRIC_SELF,
			     df, c->name);
	if (!ret && !c->excluded) {
		double dc = plain_delta(rc, c, EMBER_METRIC_SELF);
		c->excluded = EX_TOTAL;
		c->moved_root = true;
		if (c->cand[EMBER_METRIC_SELF] || c->cand[EMBER_METRIC_TOTAL])
			ret = add_suppressed(out, c->name, EMBER_SUPPRESS_MOVED, kind_of(c, dc),
					     EMBER_METRIC_SELF, dc, "its callees");
	}
	return ret ? ret : 1;
}

/*
 * First-round candidates never picked: "moved" when most of their samples
 * lie under a subtree taken out as moved cost, else "diluted".
 */
static int classify_leftovers(struct rs_compare *rc, struct ember_report_service *out)
{
	for (size_t i = 0; i < rc->n_funcs; i++) {
		rc->funcs[i].under_moved = 0;
		rc->funcs[i].moved_by = NONE;
	}
	for (size_t s = 0; s < rc->n_stacks; s++) {
		const struct rs_stack *st = &rc->stacks[s];
		const uint32_t *fr = &rc->frames[st->first];
		uint32_t root = NONE;

		for (uint32_t j = 0; j < st->depth && root == NONE; j++)
			if (rc->funcs[fr[j]].moved_root)
				root = fr[j];
		if (root == NONE)
			continue;
		rc->stamp++;
		for (uint32_t j = 0; j < st->depth; j++) {
			struct rs_func *g = &rc->funcs[fr[j]];
			if (g->stamp == rc->stamp)
				continue;
			g->stamp = rc->stamp;
			g->under_moved += st->count;
			if (g->moved_by == NONE)
				g->moved_by = root;
		}
	}
	for (size_t i = 0; i < rc->n_funcs; i++) {
		const struct rs_func *f = &rc->funcs[i];
		bool moved;
		int m, ret;

		if (f->excluded || (!f->cand[0] && !f->cand[1]))
			continue;
		m = !f->cand[0] ? 1 : !f->cand[1] ? 0
			: fabs(f->cand_delta[1]) > fabs(f->cand_delta[0]);
		moved = f->moved_by != NONE && 2 * f->under_moved >= f->total[0] + f->total[1];
		ret = add_suppressed(out, f->name, moved ? EMBER_SUPPRESS_MOVED : EMBER_SUPPRESS_DILUTED,
				     kind_of(f, f->cand_delta[m]), m, plain_delta(rc, f, m),
				     moved ? rc->funcs[f->moved_by].name : NULL);
		if (ret)
			return ret;
	}
	return 0;
}

/* Callers/callees and version of each finding. */
static int finish_findings(struct rs_compare *rc, struct detail *d,
			   struct ember_report_service *out)
{
	for (size_t i = 0; i < out->n_findings; i++) {
		struct ember_report_finding *fd = &out->findings[i];
		int ret;

		collect_detail(rc, find_func(rc, fd->function), fd->metric, d);
		ret = set_via(rc, fd, d);
		if (!ret)
			ret = set_version(rc, fd, d);
		if (ret)
			return ret;
	}
	return 0;
}

static int by_finding(const void *a, const void *b)
{
	const struct ember_report_finding *x = a, *y = b;

	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	double dx = fabs(x->delta), dy = fabs(y->delta);
	if (dx != dy)
		return dx > dy ? -1 : 1;
	return strcmp(x->function, y->function);
}

static int by_suppressed(const void *a, const void *b)
{
	const struct ember_report_suppressed *x = a, *y = b;
	double dx = fabs(x->delta), dy = fabs(y->delta);

	if (dx != dy)
		return dx > dy ? -1 : 1;
	return strcmp(x->function, y->function);
}

/* First round: remember the candidates (for "diluted" and the moved rules). */
static void note_first_round(struct rs_compare *rc, const struct rs_test *t, size_t n,
			     const struct ember_report_thresholds *th,
			     struct ember_report_service *out)
{
	for (size_t i = 0; i < rc->n_funcs; i++) {
		memset(rc->funcs[i].cand, 0, sizeof(rc->funcs[i].cand));
		memset(rc->funcs[i].sig, 0, sizeof(rc->funcs[i].sig));
	}
	for (size_t i = 0; i < n; i++) {
		struct rs_func *f = &rc->funcs[t[i].fn];

		f->sig[t[i].metric] = significant(&t[i], th);
		if (is_candidate(&t[i], th)) {
			f->cand[t[i].metric] = true;
			f->cand_delta[t[i].metric] = t[i].delta;
		} else if (significant(&t[i], th)) {
			out->small++;
		}
	}
	out->tests = n;
}

int rs_compare_run(struct rs_compare *rc, const struct ember_report_thresholds *th,
		   struct ember_report_service *out)
{
	struct detail d = {0};
	struct rs_test *t = NULL;
	size_t n = 0;
	uint64_t nr[2];
	int ret;

	out->functions = rc->n_funcs;
	if (!rc->n_funcs)
		return 0;
	ret = detail_init(&d, rc);
	if (ret)
		goto out;
	for (size_t i = 0; i < rc->n_funcs; i++) {
		rc->funcs[i].excluded = EX_NONE;
		rc->funcs[i].moved_root = false;
	}
	count_round(rc, nr);
	for (size_t i = 0; i < rc->n_funcs; i++) { /* the plain counts */
		struct rs_func *f = &rc->funcs[i];
		memcpy(f->self, f->rself, sizeof(f->self));
		memcpy(f->total, f->rtotal, sizeof(f->total));
	}
	ret = run_tests(rc, nr, th, &t, &n);
	if (ret)
		goto out;
	note_first_round(rc, t, n, th, out);

	for (size_t round = 0;; round++) {
		const struct rs_test *best = pick(rc, t, n, th);
		if (!best)
			break;
		if (out->n_findings >= th->max_findings || round >= 4 * th->max_findings) {
			out->truncated = true;
			break;
		}
		ret = take_moved(rc, best, &d, th, out);
		if (ret < 0)
			goto out;
		if (!ret) {
			struct rs_func *f = &rc->funcs[best->fn];
			if (plain_large_enough(rc, f, best, th)) {
				ret = add_finding(rc, out, best);
				if (ret)
					goto out;
			} else {
				out->small++; /* real, but too small as a share of everything */
			}
			f->excluded = best->metric == EMBER_METRIC_SELF ? EX_SELF : EX_TOTAL;
		}
		free(t);
		t = NULL;
		count_round(rc, nr);
		ret = run_tests(rc, nr, th, &t, &n);
		if (ret)
			goto out;
	}
	ret = classify_leftovers(rc, out);
	if (!ret)
		ret = finish_findings(rc, &d, out);
	if (ret)
		goto out;
	if (out->n_findings)
		qsort(out->findings, out->n_findings, sizeof(*out->findings), by_finding);
	if (out->n_suppressed)
		qsort(out->suppressed, out->n_suppressed, sizeof(*out->suppressed), by_suppressed);
out:
	detail_free(&d);
	free(t);
	return ret;
}

/* ---- versions ---- */

static int by_samples(const void *a, const void *b)
{
	const struct ember_report_version *x = a, *y = b;

	if (x->samples != y->samples)
		return x->samples > y->samples ? -1 : 1;
	return strcmp(x->version, y->version);
}

int rs_compare_versions(const struct rs_compare *rc, struct ember_report_service *out)
{
	out->base_samples = rc->n[RS_BASE];
	out->samples = rc->n[RS_CUR];
	for (size_t i = 0; i < rc->n_versions; i++) {
		const struct rs_version *v = &rc->versions[i];
		struct ember_report_version **arr =
			v->side == RS_CUR ? &out->versions : &out->base_versions;
		size_t *n = v->side == RS_CUR ? &out->n_versions : &out->n_base_versions;
		struct ember_report_version *p;

		if (!v->samples)
			continue;
		p = realloc(*arr, (*n + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*arr = p;
		p[*n].version = strdup(v->name ? v->name : "(unknown)");
		if (!p[*n].version)
			return -ENOMEM;
		p[*n].samples = v->samples;
		(*n)++;
	}
	if (out->n_versions)
		qsort(out->versions, out->n_versions, sizeof(*out->versions), by_samples);
	if (out->n_base_versions)
		qsort(out->base_versions, out->n_base_versions, sizeof(*out->base_versions),
		      by_samples);
	return 0;
}
