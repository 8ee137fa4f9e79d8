/*
 * cmd.h - the subcommands of the `ember` binary.
 *
 * Each subcommand is a thin file (cmd_<name>.c) that parses its options and
 * calls library code in src/.  They return the process exit status.
 */
#ifndef EMBER_CMD_H
#define EMBER_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int cmd_run(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_ehframe(int argc, char **argv);
int cmd_symbolize(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Shared option helpers (cmd_common.c). */
int cmd_parse_uint(const char *opt, const char *s, unsigned long min, unsigned long max,
		   unsigned long *out);
/* An age like "48h" or "14d" (core/units.h) of at least min_ns; prints why not. */
int cmd_parse_age(const char *cmd, const char *opt, const char *s, int64_t min_ns, int64_t *out);
/* Install SIGINT/SIGTERM handlers that set the flag returned by cmd_stopping(). */
void cmd_handle_signals(void);
int cmd_stopping(void);
/* Sleep up to ms milliseconds, returning early when a stop signal arrives. */
void cmd_sleep_ms(long ms);
long long cmd_now_ns(void);
/* Like cmd_sleep_ms, handling the profiler's kernel events meanwhile. */
struct ember_profiler;
void cmd_wait_ms(struct ember_profiler *pr, long ms);
/*
 * The profiler's refresh_fn, arg the ember_symbolizer: snapshot a process's
 * maps while it runs, a new image at exec (what was known of the pid is
 * stale), else new or newly mapped code.
 */
void cmd_snapshot_process(uint32_t pid, bool exec, void *symbolizer);

/*
 * What a subcommand keeps per process; the profiler's exit_fn
 * (cmd_forget_process, arg a struct cmd_process_state) drops it when the
 * process has exited and its last samples are drained.
 */
struct ember_symbolizer;
struct ember_collector;
struct cmd_process_state {
	struct ember_symbolizer *sym;
	struct ember_collector *collector;
	struct ember_collector *offcpu_collector; /* NULL without off-CPU profiles */
};
void cmd_forget_process(uint32_t pid, void *state);

/* Process-lifetime counters (tracker, procs map, tables), one JSON object body / text block. */
struct strbuf;
void cmd_lifetime_json(struct strbuf *sb, struct ember_profiler *pr, struct ember_symbolizer *sym,
		       struct ember_collector *col);
void cmd_lifetime_print(FILE *f, struct ember_profiler *pr, struct ember_symbolizer *sym,
			struct ember_collector *col);

#define CMD_DEFAULT_UNWIND_CACHE "/var/cache/ember/unwind"

/*
 * Create the unwind cache directory (and its missing parents) 0700 before
 * the profiler uses it, so no directory of it is world-readable; a failure
 * is only warned about (the profiler then runs without a cache).
 */
void cmd_make_cache_dir(const char *dir);

#endif
