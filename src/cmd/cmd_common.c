/*
 * cmd_common.c - option parsing and signal helpers shared by the subcommands.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/profiler.h"
#include "cmd.h"
#include "core/log.h"
#include "core/safefile.h"
#include "core/units.h"
#include "symbolizer/symbolizer.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) { stop_requested = sig; }

void cmd_handle_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int cmd_stopping(void) { return stop_requested != 0; }

void cmd_sleep_ms(long ms)
{
	while (ms > 0 && !stop_requested) {
		long step = ms > 100 ? 100 : ms;
		struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

long long cmd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int cmd_parse_uint(const char *opt, const char *s, unsigned long min, unsigned long max,
		   unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "ember: %s: '%s' is not a number between %lu and %lu\n", opt, s, min,
			max);
		return -1;
	}
	*out = v;
	return 0;
}

int cmd_parse_age(const char *cmd, const char *opt, const char *s, int64_t min_ns, int64_t *out)
{
	if (ember_parse_duration(s, out) == 0 && *out >= min_ns)
		return 0;
	fprintf(stderr, "%s: %s: '%s' is not an age of %lld s or more, like 48h or 14d "
			"(units s, m, h, d, w)\n", cmd, opt, s, (long long)(min_ns / 1000000000LL));
	return -1;
}

void cmd_wait_ms(struct ember_profiler *pr, long ms)
{
	long long end = cmd_now_ns() + ms * 1000000LL;

	while (!stop_requested) {
		long long left = (end - cmd_now_ns()) / 1000000LL;
		if (left <= 0)
			break;
		ember_profiler_poll(pr, left > 100 ? 100 : (int)left);
	}
}

void cmd_snapshot_process(uint32_t pid, bool exec, void *symbolizer)
{
	if (exec)
		ember_symbolizer_track(symbolizer, pid);
	else
		ember_symbolizer_refresh(symbolizer, pid);
}

void cmd_make_cache_dir(const char *dir)
{
	int rc = dir && dir[0] ? ember_mkdirs(dir, 0700) : 0;

	if (rc)
		ember_warn("cannot create the unwind cache %s: %s", dir, strerror(-rc));
}
