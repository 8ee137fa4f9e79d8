/*
 * cmd_record.c - `ember record`: a one-shot profile to a file.
 *
 *   ember record (--pid PID[,PID...] | --all) [--duration S] [--frequency HZ]
 *                [--type cpu|offcpu] --output FILE [--format collapsed|pprof] [--stats]
 *
 * --type cpu (the default) samples running threads; --type offcpu records
 * where threads block and for how long (src/offcpu/: counts are
 * nanoseconds): the sampler is opened for its unwind tables and events but
 * its perf events are not started.
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
#include "offcpu/offcpu.h"
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
		"                        (with several --pid: \"name-PID;main;...\")\n"
		"  -d, --duration SECS   how long to record (default 10)\n"
		"  -F, --frequency HZ    samples per second per CPU (default 99)\n"
		"  -t, --type TYPE       cpu (running threads, samples; default) or offcpu\n"
		"                        (blocked threads, nanoseconds off the CPU)\n"
		"      --min-block MS    offcpu: waits shorter than this are not recorded (default 1)\n"
		"      --max-walks N     offcpu: stack walks per second per CPU (default 1000)\n"
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
		"Go runtimes %llu (%llu without offsets); "
		"%llu idle files kept, %llu expired, %llu not published by inode\n",
		(unsigned long long)ut.files, (unsigned long long)ut.rows,
		(unsigned long long)ut.rules, (unsigned long long)ut.table_bytes,
		ut.rows ? (double)ut.table_bytes / (double)ut.rows : 0.0,
		(unsigned long long)ut.shards,
		(unsigned long long)(ut.shard_bytes >> 10), (unsigned long long)ut.compiles,
		ut.compile_ns / 1e6, (unsigned long long)ut.cache_hits,
		(unsigned long long)ut.failures, (unsigned long long)ut.budget_exhausted,
		(unsigned long long)ut.build_id_collisions, (unsigned long long)ut.go_runtimes,
		(unsigned long long)ut.go_runtime_missing, (unsigned long long)ut.idle_files,
		(unsigned long long)ut.idle_expired, (unsigned long long)ut.file_map_full);
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

/*
 * Can path be written?  A temporary is created next to it and removed, as
 * the real write will do, so that a missing or read-only directory is
 * found before recording rather than after.
 */
static int check_output(const char *path)
{
	struct ember_safefile sf;
	int rc;

	if (!strcmp(path, "-"))
		return 0;
	rc = ember_safefile_begin(&sf, path, EMBER_FILE_MODE);
	if (rc)
		return rc;
	ember_safefile_abort(&sf);
	return 0;
}

/*
 * all: stacks start with the process name (--all); pids: several --pid,
 * whose stacks start with "name-PID" so that each line names its process.
 */
static int write_output(const struct ember_profile *p, const char *path, bool pprof, bool all,
			bool pids)
{
	int rc;

	if (pprof) {
		struct ember_pprof_options opt = {.process_labels = all || pids,
						  .target_labels = true};
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
		struct ember_folded_options opt = {.with_process = all || pids, .with_pid = pids};
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
		{"type", required_argument, 0, 't'},     {"min-block", required_argument, 0, 'M'},
		{"max-walks", required_argument, 0, 'W'},
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
	enum ember_profile_type type = EMBER_PROFILE_CPU;
	unsigned long min_block_ms = 1, max_walks = EMBER_OFFCPU_MAX_WALKS;
	int c, rc, kr;
	struct ember_kernel_opts kopts = {0};

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:ad:F:o:f:t:h", opts, NULL)) != -1) {
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
		case 't':
			if (ember_profile_type_parse(optarg, &type)) {
				fprintf(stderr, "ember record: --type: '%s' is not cpu or offcpu\n",
					optarg);
				return 2;
			}
			break;
		case 'M':
			if (cmd_parse_uint("--min-block", optarg, 0, 3600 * 1000, &min_block_ms))
				return 2;
			break;
		case 'W':
			if (cmd_parse_uint("--max-walks", optarg, 1, 1000000, &max_walks))
				return 2;
			break;
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

	rc = check_output(output);
	if (rc) {
		fprintf(stderr, "ember record: cannot write %s: %s\n", output, strerror(-rc));
		return 1;
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
	rc = sym ? ember_profiler_open(&popts, &pr, err, sizeof(err)) : -ENOMEM;
	if (rc) {
		fprintf(stderr, "ember record: %s\n", sym ? err : "out of memory");
		ember_symbolizer_free(sym);
		ember_kernel_close(kernel);
		return 1;
	}
	cmd_describe_kernel(kernel);
	ember_symbolizer_set_kernel_vmas(sym, ember_profiler_kernel_vmas, pr);
	struct ember_collector *col = ember_collector_new(sym);
	struct ember_profile *prof = ember_profile_new();
	struct ember_offcpu *oc = NULL;
	procs.collector = col;
	if (!col || !prof) {
		fprintf(stderr, "ember record: out of memory\n");
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < n_pids; i++)
		ember_symbolizer_track(sym, pids[i]);
	if (type == EMBER_PROFILE_OFFCPU) {
		/* min 0 would mean "the default" to the tracer: 1 ns records every wait */
		struct ember_offcpu_opts oopts = {
			.min_block_ns = min_block_ms ? min_block_ms * 1000000ULL : 1,
			.max_walks_per_sec = (unsigned)max_walks};
		rc = ember_offcpu_open(pr, &oopts, &oc, err, sizeof(err));
	} else {
		rc = ember_profiler_start(pr, err, sizeof(err));
	}
	if (rc) {
		fprintf(stderr, "ember record: %s\n", err);
		rc = 1;
		goto out;
	}

	long long start = cmd_now_ns();
	prof->type = type;
	prof->period_ns = type == EMBER_PROFILE_CPU ? 1000000000ULL / frequency : 1;
	prof->start_ns = start;
	ember_collector_set_profile(col, prof, 0);
	cmd_handle_signals();
	char rate[64];
	if (type == EMBER_PROFILE_CPU)
		snprintf(rate, sizeof(rate), "at %lu Hz", frequency);
	else
		snprintf(rate, sizeof(rate), "off-CPU (waits >= %lu ms)", min_block_ms);
	if (all)
		fprintf(stderr, "ember: recording every process %s for %lu s...\n", rate, duration);
	else
		fprintf(stderr, "ember: recording %zu process%s %s for %lu s...\n", n_pids,
			n_pids == 1 ? "" : "es", rate, duration);

	long long deadline = start + (long long)duration * 1000000000LL;
	bool all_exited = false;
	while (!cmd_stopping() && cmd_now_ns() < deadline && !all_exited) {
		long long left_ms = (deadline - cmd_now_ns()) / 1000000;
		cmd_wait_ms(pr, left_ms < 1000 ? left_ms : 1000);
		if (oc)
			ember_offcpu_drain(oc, ember_collector_add, col);
		ember_profiler_drain(pr, ember_collector_add, col);
		ember_symbolizer_maintain(sym);
		if (!all) {
			all_exited = true;
			for (size_t i = 0; i < n_pids; i++)
				if (pid_alive(pids[i]))
					all_exited = false;
		}
	}
	/* detached first, so no sample lands after the last drain's flip */
	ember_profiler_stop(pr);
	if (oc)
		ember_offcpu_drain(oc, ember_collector_add, col);
	ember_profiler_drain(pr, ember_collector_add, col);
	prof->duration_ns = cmd_now_ns() - start;
	if (all_exited)
		fprintf(stderr, "ember: every recorded process has exited; stopping early\n");
	if (stats) {
		print_stats(pr, sym, col);
		if (oc)
			ember_offcpu_print_stats(oc, stderr);
	}

	if (prof->total == 0) {
		fprintf(stderr, "ember record: no samples recorded (%s)\n",
			type == EMBER_PROFILE_CPU ? "did the process use CPU?"
						  : "did the process block for long enough?");
		rc = 1;
		goto out;
	}
	rc = write_output(prof, output, pprof, all, n_pids > 1) ? 1 : 0;
	if (rc == 0) {
		uint64_t st[EMBER_STAT__COUNT];
		ember_profiler_stats(pr, st);
		uint64_t recorded = st[EMBER_STAT_RECORDED];
		fprintf(stderr, "ember: wrote %llu %s in %zu stacks to %s (%s)\n",
			(unsigned long long)prof->total, ember_profile_type_unit(type), prof->n_stacks,
			output,
			pprof ? "pprof" : "collapsed");
		if (type == EMBER_PROFILE_CPU)
			fprintf(stderr, "ember: samples recorded vs written: %llu vs %llu, %llu lost\n",
				(unsigned long long)recorded, (unsigned long long)prof->total,
				(unsigned long long)(recorded > prof->total ? recorded - prof->total
									   : 0));
	}
out:
	ember_offcpu_close(oc);
	ember_profile_free(prof);
	ember_collector_free(col);
	ember_symbolizer_free(sym);
	ember_profiler_close(pr);
	ember_kernel_close(kernel);
	return rc;
}
