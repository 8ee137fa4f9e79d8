/*
 * cmd_record.c - `ember record`: a one-shot profile to a file.
 *
 *   ember record (--pid PID[,PID...] | --all) [--duration S] [--frequency HZ]
 *                --output FILE [--format collapsed|pprof] [--stats]
 *
 * Samples every CPU, keeps the selected processes, drains the kernel maps
 * once a second (so processes that exit early are still symbolized while
 * their maps exist), and writes folded text or gzip'd pprof.  Exit status:
 * 0 when samples were recorded, 1 when nothing was, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/collector.h"
#include "agent/kernel.h"
#include "agent/profiler.h"
#include "agent/unwind_tables.h"
#include "cmd.h"
#include "core/log.h"
#include "core/safefile.h"
#include "pprof/folded.h"
#include "pprof/pprof.h"
#include "symbolizer/symbolizer.h"

#define MAX_PIDS 1024

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ember record (--pid PID[,PID...] | --all) --output FILE [options]\n\n"
		"Profile processes for a while and write the stacks to a file.\n\n"
		"  -p, --pid LIST        comma-separated pids to profile\n"
		"  -a, --all             profile every process (stacks start with the process name)\n"
		"  -d, --duration SECS   how long to record (default 10)\n"
		"  -F, --frequency HZ    samples per second per CPU (default 99)\n"
		"  -o, --output FILE     where to write; '-' for standard output\n"
		"  -f, --format FMT      collapsed (folded text) or pprof (gzip'd profile.proto);\n"
		"                        default: pprof for *.pb.gz / *.pprof, else collapsed\n"
		"      --stats           print the BPF sampler's counters at the end\n"
		"      --frame-pointers  unwind by frame pointer only (no DWARF tables)\n"
		"      --unwind-budget MB  kernel memory for unwind tables (default 64)\n"
		"      --unwind-cache DIR  cache of compiled tables (default " CMD_DEFAULT_UNWIND_CACHE ")\n"
		"\nKernel options:\n" CMD_KERNEL_USAGE);
}

static int parse_pids(const char *arg, uint32_t *pids, size_t *n)
{
	char *copy = strdup(arg), *save = NULL;
	int rc = 0;

	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long v;
		if (*n >= MAX_PIDS) {
			fprintf(stderr, "ember: --pid: at most %d pids\n", MAX_PIDS);
			rc = -1;
			break;
		}
		if (cmd_parse_uint("--pid", tok, 1, 0x7fffffff, &v)) {
			rc = -1;
			break;
		}
		pids[(*n)++] = (uint32_t)v;
	}
	free(copy);
	return rc;
}

static bool pid_alive(uint32_t pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void print_stats(struct ember_profiler *pr, struct ember_symbolizer *sym,
			struct ember_collector *col)
{
	uint64_t st[EMBER_STAT__COUNT];

	ember_profiler_stats(pr, st);
	fprintf(stderr, "BPF sampler counters:\n");
	for (int i = 0; i < EMBER_STAT__COUNT; i++)
		fprintf(stderr, "  %-16s %llu\n", ember_stat_names[i], (unsigned long long)st[i]);
	struct ember_unwind_tables_stats ut;
	ember_unwind_tables_stats(ember_profiler_tables(pr), &ut);
	fprintf(stderr,
		"unwind tables: %llu files, %llu rows + %llu shared rules in %llu bytes "
		"(%.2f bytes per row, index included), "
		"%llu shards (%llu KiB), compiled %llu in %.1f ms, %llu from cache, "
		"%llu unreadable, %llu over budget, %llu build-id collisions; "
		"Go runtimes %llu (%llu without offsets)\n",
		(unsigned long long)ut.files, (unsigned long long)ut.rows,
		(unsigned long long)ut.rules, (unsigned long long)ut.table_bytes,
		ut.rows ? (double)ut.table_bytes / (double)ut.rows : 0.0,
		(unsigned long long)ut.shards,
		(unsigned long long)(ut.shard_bytes >> 10), (unsigned long long)ut.compiles,
		ut.compile_ns / 1e6, (unsigned long long)ut.cache_hits,
		(unsigned long long)ut.failures, (unsigned long long)ut.budget_exhausted,
		(unsigned long long)ut.build_id_collisions, (unsigned long long)ut.go_runtimes,
		(unsigned long long)ut.go_runtime_missing);
	struct ember_symbolizer_stats ss;
	ember_symbolizer_stats(sym, &ss);
	fprintf(stderr,
		"symbolizer: %llu addresses, %llu ELF files, %llu build-id collisions; "
		"cache %llu/%llu hits (%.2f%%), %llu entries, %llu KiB\n",
		(unsigned long long)ss.lookups, (unsigned long long)ss.elf_files,
		(unsigned long long)ss.build_id_collisions,
		(unsigned long long)ss.symcache_hits, (unsigned long long)ss.symcache_lookups,
		ss.symcache_lookups ? 100.0 * (double)ss.symcache_hits / (double)ss.symcache_lookups
				    : 0.0,
		(unsigned long long)ss.symcache_entries, (unsigned long long)(ss.symcache_bytes >> 10));
	uint32_t vprofile, vstep;
	ember_profiler_verified_insns(pr, &vprofile, &vstep);
	if (vprofile || vstep)
		fprintf(stderr, "verifier: ember_profile %u instructions processed, ember_unwind_step %u\n",
			vprofile, vstep);
	uint64_t run_cnt, run_ns;
	if (ember_profiler_prog_stats(pr, &run_cnt, &run_ns) == 0 && run_cnt && run_ns)
		fprintf(stderr, "  %-16s %.0f ns (kernel.bpf_stats_enabled)\n", "per_sample_cost",
			(double)run_ns / (double)run_cnt);
	cmd_lifetime_print(stderr, pr, sym, col);
}

/* The folded text into path: a safe temporary renamed into place (core/safefile.h). */
static int write_folded(const struct ember_profile *p, const char *path,
			const struct ember_folded_options *opt)
{
	struct ember_safefile sf;
	FILE *f;
	int rc;

	if (!strcmp(path, "-"))
		return ember_folded_write(stdout, p, opt);
	rc = ember_safefile_begin(&sf, path, EMBER_FILE_MODE);
	if (rc)
		return rc;
	f = ember_safefile_stream(&sf);
	rc = f ? ember_folded_write(f, p, opt) : -ENOMEM;
	if (rc) {
		ember_safefile_abort(&sf);
		return rc;
	}
	return ember_safefile_commit(&sf, true);
}

static int write_output(const struct ember_profile *p, const char *path, bool pprof, bool all)
{
	int rc;

	if (pprof) {
		struct ember_pprof_options opt = {.process_labels = all, .target_labels = true};
		if (!strcmp(path, "-")) {
			uint8_t *buf;
			size_t len;
			rc = ember_pprof_encode(p, &opt, &buf, &len);
			if (rc == 0) {
				rc = fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
				free(buf);
			}
		} else {
			rc = ember_pprof_write_file(p, &opt, path);
		}
	} else {
		struct ember_folded_options opt = {.with_process = all};
		rc = write_folded(p, path, &opt);
	}
	if (rc)
		fprintf(stderr, "ember: cannot write %s: %s\n", path, strerror(-rc));
	return rc;
}

int cmd_record(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, 0, 'p'},      {"all", no_argument, 0, 'a'},
		{"duration", required_argument, 0, 'd'}, {"frequency", required_argument, 0, 'F'},
		{"output", required_argument, 0, 'o'},   {"format", required_argument, 0, 'f'},
		{"stats", no_argument, 0, 'S'},          {"help", no_argument, 0, 'h'},
		{"frame-pointers", no_argument, 0, 'P'}, {"unwind-budget", required_argument, 0, 'B'},
		{"unwind-cache", required_argument, 0, 'C'},
		CMD_KERNEL_LONG_OPTIONS,
		{0, 0, 0, 0},
	};
	static uint32_t pids[MAX_PIDS];
	size_t n_pids = 0;
	unsigned long duration = 10, frequency = 99;
	const char *output = NULL, *format = NULL;
	bool all = false, stats = false, fp_only = false;
	unsigned long budget_mb = 64;
	const char *cache = CMD_DEFAULT_UNWIND_CACHE;
	struct ember_kernel_opts kopts = {0};
	int c, kr;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:ad:F:o:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_pids(optarg, pids, &n_pids))
				return 2;
			break;
		case 'a': all = true; break;
		case 'd':
			if (cmd_parse_uint("--duration", optarg, 1, 7 * 24 * 3600, &duration))
				return 2;
			break;
		case 'F':
			if (cmd_parse_uint("--frequency", optarg, 1, 10000, &frequency))
				return 2;
			break;
		case 'o': output = optarg; break;
		case 'f': format = optarg; break;
		case 'S': stats = true; break;
		case 'P': fp_only = true; break;
		case 'B':
			if (cmd_parse_uint("--unwind-budget", optarg, 2, 1 << 16, &budget_mb))
				return 2;
			break;
		case 'C': cache = optarg; break;
		case 'h': usage(stdout); return 0;
		default:
			if ((kr = cmd_other_option(c, optarg, &kopts, usage)))
				return kr;
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ember record: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if ((n_pids == 0) == !all) {
		fprintf(stderr, "ember record: give either --pid LIST or --all\n");
		usage(stderr);
		return 2;
	}
	if (!output) {
		fprintf(stderr, "ember record: --output FILE is required\n");
		return 2;
	}
	bool pprof;
	if (format) {
		if (strcmp(format, "pprof") && strcmp(format, "collapsed") && strcmp(format, "folded")) {
			fprintf(stderr, "ember record: --format: '%s' is not collapsed or pprof\n",
				format);
			return 2;
		}
		pprof = !strcmp(format, "pprof");
	} else {
		pprof = ends_with(output, ".pb.gz") || ends_with(output, ".pprof") ||
			ends_with(output, ".pb");
	}

	/* Keep the pids that exist; say which do not. */
	size_t live = 0;
	for (size_t i = 0; i < n_pids; i++) {
		if (pid_alive(pids[i]))
			pids[live++] = pids[i];
		else
			fprintf(stderr, "ember record: pid %u: no such process\n", pids[i]);
	}
	if (n_pids && !live) {
		fprintf(stderr, "ember record: none of the given processes exists; nothing to record\n");
		return 1;
	}
	n_pids = live;

	struct ember_kernel *kernel = cmd_open_kernel("record", &kopts);
	if (!kernel)
		return 1;
	cmd_make_cache_dir(cache);
	struct ember_symbolizer *sym = ember_symbolizer_new();
	struct cmd_process_state procs = {.sym = sym};
	struct ember_profiler_opts popts = {.kernel = kernel,
					    .frequency = (unsigned)frequency,
					    .pids = all ? NULL : pids,
					    .n_pids = all ? 0 : n_pids,
					    .unwind_budget = budget_mb << 20,
					    .unwind_cache = cache,
					    .frame_pointers_only = fp_only,
					    .refresh_fn = cmd_snapshot_process,
					    .refresh_arg = sym,
					    .exit_fn = cmd_forget_process,
					    .exit_arg = &procs};
	struct ember_profiler *pr;
	char err[512];
	int rc = sym ? ember_profiler_open(&popts, &pr, err, sizeof(err)) : -ENOMEM;
	if (rc) {
		fprintf(stderr, "ember record: %s\n", sym ? err : "out of memory");
		ember_symbolizer_free(sym);
		ember_kernel_close(kernel);
		return 1;
	}
	ember_kernel_describe_choices(kernel, stderr);
	struct ember_collector *col = ember_collector_new(sym);
	struct ember_profile *prof = ember_profile_new();
	procs.collector = col;
	if (!col || !prof) {
		fprintf(stderr, "ember record: out of memory\n");
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < n_pids; i++)
		ember_symbolizer_track(sym, pids[i]);
	if (ember_profiler_start(pr, err, sizeof(err))) {
		fprintf(stderr, "ember record: %s\n", err);
		rc = 1;
		goto out;
	}

	long long start = cmd_now_ns();
	prof->period_ns = 1000000000ULL / frequency;
	prof->start_ns = start;
	ember_collector_set_profile(col, prof, 0);
	cmd_handle_signals();
	if (all)
		fprintf(stderr, "ember: recording every process at %lu Hz for %lu s...\n", frequency,
			duration);
	else
		fprintf(stderr, "ember: recording %zu process%s at %lu Hz for %lu s...\n", n_pids,
			n_pids == 1 ? "" : "es", frequency, duration);

	long long deadline = start + (long long)duration * 1000000000LL;
	bool all_exited = false;
	while (!cmd_stopping() && cmd_now_ns() < deadline && !all_exited) {
		long long left_ms = (deadline - cmd_now_ns()) / 1000000;
		cmd_wait_ms(pr, left_ms < 1000 ? left_ms : 1000);
		ember_profiler_drain(pr, ember_collector_add, col);
		ember_symbolizer_maintain(sym);
		if (!all) {
			all_exited = true;
			for (size_t i = 0; i < n_pids; i++)
				if (pid_alive(pids[i]))
					all_exited = false;
		}
	}
	ember_profiler_drain(pr, ember_collector_add, col);
	prof->duration_ns = cmd_now_ns() - start;
	if (all_exited)
		fprintf(stderr, "ember: every recorded process has exited; stopping early\n");
	if (stats)
		print_stats(pr, sym, col);

	if (prof->total == 0) {
		fprintf(stderr, "ember record: no samples recorded (did the process use CPU?)\n");
		rc = 1;
		goto out;
	}
	rc = write_output(prof, output, pprof, all) ? 1 : 0;
	if (rc == 0)
		fprintf(stderr, "ember: wrote %llu samples in %zu stacks to %s (%s)\n",
			(unsigned long long)prof->total, prof->n_stacks, output,
			pprof ? "pprof" : "collapsed");
out:
	ember_profile_free(prof);
	ember_collector_free(col);
	ember_symbolizer_free(sym);
	ember_profiler_close(pr);
	ember_kernel_close(kernel);
	return rc;
}
