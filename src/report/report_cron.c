/*
 * report_cron.c - the daily cron entry and the rotation of report files.
 *
 * The cron file is the system crontab format of /etc/cron.d (minute hour
 * day month weekday user command).  Every value put on the command line is
 * single-quoted for /bin/sh and its '%' escaped (cron turns a bare '%' into
 * a newline); a value with a newline or other control character is
 * refused.  The file is written to a dot-file with a random name in the
 * same directory (cron ignores names with dots) and renamed over the old
 * one (core/safefile.c: nothing planted there is followed), so cron never
 * reads half a file, and it is left alone when its text is unchanged.
 */
#include "report/report_cron.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/safefile.h"
#include "report/report.h"

#define MAX_CRON_FILE 8192
#define CRON_FILE_MODE 0640
#define MAX_REPORT_FILES 100000

const char *ember_cron_dir(const char *cron_dir)
{
	const char *env;

	if (cron_dir && *cron_dir)
		return cron_dir;
	env = getenv("EMBER_CRON_DIR");
	return env && *env ? env : EMBER_CRON_DIR;
}

int ember_cron_parse_at(const char *s, int *hour, int *minute)
{
	if (!s || strlen(s) != 5 || s[2] != ':')
		return -EINVAL;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -EINVAL;
	*hour = (s[0] - '0') * 10 + (s[1] - '0');
	*minute = (s[3] - '0') * 10 + (s[4] - '0');
	return *hour <= 23 && *minute <= 59 ? 0 : -EINVAL;
}

/* Append ' value' quoted for sh inside a cron command; false for unusable text. */
static bool put_arg(struct strbuf *sb, const char *value)
{
	sb_puts(sb, " '");
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		if (*p == '\'')
			sb_puts(sb, "'\\''");
		else if (*p == '%')
			sb_puts(sb, "\\%");
		else
			sb_putc(sb, (char)*p);
	}
	sb_putc(sb, '\'');
	return true;
}

static int bad_value(char *err, size_t errlen, const char *what, const char *value)
{
	snprintf(err, errlen, "report: cannot put the %s '%.200s' in a cron entry "
			      "(it must be an absolute path without control characters)",
		 what, value ? value : "(none)");
	return -EINVAL;
}

int ember_cron_entry(const struct ember_cron_options *o, struct strbuf *out, char *err,
		     size_t errlen)
{
	const char *user = o->user ? o->user : "root";
	char keep[16];

	if (!o->ember_path || o->ember_path[0] != '/')
		return bad_value(err, errlen, "ember binary path", o->ember_path);
	if (!o->db_path || o->db_path[0] != '/')
		return bad_value(err, errlen, "database path", o->db_path);
	if (!o->output_dir || o->output_dir[0] != '/')
		return bad_value(err, errlen, "output directory", o->output_dir);
	if (o->hour < 0 || o->hour > 23 || o->minute < 0 || o->minute > 59 || !o->keep) {
		snprintf(err, errlen, "report: cron time or --keep out of range");
		return -EINVAL;
	}
	for (const char *p = user; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-'))
			return bad_value(err, errlen, "user", user);
	sb_puts(out, "# Ember: the daily regression report (see docs/report.md).\n"
		     "# Written by `ember report --install-cron`; remove it with\n"
		     "# `ember report --uninstall-cron`.  Reports go to the output directory,\n"
		     "# the newest ones kept; they are also listed in the UI (Reports).\n"
		     "SHELL=/bin/sh\n"
		     "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
	sb_printf(out, "%d %d * * * %s", o->minute, o->hour, user);
	snprintf(keep, sizeof(keep), "%u", o->keep);
	if (!put_arg(out, o->ember_path))
		return bad_value(err, errlen, "ember binary path", o->ember_path);
	sb_puts(out, " report --db");
	if (!put_arg(out, o->db_path))
		return bad_value(err, errlen, "database path", o->db_path);
	sb_puts(out, " --output-dir");
	if (!put_arg(out, o->output_dir))
		return bad_value(err, errlen, "output directory", o->output_dir);
	sb_printf(out, " --keep %s", keep);
	if (o->format) {
		sb_puts(out, " --format");
		if (!put_arg(out, o->format))
			return bad_value(err, errlen, "format", o->format);
	}
	if (o->ui_url) {
		sb_puts(out, " --ui-url");
		if (!put_arg(out, o->ui_url))
			return bad_value(err, errlen, "UI address", o->ui_url);
	}
	sb_putc(out, '\n');
	return out->oom ? -ENOMEM : 0;
}

/* Whether path holds exactly text. */
static bool same_file(const char *path, const char *text, size_t len)
{
	char buf[MAX_CRON_FILE + 1];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n == (ssize_t)len && memcmp(buf, text, len) == 0;
}

/* The cron daemon reads the file as root: 0640 keeps the paths in it from other users. */
static int write_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	int ret = ember_safefile_write(path, text, len, CRON_FILE_MODE, true);

	if (ret)
		snprintf(err, errlen, "report: cannot write %s: %s", path, strerror(-ret));
	return ret;
}

int ember_cron_install(const struct ember_cron_options *o, char *path_out, size_t path_len,
		       bool *changed, char *err, size_t errlen)
{
	const char *dir = ember_cron_dir(o->cron_dir);
	struct strbuf text;
	struct stat st;
	char path[4096];
	int ret;

	*changed = false;
	snprintf(path, sizeof(path), "%s/%s", dir, EMBER_CRON_FILE);
	if (path_out && path_len)
		snprintf(path_out, path_len, "%s", path);
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "report: cron directory %s does not exist (is cron installed? "
				      "EMBER_CRON_DIR overrides it)", dir);
		return -ENOENT;
	}
	sb_init(&text);
	ret = ember_cron_entry(o, &text, err, errlen);
	if (ret)
		goto out;
	ret = ember_mkdirs(o->output_dir, EMBER_DIR_MODE);
	if (ret) {
		snprintf(err, errlen, "report: cannot create the output directory %s: %s",
			 o->output_dir, strerror(-ret));
		goto out;
	}
	if (same_file(path, text.buf, text.len))
		goto out;
	ret = write_file(path, text.buf, text.len, err, errlen);
	*changed = ret == 0;
out:
	sb_free(&text);
	return ret;
}

int ember_cron_uninstall(const char *cron_dir, char *path_out, size_t path_len, bool *removed,
			 char *err, size_t errlen)
{
	const char *dir = ember_cron_dir(cron_dir);
	char path[4096];

	*removed = false;
	snprintf(path, sizeof(path), "%s/%s", dir, EMBER_CRON_FILE);
	if (path_out && path_len)
		snprintf(path_out, path_len, "%s", path);
	if (unlink(path) == 0) {
		*removed = true;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	snprintf(err, errlen, "report: cannot remove %s: %s", path, strerror(errno));
	return -errno;
}

void ember_report_file_name(int64_t from_ns, const char *ext, char *buf, size_t size)
{
	time_t t = (time_t)(from_ns / 1000000000LL);
	char stamp[32] = "unknown";
	struct tm tm;

	if (localtime_r(&t, &tm)) {
		if (tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0)
			strftime(stamp, sizeof(stamp), "%Y-%m-%d", &tm);
		else
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H%M%S", &tm);
	}
	snprintf(buf, size, "%s%s.%s", EMBER_REPORT_FILE_PREFIX, stamp, ext);
}

/* ---- pruning ---- */

static int by_name_desc(const void *a, const void *b)
{
	return strcmp(*(char *const *)b, *(char *const *)a);
}

/* The stamp of a report file name (between the prefix and the last dot), or NULL. */
static char *stamp_of(const char *name)
{
	size_t plen = strlen(EMBER_REPORT_FILE_PREFIX);
	const char *dot = strrchr(name, '.');

	if (strncmp(name, EMBER_REPORT_FILE_PREFIX, plen) != 0 || !dot || dot <= name + plen)
		return NULL;
	if (strcmp(dot, ".html") && strcmp(dot, ".json") && strcmp(dot, ".md"))
		return NULL;
	return strndup(name + plen, (size_t)(dot - name - plen));
}

int ember_report_prune(const char *dir, unsigned keep, unsigned *deleted, char *err,
		       size_t errlen)
{
	char **stamps = NULL, **names = NULL;
	size_t n = 0, cap = 0, kept = 0;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	*deleted = 0;
	d = opendir(dir);
	if (!d) {
		ret = -errno;
		snprintf(err, errlen, "report: cannot read %s: %s", dir, strerror(-ret));
		return ret;
	}
	while ((de = readdir(d)) && n < MAX_REPORT_FILES) {
		char *stamp = stamp_of(de->d_name);
		if (!stamp)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **s2 = realloc(stamps, cap * sizeof(*s2));
			char **n2 = s2 ? realloc(names, cap * sizeof(*n2)) : NULL;
			if (s2)
				stamps = s2;
			if (n2)
				names = n2;
			if (!s2 || !n2) {
				free(stamp);
				ret = -ENOMEM;
				break;
			}
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			free(stamp);
			ret = -ENOMEM;
			break;
		}
		stamps[n++] = stamp;
	}
	closedir(d);
	if (ret) {
		snprintf(err, errlen, "report: out of memory listing %s", dir);
		goto out;
	}
	/* the distinct stamps, newest first; the first `keep` survive */
	char **order = malloc((n + 1) * sizeof(*order));
	if (!order) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(order, stamps, n * sizeof(*order));
	qsort(order, n, sizeof(*order), by_name_desc);
	const char *cut = NULL; /* the oldest stamp kept */
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(order[i], order[i - 1]) == 0)
			continue;
		if (kept == keep)
			break;
		kept++;
		cut = order[i];
	}
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		if (cut && strcmp(stamps[i], cut) >= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) == 0) {
			(*deleted)++;
		} else if (errno != ENOENT) {
			ret = -errno;
			snprintf(err, errlen, "report: cannot delete old report %s: %s", path,
				 strerror(errno));
		}
	}
	free(order);
out:
	for (size_t i = 0; i < n; i++) {
		free(stamps[i]);
		free(names[i]);
	}
	free(stamps);
	free(names);
	return ret;
}
