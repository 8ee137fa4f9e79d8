/*
 * cmd_run.c - `ember run`: the appliance.
 *
 *   ember run [--db PATH] [--listen ADDR:PORT] [--frequency HZ] [--flush SECS]
 *             [--services FILE]
 *
 * Profiles every process on the host, drains the kernel maps every second
 * into an in-memory profile (symbolizing while the processes still exist),
 * writes that profile into SQLite every --flush seconds, and serves the UI
 * and API over HTTP.  SIGINT/SIGTERM stop it after a last drain and flush.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "agent/collector.h"
#include "agent/kernel.h"
#include "agent/profiler.h"
#include "agent/target.h"
#include "agent/unwind_tables.h"
#include "cmd.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/strbuf.h"
#include "server/server.h"
#include "store/store.h"
#include "symbolizer/symbolizer.h"

#define DEFAULT_DB "/var/lib/ember/ember.db"
#define DEFAULT_LISTEN "127.0.0.1:7070"
#define MEMORY_IDLE_NS (30 * 1000000000LL) /* API idle time before freed query memory goes back */

struct agent {
	struct ember_kernel *kernel;
	struct ember_profiler *profiler;
	struct ember_symbolizer *sym;
	struct ember_collector *collector;
	struct ember_store *store;
	struct ember_profile *pending; /* samples since the last flush */
	unsigned frequency;
	uint64_t flushes, flush_errors, flushed_samples;
	long long started_ns, last_flush_ms;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ember run [options]\n\n"
		"Profile every process on this host continuously, store the aggregates in\n"
		"SQLite and serve the flame-graph UI and JSON API.\n\n"
		"  --db PATH            SQLite database (default " DEFAULT_DB ")\n"
		"  --listen ADDR:PORT   HTTP address (default " DEFAULT_LISTEN "; loopback only\n"
		"                       unless you give another address)\n"
		"  -F, --frequency HZ   samples per second per CPU (default 19)\n"
		"  --flush SECS         write to the database every SECS seconds (default 5)\n"
		"  --frame-pointers     unwind by frame pointer only (no DWARF tables)\n"
		"  --unwind-budget MB   kernel memory for unwind tables (default 64)\n"
		"  --unwind-cache DIR   cache of compiled tables (default " CMD_DEFAULT_UNWIND_CACHE ")\n"
		"  --services FILE      name services by executable: \"PATTERN = SERVICE\" lines\n"
		"                       (fnmatch on the path if PATTERN has a '/', else the name)\n"
		"\nKernel options:\n" CMD_KERNEL_USAGE);
}

/* Appends the agent's counters as a JSON object (called from the HTTP thread). */
static void stats_json(struct strbuf *sb, void *arg)
{
	struct agent *a = arg;
	uint64_t st[EMBER_STAT__COUNT];
	struct ember_collector_stats cs;
	struct ember_symbolizer_stats ss;
	struct rusage ru;

	ember_profiler_stats(a->profiler, st);
	/* The collector and symbolizer counters are plain integers written by
	 * the agent thread; a slightly stale read is fine for a stats page. */
	ember_collector_stats(a->collector, &cs);
	ember_symbolizer_stats(a->sym, &ss);
	getrusage(RUSAGE_SELF, &ru);
	sb_printf(sb, "{\"frequency_hz\":%u,\"cpus\":%d,\"uptime_s\":%.1f,\"bpf\":{", a->frequency,
		  ember_profiler_ncpus(a->profiler), (cmd_now_ns() - a->started_ns) / 1e9);
	for (int i = 0; i < EMBER_STAT__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%llu", i ? "," : "", ember_stat_names[i],
			  (unsigned long long)st[i]);
	uint64_t run_cnt, run_ns;
	if (ember_profiler_prog_stats(a->profiler, &run_cnt, &run_ns) == 0)
		sb_printf(sb, ",\"prog_run_cnt\":%llu,\"prog_run_time_ns\":%llu",
			  (unsigned long long)run_cnt, (unsigned long long)run_ns);
	struct ember_unwind_tables_stats ut;
	ember_unwind_tables_stats(ember_profiler_tables(a->profiler), &ut);
	sb_printf(sb,
		  "},\"unwind_tables\":{\"processes\":%llu,\"files\":%llu,\"rows\":%llu,"
		  "\"rules\":%llu,\"table_bytes\":%llu,\"shards\":%llu,\"shard_bytes\":%llu,\"compiles\":%llu,"
		  "\"compile_ms\":%.1f,\"cache_hits\":%llu,\"failures\":%llu,"
		  "\"budget_exhausted\":%llu,\"reclaimed\":%llu",
		  (unsigned long long)ut.processes, (unsigned long long)ut.files,
		  (unsigned long long)ut.rows, (unsigned long long)ut.rules,
		  (unsigned long long)ut.table_bytes, (unsigned long long)ut.shards, (unsigned long long)ut.shard_bytes,
		  (unsigned long long)ut.compiles, ut.compile_ns / 1e6,
		  (unsigned long long)ut.cache_hits, (unsigned long long)ut.failures,
		  (unsigned long long)ut.budget_exhausted, (unsigned long long)ut.reclaimed);
	sb_printf(sb,
		  "},\"collector\":{\"samples\":%llu,\"stacks\":%llu,\"truncated\":%llu,"
		  "\"processes\":%llu,\"garbage_callers\":%llu},\"symbolizer\":{\"lookups\":%llu,\"cache_hits\":%llu,"
		  "\"elf_files\":%llu,\"elf_errors\":%llu,\"processes\":%llu,"
		  "\"symcache_lookups\":%llu,\"symcache_hits\":%llu,\"symcache_hit_rate\":%.5f,"
		  "\"symcache_entries\":%llu,\"symcache_bytes\":%llu,\"symcache_max_bytes\":%llu},"
		  "\"flushes\":%llu,\"flush_errors\":%llu,\"flushed_samples\":%llu,"
		  "\"cpu_user_s\":%.3f,\"cpu_system_s\":%.3f,\"max_rss_kb\":%ld,\"kernel\":",
		  (unsigned long long)cs.samples, (unsigned long long)cs.stacks,
		  (unsigned long long)cs.truncated, (unsigned long long)cs.processes,
		  (unsigned long long)cs.garbage_callers,
		  (unsigned long long)ss.lookups, (unsigned long long)ss.cache_hits,
		  (unsigned long long)ss.elf_files, (unsigned long long)ss.elf_errors,
		  (unsigned long long)ss.processes, (unsigned long long)ss.symcache_lookups,
		  (unsigned long long)ss.symcache_hits,
		  ss.symcache_lookups ? (double)ss.symcache_hits / (double)ss.symcache_lookups : 0.0,
		  (unsigned long long)ss.symcache_entries, (unsigned long long)ss.symcache_bytes,
		  (unsigned long long)ss.symcache_max_bytes, (unsigned long long)a->flushes,
		  (unsigned long long)a->flush_errors, (unsigned long long)a->flushed_samples,
		  ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		  ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss);
	/* the kernel: its features, BTF source, the hooks chosen, fallbacks */
	ember_kernel_json(a->kernel, sb);
	sb_putc(sb, '}');
}

/* A process exited and its samples are drained: drop what the symbolizer kept for it. */
static void forget_process(uint32_t pid, void *arg)
{
	ember_symbolizer_forget(arg, pid);
}

static int start_pending(struct agent *a)
{
	a->pending = ember_profile_new();
	if (!a->pending)
		return -ENOMEM;
	a->pending->period_ns = 1000000000ULL / a->frequency;
	a->pending->start_ns = cmd_now_ns();
	ember_collector_set_profile(a->collector, a->pending, 0);
	return 0;
}

static void flush(struct agent *a)
{
	char err[EMBER_STORE_ERRLEN];
	long long now = cmd_now_ns();

	if (a->pending->total > 0) {
		a->pending->duration_ns = now - a->pending->start_ns;
		if (ember_store_ingest(a->store, a->pending, now, err, sizeof(err))) {
			a->flush_errors++;
			ember_warn("flush failed (%llu samples kept for the next try): %s",
				   (unsigned long long)a->pending->total, err);
			return; /* keep pending; retry next time */
		}
		a->flushes++;
		a->flushed_samples += a->pending->total;
		ember_debug("flushed %llu samples in %zu stacks",
			    (unsigned long long)a->pending->total, a->pending->n_stacks);
	}
	ember_profile_free(a->pending);
	a->pending = NULL;
	if (start_pending(a))
		ember_err("out of memory starting a new profile");
}

static int make_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, 0, 'D'},        {"listen", required_argument, 0, 'l'},
		{"frequency", required_argument, 0, 'F'}, {"flush", required_argument, 0, 'f'},
		{"frame-pointers", no_argument, 0, 'P'},  {"unwind-budget", required_argument, 0, 'B'},
		{"unwind-cache", required_argument, 0, 'C'}, {"services", required_argument, 0, 'S'},
		{"help", no_argument, 0, 'h'},            CMD_KERNEL_LONG_OPTIONS,
		{0, 0, 0, 0},
	};
	const char *db = DEFAULT_DB, *listen = DEFAULT_LISTEN;
	unsigned long frequency = 19, flush_s = 5, budget_mb = 64;
	const char *cache = CMD_DEFAULT_UNWIND_CACHE, *services_file = NULL;
	struct ember_service_map *services = NULL;
	bool fp_only = false;
	struct agent a = {0};
	struct ember_server *server = NULL;
	char err[EMBER_STORE_ERRLEN];
	struct ember_kernel_opts kopts = {0};
	int c, kr, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "F:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': db = optarg; break;
		case 'l': listen = optarg; break;
		case 'F':
			if (cmd_parse_uint("--frequency", optarg, 1, 10000, &frequency))
				return 2;
			break;
		case 'f':
			if (cmd_parse_uint("--flush", optarg, 1, 3600, &flush_s))
				return 2;
			break;
		case 'P': fp_only = true; break;
		case 'B':
			if (cmd_parse_uint("--unwind-budget", optarg, 2, 1 << 16, &budget_mb))
				return 2;
			break;
		case 'C': cache = optarg; break;
		case 'S': services_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default:
			if ((kr = cmd_other_option(c, optarg, &kopts, usage)))
				return kr;
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ember run: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	a.frequency = (unsigned)frequency;
	a.started_ns = cmd_now_ns();

	struct sockaddr_storage addr;
	unsigned addrlen;
	if (ember_server_parse_listen(listen, &addr, &addrlen, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		return 2;
	}

	if (services_file && ember_service_map_load(services_file, &services, err, sizeof(err))) {
		fprintf(stderr, "ember run: --services %s\n", err);
		return 2;
	}

	int mk = make_parent_dir(db);
	if (mk) {
		fprintf(stderr, "ember run: cannot create the directory of %s: %s\n", db, strerror(-mk));
		return 1;
	}
	if (ember_store_open(db, &a.store, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		return 1;
	}

	a.kernel = cmd_open_kernel("run", &kopts);
	if (!a.kernel)
		goto out;
	a.sym = ember_symbolizer_new();
	struct ember_profiler_opts popts = {.kernel = a.kernel,
					    .frequency = a.frequency,
					    .exit_fn = forget_process,
					    .exit_arg = a.sym,
					    .refresh_fn = cmd_snapshot_process,
					    .refresh_arg = a.sym,
					    .unwind_budget = budget_mb << 20,
					    .unwind_cache = cache,
					    .frame_pointers_only = fp_only};
	if (ember_profiler_open(&popts, &a.profiler, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		goto out;
	}
	ember_kernel_describe_choices(a.kernel, stderr);
	a.collector = a.sym ? ember_collector_new(a.sym) : NULL;
	if (!a.collector || start_pending(&a)) {
		fprintf(stderr, "ember run: out of memory\n");
		goto out;
	}
	ember_collector_set_service_map(a.collector, services);

	ember_memory_keep_freed(); /* queries reuse memory (core/memory.h) */
	struct ember_server_config scfg = {
		.listen = listen, .db_path = db, .stats_json = stats_json, .stats_arg = &a};
	if (ember_server_start(&scfg, &server, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		goto out;
	}
	if (ember_profiler_start(a.profiler, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		goto out;
	}
	cmd_handle_signals();
	const char *colon = strrchr(listen, ':');
	fprintf(stderr,
		"ember: profiling %d CPUs at %lu Hz into %s; flushing every %lu s\n"
		"ember: serving http://%.*s:%d/\n",
		ember_profiler_ncpus(a.profiler), frequency, db, flush_s,
		colon ? (int)(colon - listen) : (int)strlen(listen), listen,
		ember_server_port(server));

	long long next_flush = cmd_now_ns() + (long long)flush_s * 1000000000LL;
	while (!cmd_stopping()) {
		cmd_wait_ms(a.profiler, 1000);
		ember_profiler_drain(a.profiler, ember_collector_add, a.collector);
		ember_server_release_idle(server, MEMORY_IDLE_NS);
		if (cmd_now_ns() >= next_flush) {
			flush(&a);
			next_flush += (long long)flush_s * 1000000000LL;
		}
	}
	fprintf(stderr, "ember: stopping; writing the last samples\n");
	ember_profiler_drain(a.profiler, ember_collector_add, a.collector);
	flush(&a);
	fprintf(stderr, "ember: stored %llu samples in %llu flushes\n",
		(unsigned long long)a.flushed_samples, (unsigned long long)a.flushes);
	rc = 0;
out:
	ember_server_stop(server);
	ember_profile_free(a.pending);
	ember_collector_free(a.collector);
	ember_symbolizer_free(a.sym);
	ember_profiler_close(a.profiler);
	ember_kernel_close(a.kernel);
	ember_store_close(a.store);
	ember_service_map_free(services);
	return rc;
}
