/*
 * report.c - the daily report's orchestration: windows, baselines, services.
 *
 * For every service with samples in the current window (or only the one
 * asked for), the store is queried once per version seen in each window
 * (targets merged, which is fast, and the per-version queries give the
 * versions' sample counts for free); the profiles go into a comparison
 * (report_stats.c), which finds the changes.
 *
 * Baselines:
 *  - previous-day: the window of the same length just before the current
 *    one (the caller passes calendar days for --day, see report_time.c);
 *  - a given window (--baseline YYYY-MM-DD);
 *  - previous-version: per service, the current side is the newest version
 *    seen in the current window (latest first_seen) and only it; the
 *    baseline is the version that ran before it (first seen earlier, seen
 *    last most recently), over its last stretch of data as long as the
 *    current window.  Comparing versions rather than days keeps the other
 *    day-to-day changes (load mix, other deploys) out of the comparison.
 *
 * A service with fewer than min_samples samples in either window gets a
 * status saying so and no findings: too little data is reported, not
 * guessed at.
 *
 * Each service is compared once per profile type reported (report.h): its
 * CPU profile and, when off-CPU time was recorded, its off-CPU profile,
 * whose nanoseconds are turned into samples of EMBER_REPORT_OFFCPU_UNIT_NS
 * before the comparison (a count of nanoseconds taken for a count of
 * independent samples would make any change look significant).
 */
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/report_stats.h"
#include "store/store.h"

#define SLACK_NS (10LL * 1000000000LL) /* a bucket: seen times are bucket-granular */

void ember_report_default_thresholds(struct ember_report_thresholds *th)
{
	th->alpha = 0.01;
	th->min_delta = 0.005;
	th->min_relative = 0.10;
	th->min_samples = 1000;
	th->min_function_samples = 20;
	th->correction = EMBER_CORRECTION_BH;
	th->max_findings = 50;
}

const char *ember_finding_kind_name(enum ember_finding_kind kind)
{
	switch (kind) {
	case EMBER_FINDING_REGRESSION: return "regression";
	case EMBER_FINDING_IMPROVEMENT: return "improvement";
	case EMBER_FINDING_NEW: return "new";
	case EMBER_FINDING_VANISHED: return "vanished";
	default: return "?";
	}
}

const char *ember_suppress_reason_name(enum ember_suppress_reason r)
{
	return r == EMBER_SUPPRESS_DILUTED ? "diluted" : r == EMBER_SUPPRESS_MOVED ? "moved" : "?";
}

const char *ember_baseline_name(enum ember_baseline b)
{
	switch (b) {
	case EMBER_BASELINE_PREVIOUS_DAY: return "previous-day";
	case EMBER_BASELINE_WINDOW: return "window";
	case EMBER_BASELINE_PREVIOUS_VERSION: return "previous-version";
	default: return "?";
	}
}

size_t ember_report_count(const struct ember_report_service *svc, enum ember_finding_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < svc->n_findings; i++)
		n += svc->findings[i].kind == kind;
	return n;
}

/* ---- freeing ---- */

static void free_service(struct ember_report_service *svc)
{
	free(svc->service);
	free(svc->note);
	free(svc->version_cur);
	free(svc->version_base);
	for (size_t i = 0; i < svc->n_versions; i++)
		free(svc->versions[i].version);
	for (size_t i = 0; i < svc->n_base_versions; i++)
		free(svc->base_versions[i].version);
	free(svc->versions);
	free(svc->base_versions);
	for (size_t i = 0; i < svc->n_findings; i++) {
		struct ember_report_finding *f = &svc->findings[i];
		free(f->function);
		free(f->file);
		free(f->via);
		free(f->version_base);
		free(f->version_cur);
	}
	free(svc->findings);
	for (size_t i = 0; i < svc->n_suppressed; i++) {
		free(svc->suppressed[i].function);
		free(svc->suppressed[i].other);
	}
	free(svc->suppressed);
}

void ember_report_free(struct ember_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_services; i++)
		free_service(&r->services[i]);
	free(r->services);
	free(r->service_filter);
	free(r);
}

/* ---- the store's versions ---- */

struct version_span {
	char *service, *version;
	int64_t first_ns, last_ns;
};

struct version_list {
	struct version_span *v;
	size_t n, cap;
	bool oom;
};

static int collect_version(const struct ember_version_row *row, void *arg)
{
	struct version_list *l = arg;
	struct version_span *v;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->oom = true;
			return 1;
		}
		l->v = v;
		l->cap = cap;
	}
	v = &l->v[l->n];
	v->service = strdup(row->service ? row->service : "");
	v->version = strdup(row->version ? row->version : "");
	if (!v->service || !v->version) {
		free(v->service);
		free(v->version);
		l->oom = true;
		return 1;
	}
	v->first_ns = row->first_seen_ns;
	v->last_ns = row->last_seen_ns;
	l->n++;
	return 0;
}

static void free_versions(struct version_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].service);
		free(l->v[i].version);
	}
	free(l->v);
}

static bool overlaps(const struct version_span *v, int64_t from, int64_t to)
{
	return v->first_ns < to && v->last_ns + SLACK_NS > from;
}

/* ---- one service ---- */

static int set_note(struct ember_report_service *svc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int set_note(struct ember_report_service *svc, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	size_t len = 0;
	char *n;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (svc->note)
		len = strlen(svc->note) + 1;
	n = realloc(svc->note, len + strlen(buf) + 1);
	if (!n)
		return -ENOMEM;
	if (len)
		n[len - 1] = ' ';
	strcpy(n + len, buf);
	svc->note = n;
	return 0;
}

/* Off-CPU nanoseconds as samples of EMBER_REPORT_OFFCPU_UNIT_NS (rounded). */
static void offcpu_to_samples(struct ember_profile *p)
{
	p->total = 0;
	for (size_t i = 0; i < p->n_stacks; i++) {
		struct ember_stack *st = &p->stacks[i];
		st->count = (st->count + EMBER_REPORT_OFFCPU_UNIT_NS / 2) / EMBER_REPORT_OFFCPU_UNIT_NS;
		p->total += st->count;
	}
}

/* Query one version of a service over [from, to) into a side of rc. */
static int add_side(struct ember_store *s, struct rs_compare *rc, int side,
		    struct ember_report_service *svc, const char *version, int64_t from,
		    int64_t to, char *err, size_t errlen)
{
	struct ember_selection sel = {.from_ns = from, .to_ns = to, .service = svc->service,
				      .version = version, .type = svc->type,
				      .merge_targets = true};
	struct ember_profile *p = NULL;
	char qerr[EMBER_STORE_ERRLEN] = "";
	int ret;

	ret = ember_store_query(s, &sel, &p, qerr, sizeof(qerr));
	if (ret) {
		snprintf(err, errlen, "%s", qerr[0] ? qerr : "store query failed");
		return ret;
	}
	if (svc->type == EMBER_PROFILE_OFFCPU)
		offcpu_to_samples(p);
	if (qerr[0] && !svc->truncated) {
		/* the store kept only the heaviest stacks */
		svc->truncated = true;
		ret = set_note(svc, "Only the heaviest stacks of %s were read (%s): the shares "
				    "of rare functions are approximate.",
			       version, qerr);
	}
	if (!ret)
		ret = rs_compare_add(rc, side, version, p);
	ember_profile_free(p);
	if (ret)
		snprintf(err, errlen, "report: cannot compare service %s: %s", svc->service,
			 strerror(-ret));
	return ret;
}

static bool same_service(const struct version_span *v, const char *service)
{
	return strcmp(v->service, service) == 0;
}

/* previous-version: pick the versions and windows; false = no baseline. */
static bool pick_versions(const struct version_list *l, const char *service, int64_t from,
			  int64_t to, const struct version_span **cur,
			  const struct version_span **base)
{
	*cur = *base = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const struct version_span *v = &l->v[i];
		if (same_service(v, service) && overlaps(v, from, to) &&
		    (!*cur || v->first_ns > (*cur)->first_ns))
			*cur = v;
	}
	if (!*cur)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const struct version_span *v = &l->v[i];
		if (v == *cur || !same_service(v, service) || v->first_ns >= (*cur)->first_ns)
			continue;
		if (!*base || v->last_ns > (*base)->last_ns)
			*base = v;
	}
	return *base != NULL;
}

static int service_by_version(struct ember_store *s, const struct ember_report_options *o,
			      const struct version_list *l, struct rs_compare *rc,
			      struct ember_report_service *svc, char *err, size_t errlen)
{
	const struct version_span *cur, *base;
	int64_t len = o->to_ns - o->from_ns, bt, bf;
	int ret;

	svc->from_ns = o->from_ns;
	svc->to_ns = o->to_ns;
	if (!pick_versions(l, svc->service, o->from_ns, o->to_ns, &cur, &base)) {
		svc->status = EMBER_SERVICE_NO_BASELINE;
		if (cur) {
			svc->version_cur = strdup(cur->version);
			if (!svc->version_cur)
				return -ENOMEM;
		}
		if (!cur)
			return set_note(svc, "No samples in the window.");
		/* read it anyway: the report shows how much that version ran */
		ret = add_side(s, rc, RS_CUR, svc, cur->version, o->from_ns, o->to_ns, err, errlen);
		if (!ret)
			ret = set_note(svc, "Only one version (%s) has been seen: there is no "
					    "previous version to compare with.",
				       cur->version);
		return ret;
	}
	bt = base->last_ns + SLACK_NS < o->to_ns ? base->last_ns + SLACK_NS : o->to_ns;
	bf = bt - len > base->first_ns ? bt - len : base->first_ns;
	svc->base_from_ns = bf;
	svc->base_to_ns = bt;
	svc->version_cur = strdup(cur->version);
	svc->version_base = strdup(base->version);
	if (!svc->version_cur || !svc->version_base)
		return -ENOMEM;
	ret = add_side(s, rc, RS_CUR, svc, cur->version, o->from_ns, o->to_ns, err, errlen);
	if (!ret)
		ret = add_side(s, rc, RS_BASE, svc, base->version, bf, bt, err, errlen);
	return ret;
}

static int service_by_window(struct ember_store *s, const struct ember_report_options *o,
			     const struct version_list *l, struct rs_compare *rc,
			     struct ember_report_service *svc, char *err, size_t errlen)
{
	int ret = 0;

	svc->from_ns = o->from_ns;
	svc->to_ns = o->to_ns;
	svc->base_from_ns = o->base_from_ns;
	svc->base_to_ns = o->base_to_ns;
	for (size_t i = 0; i < l->n && !ret; i++) {
		const struct version_span *v = &l->v[i];
		if (!same_service(v, svc->service))
			continue;
		if (overlaps(v, o->from_ns, o->to_ns))
			ret = add_side(s, rc, RS_CUR, svc, v->version, o->from_ns, o->to_ns, err,
				       errlen);
		if (!ret && overlaps(v, o->base_from_ns, o->base_to_ns))
			ret = add_side(s, rc, RS_BASE, svc, v->version, o->base_from_ns,
				       o->base_to_ns, err, errlen);
	}
	return ret;
}

static int build_service(struct ember_store *s, const struct ember_report_options *o,
			 const struct version_list *l, struct ember_report_service *svc,
			 char *err, size_t errlen)
{
	struct rs_compare *rc = rs_compare_new();
	uint64_t min = o->th.min_samples;
	int ret;

	if (!rc)
		return -ENOMEM;
	if (o->baseline == EMBER_BASELINE_PREVIOUS_VERSION)
		ret = service_by_version(s, o, l, rc, svc, err, errlen);
	else
		ret = service_by_window(s, o, l, rc, svc, err, errlen);
	if (!ret)
		ret = rs_compare_versions(rc, svc);
	if (ret || svc->status == EMBER_SERVICE_NO_BASELINE)
		goto out;
	if (svc->samples < min || svc->base_samples < min) {
		svc->status = EMBER_SERVICE_TOO_FEW_SAMPLES;
		ret = set_note(svc,
			       "Too little data to compare: %" PRIu64 " samples in the current "
			       "window and %" PRIu64 " in the baseline; at least %" PRIu64
			       " are needed in each.",
			       svc->samples, svc->base_samples, min);
		goto out;
	}
	ret = rs_compare_run(rc, &o->th, svc);
	if (!ret && svc->truncated && svc->n_findings >= o->th.max_findings)
		ret = set_note(svc, "Only the %zu largest findings are listed.", o->th.max_findings);
out:
	if (ret == -ENOMEM && !err[0])
		snprintf(err, errlen, "report: out of memory comparing service %s", svc->service);
	rs_compare_free(rc);
	return ret;
}

/* ---- the report ---- */

static int check_options(const struct ember_report_options *o, char *err, size_t errlen)
{
	const struct ember_report_thresholds *th = &o->th;

	if (o->to_ns <= o->from_ns) {
		snprintf(err, errlen, "report: the window is empty (to <= from)");
		return -EINVAL;
	}
	if (o->baseline == EMBER_BASELINE_WINDOW && o->base_to_ns <= o->base_from_ns) {
		snprintf(err, errlen, "report: the baseline window is empty");
		return -EINVAL;
	}
	if (!(th->alpha > 0 && th->alpha < 1) || !(th->min_delta >= 0 && th->min_delta < 1) ||
	    !(th->min_relative >= 0) || !th->max_findings) {
		snprintf(err, errlen, "report: thresholds out of range (alpha in (0,1), "
				      "min delta in [0,1), min relative >= 0, max findings > 0)");
		return -EINVAL;
	}
	return 0;
}

static bool want_service(const struct ember_report_options *o, const struct version_list *l,
			 const char *service)
{
	if (o->service)
		return strcmp(o->service, service) == 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct version_span *v = &l->v[i];
		if (same_service(v, service) && overlaps(v, o->from_ns, o->to_ns))
			return true;
		if (same_service(v, service) && o->baseline != EMBER_BASELINE_PREVIOUS_VERSION &&
		    overlaps(v, o->base_from_ns, o->base_to_ns))
			return true;
	}
	return false;
}

static int add_service(struct ember_report *r, const char *name, enum ember_profile_type type)
{
	struct ember_report_service *s;

	s = realloc(r->services, (r->n_services + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	r->services = s;
	s = &s[r->n_services];
	memset(s, 0, sizeof(*s));
	s->service = strdup(name);
	s->type = type;
	if (!s->service)
		return -ENOMEM;
	r->n_services++;
	return 0;
}

static bool want_type(const struct ember_report_options *o, enum ember_profile_type type)
{
	return !o->types || (o->types & (1u << type));
}

/* A service's entries, one per profile type reported. */
static int add_service_types(struct ember_report *r, const char *name)
{
	static const enum ember_profile_type types[] = {EMBER_PROFILE_CPU, EMBER_PROFILE_OFFCPU};
	int ret = 0;

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]) && !ret; t++)
		if (want_type(&r->opt, types[t]))
			ret = add_service(r, name, types[t]);
	return ret;
}

/*
 * With every type reported (types 0), the off-CPU entries of services
 * without off-CPU time in either window go: most services are profiled
 * for CPU only.
 */
static void drop_empty_offcpu(struct ember_report *r)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->n_services; i++) {
		struct ember_report_service *svc = &r->services[i];
		if (!r->opt.types && svc->type == EMBER_PROFILE_OFFCPU && !svc->samples &&
		    !svc->base_samples)
			free_service(svc);
		else
			r->services[kept++] = *svc;
	}
	r->n_services = kept;
}

/* The services to report on, in name order (list_versions sorts by service). */
static int choose_services(struct ember_report *r, const struct version_list *l)
{
	const struct ember_report_options *o = &r->opt;
	int ret = 0;

	for (size_t i = 0; i < l->n && !ret; i++) {
		const char *name = l->v[i].service;
		if (r->n_services && strcmp(r->services[r->n_services - 1].service, name) == 0)
			continue;
		if (want_service(o, l, name))
			ret = add_service_types(r, name);
	}
	if (!ret && o->service && !r->n_services)
		ret = add_service_types(r, o->service); /* reported as having no data */
	return ret;
}

/*
 * Flag the services holding under EMBER_REPORT_SMALL_SHARE of the report's
 * samples (both windows): a shell command or a cron job, listed by name
 * only when not compared, so they do not bury the services that matter.
 */
static void mark_small(struct ember_report *r)
{
	uint64_t all[EMBER_PROFILE__TYPES] = {0}; /* a share among the same type's samples */

	for (size_t i = 0; i < r->n_services; i++)
		if ((unsigned)r->services[i].type < EMBER_PROFILE__TYPES)
			all[r->services[i].type] += r->services[i].samples + r->services[i].base_samples;
	for (size_t i = 0; i < r->n_services; i++) {
		struct ember_report_service *svc = &r->services[i];
		if ((unsigned)svc->type >= EMBER_PROFILE__TYPES)
			continue;
		svc->small_share = (double)(svc->samples + svc->base_samples) <
			     EMBER_REPORT_SMALL_SHARE * (double)all[svc->type];
	}
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int ember_report_build(struct ember_store *s, const struct ember_report_options *opt,
		       struct ember_report **out, char *err, size_t errlen)
{
	struct version_list l = {0};
	struct ember_report *r;
	char serr[EMBER_STORE_ERRLEN] = "";
	int ret;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	ret = check_options(opt, err, errlen);
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->created_ns = now_ns();
	r->opt = *opt;
	if (r->opt.baseline == EMBER_BASELINE_PREVIOUS_DAY && !r->opt.base_to_ns) {
		r->opt.base_to_ns = opt->from_ns;
		r->opt.base_from_ns = opt->from_ns - (opt->to_ns - opt->from_ns);
	}
	if (r->opt.baseline == EMBER_BASELINE_PREVIOUS_VERSION)
		r->opt.base_from_ns = r->opt.base_to_ns = 0;
	if (opt->service) {
		r->service_filter = strdup(opt->service);
		if (!r->service_filter) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	r->opt.service = r->service_filter;

	ret = ember_store_list_versions(s, collect_version, &l, serr, sizeof(serr));
	if (!ret && l.oom)
		ret = -ENOMEM;
	if (ret) {
		snprintf(err, errlen, "%s", serr[0] ? serr : "report: cannot list versions");
		goto fail;
	}
	ret = choose_services(r, &l);
	for (size_t i = 0; i < r->n_services && !ret; i++)
		ret = build_service(s, &r->opt, &l, &r->services[i], err, errlen);
	if (ret)
		goto fail;
	drop_empty_offcpu(r);
	mark_small(r);
	free_versions(&l);
	*out = r;
	return 0;
fail:
	if (ret == -ENOMEM && !err[0])
		snprintf(err, errlen, "report: out of memory");
	free_versions(&l);
	ember_report_free(r);
	return ret;
}
