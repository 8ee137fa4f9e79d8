/*
 * cmd_common.c - option parsing and signal helpers shared by the subcommands.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "agent/kernel.h"
#include "agent/profiler.h"
#include "cmd.h"
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

int cmd_other_option(int opt, const char *arg, struct ember_kernel_opts *ko,
		     void (*usage)(FILE *f))
{
	int kr = cmd_kernel_option(opt, arg, ko);

	if (kr == 1)
		return 0;
	if (kr == 0)
		usage(stderr);
	return 2;
}

int cmd_kernel_option(int opt, const char *arg, struct ember_kernel_opts *ko)
{
	switch (opt) {
	case CMD_OPT_BTF: ko->btf_file = arg; return 1;
	case CMD_OPT_BTF_ARCHIVE: ko->btf_archive = arg; return 1;
	case CMD_OPT_NO_KPROBES: ko->disabled |= 1u << EMBER_KF_KPROBES; return 1;
	case CMD_OPT_NO_FENTRY: ko->disabled |= 1u << EMBER_KF_FENTRY; return 1;
	case CMD_OPT_FORCE_PERFBUF: ko->disabled |= 1u << EMBER_KF_RINGBUF; return 1;
	case CMD_OPT_NO_FEATURE: break;
	default: return 0;
	}
	char err[256];
	if (ember_kfeatures_parse_list(arg, &ko->disabled, err, sizeof(err))) {
		fprintf(stderr, "ember: --no-feature: %s\n", err);
		return -1;
	}
	return 1;
}

struct ember_kernel *cmd_open_kernel(const char *cmd, const struct ember_kernel_opts *ko)
{
	struct ember_kernel *k;
	char err[1024];

	if (ember_kernel_open(ko, &k, err, sizeof(err))) {
		fprintf(stderr, "ember %s: %s\n", cmd, err);
		return NULL;
	}
	ember_kernel_describe(k, stderr);
	return k;
}
