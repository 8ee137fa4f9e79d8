/*
 * report_cron.h - running the report every day, and keeping the last N.
 *
 * `ember report --install-cron` writes one file, /etc/cron.d/ember-report
 * (the directory can be changed for tests with EMBER_CRON_DIR), holding
 * one line that runs `ember report --output-dir DIR --keep N` daily.  The
 * file is replaced atomically and only when its text changes, so
 * installing twice leaves one entry.  Report files are named
 * ember-report-<window start>.<format> so that name order is time order;
 * pruning keeps the newest N windows.
 */
#ifndef EMBER_REPORT_CRON_H
#define EMBER_REPORT_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

#define EMBER_CRON_DIR "/etc/cron.d"
#define EMBER_CRON_FILE "ember-report" /* cron.d names: letters, digits, '-', '_' only */
#define EMBER_REPORT_FILE_PREFIX "ember-report-"

struct ember_cron_options {
	const char *cron_dir;   /* NULL: $EMBER_CRON_DIR, else EMBER_CRON_DIR */
	const char *ember_path; /* absolute path of the ember binary */
	const char *db_path;
	const char *output_dir;
	const char *ui_url;     /* NULL = the default */
	const char *format;     /* "html", "json" or "md" */
	unsigned keep;          /* reports kept in output_dir */
	int hour, minute;
	const char *user;       /* NULL = "root" */
};

/* The cron directory in effect (cron_dir, $EMBER_CRON_DIR or /etc/cron.d). */
const char *ember_cron_dir(const char *cron_dir);

/* The text of the cron file.  Returns 0, or -EINVAL (err says which value is unusable). */
int ember_cron_entry(const struct ember_cron_options *o, struct strbuf *out, char *err,
		     size_t errlen);

/*
 * Write the cron file (path_out gets its path).  *changed tells whether it
 * was written (false: it already held the same text).  Creates output_dir.
 * Returns 0 or a negative errno with err naming the file at fault.
 */
int ember_cron_install(const struct ember_cron_options *o, char *path_out, size_t path_len,
		       bool *changed, char *err, size_t errlen);

/* Remove the cron file; *removed is false when there was none.  Returns 0 or -errno. */
int ember_cron_uninstall(const char *cron_dir, char *path_out, size_t path_len, bool *removed,
			 char *err, size_t errlen);

/* "HH:MM" -> hour and minute.  Returns 0 or -EINVAL. */
int ember_cron_parse_at(const char *s, int *hour, int *minute);

/* The file name of a report of the window starting at from_ns ("ember-report-2024-05-01.html"). */
void ember_report_file_name(int64_t from_ns, const char *ext, char *buf, size_t size);

/*
 * Delete all but the newest `keep` reports in dir (a report is every file
 * ember-report-<stamp>.* of one stamp).  *deleted counts the files removed.
 * Returns 0 or -errno with err naming the directory or file.
 */
int ember_report_prune(const char *dir, unsigned keep, unsigned *deleted, char *err,
		       size_t errlen);

#endif
