/*
 * report.h - the daily regression report: which functions got slower.
 *
 * A report compares, per service, a current window (by default yesterday)
 * with a baseline (the day before, another day, or the service's previous
 * version) function by function, and lists the changes that are
 * significant, large enough in absolute and in relative terms, and not
 * merely cost that moved between a caller and its callee.  docs/report.md
 * explains the method; report_stats.c implements it, report.c picks the
 * windows and versions and reads the store, report_render.c writes HTML,
 * JSON and Markdown.
 *
 * Shares are fractions of the service's samples in one window: the self
 * share of a function is the samples whose leaf it is, its total share the
 * samples whose stack contains it (once per stack, even when it recurses).
 * Comparing shares rather than counts keeps a change of load from looking
 * like a regression.
 *
 * Profile types: a report covers CPU profiles and, for services whose
 * off-CPU time was recorded (`ember run --offcpu`), off-CPU profiles too,
 * each service and type compared on its own (a service can regress in
 * waiting while its CPU profile holds still).  Off-CPU time enters the
 * comparison as samples of EMBER_REPORT_OFFCPU_UNIT_NS: as if waiting
 * threads were sampled at 100 Hz (docs/report.md says what that assumes).
 */
#ifndef EMBER_REPORT_H
#define EMBER_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "core/strbuf.h"

struct ember_store;

#define EMBER_REPORT_OFFCPU_UNIT_NS (10ULL * 1000000ULL) /* off-CPU time per "sample" */

/* ---- options ---- */

enum ember_baseline {
	EMBER_BASELINE_PREVIOUS_DAY,     /* the window of the same length just before */
	EMBER_BASELINE_WINDOW,           /* an explicit window (a given day) */
	EMBER_BASELINE_PREVIOUS_VERSION, /* each service's version before its newest */
};

enum ember_correction { EMBER_CORRECTION_BH, EMBER_CORRECTION_HOLM };

struct ember_report_thresholds {
	double alpha;            /* bound on the corrected p-value (0.01) */
	double min_delta;        /* absolute change of share, a fraction (0.005 = 0.5 points) */
	double min_relative;     /* change relative to the baseline share (0.10 = 10%) */
	uint64_t min_samples;    /* per service and window, else "too little data" (1000) */
	uint64_t min_function_samples; /* a function is tested when a side has this many (20) */
	enum ember_correction correction; /* Benjamini-Hochberg (default) or Holm */
	size_t max_findings;     /* per service (50) */
};

void ember_report_default_thresholds(struct ember_report_thresholds *th);

struct ember_report_options {
	int64_t from_ns, to_ns; /* the current window [from, to), unix ns */
	enum ember_baseline baseline;
	/*
	 * The baseline window.  Required for EMBER_BASELINE_WINDOW; for
	 * PREVIOUS_DAY, 0/0 means [from - (to - from), from) (the caller may set
	 * it to get calendar days across a DST change); unused for
	 * PREVIOUS_VERSION, whose windows come from the versions' spans.
	 */
	int64_t base_from_ns, base_to_ns;
	const char *service; /* NULL = every service with samples in either window */
	/*
	 * The profile types compared: a bit (1u << enum ember_profile_type) per
	 * type.  0 = all: CPU for every service, off-CPU for those with off-CPU
	 * time in either window.  A type asked for alone is reported for every
	 * service, with or without data.
	 */
	unsigned types;
	struct ember_report_thresholds th;
};

/* ---- the result ---- */

enum ember_finding_kind {
	EMBER_FINDING_REGRESSION,  /* share grew */
	EMBER_FINDING_IMPROVEMENT, /* share shrank */
	EMBER_FINDING_NEW,         /* absent from the baseline */
	EMBER_FINDING_VANISHED,    /* absent from the current window */
	EMBER_FINDING_KINDS_
};

enum ember_metric { EMBER_METRIC_SELF, EMBER_METRIC_TOTAL };

struct ember_report_counts {
	uint64_t self, total;          /* samples */
	double self_share, total_share; /* of the side's samples */
};

struct ember_report_finding {
	char *function, *file; /* file may be NULL */
	uint32_t line;
	enum ember_finding_kind kind;
	enum ember_metric metric; /* the share whose change was found */
	struct ember_report_counts base, cur;
	double delta;      /* cur - base share of the metric, fraction of samples */
	double relative;   /* delta / base share; 0 when the base share is 0 (new) */
	double z, p, q;    /* statistic, raw and corrected p-value of the test that found it */
	double tested_delta; /* the change as tested (without functions found before it) */
	char *via;         /* self: the caller it changed most under; total: the callee */
	double via_delta;  /* that caller's / callee's part of delta */
	char *version_base, *version_cur; /* the version change coinciding, NULL = none */
	double version_share; /* the metric's share within version_cur (when set) */
};

enum ember_suppress_reason {
	EMBER_SUPPRESS_DILUTED, /* changed only because other functions' shares changed */
	EMBER_SUPPRESS_MOVED,   /* cost moved between a caller and its callee */
	EMBER_SUPPRESS_REASONS_
};

struct ember_report_suppressed {
	char *function;
	enum ember_suppress_reason reason;
	enum ember_finding_kind kind; /* what it would have been reported as */
	enum ember_metric metric;
	double delta;
	char *other; /* MOVED: the caller or "its callees"; NULL otherwise */
};

struct ember_report_version {
	char *version;
	uint64_t samples; /* in the window */
};

enum ember_service_status {
	EMBER_SERVICE_OK,
	EMBER_SERVICE_TOO_FEW_SAMPLES, /* a side has fewer than min_samples */
	EMBER_SERVICE_NO_BASELINE,     /* previous-version: only one version known */
};

struct ember_report_service {
	char *service;
	enum ember_profile_type type; /* what was compared: CPU samples, off-CPU time */
	enum ember_service_status status;
	char *note; /* why there are no findings, or a caveat (truncated query); may be NULL */
	int64_t from_ns, to_ns, base_from_ns, base_to_ns;
	char *version_cur, *version_base; /* previous-version mode: the two compared */
	uint64_t samples, base_samples;
	struct ember_report_version *versions, *base_versions; /* seen in each window */
	size_t n_versions, n_base_versions;
	struct ember_report_finding *findings; /* by kind, then |delta| descending */
	size_t n_findings;
	struct ember_report_suppressed *suppressed;
	size_t n_suppressed;
	size_t suppressed_by[EMBER_SUPPRESS_REASONS_];
	size_t functions;   /* distinct functions in either window */
	size_t tests;       /* hypotheses tested (self and total per function) */
	size_t small;       /* significant changes under the absolute/relative thresholds */
	bool truncated;     /* stopped at max_findings */
	bool small_share;   /* under EMBER_REPORT_SMALL_SHARE of the report's samples */
};

/*
 * A service with less than this share of the samples of every service in
 * the report (both windows) is "small": when it is not compared, the HTML
 * and Markdown reports name it in one line instead of a table row.  The
 * UI's service picker hides services under the same share.
 */
#define EMBER_REPORT_SMALL_SHARE 0.005

struct ember_report {
	int64_t created_ns;
	struct ember_report_options opt; /* opt.service points into this struct */
	char *service_filter;
	struct ember_report_service *services; /* by name */
	size_t n_services;
};

/*
 * Build a report from the store.  Returns 0 (a service with too little data
 * is part of a successful report) or a negative errno with err naming the
 * database or the option at fault.  Free with ember_report_free().
 */
int ember_report_build(struct ember_store *s, const struct ember_report_options *opt,
		       struct ember_report **out, char *err, size_t errlen);
void ember_report_free(struct ember_report *r);

/* Findings of one kind in a service. */
size_t ember_report_count(const struct ember_report_service *svc, enum ember_finding_kind kind);

const char *ember_finding_kind_name(enum ember_finding_kind kind);   /* "regression", ... */
const char *ember_suppress_reason_name(enum ember_suppress_reason r); /* "diluted", "moved" */
const char *ember_baseline_name(enum ember_baseline b); /* "previous-day", ... */

/* ---- rendering (report_render.c) ---- */

enum ember_report_format { EMBER_REPORT_HTML, EMBER_REPORT_JSON, EMBER_REPORT_MD };

#define EMBER_REPORT_DEFAULT_UI "http://127.0.0.1:7070/"

/*
 * Append the report to out.  Findings link to the UI's diff view at
 * ui_base + "#..." (NULL = EMBER_REPORT_DEFAULT_UI; "/" gives links relative
 * to the server that serves the report).  Returns 0, -EINVAL for an unknown
 * format, or -ENOMEM.
 */
int ember_report_render(const struct ember_report *r, enum ember_report_format fmt,
			const char *ui_base, struct strbuf *out);

/*
 * The style sheet of the HTML report, which inlines it in one <style>
 * element; a server whose CSP forbids inline styles serves it on its own.
 */
extern const char ember_report_css[];

/* The UI hash ("s=...&cmp=...") showing a finding's diff; appended to out. */
void ember_report_diff_hash(const struct ember_report_service *svc,
			    const struct ember_report_finding *f, struct strbuf *out);

/* A one-line summary ("2 regressions, 1 improvement in 3 services"), for lists. */
void ember_report_summary(const struct ember_report *r, struct strbuf *out);

/* ---- times (report_time.c) ---- */

/*
 * Parse a day "YYYY-MM-DD" into its local-time window [*from, *to) (23 or
 * 25 hours across a DST change).  Returns 0 or -EINVAL.
 */
int ember_report_parse_day(const char *s, int64_t *from_ns, int64_t *to_ns);

/*
 * Parse a point in time: "YYYY-MM-DD" (local midnight), "YYYY-MM-DDTHH:MM[:SS]"
 * or with a space instead of T (local), "@SECONDS" (unix), "now", or "-N"
 * followed by s, m, h or d (that long before now_ns).  Returns 0 or -EINVAL.
 */
int ember_report_parse_time(const char *s, int64_t now_ns, int64_t *out_ns);

/* The local day before/after the one starting at day_ns (local midnight). */
int64_t ember_report_day_shift(int64_t day_ns, int days);

/* The local midnight starting the day holding t. */
int64_t ember_report_day_start(int64_t t_ns);

/* "YYYY-MM-DD HH:MM" in local time, or "YYYY-MM-DD" when at midnight. */
void ember_report_format_time(int64_t t_ns, char *buf, size_t size);

#endif
