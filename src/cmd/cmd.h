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
 * Kernel options, shared by every subcommand that loads BPF programs: where
 * BTF comes from and which kernel features to pretend are missing (to run
 * the fallbacks on a kernel that would not need them).  A subcommand puts
 * CMD_KERNEL_LONG_OPTIONS in its getopt_long table, passes every option it
 * does not know to cmd_kernel_option(), prints CMD_KERNEL_USAGE in its
 * help, and opens the kernel with cmd_open_kernel().
 */
struct ember_kernel;
struct ember_kernel_opts;

enum {
	CMD_OPT_BTF = 0x1000,
	CMD_OPT_BTF_ARCHIVE,
	CMD_OPT_NO_FEATURE,
	CMD_OPT_NO_KPROBES,
	CMD_OPT_NO_FENTRY,
	CMD_OPT_FORCE_PERFBUF,
};

#define CMD_KERNEL_LONG_OPTIONS                                                          \
	{"btf", required_argument, 0, CMD_OPT_BTF},                                      \
	{"btf-archive", required_argument, 0, CMD_OPT_BTF_ARCHIVE},                      \
	{"no-feature", required_argument, 0, CMD_OPT_NO_FEATURE},                        \
	{"no-kprobes", no_argument, 0, CMD_OPT_NO_KPROBES},                              \
	{"no-fentry", no_argument, 0, CMD_OPT_NO_FENTRY},                                \
	{"force-perfbuf", no_argument, 0, CMD_OPT_FORCE_PERFBUF}

#define CMD_KERNEL_USAGE                                                                  \
	"  --btf FILE           BTF for CO-RE instead of the kernel's (raw, ELF .BTF, zstd)\n" \
	"  --btf-archive DIR    look for this kernel in DIR (btf-archive/btfgen.sh min)\n"     \
	"                       before the archive built into ember (no kernel BTF only)\n"    \
	"  --no-kprobes         use tracepoints where kprobes would do\n"                     \
	"  --no-fentry          use kprobes or tracepoints where fentry would do\n"           \
	"  --force-perfbuf      perf buffers instead of the BPF ring buffer\n"                \
	"  --no-feature LIST    treat kernel features as absent (comma-separated):\n"         \
	"                       kernel_btf, kprobes, fentry, tp_btf, raw_tp, tracepoints,\n"  \
	"                       ringbuf, task_pt_regs, probe_read_user, bpf_loop, mmap_maps\n"

/* 1: opt was a kernel option (applied to ko); 0: not one; -1: bad value (message printed). */
int cmd_kernel_option(int opt, const char *arg, struct ember_kernel_opts *ko);
/*
 * The default: of a subcommand's option switch: 0 when opt was a kernel
 * option, else the exit status (2) after the usage or the message.
 */
int cmd_other_option(int opt, const char *arg, struct ember_kernel_opts *ko,
		     void (*usage)(FILE *f));
/* Open the kernel (BTF, features); NULL (message printed) on failure. */
struct ember_kernel *cmd_open_kernel(const char *cmd, const struct ember_kernel_opts *ko);
/* Print the kernel (BTF, features) and the hooks and fallbacks chosen, once loaded. */
void cmd_describe_kernel(const struct ember_kernel *k);

/*
 * Create the unwind cache directory (and its missing parents) 0700 before
 * the profiler uses it, so no directory of it is world-readable; a failure
 * is only warned about (the profiler then runs without a cache).
 */
void cmd_make_cache_dir(const char *dir);

#endif
