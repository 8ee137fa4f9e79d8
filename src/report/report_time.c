/*
 * report_time.c - days and points in time as `ember report` takes them.
 *
 * Days are local calendar days (the TZ of the cron job or the user): a
 * report for "yesterday" covers local midnight to local midnight, which is
 * 23 or 25 hours across a DST change.  mktime() with tm_isdst = -1 does the
 * calendar arithmetic, so "the day before" is always a calendar day.
 */
#include "report/report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/units.h"

#define NS 1000000000LL

/* Local midnight of y-m-d (+ days), or -1 when mktime fails. */
static int64_t local_midnight(int y, int m, int d, int days)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d + days, .tm_isdst = -1};
	time_t t = mktime(&tm);

	return t == (time_t)-1 ? -1 : (int64_t)t * NS;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* "YYYY-MM-DD" at s; *end after it.  Validates the calendar date. */
static bool parse_date(const char *s, int *y, int *m, int *d, const char **end)
{
	int n = 0;

	if (sscanf(s, "%4d-%2d-%2d%n", y, m, d, &n) != 3 || n != 10)
		return false;
	for (int i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return false;
	if (*y < 1970 || *y > 9999 || *m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
		return false;
	*end = s + 10;
	return true;
}

int ember_report_parse_day(const char *s, int64_t *from_ns, int64_t *to_ns)
{
	const char *end;
	int y, m, d;

	if (!s || !parse_date(s, &y, &m, &d, &end) || *end)
		return -EINVAL;
	*from_ns = local_midnight(y, m, d, 0);
	*to_ns = local_midnight(y, m, d, 1);
	return *from_ns < 0 || *to_ns <= *from_ns ? -EINVAL : 0;
}

static int parse_relative(const char *s, int64_t now_ns, int64_t *out)
{
	int64_t d;

	if (s[0] != '-' || ember_parse_duration(s + 1, &d))
		return -EINVAL;
	*out = now_ns - d;
	return 0;
}

int ember_report_parse_time(const char *s, int64_t now_ns, int64_t *out_ns)
{
	const char *end;
	int y, m, d, hh = 0, mm = 0, ss = 0, n = 0;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "now") == 0) {
		*out_ns = now_ns;
		return 0;
	}
	if (s[0] == '-')
		return parse_relative(s, now_ns, out_ns);
	if (s[0] == '@') {
		long long secs = 0;
		const char *p = s + 1;
		if (!*p)
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9' || secs > 253402300799LL / 10)
				return -EINVAL;
			secs = secs * 10 + (*p - '0');
		}
		*out_ns = (int64_t)secs * NS;
		return 0;
	}
	if (!parse_date(s, &y, &m, &d, &end))
		return -EINVAL;
	if (*end == 'T' || *end == ' ') {
		end++;
		if (sscanf(end, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
			return -EINVAL;
		end += n;
		if (*end == ':') {
			if (sscanf(end, ":%2d%n", &ss, &n) != 1 || n != 3)
				return -EINVAL;
			end += n;
		}
		if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
			return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = hh,
			.tm_min = mm, .tm_sec = ss, .tm_isdst = -1};
	time_t t = mktime(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out_ns = (int64_t)t * NS;
	return 0;
}

int64_t ember_report_day_start(int64_t t_ns)
{
	time_t t = (time_t)(t_ns / NS);
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return t_ns;
	return local_midnight(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, 0);
}

int64_t ember_report_day_shift(int64_t day_ns, int days)
{
	time_t t = (time_t)(day_ns / NS);
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return day_ns + (int64_t)days * 86400 * NS;
	return local_midnight(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, days);
}

void ember_report_format_time(int64_t t_ns, char *buf, size_t size)
{
	time_t t = (time_t)(t_ns / NS);
	struct tm tm;

	if (!size)
		return;
	if (!localtime_r(&t, &tm)) {
		snprintf(buf, size, "@%lld", (long long)t);
		return;
	}
	if (tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0)
		strftime(buf, size, "%Y-%m-%d", &tm);
	else if (tm.tm_sec == 0)
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
	else
		strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}
