/*
 * cmd_common.c - option parsing and signal helpers shared by the subcommands.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/collector.h"
#include "agent/kernel.h"
#include "agent/profiler.h"
#include "agent/unwind_tables.h"
#include "cmd.h"
#include "core/log.h"
#include "core/safefile.h"
#include "core/units.h"
#include "core/strbuf.h"
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
		/*
		 * One wait for the whole time: kernel events end it early, and a
		 * stop signal delivered to another thread is seen within `ms`
		 * (callers wait a second at most), without waking 10 times a second.
		 */
		ember_profiler_poll(pr, left > INT32_MAX ? INT32_MAX : (int)left);
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
	/* described once its programs load (cmd_describe_kernel): a refusal
	 * (no privileges, say) is then one message, not a list of probe failures */
	if (ember_log_get_level() >= EMBER_LOG_DEBUG)
		ember_kernel_describe(k, stderr);
	return k;
}

void cmd_describe_kernel(const struct ember_kernel *k)
{
	if (ember_log_get_level() < EMBER_LOG_DEBUG)
		ember_kernel_describe(k, stderr);
	ember_kernel_describe_choices(k, stderr);
}

void cmd_make_cache_dir(const char *dir)
{
	int rc = dir && dir[0] ? ember_mkdirs(dir, 0700) : 0;

	if (rc)
		ember_warn("cannot create the unwind cache %s: %s", dir, strerror(-rc));
}

void cmd_forget_process(uint32_t pid, void *state)
{
	struct cmd_process_state *ps = state;

	if (ps->sym)
		ember_symbolizer_forget(ps->sym, pid);
	if (ps->collector)
		ember_collector_forget(ps->collector, pid);
	if (ps->offcpu_collector)
		ember_collector_forget(ps->offcpu_collector, pid);
}

struct counter {
	const char *name;
	uint64_t value;
};

#define LIFETIME_COUNTERS 33

/*
 * Every per-process table with its size, bound and evictions, and how
 * exits were found: one list for the JSON and the text forms.
 */
static void lifetime_counters(struct ember_profiler *pr, struct ember_symbolizer *sym,
			      struct ember_collector *col, struct counter out[LIFETIME_COUNTERS])
{
	struct ember_profiler_lifetime lt;
	struct ember_unwind_tables_stats ut;
	struct ember_symbolizer_stats ss = {0};
	struct ember_collector_stats cs = {0};
	size_t early_entries, early_max;

	ember_profiler_lifetime_stats(pr, &lt);
	ember_profiler_early_vmas_fill(pr, &early_entries, &early_max);
	ember_unwind_tables_stats(ember_profiler_tables(pr), &ut);
	if (sym)
		ember_symbolizer_stats(sym, &ss);
	if (col)
		ember_collector_stats(col, &cs);
	const struct counter c[LIFETIME_COUNTERS] = {
		{"tracked", lt.tracker.tracked},
		{"tracked_max", lt.tracker.max},
		{"exits_reported", lt.tracker.exits_reported},
		{"dead_reaped", lt.tracker.reaped},
		{"tracker_evictions", lt.tracker.evicted},
		{"forgotten", lt.tracker.forgotten},
		{"sweeps", lt.tracker.sweeps},
		{"life_checks", lt.tracker.checks},
		{"events_lost", lt.events_lost},
		{"drains_skipped", lt.drains_skipped},
		{"procs_map_entries", ember_profiler_procs_map_entries(pr)},
		{"procs_map_max", lt.procs_map_max},
		{"early_vmas_entries", early_entries},
		{"early_vmas_max", early_max},
		{"unwind_processes", ut.processes},
		{"unwind_processes_max", ut.max_processes},
		{"unwind_evictions", ut.evictions},
		{"refused_dead", ut.refused_dead},
		{"raced_exits", ut.raced_exits},
		{"stale_map_entries", ut.stale_entries},
		{"file_read_vanished", ut.vanished},
		{"file_read_retries", ut.retries},
		{"symbolizer_processes", ss.processes},
		{"symbolizer_processes_max", ss.max_processes},
		{"symbolizer_evictions", ss.proc_evictions},
		{"symbolizer_elf_retries", ss.elf_retries},
		{"symbolizer_open_vanished", ss.open_vanished},
		{"symbolizer_kernel_vma_procs", ss.kernel_vma_procs},
		{"symbolizer_elf_files", ss.elf_files},
		{"symbolizer_elf_symbol_bytes", ss.elf_symbol_bytes},
		{"collector_evictions", cs.evictions},
		{"collector_forgotten", cs.forgotten},
		{"collector_processes", cs.processes},
	};
	memcpy(out, c, sizeof(c));
}

void cmd_lifetime_json(struct strbuf *sb, struct ember_profiler *pr, struct ember_symbolizer *sym,
		       struct ember_collector *col)
{
	struct counter c[LIFETIME_COUNTERS];

	lifetime_counters(pr, sym, col, c);
	sb_putc(sb, '{');
	for (int i = 0; i < LIFETIME_COUNTERS; i++)
		sb_printf(sb, "%s\"%s\":%llu", i ? "," : "", c[i].name,
			  (unsigned long long)c[i].value);
	sb_putc(sb, '}');
}

void cmd_lifetime_print(FILE *f, struct ember_profiler *pr, struct ember_symbolizer *sym,
			struct ember_collector *col)
{
	struct counter c[LIFETIME_COUNTERS];

	lifetime_counters(pr, sym, col, c);
	fprintf(f, "process lifetime:\n");
	for (int i = 0; i < LIFETIME_COUNTERS; i++)
		fprintf(f, "  %-26s %llu\n", c[i].name, (unsigned long long)c[i].value);
}
