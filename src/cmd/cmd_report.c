/*
 * cmd_report.c - `ember report`: the daily regression report, and its cron job.
 *
 *   ember report [--db PATH] [--day YYYY-MM-DD | --from T [--to T]]
 *                [--baseline previous-day|previous-version|YYYY-MM-DD]
 *                [--service NAME] [--type all|cpu|offcpu] [--format html|json|md]
 *                [--output FILE | --output-dir DIR [--keep N]] [--ui-url URL]
 *                [--alpha Q] [--min-delta POINTS] [--min-relative PERCENT]
 *                [--min-samples N] [--no-save] [--fail-on-regression]
 *   ember report --install-cron [--at HH:MM] [--output-dir DIR] [--keep N]
 *                [--db PATH] [--format F] [--ui-url URL]
 *   ember report --uninstall-cron
 *
 * Default: yesterday (local time) against the day before, every service,
 * HTML on stdout.  The report is also saved in the database, where the UI
 * lists it (--no-save skips that).  Exit status: 0 done, 1 failed (the
 * database, a file), 2 bad usage, 3 regressions found and
 * --fail-on-regression given.  The method is in src/report/ and
 * docs/report.md.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "core/safefile.h"
#include "core/strbuf.h"
#include "report/report.h"
#include "report/report_cron.h"
#include "store/store.h"

#define DEFAULT_DB "/var/lib/ember/ember.db"
#define DEFAULT_OUTPUT_DIR "/var/lib/ember/reports"
#define DEFAULT_KEEP 30
#define DEFAULT_AT "06:30"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ember report [OPTIONS]\n"
		"       ember report --install-cron [--at HH:MM] [--output-dir DIR] [--keep N]\n"
		"       ember report --uninstall-cron\n\n"
		"Compare a day (or a version) with its baseline, function by function, and\n"
		"list the functions that got slower, with the evidence.\n\n"
		"  --db PATH            SQLite database (default " DEFAULT_DB ")\n"
		"  --day YYYY-MM-DD     the day to report on (default: yesterday, local time)\n"
		"  --from T --to T      any window instead: YYYY-MM-DD[THH:MM[:SS]], @UNIXSECS,\n"
		"                       now, or -N{s,m,h,d} (before now); --to defaults to now\n"
		"  --baseline B         previous-day (default: the window just before),\n"
		"                       previous-version (each service's version before its\n"
		"                       newest), or YYYY-MM-DD (that day)\n"
		"  --service NAME       only this service\n"
		"  --type T             all (default: CPU, and off-CPU time where it was\n"
		"                       recorded with `ember run --offcpu`), cpu or offcpu\n"
		"  --format F           html (default), json or md\n"
		"  --output FILE        write there instead of stdout\n"
		"  --output-dir DIR     write DIR/ember-report-<window start>.<format>\n"
		"  --keep N             keep the newest N reports: in --output-dir (default %d)\n"
		"                       and saved in the database (default %d)\n"
		"  --ui-url URL         where findings link to (default " EMBER_REPORT_DEFAULT_UI ")\n"
		"  --alpha Q            corrected p-value bound (default 0.01)\n"
		"  --min-delta POINTS   smallest change of share, in points (default 0.5)\n"
		"  --min-relative PCT   smallest change relative to the baseline share (default 10)\n"
		"  --min-samples N      samples a service needs per window (default 1000)\n"
		"  --no-save            do not save the report in the database\n"
		"  --fail-on-regression exit 3 when some service has a regression\n"
		"  --install-cron       run this report daily from /etc/cron.d/ember-report\n"
		"                       ($EMBER_CRON_DIR overrides the directory)\n"
		"  --at HH:MM           time of the daily run (default " DEFAULT_AT ")\n"
		"  --uninstall-cron     remove the cron entry\n\n"
		"Exit status: 0 done, 1 failed, 2 bad usage, 3 regressions (--fail-on-regression).\n",
		DEFAULT_KEEP, EMBER_STORE_MAX_REPORTS);
}

struct args {
	const char *db, *day, *from, *to, *baseline, *service, *format, *output, *output_dir;
	const char *ui_url, *at;
	unsigned types; /* ember_report_options.types */
	unsigned long keep;
	bool keep_given, no_save, fail_on_regression, install_cron, uninstall_cron;
	struct ember_report_thresholds th;
};

static int parse_double(const char *opt, const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "ember report: %s: '%s' is not a number between %g and %g\n", opt, s,
			min, max);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_DAY = 256, OPT_FROM, OPT_TO, OPT_BASELINE, OPT_SERVICE, OPT_FORMAT, OPT_OUTPUT,
	OPT_OUTPUT_DIR, OPT_KEEP, OPT_UI, OPT_ALPHA, OPT_MIN_DELTA, OPT_MIN_REL, OPT_MIN_SAMPLES,
	OPT_NO_SAVE, OPT_FAIL, OPT_INSTALL, OPT_UNINSTALL, OPT_AT, OPT_DB, OPT_TYPE,
};

/* Returns 0, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"db", required_argument, 0, OPT_DB},
		{"day", required_argument, 0, OPT_DAY},
		{"from", required_argument, 0, OPT_FROM},
		{"to", required_argument, 0, OPT_TO},
		{"baseline", required_argument, 0, OPT_BASELINE},
		{"service", required_argument, 0, OPT_SERVICE},
		{"type", required_argument, 0, OPT_TYPE},
		{"format", required_argument, 0, OPT_FORMAT},
		{"output", required_argument, 0, OPT_OUTPUT},
		{"output-dir", required_argument, 0, OPT_OUTPUT_DIR},
		{"keep", required_argument, 0, OPT_KEEP},
		{"ui-url", required_argument, 0, OPT_UI},
		{"alpha", required_argument, 0, OPT_ALPHA},
		{"min-delta", required_argument, 0, OPT_MIN_DELTA},
		{"min-relative", required_argument, 0, OPT_MIN_REL},
		{"min-samples", required_argument, 0, OPT_MIN_SAMPLES},
		{"no-save", no_argument, 0, OPT_NO_SAVE},
		{"fail-on-regression", no_argument, 0, OPT_FAIL},
		{"install-cron", no_argument, 0, OPT_INSTALL},
		{"uninstall-cron", no_argument, 0, OPT_UNINSTALL},
		{"at", required_argument, 0, OPT_AT},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	unsigned long ul;
	double d;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_DB: a->db = optarg; break;
		case OPT_DAY: a->day = optarg; break;
		case OPT_FROM: a->from = optarg; break;
		case OPT_TO: a->to = optarg; break;
		case OPT_BASELINE: a->baseline = optarg; break;
		case OPT_SERVICE: a->service = optarg; break;
		case OPT_TYPE: {
			enum ember_profile_type t;
			if (strcmp(optarg, "all") == 0) {
				a->types = 0;
			} else if (ember_profile_type_parse(optarg, &t) == 0) {
				a->types = 1u << t;
			} else {
				fprintf(stderr, "ember report: --type: expected all, cpu or offcpu, "
						"not '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case OPT_FORMAT: a->format = optarg; break;
		case OPT_OUTPUT: a->output = optarg; break;
		case OPT_OUTPUT_DIR: a->output_dir = optarg; break;
		case OPT_KEEP:
			if (cmd_parse_uint("--keep", optarg, 1, 100000, &a->keep))
				return 2;
			a->keep_given = true;
			break;
		case OPT_UI: a->ui_url = optarg; break;
		case OPT_ALPHA:
			if (parse_double("--alpha", optarg, 1e-12, 0.5, &a->th.alpha))
				return 2;
			break;
		case OPT_MIN_DELTA:
			if (parse_double("--min-delta", optarg, 0, 100, &d))
				return 2;
			a->th.min_delta = d / 100;
			break;
		case OPT_MIN_REL:
			if (parse_double("--min-relative", optarg, 0, 100000, &d))
				return 2;
			a->th.min_relative = d / 100;
			break;
		case OPT_MIN_SAMPLES:
			if (cmd_parse_uint("--min-samples", optarg, 1, 1000000000UL, &ul))
				return 2;
			a->th.min_samples = ul;
			break;
		case OPT_NO_SAVE: a->no_save = true; break;
		case OPT_FAIL: a->fail_on_regression = true; break;
		case OPT_INSTALL: a->install_cron = true; break;
		case OPT_UNINSTALL: a->uninstall_cron = true; break;
		case OPT_AT: a->at = optarg; break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ember report: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (a->install_cron && a->uninstall_cron) {
		fprintf(stderr, "ember report: --install-cron and --uninstall-cron exclude each other\n");
		return 2;
	}
	if (a->day && (a->from || a->to)) {
		fprintf(stderr, "ember report: give either --day or --from/--to, not both\n");
		return 2;
	}
	if (a->to && !a->from) {
		fprintf(stderr, "ember report: --to needs --from\n");
		return 2;
	}
	if (a->output && a->output_dir) {
		fprintf(stderr, "ember report: give either --output or --output-dir, not both\n");
		return 2;
	}
	if (a->keep_given && a->no_save && !a->output_dir) {
		fprintf(stderr, "ember report: --keep with --no-save needs --output-dir\n");
		return 2;
	}
	if (a->at && !a->install_cron) {
		fprintf(stderr, "ember report: --at goes with --install-cron\n");
		return 2;
	}
	if (a->format && strcmp(a->format, "html") && strcmp(a->format, "json") &&
	    strcmp(a->format, "md")) {
		fprintf(stderr, "ember report: --format: '%s' is not html, json or md\n", a->format);
		return 2;
	}
	return 0;
}

/* ---- cron ---- */

/* An absolute version of path (which need not exist yet). */
static int absolute(const char *path, char *out, size_t size)
{
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		snprintf(out, size, "%s", path);
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if ((size_t)snprintf(out, size, "%s/%s", cwd, path) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int install_cron(const struct args *a)
{
	char exe[PATH_MAX], db[PATH_MAX], dir[PATH_MAX], path[PATH_MAX], err[512] = "";
	struct ember_cron_options o = {.keep = a->keep_given ? (unsigned)a->keep : DEFAULT_KEEP,
				       .format = a->format, .ui_url = a->ui_url};
	bool changed;
	ssize_t n;

	if (a->day || a->from || a->baseline || a->service || a->output || a->no_save ||
	    a->fail_on_regression || a->types) {
		fprintf(stderr, "ember report: --install-cron takes only --at, --output-dir, --keep, "
				"--db, --format and --ui-url (the job reports on yesterday, every profile type)\n");
		return 2;
	}
	if (ember_cron_parse_at(a->at ? a->at : DEFAULT_AT, &o.hour, &o.minute)) {
		fprintf(stderr, "ember report: --at: '%s' is not a time HH:MM (00:00 to 23:59)\n",
			a->at);
		return 2;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "ember report: cannot find the ember binary (/proc/self/exe): %s\n",
			strerror(errno));
		return 1;
	}
	exe[n] = '\0';
	if (absolute(a->db ? a->db : DEFAULT_DB, db, sizeof(db)) ||
	    absolute(a->output_dir ? a->output_dir : DEFAULT_OUTPUT_DIR, dir, sizeof(dir))) {
		fprintf(stderr, "ember report: cannot make the paths absolute: %s\n", strerror(errno));
		return 1;
	}
	o.ember_path = exe;
	o.db_path = db;
	o.output_dir = dir;
	if (ember_cron_install(&o, path, sizeof(path), &changed, err, sizeof(err))) {
		fprintf(stderr, "ember report: %s\n", err);
		return err[0] && strstr(err, "cannot put") ? 2 : 1;
	}
	fprintf(stderr, "ember report: %s %s: daily at %02d:%02d, reports in %s (newest %u kept)\n",
		changed ? "installed" : "already installed, unchanged:", path, o.hour, o.minute, dir,
		o.keep);
	return 0;
}

static int uninstall_cron(void)
{
	char path[PATH_MAX], err[512] = "";
	bool removed;

	if (ember_cron_uninstall(NULL, path, sizeof(path), &removed, err, sizeof(err))) {
		fprintf(stderr, "ember report: %s\n", err);
		return 1;
	}
	fprintf(stderr, "ember report: %s %s\n", removed ? "removed" : "nothing to remove at", path);
	return 0;
}

/* ---- the report ---- */

static int windows(const struct args *a, struct ember_report_options *o)
{
	int64_t now = cmd_now_ns();

	if (a->day) {
		if (ember_report_parse_day(a->day, &o->from_ns, &o->to_ns)) {
			fprintf(stderr, "ember report: --day: '%s' is not a date YYYY-MM-DD\n", a->day);
			return 2;
		}
	} else if (a->from) {
		if (ember_report_parse_time(a->from, now, &o->from_ns)) {
			fprintf(stderr, "ember report: --from: cannot read '%s' as a time\n", a->from);
			return 2;
		}
		o->to_ns = now;
		if (a->to && ember_report_parse_time(a->to, now, &o->to_ns)) {
			fprintf(stderr, "ember report: --to: cannot read '%s' as a time\n", a->to);
			return 2;
		}
		if (o->to_ns <= o->from_ns) {
			fprintf(stderr, "ember report: the window is empty (--to is not after --from)\n");
			return 2;
		}
	} else { /* yesterday */
		o->to_ns = ember_report_day_start(now);
		o->from_ns = ember_report_day_shift(o->to_ns, -1);
	}

	if (!a->baseline || strcmp(a->baseline, "previous-day") == 0) {
		o->baseline = EMBER_BASELINE_PREVIOUS_DAY;
		if (a->day || !a->from) { /* a calendar day: the calendar day before */
			o->base_to_ns = o->from_ns;
			o->base_from_ns = ember_report_day_shift(o->from_ns, -1);
		}
	} else if (strcmp(a->baseline, "previous-version") == 0) {
		o->baseline = EMBER_BASELINE_PREVIOUS_VERSION;
	} else if (ember_report_parse_day(a->baseline, &o->base_from_ns, &o->base_to_ns) == 0) {
		o->baseline = EMBER_BASELINE_WINDOW;
	} else {
		fprintf(stderr, "ember report: --baseline: '%s' is not previous-day, previous-version "
				"or a date YYYY-MM-DD\n",
			a->baseline);
		return 2;
	}
	return 0;
}

static enum ember_report_format format_of(const char *f)
{
	if (f && strcmp(f, "json") == 0)
		return EMBER_REPORT_JSON;
	if (f && strcmp(f, "md") == 0)
		return EMBER_REPORT_MD;
	return EMBER_REPORT_HTML;
}

/* Save the report in the database (HTML with links relative to the server, and JSON). */
static int save(struct ember_store *store, const struct ember_report *r, int64_t *id)
{
	struct ember_report_row row = {
		.created_ns = r->created_ns, .from_ns = r->opt.from_ns, .to_ns = r->opt.to_ns,
		.baseline = ember_baseline_name(r->opt.baseline), .service = r->service_filter};
	struct strbuf html, json, summary;
	char err[EMBER_STORE_ERRLEN] = "";
	int ret;

	for (size_t i = 0; i < r->n_services; i++) {
		row.regressions += (uint32_t)(ember_report_count(&r->services[i],
								 EMBER_FINDING_REGRESSION) +
					      ember_report_count(&r->services[i], EMBER_FINDING_NEW));
		row.improvements += (uint32_t)(ember_report_count(&r->services[i],
								  EMBER_FINDING_IMPROVEMENT) +
					       ember_report_count(&r->services[i],
								  EMBER_FINDING_VANISHED));
	}
	sb_init(&html);
	sb_init(&json);
	sb_init(&summary);
	ember_report_summary(r, &summary);
	row.summary = summary.buf;
	ret = ember_report_render(r, EMBER_REPORT_HTML, "/", &html);
	if (!ret)
		ret = ember_report_render(r, EMBER_REPORT_JSON, "/", &json);
	if (!ret)
		ret = ember_store_save_report(store, &row, html.buf, json.buf, id, err, sizeof(err));
	if (ret)
		fprintf(stderr, "ember report: cannot save the report in the database: %s\n",
			err[0] ? err : strerror(-ret));
	sb_free(&html);
	sb_free(&json);
	sb_free(&summary);
	return ret;
}

static bool any_regression(const struct ember_report *r)
{
	for (size_t i = 0; i < r->n_services; i++)
		if (ember_report_count(&r->services[i], EMBER_FINDING_REGRESSION) ||
		    ember_report_count(&r->services[i], EMBER_FINDING_NEW))
			return true;
	return false;
}

static int output(const struct args *a, const struct ember_report *r, const struct strbuf *sb)
{
	static const char *const ext[] = {"html", "json", "md"};
	char path[PATH_MAX], err[512] = "";
	const char *target = a->output;
	unsigned deleted = 0;
	int ret;

	if (!a->output && !a->output_dir) {
		if (fwrite(sb->buf, 1, sb->len, stdout) != sb->len || fflush(stdout)) {
			fprintf(stderr, "ember report: cannot write to stdout: %s\n", strerror(errno));
			return 1;
		}
		return 0;
	}
	if (a->output_dir) {
		char name[128];
		ret = ember_mkdirs(a->output_dir, EMBER_DIR_MODE);
		if (ret) {
			fprintf(stderr, "ember report: cannot create %s: %s\n", a->output_dir,
				strerror(-ret));
			return 1;
		}
		ember_report_file_name(r->opt.from_ns, ext[format_of(a->format)], name, sizeof(name));
		snprintf(path, sizeof(path), "%s/%s", a->output_dir, name);
		target = path;
	}
	ret = ember_safefile_write(target, sb->buf, sb->len, EMBER_FILE_MODE, true);
	if (ret) {
		fprintf(stderr, "ember report: cannot write %s: %s\n", target, strerror(-ret));
		return 1;
	}
	fprintf(stderr, "ember report: wrote %s\n", target);
	if (a->output_dir) {
		ret = ember_report_prune(a->output_dir, a->keep_given ? (unsigned)a->keep : DEFAULT_KEEP,
					 &deleted, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "ember report: %s\n", err);
			return 1;
		}
		if (deleted)
			fprintf(stderr, "ember report: deleted %u old report file%s\n", deleted,
				deleted == 1 ? "" : "s");
	}
	return 0;
}

struct service_seen {
	const char *name;
	bool found;
	struct strbuf known; /* the first services of the database, for the message */
	size_t n_known;
	char last[256];      /* the service of the previous row */
};

static int note_service(const struct ember_version_row *row, void *arg)
{
	struct service_seen *s = arg;

	if (!strcmp(row->service, s->name))
		s->found = true;
	/* rows come ordered by service: a new name starts a new group */
	if (s->n_known && !strcmp(row->service, s->last))
		return 0;
	snprintf(s->last, sizeof(s->last), "%s", row->service);
	if (s->n_known < 8)
		sb_printf(&s->known, "%s%s", s->n_known ? ", " : "", row->service);
	s->n_known++;
	return 0;
}

/* --service NAME must name a service the database knows. */
static int check_service(struct ember_store *store, const char *name)
{
	struct service_seen s = {.name = name};
	char err[EMBER_STORE_ERRLEN] = "";
	int rc = 0;

	sb_init(&s.known);
	if (ember_store_list_versions(store, note_service, &s, err, sizeof(err))) {
		fprintf(stderr, "ember report: %s\n", err);
		rc = 1;
	} else if (!s.found) {
		fprintf(stderr, "ember report: --service %s: unknown service (the database has: %s%s)\n",
			name, s.n_known ? s.known.buf : "no service yet", s.n_known > 8 ? ", ..." : "");
		rc = 2;
	}
	sb_free(&s.known);
	return rc;
}

/* Does the report compare anything: some service with samples in its window? */
static bool report_has_samples(const struct ember_report *r)
{
	for (size_t i = 0; i < r->n_services; i++)
		if (r->services[i].samples)
			return true;
	return false;
}

/* The window held no samples: say what the database holds and how to ask for it. */
static void explain_empty(struct ember_store *store, const struct ember_report *r)
{
	struct ember_store_stats st;
	char err[EMBER_STORE_ERRLEN] = "";
	char from[32], to[32];

	ember_report_format_time(r->opt.from_ns, from, sizeof(from));
	ember_report_format_time(r->opt.to_ns, to, sizeof(to));
	fprintf(stderr, "ember report: no samples between %s and %s", from, to);
	if (ember_store_stats(store, &st, err, sizeof(err)) == 0 && st.samples) {
		ember_report_format_time(st.oldest_ns, from, sizeof(from));
		ember_report_format_time(st.newest_ns, to, sizeof(to));
		long long hours = (cmd_now_ns() - st.oldest_ns) / 3600000000000LL + 1;
		fprintf(stderr, "; the database holds %s to %s: try --from -%lldh", from, to, hours);
	}
	fprintf(stderr, "; nothing saved\n");
}

int cmd_report(int argc, char **argv)
{
	struct args a = {0};
	struct ember_report_options o = {0};
	struct ember_store *store = NULL;
	struct ember_report *r = NULL;
	char err[EMBER_STORE_ERRLEN] = "";
	struct strbuf sb, summary;
	struct stat st;
	int64_t id = 0;
	int rc;

	ember_report_default_thresholds(&a.th);
	rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (a.uninstall_cron)
		return uninstall_cron();
	if (a.install_cron)
		return install_cron(&a);
	rc = windows(&a, &o);
	if (rc)
		return rc;
	o.service = a.service;
	o.types = a.types;
	o.th = a.th;

	if (!a.db)
		a.db = DEFAULT_DB;
	if (stat(a.db, &st)) {
		fprintf(stderr, "ember report: database %s: %s (is `ember run --db %s` recording?)\n",
			a.db, strerror(errno), a.db);
		return 1;
	}
	if (ember_store_open(a.db, &store, err, sizeof(err))) {
		fprintf(stderr, "ember report: %s\n", err);
		return 1;
	}
	if (a.service && (rc = check_service(store, a.service))) {
		ember_store_close(store);
		return rc;
	}
	if (ember_report_build(store, &o, &r, err, sizeof(err))) {
		fprintf(stderr, "ember report: %s\n", err);
		ember_store_close(store);
		return 1;
	}
	rc = 0;
	/* an empty report (a young database, a quiet day) is not worth listing */
	bool empty = !report_has_samples(r);
	if (empty) {
		explain_empty(store, r);
		a.no_save = true;
		a.keep_given = false;
	}
	if (!a.no_save && save(store, r, &id))
		rc = 1;
	if (!rc && !a.no_save && a.keep_given) {
		uint64_t deleted;
		if (ember_store_prune_reports(store, (uint32_t)a.keep, &deleted, err, sizeof(err))) {
			fprintf(stderr, "ember report: %s\n", err);
			rc = 1;
		} else if (deleted) {
			fprintf(stderr, "ember report: deleted %llu old saved report%s\n",
				(unsigned long long)deleted, deleted == 1 ? "" : "s");
		}
	}
	sb_init(&sb);
	if (ember_report_render(r, format_of(a.format), a.ui_url, &sb)) {
		fprintf(stderr, "ember report: out of memory rendering the report\n");
		rc = 1;
	} else if (output(&a, r, &sb)) {
		rc = 1;
	}
	sb_init(&summary);
	ember_report_summary(r, &summary);
	fprintf(stderr, "ember report: %s", summary.buf ? summary.buf : "");
	if (id)
		fprintf(stderr, "; saved as report %lld", (long long)id);
	fputc('\n', stderr);
	if (!rc && a.fail_on_regression && any_regression(r))
		rc = 3;
	sb_free(&summary);
	sb_free(&sb);
	ember_report_free(r);
	ember_store_close(store);
	return rc;
}
