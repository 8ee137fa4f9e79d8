/*
 * report_render.c - a report as HTML, JSON or Markdown.
 *
 * HTML is one self-contained page (inline CSS, no script, no external
 * resource) that reads well on its own, in a mail client or served by the
 * UI at /api/reports/ID; every finding links to the UI's diff view of the
 * same two windows (or versions) with the function highlighted.  The hash
 * follows web/app.js: s (service), v (version), cmp ("v:VERSION" or
 * "range"), from/to and afrom/ato (ms), q (search regex), by=self.
 *
 * JSON carries everything, keys in a fixed order.  Markdown is the short
 * form for chat and tickets.  All names (function names come from the
 * profiled binaries) are escaped for the format they land in.
 */
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_MS ((int64_t)1000000)

static const enum ember_finding_kind kind_order[] = {
	EMBER_FINDING_REGRESSION, EMBER_FINDING_NEW, EMBER_FINDING_IMPROVEMENT,
	EMBER_FINDING_VANISHED};

static const char *kind_title(enum ember_finding_kind k)
{
	switch (k) {
	case EMBER_FINDING_REGRESSION: return "Regressions";
	case EMBER_FINDING_IMPROVEMENT: return "Improvements";
	case EMBER_FINDING_NEW: return "New functions";
	case EMBER_FINDING_VANISHED: return "Vanished functions";
	default: return "?";
	}
}

static const char *kind_json_key(enum ember_finding_kind k)
{
	switch (k) {
	case EMBER_FINDING_REGRESSION: return "regressions";
	case EMBER_FINDING_IMPROVEMENT: return "improvements";
	case EMBER_FINDING_NEW: return "new";
	case EMBER_FINDING_VANISHED: return "vanished";
	default: return "?";
	}
}

static const char *status_name(enum ember_service_status s)
{
	return s == EMBER_SERVICE_OK ? "ok" : s == EMBER_SERVICE_TOO_FEW_SAMPLES ? "too_few_samples"
										 : "no_baseline";
}

static const char *metric_name(enum ember_metric m)
{
	return m == EMBER_METRIC_SELF ? "self" : "total";
}

/* ---- escaping ---- */

static void html_str(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': sb_puts(sb, "&lt;"); break;
		case '>': sb_puts(sb, "&gt;"); break;
		case '&': sb_puts(sb, "&amp;"); break;
		case '"': sb_puts(sb, "&quot;"); break;
		case '\'': sb_puts(sb, "&#39;"); break;
		default: sb_putc(sb, *s);
		}
	}
}

/* A service's name, and its profile type when not CPU. */
static void html_title(struct strbuf *sb, const struct ember_report_service *svc)
{
	html_str(sb, svc->service);
	if (svc->type == EMBER_PROFILE_OFFCPU)
		sb_puts(sb, " (off-CPU)");
}

/* Markdown table cell text: no pipes, no newlines, no backticks to break code spans. */
static void md_str(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			sb_puts(sb, "\\|");
		else if (*s == '\n' || *s == '\r')
			sb_putc(sb, ' ');
		else if (*s == '`')
			sb_putc(sb, '\'');
		else
			sb_putc(sb, *s);
	}
}

static void url_component(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			sb_putc(sb, (char)*p);
		} else {
			sb_putc(sb, '%');
			sb_putc(sb, hex[*p >> 4]);
			sb_putc(sb, hex[*p & 15]);
		}
	}
}

/* An exact-match regex for the UI's search box: ^name$ with specials escaped. */
static void exact_regex(struct strbuf *sb, const char *name)
{
	sb_putc(sb, '^');
	for (; *name; name++) {
		if (strchr(".*+?^${}()|[]\\/", *name))
			sb_putc(sb, '\\');
		sb_putc(sb, *name);
	}
	sb_putc(sb, '$');
}

/* ---- links ---- */

static void hash_param(struct strbuf *sb, const char *key, const char *value)
{
	if (sb->len && sb->buf[sb->len - 1] != '#')
		sb_putc(sb, '&');
	sb_puts(sb, key);
	sb_putc(sb, '=');
	url_component(sb, value);
}

static void hash_ms(struct strbuf *sb, const char *key, int64_t ns)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, ns / NS_PER_MS);
	hash_param(sb, key, buf);
}

void ember_report_diff_hash(const struct ember_report_service *svc,
			    const struct ember_report_finding *f, struct strbuf *out)
{
	struct strbuf re, cmp;

	sb_init(&re);
	sb_init(&cmp);
	/* start after a '#' or at an empty buffer: hash_param adds '&' otherwise */
	hash_param(out, "s", svc->service);
	if (svc->type != EMBER_PROFILE_CPU)
		hash_param(out, "t", ember_profile_type_name(svc->type));
	if (svc->version_cur && svc->version_base) {
		/* B: the current version, A: the previous one, over both windows */
		hash_param(out, "v", svc->version_cur);
		sb_puts(&cmp, "v:");
		sb_puts(&cmp, svc->version_base);
		hash_param(out, "cmp", cmp.buf ? cmp.buf : "");
		hash_ms(out, "from", svc->base_from_ns < svc->from_ns ? svc->base_from_ns
								      : svc->from_ns);
		hash_ms(out, "to", svc->to_ns);
	} else {
		hash_param(out, "cmp", "range");
		hash_ms(out, "from", svc->from_ns);
		hash_ms(out, "to", svc->to_ns);
		hash_ms(out, "afrom", svc->base_from_ns);
		hash_ms(out, "ato", svc->base_to_ns);
	}
	if (f) {
		exact_regex(&re, f->function);
		hash_param(out, "q", re.buf ? re.buf : "");
		if (f->metric == EMBER_METRIC_SELF)
			hash_param(out, "by", "self");
	}
	sb_free(&re);
	sb_free(&cmp);
}

static void link(struct strbuf *sb, const char *ui_base, const struct ember_report_service *svc,
		 const struct ember_report_finding *f)
{
	sb_puts(sb, ui_base);
	sb_putc(sb, '#');
	ember_report_diff_hash(svc, f, sb);
}

/* ---- numbers ---- */

static void pct(struct strbuf *sb, double share)
{
	sb_printf(sb, "%.2f%%", share * 100);
}

static void points(struct strbuf *sb, double delta)
{
	sb_printf(sb, "%+.2f pt", delta * 100);
}

static void relative(struct strbuf *sb, const struct ember_report_finding *f)
{
	if (f->kind == EMBER_FINDING_NEW)
		sb_puts(sb, "new");
	else if (f->kind == EMBER_FINDING_VANISHED)
		sb_puts(sb, "gone");
	else
		sb_printf(sb, "%+.0f%%", f->relative * 100);
}

static void pvalue(struct strbuf *sb, double q)
{
	if (q < 1e-300)
		sb_puts(sb, "&lt;1e-300");
	else if (q < 0.001)
		sb_printf(sb, "%.0e", q);
	else
		sb_printf(sb, "%.3f", q);
}

static void json_num(struct strbuf *sb, double v)
{
	if (!isfinite(v))
		sb_puts(sb, "null");
	else
		sb_printf(sb, "%.6g", v);
}

static void window(struct strbuf *sb, int64_t from, int64_t to)
{
	char a[40], b[40];

	ember_report_format_time(from, a, sizeof(a));
	ember_report_format_time(to, b, sizeof(b));
	sb_printf(sb, "%s \u2013 %s", a, b);
}

void ember_report_summary(const struct ember_report *r, struct strbuf *out)
{
	size_t n[EMBER_FINDING_KINDS_] = {0}, few = 0, names = 0;

	for (size_t i = 0; i < r->n_services; i++) {
		const struct ember_report_service *svc = &r->services[i];
		/* a service's types are adjacent: count it once */
		names += !i || strcmp(r->services[i - 1].service, svc->service) != 0;
		for (size_t k = 0; k < EMBER_FINDING_KINDS_; k++)
			n[k] += ember_report_count(svc, (enum ember_finding_kind)k);
		few += svc->status != EMBER_SERVICE_OK;
	}
	if (!r->n_services) {
		sb_puts(out, "No service has samples in the window");
		return;
	}
	sb_printf(out, "%zu regression%s, %zu new, %zu improvement%s, %zu vanished in %zu service%s",
		  n[EMBER_FINDING_REGRESSION], n[EMBER_FINDING_REGRESSION] == 1 ? "" : "s",
		  n[EMBER_FINDING_NEW], n[EMBER_FINDING_IMPROVEMENT],
		  n[EMBER_FINDING_IMPROVEMENT] == 1 ? "" : "s", n[EMBER_FINDING_VANISHED], names,
		  names == 1 ? "" : "s");
	if (few)
		sb_printf(out, " (%zu without enough data to compare)", few);
}

static void baseline_text(struct strbuf *sb, const struct ember_report *r)
{
	switch (r->opt.baseline) {
	case EMBER_BASELINE_PREVIOUS_DAY:
		sb_puts(sb, "the period before (");
		window(sb, r->opt.base_from_ns, r->opt.base_to_ns);
		sb_putc(sb, ')');
		break;
	case EMBER_BASELINE_WINDOW:
		window(sb, r->opt.base_from_ns, r->opt.base_to_ns);
		break;
	case EMBER_BASELINE_PREVIOUS_VERSION:
		sb_puts(sb, "each service's previous version");
		break;
	}
}

/* ---- HTML ---- */

const char ember_report_css[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
	"color:#24211e;background:#faf8f5;margin:0;padding:0 0 40px}"
	"header{background:#1f1b18;color:#f4ede4;padding:16px 24px}"
	"header h1{margin:0 0 4px;font-size:20px}header p{margin:2px 0;color:#d8cfc4}"
	"header .summary{color:#fff;font-weight:600;font-size:15px}"
	"main{padding:0 24px;max-width:1200px}"
	"nav.toc{margin:14px 0;display:flex;flex-wrap:wrap;gap:6px 14px}"
	"nav.toc a{color:#b5440a}"
	"section.svc{background:#fff;border:1px solid #e2dad0;border-radius:6px;"
	"padding:4px 18px 14px;margin:16px 0}"
	"h2{font-size:18px;margin:12px 0 4px}h3{font-size:15px;margin:16px 0 6px}"
	".meta{color:#6f6860;margin:2px 0}.note{background:#fff4e6;border-left:3px solid #e8590c;"
	"padding:6px 10px;margin:8px 0}"
	"table{border-collapse:collapse;width:100%;font-size:13px}"
	"th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eee6dc;vertical-align:top}"
	"th{color:#6f6860;font-weight:600;white-space:nowrap}"
	"td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
	"code{font:12.5px ui-monospace,Menlo,Consolas,'DejaVu Sans Mono',monospace;"
	"word-break:break-all}"
	".sub{color:#6f6860;font-size:12px}.up{color:#c92a2a;font-weight:600}"
	".down{color:#2b8a3e;font-weight:600}.none{color:#6f6860;font-style:italic}"
	"td.ver code{word-break:normal}a.diff{color:#b5440a;white-space:nowrap}details{margin:10px 0}"
	"summary{cursor:pointer;color:#6f6860}footer{padding:0 24px;color:#6f6860;"
	"font-size:12px;max-width:1200px}";

static void html_versions(struct strbuf *sb, const struct ember_report_version *v, size_t n,
			  uint64_t total)
{
	if (!n) {
		sb_puts(sb, "none");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_puts(sb, ", ");
		sb_puts(sb, "<code>");
		html_str(sb, v[i].version);
		sb_puts(sb, "</code>");
		if (n > 1)
			sb_printf(sb, " (%.0f%%)", total ? 100.0 * (double)v[i].samples / (double)total : 0);
	}
}

static void html_finding(struct strbuf *sb, const struct ember_report_service *svc,
			 const struct ember_report_finding *f, size_t rank, const char *ui)
{
	bool up = f->delta > 0;

	sb_printf(sb, "<tr><td class=\"num\">%zu</td><td><code>", rank);
	html_str(sb, f->function);
	sb_puts(sb, "</code>");
	if (f->file) {
		sb_puts(sb, "<div class=\"sub\">");
		html_str(sb, f->file);
		sb_puts(sb, "</div>");
	}
	if (f->via) {
		sb_printf(sb, "<div class=\"sub\">mostly %s <code>",
			  f->metric == EMBER_METRIC_SELF ? "when called from" : "in its callee");
		html_str(sb, f->via);
		sb_puts(sb, "</code> (");
		points(sb, f->via_delta);
		sb_puts(sb, ")</div>");
	}
	sb_puts(sb, "</td><td class=\"num\">");
	pct(sb, f->base.self_share);
	sb_puts(sb, " \u2192 ");
	pct(sb, f->cur.self_share);
	sb_puts(sb, "</td><td class=\"num\">");
	pct(sb, f->base.total_share);
	sb_puts(sb, " \u2192 ");
	pct(sb, f->cur.total_share);
	sb_printf(sb, "</td><td class=\"num %s\">", up ? "up" : "down");
	points(sb, f->delta);
	sb_printf(sb, " <span class=\"sub\">%s</span></td><td class=\"num\">", metric_name(f->metric));
	relative(sb, f);
	sb_printf(sb, "</td><td class=\"num\">%" PRIu64 " \u2192 %" PRIu64 "</td><td class=\"num\">",
		  f->metric == EMBER_METRIC_SELF ? f->base.self : f->base.total,
		  f->metric == EMBER_METRIC_SELF ? f->cur.self : f->cur.total);
	pvalue(sb, f->q);
	sb_puts(sb, "</td><td class=\"ver\">");
	if (f->version_cur) {
		sb_puts(sb, "<code>");
		html_str(sb, f->version_base ? f->version_base : "?");
		sb_puts(sb, "</code> \u2192 <code>");
		html_str(sb, f->version_cur);
		sb_puts(sb, "</code>");
		if (!svc->version_cur) {
			sb_puts(sb, "<div class=\"sub\">");
			pct(sb, f->version_share);
			sb_puts(sb, " in it</div>");
		}
	} else {
		sb_puts(sb, "<span class=\"none\">no version change</span>");
	}
	sb_puts(sb, "</td><td><a class=\"diff\" href=\"");
	{
		struct strbuf l;
		sb_init(&l);
		link(&l, ui, svc, f);
		html_str(sb, l.buf);
		sb_free(&l);
	}
	sb_puts(sb, "\">diff \u2197</a></td></tr>\n");
}

static void html_kind(struct strbuf *sb, const struct ember_report_service *svc,
		      enum ember_finding_kind kind, const char *ui)
{
	size_t n = ember_report_count(svc, kind), rank = 0;

	if (!n && kind != EMBER_FINDING_REGRESSION)
		return;
	sb_printf(sb, "<h3>%s (%zu)</h3>\n", kind_title(kind), n);
	if (!n) {
		sb_puts(sb, "<p class=\"none\">No function got significantly slower.</p>\n");
		return;
	}
	sb_puts(sb, "<table><thead><tr><th>#</th><th>Function</th><th>Self share</th>"
		    "<th>Total share</th><th>Change</th><th>Relative</th><th>Samples</th>"
		    "<th title=\"p-value corrected for multiple comparisons\">q</th>"
		    "<th>Version change</th><th></th></tr></thead><tbody>\n");
	for (size_t i = 0; i < svc->n_findings; i++)
		if (svc->findings[i].kind == kind)
			html_finding(sb, svc, &svc->findings[i], ++rank, ui);
	sb_puts(sb, "</tbody></table>\n");
}

static void html_suppressed(struct strbuf *sb, const struct ember_report_service *svc)
{
	size_t total = 0;

	for (size_t r = 0; r < EMBER_SUPPRESS_REASONS_; r++)
		total += svc->suppressed_by[r];
	if (!total)
		return;
	sb_printf(sb, "<details><summary>%zu suppressed: %zu diluted (their share changed only "
		      "because others' did), %zu moved (cost moved between a caller and its "
		      "callee)</summary><ul>\n",
		  total, svc->suppressed_by[EMBER_SUPPRESS_DILUTED],
		  svc->suppressed_by[EMBER_SUPPRESS_MOVED]);
	for (size_t i = 0; i < svc->n_suppressed; i++) {
		const struct ember_report_suppressed *s = &svc->suppressed[i];
		sb_puts(sb, "<li><code>");
		html_str(sb, s->function);
		sb_puts(sb, "</code> ");
		points(sb, s->delta);
		sb_printf(sb, " %s: ", metric_name(s->metric));
		if (s->reason == EMBER_SUPPRESS_MOVED) {
			sb_puts(sb, "moved, between it and ");
			if (s->other && strcmp(s->other, "its callees") != 0) {
				sb_puts(sb, "its caller <code>");
				html_str(sb, s->other);
				sb_puts(sb, "</code> (whose total share did not change)");
			} else {
				sb_puts(sb, "its callees (its total share did not change)");
			}
		} else {
			sb_puts(sb, "diluted, no change once the findings above are left out");
		}
		sb_puts(sb, "</li>\n");
	}
	if (svc->n_suppressed < total)
		sb_printf(sb, "<li>\u2026 and %zu more</li>\n", total - svc->n_suppressed);
	sb_puts(sb, "</ul></details>\n");
}

static void html_service(struct strbuf *sb, const struct ember_report *r,
			 const struct ember_report_service *svc, size_t idx, const char *ui)
{
	sb_printf(sb, "<section class=\"svc\" id=\"svc-%zu\"><h2>", idx);
	html_title(sb, svc);
	sb_puts(sb, "</h2>\n<p class=\"meta\">Current: ");
	window(sb, svc->from_ns, svc->to_ns);
	sb_printf(sb, ", %" PRIu64 " samples, version%s ", svc->samples,
		  svc->n_versions == 1 ? "" : "s");
	html_versions(sb, svc->versions, svc->n_versions, svc->samples);
	sb_puts(sb, "</p>\n<p class=\"meta\">Baseline: ");
	if (svc->base_to_ns > svc->base_from_ns)
		window(sb, svc->base_from_ns, svc->base_to_ns);
	else
		sb_puts(sb, "none");
	sb_printf(sb, ", %" PRIu64 " samples, version%s ", svc->base_samples,
		  svc->n_base_versions == 1 ? "" : "s");
	html_versions(sb, svc->base_versions, svc->n_base_versions, svc->base_samples);
	sb_puts(sb, "</p>\n");
	if (svc->type == EMBER_PROFILE_OFFCPU)
		sb_printf(sb, "<p class=\"meta\">Off-CPU time (where threads waited): one sample "
			      "is %llu ms of waiting.</p>\n",
			  (unsigned long long)(EMBER_REPORT_OFFCPU_UNIT_NS / 1000000));
	if (svc->note) {
		sb_puts(sb, "<p class=\"note\">");
		html_str(sb, svc->note);
		sb_puts(sb, "</p>\n");
	}
	if (svc->status == EMBER_SERVICE_OK) {
		for (size_t k = 0; k < sizeof(kind_order) / sizeof(kind_order[0]); k++)
			html_kind(sb, svc, kind_order[k], ui);
		html_suppressed(sb, svc);
		sb_printf(sb, "<p class=\"sub\">%zu functions, %zu tests; %zu significant "
			      "change%s under the thresholds. <a class=\"diff\" href=\"",
			  svc->functions, svc->tests, svc->small, svc->small == 1 ? "" : "s");
		struct strbuf l;
		sb_init(&l);
		link(&l, ui, svc, NULL);
		html_str(sb, l.buf);
		sb_free(&l);
		sb_puts(sb, "\">whole diff \u2197</a></p>\n");
	}
	sb_puts(sb, "</section>\n");
	(void)r;
}

/* Links to the compared services, with their regression counts. */
static void html_toc(struct strbuf *sb, const struct ember_report *r)
{
	size_t ok = 0, other = 0;

	for (size_t i = 0; i < r->n_services; i++)
		ok += r->services[i].status == EMBER_SERVICE_OK;
	other = r->n_services - ok;
	if (ok < 2 && !(ok && other))
		return;
	sb_puts(sb, "<nav class=\"toc\">");
	for (size_t i = 0; i < r->n_services; i++) {
		const struct ember_report_service *svc = &r->services[i];
		size_t n = ember_report_count(svc, EMBER_FINDING_REGRESSION) +
			   ember_report_count(svc, EMBER_FINDING_NEW);
		if (svc->status != EMBER_SERVICE_OK)
			continue;
		sb_printf(sb, "<a href=\"#svc-%zu\">", i);
		html_title(sb, svc);
		sb_printf(sb, "</a> <span class=\"sub\">(%zu regression%s)</span>", n,
			  n == 1 ? "" : "s");
	}
	if (other)
		sb_printf(sb, "<a href=\"#not-compared\">%zu not compared</a>", other);
	sb_puts(sb, "</nav>\n");
}

/* Services not compared: all, or only the small ones. */
static size_t count_not_compared(const struct ember_report *r, bool small_only)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_services; i++)
		n += r->services[i].status != EMBER_SERVICE_OK &&
		     (!small_only || r->services[i].small_share);
	return n;
}

#define SMALL_NAMES_MAX 30 /* small services named in the line; the rest counted */

/*
 * The small services not compared, in one sentence: "N small services
 * (under 0.5% of the samples each, S samples together): a, b, c."  esc
 * writes a name (HTML or Markdown escaping).
 */
static void small_services_line(struct strbuf *sb, const struct ember_report *r,
				void (*esc)(struct strbuf *, const char *))
{
	size_t n = count_not_compared(r, true), named = 0;
	uint64_t samples = 0;

	for (size_t i = 0; i < r->n_services; i++)
		if (r->services[i].status != EMBER_SERVICE_OK && r->services[i].small_share)
			samples += r->services[i].samples + r->services[i].base_samples;
	sb_printf(sb, "%zu small service%s (under %.1f%% of the samples each, %" PRIu64
		      " sample%s together) not listed: ",
		  n, n == 1 ? "" : "s", EMBER_REPORT_SMALL_SHARE * 100, samples,
		  samples == 1 ? "" : "s");
	for (size_t i = 0; i < r->n_services && named < SMALL_NAMES_MAX; i++) {
		const struct ember_report_service *svc = &r->services[i];
		if (svc->status == EMBER_SERVICE_OK || !svc->small_share)
			continue;
		if (named++)
			sb_puts(sb, ", ");
		esc(sb, svc->service);
	}
	if (n > named)
		sb_printf(sb, " and %zu more", n - named);
	sb_putc(sb, '.');
}

/*
 * Services with too little data (or no previous version): one table, at
 * the end; the small ones named in a line under it.
 */
static void html_not_compared(struct strbuf *sb, const struct ember_report *r)
{
	size_t n = count_not_compared(r, false), small = count_not_compared(r, true);

	if (!n)
		return;
	sb_printf(sb, "<section class=\"svc\" id=\"not-compared\"><h2>Not compared (%zu)</h2>\n"
		      "<p class=\"meta\">Too little data, or nothing to compare with: no "
		      "finding is made up for these.</p>\n",
		  n);
	if (small) {
		sb_puts(sb, "<p class=\"meta\" id=\"small-services\">");
		small_services_line(sb, r, html_str);
		sb_puts(sb, "</p>\n");
	}
	if (n == small) {
		sb_puts(sb, "</section>\n");
		return;
	}
	sb_puts(sb, "<table><thead><tr><th>Service</th><th>Samples</th><th>Baseline samples</th>"
		    "<th>Why</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < r->n_services; i++) {
		const struct ember_report_service *svc = &r->services[i];
		if (svc->status == EMBER_SERVICE_OK || svc->small_share)
			continue;
		sb_printf(sb, "<tr id=\"svc-%zu\"><td><code>", i);
		html_title(sb, svc);
		sb_printf(sb, "</code></td><td class=\"num\">%" PRIu64 "</td><td class=\"num\">%" PRIu64
			      "</td><td>",
			  svc->samples, svc->base_samples);
		html_str(sb, svc->note ? svc->note : "");
		sb_puts(sb, "</td></tr>\n");
	}
	sb_puts(sb, "</tbody></table></section>\n");
}

static void render_html(const struct ember_report *r, const char *ui, struct strbuf *sb)
{
	const struct ember_report_thresholds *th = &r->opt.th;
	char created[40];

	ember_report_format_time(r->created_ns, created, sizeof(created));
	sb_puts(sb, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		    "<link rel=\"icon\" href=\"data:,\">\n"
		    "<title>Ember report ");
	window(sb, r->opt.from_ns, r->opt.to_ns);
	sb_printf(sb, "</title>\n<style>%s</style></head><body>\n<header><h1>Ember regression "
		      "report</h1>\n<p>Current window ",
		  ember_report_css);
	window(sb, r->opt.from_ns, r->opt.to_ns);
	sb_puts(sb, "; baseline ");
	baseline_text(sb, r);
	if (r->service_filter) {
		sb_puts(sb, "; service ");
		html_str(sb, r->service_filter);
	}
	sb_printf(sb, "; made %s</p>\n<p class=\"summary\">", created);
	{
		struct strbuf s;
		sb_init(&s);
		ember_report_summary(r, &s);
		html_str(sb, s.buf);
		sb_free(&s);
	}
	sb_puts(sb, "</p></header>\n<main>\n");
	html_toc(sb, r);
	if (!r->n_services)
		sb_puts(sb, "<p class=\"note\">No service has samples in the current window.</p>\n");
	for (size_t i = 0; i < r->n_services; i++)
		if (r->services[i].status == EMBER_SERVICE_OK)
			html_service(sb, r, &r->services[i], i, ui);
	html_not_compared(sb, r);
	sb_printf(sb, "</main>\n<footer><p>Method: per service, each function's self share "
		      "(samples where it is the leaf) and total share (samples whose stack "
		      "contains it) in the current window against the baseline; a "
		      "two-proportion z-test per share, p-values corrected together (%s); a "
		      "finding needs q &le; %g, a change of at least %.2f points and of at least "
		      "%.0f%% of the baseline share, and %" PRIu64 " samples of the function in a "
		      "window; a service needs %" PRIu64 " samples per window. Changes explained "
		      "by larger findings (dilution) and cost that moved between a caller and "
		      "its callee are suppressed. See docs/report.md.</p></footer>\n"
		      "</body></html>\n",
		  th->correction == EMBER_CORRECTION_HOLM ? "Holm" : "Benjamini-Hochberg", th->alpha,
		  th->min_delta * 100, th->min_relative * 100, th->min_function_samples,
		  th->min_samples);
}

/* ---- JSON ---- */

static void json_ms(struct strbuf *sb, const char *key, int64_t ns, bool has)
{
	sb_printf(sb, ",\"%s\":", key);
	if (has)
		sb_printf(sb, "%" PRId64, ns / NS_PER_MS);
	else
		sb_puts(sb, "null");
}

static void json_counts(struct strbuf *sb, const char *key, const struct ember_report_counts *c)
{
	sb_printf(sb, ",\"%s\":{\"self\":%" PRIu64 ",\"total\":%" PRIu64 ",\"self_share\":", key,
		  c->self, c->total);
	json_num(sb, c->self_share);
	sb_puts(sb, ",\"total_share\":");
	json_num(sb, c->total_share);
	sb_putc(sb, '}');
}

static void json_finding(struct strbuf *sb, const struct ember_report_service *svc,
			 const struct ember_report_finding *f, size_t rank, const char *ui)
{
	struct strbuf l;

	sb_printf(sb, "{\"rank\":%zu,\"function\":", rank);
	sb_json_str(sb, f->function);
	sb_puts(sb, ",\"file\":");
	sb_json_str(sb, f->file);
	sb_printf(sb, ",\"line\":%u,\"kind\":\"%s\",\"metric\":\"%s\"", f->line,
		  ember_finding_kind_name(f->kind), metric_name(f->metric));
	json_counts(sb, "base", &f->base);
	json_counts(sb, "cur", &f->cur);
	sb_puts(sb, ",\"delta\":");
	json_num(sb, f->delta);
	sb_puts(sb, ",\"relative\":");
	if (f->kind == EMBER_FINDING_NEW)
		sb_puts(sb, "null");
	else
		json_num(sb, f->relative);
	sb_puts(sb, ",\"z\":");
	json_num(sb, f->z);
	sb_puts(sb, ",\"p\":");
	json_num(sb, f->p);
	sb_puts(sb, ",\"q\":");
	json_num(sb, f->q);
	sb_puts(sb, ",\"tested_delta\":");
	json_num(sb, f->tested_delta);
	sb_puts(sb, ",\"via\":");
	sb_json_str(sb, f->via);
	sb_puts(sb, ",\"via_delta\":");
	if (f->via)
		json_num(sb, f->via_delta);
	else
		sb_puts(sb, "null");
	sb_puts(sb, ",\"version_base\":");
	sb_json_str(sb, f->version_base);
	sb_puts(sb, ",\"version_cur\":");
	sb_json_str(sb, f->version_cur);
	sb_puts(sb, ",\"version_share\":");
	if (f->version_cur)
		json_num(sb, f->version_share);
	else
		sb_puts(sb, "null");
	sb_init(&l);
	link(&l, ui, svc, f);
	sb_puts(sb, ",\"link\":");
	sb_json_str(sb, l.buf);
	sb_free(&l);
	sb_putc(sb, '}');
}

static void json_versions(struct strbuf *sb, const char *key, const struct ember_report_version *v,
			  size_t n)
{
	sb_printf(sb, ",\"%s\":[", key);
	for (size_t i = 0; i < n; i++) {
		sb_puts(sb, i ? ",{\"version\":" : "{\"version\":");
		sb_json_str(sb, v[i].version);
		sb_printf(sb, ",\"samples\":%" PRIu64 "}", v[i].samples);
	}
	sb_putc(sb, ']');
}

static void json_service(struct strbuf *sb, const struct ember_report_service *svc, const char *ui)
{
	size_t total = 0;

	sb_puts(sb, "{\"service\":");
	sb_json_str(sb, svc->service);
	sb_printf(sb, ",\"status\":\"%s\",\"type\":\"%s\",\"note\":", status_name(svc->status),
		  ember_profile_type_name(svc->type));
	sb_json_str(sb, svc->note);
	json_ms(sb, "from", svc->from_ns, true);
	json_ms(sb, "to", svc->to_ns, true);
	json_ms(sb, "base_from", svc->base_from_ns, svc->base_to_ns > svc->base_from_ns);
	json_ms(sb, "base_to", svc->base_to_ns, svc->base_to_ns > svc->base_from_ns);
	sb_puts(sb, ",\"version\":");
	sb_json_str(sb, svc->version_cur);
	sb_puts(sb, ",\"base_version\":");
	sb_json_str(sb, svc->version_base);
	sb_printf(sb, ",\"samples\":%" PRIu64 ",\"base_samples\":%" PRIu64 ",\"small\":%s",
		  svc->samples, svc->base_samples, svc->small_share ? "true" : "false");
	json_versions(sb, "versions", svc->versions, svc->n_versions);
	json_versions(sb, "base_versions", svc->base_versions, svc->n_base_versions);
	for (size_t k = 0; k < sizeof(kind_order) / sizeof(kind_order[0]); k++) {
		size_t rank = 0;
		sb_printf(sb, ",\"%s\":[", kind_json_key(kind_order[k]));
		for (size_t i = 0; i < svc->n_findings; i++) {
			if (svc->findings[i].kind != kind_order[k])
				continue;
			if (rank)
				sb_putc(sb, ',');
			json_finding(sb, svc, &svc->findings[i], ++rank, ui);
		}
		sb_putc(sb, ']');
	}
	for (size_t r = 0; r < EMBER_SUPPRESS_REASONS_; r++)
		total += svc->suppressed_by[r];
	sb_printf(sb, ",\"suppressed\":{\"total\":%zu,\"diluted\":%zu,\"moved\":%zu,\"list\":[",
		  total, svc->suppressed_by[EMBER_SUPPRESS_DILUTED],
		  svc->suppressed_by[EMBER_SUPPRESS_MOVED]);
	for (size_t i = 0; i < svc->n_suppressed; i++) {
		const struct ember_report_suppressed *s = &svc->suppressed[i];
		sb_puts(sb, i ? ",{\"function\":" : "{\"function\":");
		sb_json_str(sb, s->function);
		sb_printf(sb, ",\"reason\":\"%s\",\"kind\":\"%s\",\"metric\":\"%s\",\"delta\":",
			  ember_suppress_reason_name(s->reason), ember_finding_kind_name(s->kind),
			  metric_name(s->metric));
		json_num(sb, s->delta);
		sb_puts(sb, ",\"other\":");
		sb_json_str(sb, s->other);
		sb_putc(sb, '}');
	}
	sb_printf(sb, "]},\"functions\":%zu,\"tests\":%zu,\"small\":%zu,\"truncated\":%s}",
		  svc->functions, svc->tests, svc->small, svc->truncated ? "true" : "false");
}

static void render_json(const struct ember_report *r, const char *ui, struct strbuf *sb)
{
	const struct ember_report_thresholds *th = &r->opt.th;
	bool has_base = r->opt.baseline != EMBER_BASELINE_PREVIOUS_VERSION;
	struct strbuf s;

	sb_printf(sb, "{\"created\":%" PRId64, r->created_ns / NS_PER_MS);
	json_ms(sb, "from", r->opt.from_ns, true);
	json_ms(sb, "to", r->opt.to_ns, true);
	sb_printf(sb, ",\"baseline\":\"%s\"", ember_baseline_name(r->opt.baseline));
	json_ms(sb, "base_from", r->opt.base_from_ns, has_base);
	json_ms(sb, "base_to", r->opt.base_to_ns, has_base);
	sb_puts(sb, ",\"service\":");
	sb_json_str(sb, r->service_filter);
	sb_puts(sb, ",\"thresholds\":{\"alpha\":");
	json_num(sb, th->alpha);
	sb_puts(sb, ",\"min_delta\":");
	json_num(sb, th->min_delta);
	sb_puts(sb, ",\"min_relative\":");
	json_num(sb, th->min_relative);
	sb_printf(sb, ",\"min_samples\":%" PRIu64 ",\"min_function_samples\":%" PRIu64
		      ",\"correction\":\"%s\",\"max_findings\":%zu}",
		  th->min_samples, th->min_function_samples,
		  th->correction == EMBER_CORRECTION_HOLM ? "holm" : "bh", th->max_findings);
	sb_init(&s);
	ember_report_summary(r, &s);
	sb_puts(sb, ",\"summary\":");
	sb_json_str(sb, s.buf ? s.buf : "");
	sb_free(&s);
	sb_puts(sb, ",\"services\":[");
	for (size_t i = 0; i < r->n_services; i++) {
		if (i)
			sb_putc(sb, ',');
		json_service(sb, &r->services[i], ui);
	}
	sb_puts(sb, "]}\n");
}

/* ---- Markdown ---- */

static void md_finding(struct strbuf *sb, const struct ember_report_service *svc,
		       const struct ember_report_finding *f, size_t rank, const char *ui)
{
	sb_printf(sb, "| %zu | `", rank);
	md_str(sb, f->function);
	sb_puts(sb, "`");
	if (f->via) {
		sb_puts(sb, f->metric == EMBER_METRIC_SELF ? " (from `" : " (in `");
		md_str(sb, f->via);
		sb_puts(sb, "`)");
	}
	sb_puts(sb, " | ");
	pct(sb, f->base.self_share);
	sb_puts(sb, " \u2192 ");
	pct(sb, f->cur.self_share);
	sb_puts(sb, " | ");
	pct(sb, f->base.total_share);
	sb_puts(sb, " \u2192 ");
	pct(sb, f->cur.total_share);
	sb_puts(sb, " | ");
	points(sb, f->delta);
	sb_printf(sb, " %s | ", metric_name(f->metric));
	relative(sb, f);
	sb_puts(sb, " | ");
	if (f->q < 0.001)
		sb_printf(sb, "%.0e", f->q);
	else
		sb_printf(sb, "%.3f", f->q);
	sb_puts(sb, " | ");
	if (f->version_cur) {
		md_str(sb, f->version_base ? f->version_base : "?");
		sb_puts(sb, " \u2192 ");
		md_str(sb, f->version_cur);
	} else {
		sb_puts(sb, "\u2013");
	}
	sb_puts(sb, " | [diff](");
	link(sb, ui, svc, f);
	sb_puts(sb, ") |\n");
}

static void md_service(struct strbuf *sb, const struct ember_report_service *svc, const char *ui)
{
	size_t total = 0;

	sb_puts(sb, "\n## ");
	md_str(sb, svc->service);
	if (svc->type == EMBER_PROFILE_OFFCPU)
		sb_puts(sb, " (off-CPU)");
	sb_printf(sb, "\n\nCurrent: %" PRIu64 " samples", svc->samples);
	for (size_t i = 0; i < svc->n_versions; i++) {
		sb_puts(sb, i ? ", " : " (");
		md_str(sb, svc->versions[i].version);
	}
	sb_puts(sb, svc->n_versions ? "); " : "; ");
	sb_printf(sb, "baseline: %" PRIu64 " samples", svc->base_samples);
	for (size_t i = 0; i < svc->n_base_versions; i++) {
		sb_puts(sb, i ? ", " : " (");
		md_str(sb, svc->base_versions[i].version);
	}
	sb_puts(sb, svc->n_base_versions ? ").\n" : ".\n");
	if (svc->type == EMBER_PROFILE_OFFCPU)
		sb_printf(sb, "\nOff-CPU time (where threads waited): one sample is %llu ms of "
			      "waiting.\n",
			  (unsigned long long)(EMBER_REPORT_OFFCPU_UNIT_NS / 1000000));
	if (svc->note) {
		sb_puts(sb, "\n> ");
		md_str(sb, svc->note);
		sb_putc(sb, '\n');
	}
	if (svc->status != EMBER_SERVICE_OK)
		return;
	for (size_t k = 0; k < sizeof(kind_order) / sizeof(kind_order[0]); k++) {
		size_t n = ember_report_count(svc, kind_order[k]), rank = 0;
		if (!n && kind_order[k] != EMBER_FINDING_REGRESSION)
			continue;
		sb_printf(sb, "\n### %s (%zu)\n\n", kind_title(kind_order[k]), n);
		if (!n) {
			sb_puts(sb, "No function got significantly slower.\n");
			continue;
		}
		sb_puts(sb, "| # | Function | Self share | Total share | Change | Relative | q | "
			    "Version | |\n|---|---|---|---|---|---|---|---|---|\n");
		for (size_t i = 0; i < svc->n_findings; i++)
			if (svc->findings[i].kind == kind_order[k])
				md_finding(sb, svc, &svc->findings[i], ++rank, ui);
	}
	for (size_t r = 0; r < EMBER_SUPPRESS_REASONS_; r++)
		total += svc->suppressed_by[r];
	if (total)
		sb_printf(sb, "\nSuppressed: %zu (%zu diluted by larger changes, %zu cost moved "
			      "between a caller and its callee).\n",
			  total, svc->suppressed_by[EMBER_SUPPRESS_DILUTED],
			  svc->suppressed_by[EMBER_SUPPRESS_MOVED]);
}

static void render_md(const struct ember_report *r, const char *ui, struct strbuf *sb)
{
	sb_puts(sb, "# Ember regression report\n\nCurrent window ");
	window(sb, r->opt.from_ns, r->opt.to_ns);
	sb_puts(sb, "; baseline ");
	baseline_text(sb, r);
	sb_puts(sb, ".\n\n**");
	ember_report_summary(r, sb);
	sb_puts(sb, "**\n");
	size_t other = 0;

	for (size_t i = 0; i < r->n_services; i++) {
		if (r->services[i].status == EMBER_SERVICE_OK)
			md_service(sb, &r->services[i], ui);
		else
			other++;
	}
	if (!other)
		return;
	sb_printf(sb, "\n## Not compared (%zu)\n\n", other);
	if (count_not_compared(r, true)) {
		small_services_line(sb, r, md_str);
		sb_puts(sb, "\n\n");
	}
	if (other == count_not_compared(r, true))
		return;
	sb_puts(sb, "| Service | Samples | Baseline samples | Why |\n|---|---|---|---|\n");
	for (size_t i = 0; i < r->n_services; i++) {
		const struct ember_report_service *svc = &r->services[i];
		if (svc->status == EMBER_SERVICE_OK || svc->small_share)
			continue;
		sb_puts(sb, "| `");
		md_str(sb, svc->service);
		sb_puts(sb, svc->type == EMBER_PROFILE_OFFCPU ? "` (off-CPU)" : "`");
		sb_printf(sb, " | %" PRIu64 " | %" PRIu64 " | ", svc->samples, svc->base_samples);
		md_str(sb, svc->note);
		sb_puts(sb, " |\n");
	}
}

int ember_report_render(const struct ember_report *r, enum ember_report_format fmt,
			const char *ui_base, struct strbuf *out)
{
	const char *ui = ui_base ? ui_base : EMBER_REPORT_DEFAULT_UI;

	switch (fmt) {
	case EMBER_REPORT_HTML: render_html(r, ui, out); break;
	case EMBER_REPORT_JSON: render_json(r, ui, out); break;
	case EMBER_REPORT_MD: render_md(r, ui, out); break;
	default: return -EINVAL;
	}
	return out->oom ? -ENOMEM : 0;
}
