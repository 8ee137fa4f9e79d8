/*
 * cmd_run.c - `ember run`: the appliance.
 *
 *   ember run [--db PATH] [--listen ADDR:PORT] [--frequency HZ] [--flush SECS]
 *             [--services FILE] [--retention 14d] [--full-resolution 48h]
 *             [--max-db-size 2G] [--no-net] [--net-hooks FAMILY] [--net-top-peers N]
 *             [--no-spans] [--slow-threshold MS] [--payload-head BYTES]
 *             [--force-perfbuf] [--spans-hooks KIND] [--no-tls] [--tls-max-probes N]
 *
 * Profiles every process on the host, drains the kernel maps every second
 * into an in-memory profile (symbolizing while the processes still exist),
 * writes that profile into SQLite every --flush seconds, and serves the UI
 * and API over HTTP.  SIGINT/SIGTERM stop it after a last drain and flush.
 *
 * The pending profile stamps samples with the 10 s bucket they were taken
 * in, so samples kept through a failing flush (a full disk, a damaged
 * database: store_file.c) land in their own buckets once written.  It is
 * bounded: past --max-pending stacks (twice as many frames) new
 * samples are dropped and counted (dropped_samples in /api/stats) until a
 * flush succeeds.  A damaged database is reported once, retried before
 * each flush, and written again as soon as it is usable (removed: a new
 * one; replaced or restored: reopened).
 *
 * Between flushes the agent runs retention (store_retention.c) for at most
 * RETENTION_BUDGET_NS per second, one small transaction at a time.
 *
 * The TCP metrics (src/net/) are drained on the same beat and flushed with
 * the samples, under the same targets; if their hooks cannot load, the
 * profiler runs alone and /api/stats says why.  Unless --no-spans, L7
 * requests (HTTP/1.x, MySQL, PostgreSQL, Redis) are traced too (src/spans/)
 * and flushed with the samples, under the same targets.
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
#include <unistd.h>

#include "agent/collector.h"
#include "agent/kernel.h"
#include "agent/profiler.h"
#include "agent/target.h"
#include "agent/unwind_tables.h"
#include "cmd.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/safefile.h"
#include "core/strbuf.h"
#include "core/units.h"
#include "net/net_bpf.h"
#include "net/net_collector.h"
#include "server/metrics.h"
#include "offcpu/offcpu_recorder.h"
#include "server/server.h"
#include "server/spans_metrics.h"
#include "spans/spans.h"
#include "store/store.h"
#include "store/store_net.h"
#include "symbolizer/symbolizer.h"

#define DEFAULT_DB "/var/lib/ember/ember.db"
#define DEFAULT_LISTEN "127.0.0.1:7070"
#define MEMORY_IDLE_NS (30 * 1000000000LL) /* API idle time before freed query memory goes back */
#define PENDING_BUCKET_NS EMBER_STORE_DEFAULT_BUCKET_NS
/* Default bound of the samples kept while flushes fail: ~100 MB at worst. */
#define PENDING_MAX_STACKS 200000
#define FLUSH_WARN_EVERY_NS (60 * 1000000000LL) /* repeat a flush failure this often */
#define RETENTION_BUDGET_NS (50 * 1000000LL)     /* of retention work per loop (1 s) */
#define HOUR_NS (3600 * 1000000000LL)
#define CHURN_QUIET_NS (5 * 1000000000LL)  /* release when forgetting processes stopped this long, */
#define CHURN_BURST 256                     /* or after this many forgotten */
#define CHURN_BURST_NS (10 * 1000000000LL) /* but not more often than this, */
#define CHURN_STALE_NS (30 * 1000000000LL) /* or after this long, however few */

struct agent {
	struct ember_kernel *kernel;
	struct ember_profiler *profiler;
	struct ember_symbolizer *sym;
	struct ember_collector *collector;
	struct ember_store *store;
	const char *db;
	struct ember_profile *pending; /* samples since the last flush */
	struct ember_spans *spans;     /* NULL with --no-spans or when they cannot load */
	struct ember_offcpu_recorder *offcpu; /* NULL without --offcpu */
	int64_t pending_bucket;        /* the bucket the collector stamps samples with */
	size_t max_pending;            /* stacks; frames: twice as many */
	struct ember_net_bpf *net_bpf; /* NULL: TCP metrics off or unavailable */
	struct ember_net_collector *net;
	char net_error[256];           /* why there are no TCP metrics, "" when off by choice */
	uint64_t net_flushes, net_flush_errors;
	uint64_t unwind_budget; /* bytes */
	struct cmd_process_state procs; /* what is kept per process, dropped at exit */
	unsigned frequency;
	uint64_t flushes, flush_errors, flushed_samples;
	uint64_t dropped_samples;      /* over the pending bounds */
	uint64_t pending_samples, pending_stacks, pending_frames; /* copies for the HTTP thread */
	long long pending_full_ns;     /* when the log last said pending is full */
	long long last_retention_warn_ns;
	/* memory given back after process churn (release_after_churn) */
	uint64_t forgotten_seen, forgotten_released, memory_releases;
	int64_t forgotten_changed_ns, released_ns;
	long long started_ns, last_flush_ms, last_flush_warn_ns;
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
		"  --retention AGE      delete data older than AGE (default 14d; 0 = keep all);\n"
		"                       units s, m, h, d, w\n"
		"  --full-resolution AGE  keep 10 s buckets this long, hourly roll-ups after\n"
		"                       (default 48h)\n"
		"  --max-db-size SIZE   delete the oldest data to keep the database and its\n"
		"                       WAL under SIZE (default 2G; 0 = no bound); K, M, G, T\n"
		"  --max-pending N      stacks kept in memory while the database cannot be\n"
		"                       written (default 200000); beyond, samples are dropped\n"
		"  --no-net             no TCP metrics (bytes, connections, RTT, ... per peer)\n"
		"  --net-hooks FAMILY   send/receive hooks: auto (default), fentry, kprobe or\n"
		"                       tracepoint; a forced family that fails stops ember\n"
		"  --net-top-peers N    peers per service with their own label in /metrics\n"
		"                       (default 20; the rest are peer=\"other\")\n"
		"  --net-map-sockets N  sockets the kernel tracks at once (default 16384)\n"
		"  --net-map-counts N   connections counted per second (default from an 8 MiB\n"
		"                       budget over the CPUs, at most 8192); over either\n"
		"                       bound events are dropped and counted, never blocked\n"
		"  --no-spans           do not trace L7 requests (HTTP, MySQL, PostgreSQL, Redis)\n"
		"  --slow-threshold MS  keep requests at least this slow with their text (default 500)\n"
		"  --payload-head BYTES bytes of each socket payload read for spans (default 1024,\n"
		"                       at most 4096)\n"
		"  --spans-hooks KIND   auto (default), tracepoint (syscalls:*) or raw (sys_exit)\n"
		"  --no-tls             do not read TLS plaintext (uprobes on OpenSSL and Go crypto/tls)\n"
		"  --tls-max-probes N   TLS uprobes attached at once (default 4096; files past it are\n"
		"                       not traced, counted; probes go when no process maps the file)\n"
		"  --offcpu             also record off-CPU profiles: where threads block, in ns\n"
		"  --offcpu-min-block MS  waits shorter than this are not recorded (default 1)\n"
		"  --offcpu-max-walks N   off-CPU stack walks per CPU per second (default 1000)\n"
		"\nKernel options (--no-kprobes, --no-fentry and --force-perfbuf apply to net and\n"
		"spans too):\n" CMD_KERNEL_USAGE);
}

/* The pending profile and the database file, as JSON members. */
static void store_stats_json(struct strbuf *sb, const struct agent *a)
{
	struct ember_store_file_stats fs;

	ember_store_get_file_stats(a->store, &fs);
	sb_printf(sb,
		  ",\"pending\":{\"samples\":%llu,\"stacks\":%llu,\"frames\":%llu,"
		  "\"max_stacks\":%zu,\"max_frames\":%zu,\"dropped_samples\":%llu},"
		  "\"database\":{\"state\":\"%s\",\"damaged\":%llu,\"recovered\":%llu}",
		  (unsigned long long)a->pending_samples, (unsigned long long)a->pending_stacks,
		  (unsigned long long)a->pending_frames,
		  a->max_pending, 2 * a->max_pending, (unsigned long long)a->dropped_samples,
		  fs.is_damaged ? "damaged" : "ok", (unsigned long long)fs.damaged,
		  (unsigned long long)fs.recovered);

	struct ember_store_cache_stats cs;
	ember_store_cache_stats(a->store, &cs);
	sb_printf(sb, ",\"id_caches\":{\"entries\":%llu,\"bytes\":%llu,\"max_bytes\":%llu,\"clears\":%llu}",
		  (unsigned long long)cs.entries, (unsigned long long)cs.bytes,
		  (unsigned long long)cs.max_bytes, (unsigned long long)cs.clears);

	struct ember_retention_stats r;
	ember_store_retention_stats(a->store, &r);
	sb_printf(sb,
		  ",\"retention\":{\"passes\":%llu,\"size_passes\":%llu,\"bound_unreachable\":%llu,"
		  "\"rows_deleted\":%llu,\"stacks_deleted\":%llu,\"frames_deleted\":%llu,"
		  "\"targets_deleted\":%llu,\"reports_deleted\":%llu,\"collections\":%llu,"
		  "\"pages_vacuumed\":%llu,\"batches\":%llu,\"max_batch_rows\":%llu,"
		  "\"max_step_ms\":%.2f,\"full_res_from_ms\":%lld,\"rollup_from_ms\":%lld,"
		  "\"db_bytes\":%llu,\"wal_bytes\":%llu,\"free_bytes\":%llu,\"max_bytes\":%llu,"
		  "\"incremental_vacuum\":%s}",
		  (unsigned long long)r.passes, (unsigned long long)r.size_passes,
		  (unsigned long long)r.bound_unreachable, (unsigned long long)r.rows_deleted,
		  (unsigned long long)r.stacks_deleted, (unsigned long long)r.frames_deleted,
		  (unsigned long long)r.targets_deleted, (unsigned long long)r.reports_deleted,
		  (unsigned long long)r.gc_runs, (unsigned long long)r.pages_vacuumed,
		  (unsigned long long)r.batches, (unsigned long long)r.max_batch_rows,
		  r.max_step_ns / 1e6, (long long)(r.full_res_from_ns / 1000000),
		  (long long)(r.rollup_from_ns / 1000000), (unsigned long long)r.db_bytes,
		  (unsigned long long)r.wal_bytes, (unsigned long long)r.free_bytes,
		  (unsigned long long)r.max_bytes, r.incremental_vacuum ? "true" : "false");
}

/* ",\"net\":{...}": hooks chosen, kernel counters, collector counters. */
static void net_stats_json(struct strbuf *sb, struct agent *a)
{
	struct ember_net_hook_report hr;
	struct ember_net_collector_stats cs;
	uint64_t st[EMBER_NET_STAT__COUNT], series, folded;

	sb_puts(sb, ",\"net\":");
	if (!a->net) {
		sb_puts(sb, "{\"enabled\":false,\"error\":");
		sb_json_str(sb, a->net_error[0] ? a->net_error : NULL);
		sb_putc(sb, '}');
		return;
	}
	ember_net_bpf_report(a->net_bpf, &hr);
	ember_net_bpf_stats(a->net_bpf, st);
	ember_net_collector_stats(a->net, &cs);
	ember_net_prom_counts(ember_net_collector_prom(a->net), &series, &folded);
	sb_printf(sb, "{\"enabled\":true,\"hooks\":{\"send_recv\":\"%s\",\"events\":\"%s\","
		      "\"drops\":\"%s\",\"fallbacks\":%u,\"fallback_reasons\":",
		  ember_net_io_names[hr.io], hr.events, hr.drops, hr.fallbacks);
	sb_json_str(sb, hr.reasons);
	sb_puts(sb, "},\"bpf\":{");
	for (int i = 0; i < EMBER_NET_STAT__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%llu", i ? "," : "", ember_net_stat_names[i],
			  (unsigned long long)st[i]);
	uint64_t io_cnt, io_ns;
	ember_net_bpf_io_prog_stats(a->net_bpf, &io_cnt, &io_ns);
	sb_printf(sb, ",\"io_prog_run_cnt\":%llu,\"io_prog_run_time_ns\":%llu",
		  (unsigned long long)io_cnt, (unsigned long long)io_ns);
	sb_printf(sb,
		  "},\"map_bytes\":%llu,\"socks\":%llu,\"socks_max\":%llu,\"connections\":%llu,"
		  "\"connections_max\":%llu,\"connections_full\":%llu,"
		  "\"counts_last\":%llu,\"counts_max\":%llu,\"drains\":%llu,\"rows\":%llu,"
		  "\"drop_rows\":%llu,\"listeners\":%llu,\"local_peer_rows\":%llu,"
		  "\"unattributed\":%llu,\"batch_overflow\":%llu,\"forgotten_processes\":%llu,"
		  "\"drain_ms\":%.3f,\"prometheus_series\":%llu,\"prometheus_folded\":%llu,"
		  "\"flushes\":%llu,\"flush_errors\":%llu}",
		  (unsigned long long)ember_net_bpf_map_bytes(a->net_bpf),
		  (unsigned long long)cs.socks_last, (unsigned long long)cs.sockets_max,
		  (unsigned long long)cs.sockets, (unsigned long long)cs.conns_max,
		  (unsigned long long)cs.conns_full, (unsigned long long)cs.counts_last, (unsigned long long)cs.counts_max,
		  (unsigned long long)cs.drains, (unsigned long long)cs.rows,
		  (unsigned long long)cs.drops, (unsigned long long)cs.listeners,
		  (unsigned long long)cs.local_peers, (unsigned long long)cs.unattributed,
		  (unsigned long long)cs.batch_overflow, (unsigned long long)cs.forgotten,
		  cs.drain_ns / 1e6, (unsigned long long)series, (unsigned long long)folded,
		  (unsigned long long)a->net_flushes, (unsigned long long)a->net_flush_errors);
}

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The agent's part of GET /metrics (called from an HTTP thread). */
static void metrics_text(struct strbuf *sb, void *arg)
{
	/* unwind outcomes worth an alert, from the profiler's counters */
	static const enum ember_stat outcomes[] = {
		EMBER_STAT_COMPLETE,     EMBER_STAT_USER_TRUNCATED, EMBER_STAT_USER_READ_FAULT,
		EMBER_STAT_NO_USER_REGS, EMBER_STAT_KSTACK_ERROR,   EMBER_STAT_MAP_FULL,
		EMBER_STAT_NO_PROC,      EMBER_STAT_NO_MAPPING,     EMBER_STAT_NO_ROW,
		EMBER_STAT_UNSUPPORTED,  EMBER_STAT_NO_SHARD,       EMBER_STAT_FP_FRAMES,
		EMBER_STAT_CFI_FRAMES,
	};
	struct agent *a = arg;
	struct ember_metrics_pair unwind[sizeof(outcomes) / sizeof(outcomes[0])];
	struct ember_metrics_pair net_events[EMBER_NET_STAT__COUNT];
	struct ember_metrics_map_fill maps[3];
	uint64_t st[EMBER_STAT__COUNT], nst[EMBER_NET_STAT__COUNT];
	struct ember_unwind_tables_stats ut;
	struct rusage ru;
	size_t n_maps = 0;

	ember_profiler_stats(a->profiler, st);
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		unwind[i] = (struct ember_metrics_pair){ember_stat_names[outcomes[i]], st[outcomes[i]]};
	ember_unwind_tables_stats(ember_profiler_tables(a->profiler), &ut);
	maps[n_maps++] = (struct ember_metrics_map_fill){"unwind_shard_bytes", ut.shard_bytes,
							 a->unwind_budget};
	if (a->net) {
		struct ember_net_collector_stats cs;
		ember_net_collector_stats(a->net, &cs);
		maps[n_maps++] = (struct ember_metrics_map_fill){"net_socks", cs.socks_last,
								 cs.sockets_max};
		maps[n_maps++] = (struct ember_metrics_map_fill){"net_counts", cs.counts_last,
								 cs.counts_max};
		ember_net_bpf_stats(a->net_bpf, nst);
		for (int i = 0; i < EMBER_NET_STAT__COUNT; i++)
			net_events[i] = (struct ember_metrics_pair){ember_net_stat_names[i], nst[i]};
	}
	getrusage(RUSAGE_SELF, &ru);
	struct ember_metrics_agent m = {
		.samples = st[EMBER_STAT_SAMPLES],
		.unwind = unwind,
		.n_unwind = sizeof(outcomes) / sizeof(outcomes[0]),
		.maps = maps,
		.n_maps = n_maps,
		.cpu_user_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		.cpu_system_s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
		.rss_bytes = rss_bytes(),
		.flushes = a->flushes,
		.flush_errors = a->flush_errors,
		.uptime_s = (cmd_now_ns() - a->started_ns) / 1e9,
		.net_events = net_events,
		.n_net_events = a->net ? EMBER_NET_STAT__COUNT : 0,
	};
	ember_metrics_agent(sb, &m);
	if (a->net)
		ember_metrics_net(sb, ember_net_collector_prom(a->net));
	ember_spans_metrics_write(sb, a->spans);
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
		  "\"budget_exhausted\":%llu,\"reclaimed\":%llu,\"build_id_collisions\":%llu,"
		  "\"cache_dir_reads\":%llu,\"go_runtimes\":%llu,\"go_runtime_missing\":%llu,"
		  "\"idle_files\":%llu,\"idle_expired\":%llu,\"file_map_full\":%llu",
		  (unsigned long long)ut.processes, (unsigned long long)ut.files,
		  (unsigned long long)ut.rows, (unsigned long long)ut.rules,
		  (unsigned long long)ut.table_bytes, (unsigned long long)ut.shards, (unsigned long long)ut.shard_bytes,
		  (unsigned long long)ut.compiles, ut.compile_ns / 1e6,
		  (unsigned long long)ut.cache_hits, (unsigned long long)ut.failures,
		  (unsigned long long)ut.budget_exhausted, (unsigned long long)ut.reclaimed,
		  (unsigned long long)ut.build_id_collisions,
		  (unsigned long long)ut.cache_dir_reads, (unsigned long long)ut.go_runtimes,
		  (unsigned long long)ut.go_runtime_missing, (unsigned long long)ut.idle_files,
		  (unsigned long long)ut.idle_expired, (unsigned long long)ut.file_map_full);
	sb_printf(sb,
		  "},\"collector\":{\"samples\":%llu,\"stacks\":%llu,\"truncated\":%llu,"
		  "\"processes\":%llu,\"garbage_callers\":%llu},\"symbolizer\":{\"lookups\":%llu,\"cache_hits\":%llu,"
		  "\"elf_files\":%llu,\"elf_errors\":%llu,\"processes\":%llu,\"build_id_collisions\":%llu,"
		  "\"symcache_lookups\":%llu,\"symcache_hits\":%llu,\"symcache_hit_rate\":%.5f,"
		  "\"symcache_entries\":%llu,\"symcache_bytes\":%llu,\"symcache_max_bytes\":%llu},"
		  "\"flushes\":%llu,\"flush_errors\":%llu,\"flushed_samples\":%llu,"
		  "\"cpu_user_s\":%.3f,\"cpu_system_s\":%.3f,\"max_rss_kb\":%ld,"
		  "\"memory_releases\":%llu,\"lifetime\":",
		  (unsigned long long)cs.samples, (unsigned long long)cs.stacks,
		  (unsigned long long)cs.truncated, (unsigned long long)cs.processes,
		  (unsigned long long)cs.garbage_callers,
		  (unsigned long long)ss.lookups, (unsigned long long)ss.cache_hits,
		  (unsigned long long)ss.elf_files, (unsigned long long)ss.elf_errors,
		  (unsigned long long)ss.processes, (unsigned long long)ss.build_id_collisions,
		  (unsigned long long)ss.symcache_lookups,
		  (unsigned long long)ss.symcache_hits,
		  ss.symcache_lookups ? (double)ss.symcache_hits / (double)ss.symcache_lookups : 0.0,
		  (unsigned long long)ss.symcache_entries, (unsigned long long)ss.symcache_bytes,
		  (unsigned long long)ss.symcache_max_bytes, (unsigned long long)a->flushes,
		  (unsigned long long)a->flush_errors, (unsigned long long)a->flushed_samples,
		  ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		  ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss,
		  (unsigned long long)a->memory_releases);
	cmd_lifetime_json(sb, a->profiler, a->sym, a->collector);
	store_stats_json(sb, a);
	net_stats_json(sb, a);
	/* the kernel: its features, BTF source, the hooks chosen, fallbacks */
	sb_puts(sb, ",\"kernel\":");
	ember_kernel_json(a->kernel, sb);
	if (a->spans) {
		sb_puts(sb, ",\"spans\":");
		ember_spans_stats_json(a->spans, sb);
	}
	if (a->offcpu) {
		sb_putc(sb, ',');
		ember_offcpu_recorder_stats_json(a->offcpu, sb);
	}
	sb_putc(sb, '}');
}

/* The collector's endpoint namer: CPU samples of a thread serving a request. */
static const char *endpoint_name(uint32_t id, void *spans)
{
	return ember_spans_endpoint_name(spans, id);
}

/*
 * Give memory back after process churn.  ember_memory_keep_freed() makes
 * glibc keep freed memory for the next query, so what thousands of exited
 * processes held (maps, names, ELF files) would stay in the RSS for good.
 * When processes (or idle ELF files) were forgotten since the last release,
 * the heap is trimmed once forgetting has stopped for CHURN_QUIET_NS, every
 * CHURN_BURST_NS during a burst of CHURN_BURST or more, and at the latest
 * CHURN_STALE_NS after the last release (a host where something always exits).
 */
static void release_after_churn(struct agent *a)
{
	struct ember_profiler_lifetime lt;
	struct ember_symbolizer_stats ss;
	int64_t now = ember_monotonic_ns();

	ember_profiler_lifetime_stats(a->profiler, &lt);
	ember_symbolizer_stats(a->sym, &ss);
	uint64_t forgotten = lt.tracker.forgotten + ss.elf_dropped;
	if (forgotten != a->forgotten_seen) {
		a->forgotten_seen = forgotten;
		a->forgotten_changed_ns = now;
	}
	uint64_t since = forgotten - a->forgotten_released;
	int64_t age = now - a->released_ns;
	if (since == 0)
		return;
	if (now - a->forgotten_changed_ns >= CHURN_QUIET_NS ||
	    (since >= CHURN_BURST && age >= CHURN_BURST_NS) || age >= CHURN_STALE_NS) {
		ember_memory_release();
		a->memory_releases++;
		a->released_ns = now;
		a->forgotten_released = forgotten;
	}
}

static int start_pending(struct agent *a)
{
	a->pending = ember_profile_new();
	if (!a->pending)
		return -ENOMEM;
	a->pending->period_ns = 1000000000ULL / a->frequency;
	a->pending->start_ns = cmd_now_ns();
	a->pending_bucket = 0;
	return 0;
}

/* What the stats page shows of the pending profile (the HTTP thread never touches it). */
static void note_pending(struct agent *a)
{
	a->pending_samples = a->pending ? a->pending->total : 0;
	a->pending_stacks = a->pending ? a->pending->n_stacks : 0;
	a->pending_frames = a->pending ? a->pending->n_frames : 0;
}

/*
 * Drain the kernel maps into the pending profile, stamped with the current
 * bucket; over its bounds, into a scratch profile whose samples are only
 * counted as dropped.
 */
static void drain(struct agent *a)
{
	int64_t bucket = cmd_now_ns() / PENDING_BUCKET_NS * PENDING_BUCKET_NS;
	struct ember_profile *into, *scratch = NULL;

	if (!a->pending && start_pending(a)) {
		ember_err("out of memory starting a new profile");
		return; /* the kernel maps keep the samples, or count what they drop */
	}
	into = a->pending;
	if (a->pending->n_stacks >= a->max_pending || a->pending->n_frames >= 2 * a->max_pending) {
		long long now = cmd_now_ns();
		scratch = ember_profile_new();
		if (!a->pending_full_ns || now - a->pending_full_ns >= FLUSH_WARN_EVERY_NS) {
			ember_err("%zu stacks are waiting to be written to %s; new samples are "
				  "dropped until it can be written again (dropped_samples in /api/stats)",
				  a->pending->n_stacks, a->db);
			a->pending_full_ns = now;
		}
		into = scratch;
		if (!scratch)
			return;
	}
	if (into != a->pending || bucket != a->pending_bucket) {
		ember_collector_set_profile(a->collector, into, bucket);
		if (into == a->pending)
			a->pending_bucket = bucket;
		else
			a->pending_bucket = 0; /* point the collector back at pending next time */
	}
	if (a->offcpu) /* first: the sampler's drain forgets processes that exited */
		ember_offcpu_recorder_drain(a->offcpu, bucket);
	ember_profiler_drain(a->profiler, ember_collector_add, a->collector);
	if (scratch) {
		a->dropped_samples += scratch->total;
		ember_collector_set_profile(a->collector, a->pending, bucket);
		a->pending_bucket = bucket;
		ember_profile_free(scratch);
	}
	note_pending(a);
}

/* A flush failure, in the log once a minute at most while it lasts. */
static void flush_failed(struct agent *a, const char *err, bool damaged)
{
	long long now = cmd_now_ns();

	a->flush_errors++;
	if (a->last_flush_warn_ns && now - a->last_flush_warn_ns < FLUSH_WARN_EVERY_NS)
		return;
	a->last_flush_warn_ns = now;
	if (damaged)
		ember_err("%s; samples are kept in memory meanwhile (%llu now, at most %zu stacks)",
			  err, (unsigned long long)a->pending->total, a->max_pending);
	else
		ember_warn("flush failed (%llu samples kept for the next try): %s",
			   (unsigned long long)a->pending->total, err);
}

/* A damaged database: go on once it is usable again.  Returns true when it is. */
static bool store_usable(struct agent *a)
{
	char err[EMBER_STORE_ERRLEN];
	int rc;

	if (!ember_store_damaged(a->store))
		return true;
	rc = ember_store_recover(a->store, err, sizeof(err));
	if (rc == 0) {
		ember_warn("%s; writing to it again", err);
		a->last_flush_warn_ns = 0;
		return true;
	}
	if (rc == -EAGAIN) {
		flush_failed(a, err, true); /* unchanged: a reminder now and then */
	} else {
		a->last_flush_warn_ns = 0; /* it changed: say what is wrong now */
		flush_failed(a, err, true);
	}
	return false;
}

/* Retention work, bounded per loop; its errors in the log once a minute at most. */
static void retention(struct agent *a)
{
	char err[EMBER_STORE_ERRLEN];
	int64_t end = ember_monotonic_ns() + RETENTION_BUDGET_NS;
	int rc;

	while ((rc = ember_store_retention_step(a->store, cmd_now_ns(), err, sizeof(err))) == 1 &&
	       ember_monotonic_ns() < end)
		;
	long long now = cmd_now_ns();
	if (rc < 0 && (!a->last_retention_warn_ns ||
		       now - a->last_retention_warn_ns >= FLUSH_WARN_EVERY_NS)) {
		a->last_retention_warn_ns = now;
		ember_warn("retention: %s", err);
	}
}

/* Store the TCP rows gathered since the last flush (kept for the next try on failure). */
static void flush_net(struct agent *a)
{
	char err[EMBER_STORE_ERRLEN];

	if (!a->net || ember_net_batch_empty(ember_net_collector_pending(a->net)))
		return;
	if (ember_store_net_ingest(a->store, ember_net_collector_pending(a->net), err, sizeof(err))) {
		a->net_flush_errors++;
		ember_warn("net flush failed (rows kept for the next try): %s", err);
		return;
	}
	a->net_flushes++;
	ember_net_collector_flushed(a->net);
}

/* The TCP collector and the spans name processes like the profiler's collector does. */
/*
 * The profiler's process events: the symbolizer snapshots the process, and
 * at an exec the TLS attacher looks at it at once (a new Go program is
 * traced from its first requests, not from the next /proc scan).  Refresh
 * requests (a pc in no known mapping, at most once a second per process)
 * are not passed on: a JIT would have its maps read every second.
 */
static void process_changed(uint32_t pid, bool exec, void *arg)
{
	struct agent *a = arg;

	cmd_snapshot_process(pid, exec, a->sym);
	if (exec)
		ember_spans_process_changed(a->spans, pid);
}

static bool name_process(uint32_t pid, const char *comm, struct ember_target *t, void *arg)
{
	struct agent *a = arg;

	return ember_collector_describe(a->collector, pid, comm, t);
}

/* A process the TCP collector named has exited: the symbolizer may drop it. */
static void forget_net_process(uint32_t pid, void *arg)
{
	struct agent *a = arg;

	cmd_forget_process(pid, &a->procs);
}

/*
 * Load the TCP metrics.  Failing is not fatal unless the hooks were forced:
 * the profiler runs alone and /api/stats carries the reason.
 */
static int open_net(struct agent *a, int io, unsigned long top_peers, unsigned long max_sockets,
		    unsigned long max_counts)
{
	struct ember_net_bpf_opts o = {.kernel = a->kernel,
				       .io = io,
				       .max_sockets = (uint32_t)max_sockets,
				       .max_counts = (uint32_t)max_counts};
	struct ember_net_collector_opts co = {.name_fn = name_process,
					      .forget_fn = forget_net_process,
					      .name_arg = a,
					      .top_peers = (unsigned)top_peers};
	char err[256];

	if (ember_net_bpf_open(&o, &a->net_bpf, err, sizeof(err))) {
		snprintf(a->net_error, sizeof(a->net_error), "%s", err);
		if (io >= 0) {
			fprintf(stderr, "ember run: %s\n", err);
			return -1;
		}
		fprintf(stderr, "ember: no TCP metrics: %s\n", err);
		return 0;
	}
	a->net = ember_net_collector_new(a->net_bpf, &co);
	if (!a->net) {
		fprintf(stderr, "ember run: out of memory\n");
		return -1;
	}
	return 0;
}

static void drain_net(struct agent *a)
{
	int rc;

	if (a->net && (rc = ember_net_collector_drain(a->net, cmd_now_ns())) != 0)
		ember_warn("net: cannot drain the kernel counters: %s", strerror(-rc));
}

static void flush(struct agent *a)
{
	char err[EMBER_STORE_ERRLEN];
	long long now = cmd_now_ns();

	if (!store_usable(a))
		return; /* keep pending */
	if (a->spans && ember_spans_flush(a->spans, a->store, err, sizeof(err)))
		ember_warn("span flush failed (those spans are lost): %s", err);
	if (a->offcpu && ember_offcpu_recorder_flush(a->offcpu, a->store, now, err, sizeof(err)))
		ember_warn("off-CPU flush failed (kept for the next try): %s", err);
	if (a->pending->total > 0) {
		a->pending->duration_ns = now - a->pending->start_ns;
		if (ember_store_ingest(a->store, a->pending, now, err, sizeof(err))) {
			bool damaged = ember_store_damaged(a->store);
			if (damaged)
				a->last_flush_warn_ns = 0; /* new damage: always said */
			flush_failed(a, err, damaged);
			return; /* keep pending; retry next time */
		}
		a->flushes++;
		a->flushed_samples += a->pending->total;
		ember_debug("flushed %llu samples in %zu stacks",
			    (unsigned long long)a->pending->total, a->pending->n_stacks);
	}
	if (a->last_flush_warn_ns) {
		ember_warn("flushing to %s works again", a->db);
		a->last_flush_warn_ns = 0;
	}
	ember_profile_free(a->pending);
	a->pending = NULL;
	if (start_pending(a))
		ember_err("out of memory starting a new profile");
	else
		ember_collector_set_profile(a->collector, a->pending, a->pending_bucket);
	note_pending(a);
	flush_net(a);
}

/* Long options without a short form. */
enum {
	OPT_NO_NET = 256,
	OPT_NET_HOOKS,
	OPT_NET_TOP_PEERS,
	OPT_NET_MAP_SOCKETS,
	OPT_NET_MAP_COUNTS,
	OPT_NO_SPANS,
	OPT_SLOW_THRESHOLD,
	OPT_PAYLOAD_HEAD,
	OPT_SPANS_HOOKS,
	OPT_NO_TLS,
	OPT_TLS_MAX_PROBES,
	OPT_OFFCPU,
	OPT_OFFCPU_MIN_BLOCK,
	OPT_OFFCPU_MAX_WALKS,
};

/*
 * Can the HTTP address be bound?  Tried (and let go) before the database
 * or its directory is created, so that a port in use fails at once and
 * leaves nothing behind.  Returns 0 or -errno.
 */
static int check_listen(const struct sockaddr_storage *addr, unsigned addrlen)
{
	int one = 1, rc = 0;
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* as the server binds: SO_REUSEADDR, so TIME_WAIT leftovers do not count */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, addrlen))
		rc = -errno;
	close(fd);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, 0, 'D'},        {"listen", required_argument, 0, 'l'},
		{"frequency", required_argument, 0, 'F'}, {"flush", required_argument, 0, 'f'},
		{"frame-pointers", no_argument, 0, 'P'},  {"unwind-budget", required_argument, 0, 'B'},
		{"unwind-cache", required_argument, 0, 'C'}, {"services", required_argument, 0, 'S'},
		{"retention", required_argument, 0, 'R'}, {"full-resolution", required_argument, 0, 'U'},
		{"max-db-size", required_argument, 0, 'M'}, {"max-pending", required_argument, 0, 'N'},
		{"no-net", no_argument, 0, OPT_NO_NET},  {"net-hooks", required_argument, 0, OPT_NET_HOOKS},
		{"net-top-peers", required_argument, 0, OPT_NET_TOP_PEERS},
		{"net-map-sockets", required_argument, 0, OPT_NET_MAP_SOCKETS},
		{"net-map-counts", required_argument, 0, OPT_NET_MAP_COUNTS},
		{"no-spans", no_argument, 0, OPT_NO_SPANS},
		{"slow-threshold", required_argument, 0, OPT_SLOW_THRESHOLD},
		{"payload-head", required_argument, 0, OPT_PAYLOAD_HEAD},
		{"spans-hooks", required_argument, 0, OPT_SPANS_HOOKS},
		{"no-tls", no_argument, 0, OPT_NO_TLS},
		{"tls-max-probes", required_argument, 0, OPT_TLS_MAX_PROBES},
		{"offcpu", no_argument, 0, OPT_OFFCPU},
		{"offcpu-min-block", required_argument, 0, OPT_OFFCPU_MIN_BLOCK},
		{"offcpu-max-walks", required_argument, 0, OPT_OFFCPU_MAX_WALKS},
		{"help", no_argument, 0, 'h'},            CMD_KERNEL_LONG_OPTIONS,
		{0, 0, 0, 0},
	};
	bool spans_on = true;
	unsigned long slow_ms = EMBER_SPANS_DEFAULT_SLOW_NS / 1000000, head = EMBER_SPANS_DEFAULT_HEAD;
	unsigned long tls_max_probes = 0;
	struct ember_spans_opts sopts = {0};
	const char *db = DEFAULT_DB, *listen = DEFAULT_LISTEN;
	unsigned long frequency = 19, flush_s = 5, budget_mb = 64, max_pending = PENDING_MAX_STACKS;
	const char *cache = CMD_DEFAULT_UNWIND_CACHE, *services_file = NULL;
	struct ember_service_map *services = NULL;
	bool fp_only = false, no_net = false, offcpu = false;
	unsigned long offcpu_min_block_ms = 1, offcpu_max_walks = EMBER_OFFCPU_MAX_WALKS;
	int net_io = -1;
	unsigned long top_peers = 20, net_sockets = 0, net_counts = 0;
	struct agent a = {0};
	struct ember_retention_options ropts = {.max_bytes = EMBER_MAX_DB_BYTES};
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
		case 'R':
			if (strcmp(optarg, "0") == 0)
				ropts.retention_ns = -1; /* forever */
			else if (cmd_parse_age("ember run", "--retention", optarg, HOUR_NS,
					       &ropts.retention_ns))
				return 2;
			break;
		case 'U':
			if (cmd_parse_age("ember run", "--full-resolution", optarg, HOUR_NS,
					  &ropts.full_res_ns))
				return 2;
			break;
		case 'N':
			if (cmd_parse_uint("--max-pending", optarg, 1, 10000000, &max_pending))
				return 2;
			break;
		case 'M':
			if (ember_parse_size(optarg, &ropts.max_bytes) ||
			    (ropts.max_bytes && ropts.max_bytes < (16ULL << 20))) {
				fprintf(stderr, "ember run: --max-db-size: '%s' is not a size of 16M or "
						"more, like 2G (0 = no bound)\n", optarg);
				return 2;
			}
			break;
		case OPT_NO_NET: no_net = true; break;
		case OPT_NET_HOOKS:
			net_io = ember_net_io_parse(optarg);
			if (net_io == -2) {
				fprintf(stderr, "ember run: --net-hooks: '%s' is not auto, fentry, "
						"kprobe or tracepoint\n", optarg);
				return 2;
			}
			break;
		case OPT_NET_TOP_PEERS:
			if (cmd_parse_uint("--net-top-peers", optarg, 1, 1000, &top_peers))
				return 2;
			break;
		case OPT_NET_MAP_SOCKETS:
			if (cmd_parse_uint("--net-map-sockets", optarg, 64, 1 << 20, &net_sockets))
				return 2;
			break;
		case OPT_NET_MAP_COUNTS:
			if (cmd_parse_uint("--net-map-counts", optarg, 64, 1 << 20, &net_counts))
				return 2;
			break;
		case OPT_NO_SPANS: spans_on = false; break;
		case OPT_SLOW_THRESHOLD:
			if (cmd_parse_uint("--slow-threshold", optarg, 1, 3600 * 1000, &slow_ms))
				return 2;
			break;
		case OPT_PAYLOAD_HEAD:
			if (cmd_parse_uint("--payload-head", optarg, 16, EMBER_SPANS_MAX_HEAD, &head))
				return 2;
			break;
		case OPT_NO_TLS: sopts.no_tls = true; break;
		case OPT_TLS_MAX_PROBES:
			if (cmd_parse_uint("--tls-max-probes", optarg, 1, 1 << 20, &tls_max_probes))
				return 2;
			sopts.tls_max_probes = (unsigned)tls_max_probes;
			break;
		case OPT_SPANS_HOOKS:
			if (strcmp(optarg, "auto") == 0) {
				sopts.hooks = EMBER_SPAN_HOOKS_AUTO;
			} else if (strcmp(optarg, "tracepoint") == 0) {
				sopts.hooks = EMBER_SPAN_HOOKS_TRACEPOINT;
			} else if (strcmp(optarg, "raw") == 0) {
				sopts.hooks = EMBER_SPAN_HOOKS_RAW;
			} else {
				fprintf(stderr, "ember run: --spans-hooks: expected auto, tracepoint or "
						"raw, not '%s'\n", optarg);
				return 2;
			}
			break;
		case OPT_OFFCPU: offcpu = true; break;
		case OPT_OFFCPU_MIN_BLOCK:
			if (cmd_parse_uint("--offcpu-min-block", optarg, 0, 3600 * 1000,
					   &offcpu_min_block_ms))
				return 2;
			break;
		case OPT_OFFCPU_MAX_WALKS:
			if (cmd_parse_uint("--offcpu-max-walks", optarg, 1, 1000000, &offcpu_max_walks))
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
		fprintf(stderr, "ember run: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	a.frequency = (unsigned)frequency;
	a.unwind_budget = (uint64_t)budget_mb << 20;
	a.started_ns = cmd_now_ns();
	a.db = db;
	a.max_pending = max_pending;
	a.released_ns = ember_monotonic_ns();

	struct sockaddr_storage addr;
	unsigned addrlen;
	if (ember_server_parse_listen(listen, &addr, &addrlen, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		return 2;
	}
	int lrc = check_listen(&addr, addrlen);
	if (lrc) {
		fprintf(stderr, "ember run: cannot listen on %s: %s\n", listen, strerror(-lrc));
		return 1;
	}

	if (services_file && ember_service_map_load(services_file, &services, err, sizeof(err))) {
		fprintf(stderr, "ember run: --services %s\n", err);
		return 2;
	}

	/* data directories are not world-readable (core/safefile.h) */
	int mk = ember_mkdirs_parent(db, EMBER_DIR_MODE);
	if (mk) {
		fprintf(stderr, "ember run: cannot create the directory of %s: %s\n", db, strerror(-mk));
		return 1;
	}
	cmd_make_cache_dir(cache);
	if (ember_store_open(db, &a.store, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		return 1;
	}
	if (ember_store_retention_setup(a.store, &ropts, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		ember_store_close(a.store);
		return 1;
	}
	if (err[0])
		ember_warn("%s", err);

	a.kernel = cmd_open_kernel("run", &kopts);
	if (!a.kernel)
		goto out;
	/* spans first: the profiler shares their per-thread endpoint maps */
	if (spans_on) {
		sopts.kernel = a.kernel;
		sopts.payload_head = (unsigned)head;
		sopts.slow_ns = (uint64_t)slow_ms * 1000000ULL;
		sopts.name = name_process;
		sopts.name_arg = &a;
		if (ember_spans_start(&sopts, &a.spans, err, sizeof(err))) {
			/* the profiler still runs: spans are an addition */
			fprintf(stderr, "ember run: L7 spans off: %s\n", err);
			a.spans = NULL;
		}
	}
	a.sym = ember_symbolizer_new();
	struct ember_profiler_opts popts = {.kernel = a.kernel,
					    .frequency = a.frequency,
					    .exit_fn = cmd_forget_process,
					    .exit_arg = &a.procs,
					    .refresh_fn = process_changed,
					    .refresh_arg = &a,
					    .unwind_budget = budget_mb << 20,
					    .unwind_cache = cache,
					    .frame_pointers_only = fp_only};
	if (a.spans)
		ember_spans_thread_maps(a.spans, &popts.span_threads_fd, &popts.span_req_endpoint_fd);
	if (ember_profiler_open(&popts, &a.profiler, err, sizeof(err))) {
		fprintf(stderr, "ember run: %s\n", err);
		goto out;
	}
	if (a.sym)
		ember_symbolizer_set_kernel_vmas(a.sym, ember_profiler_kernel_vmas, a.profiler);
	a.collector = a.sym ? ember_collector_new(a.sym) : NULL;
	if (!a.collector || start_pending(&a)) {
		fprintf(stderr, "ember run: out of memory\n");
		goto out;
	}
	ember_collector_set_service_map(a.collector, services);
	a.procs = (struct cmd_process_state){.sym = a.sym, .collector = a.collector};
	ember_collector_set_service_map(a.collector, services);
	if (a.spans)
		ember_collector_set_endpoint_namer(a.collector, endpoint_name, a.spans);
	if (offcpu) {
		struct ember_offcpu_opts oo = {
			.min_block_ns = offcpu_min_block_ms ? offcpu_min_block_ms * 1000000ULL : 1,
			.max_walks_per_sec = (unsigned)offcpu_max_walks};
		if (ember_offcpu_recorder_open(a.profiler, a.sym, &oo, a.max_pending, &a.offcpu, err,
					       sizeof(err))) {
			fprintf(stderr, "ember run: %s\n", err);
			goto out;
		}
		struct ember_collector *oc = ember_offcpu_recorder_collector(a.offcpu);
		ember_collector_set_service_map(oc, services);
		a.procs.offcpu_collector = oc;
		fprintf(stderr, "ember: recording off-CPU profiles (waits >= %lu ms)\n",
			offcpu_min_block_ms);
	}
	if (!no_net && open_net(&a, net_io, top_peers, net_sockets, net_counts))
		goto out;
	cmd_describe_kernel(a.kernel); /* every family is loaded */

	ember_memory_keep_freed(); /* queries reuse memory (core/memory.h) */
	struct ember_server_config scfg = {
		.listen = listen, .db_path = db, .stats_json = stats_json, .stats_arg = &a,
		.metrics_text = metrics_text, .metrics_arg = &a};
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
	if (a.spans)
		fprintf(stderr,
			"ember: tracing L7 requests through %s hooks and %s (payload head %lu B, "
			"slow threshold %lu ms, TLS plaintext %s)\n",
			ember_spans_hooks(a.spans), ember_spans_transport(a.spans), head, slow_ms,
			ember_spans_tls(a.spans) ? "on" : "off");
	if (a.net) {
		struct ember_net_hook_report hr;
		ember_net_bpf_report(a.net_bpf, &hr);
		fprintf(stderr, "ember: TCP metrics: send/receive by %s, events by %s, drops by %s"
				"%s%s\n",
			ember_net_io_names[hr.io], hr.events, hr.drops,
			hr.fallbacks ? "; fallbacks: " : "", hr.reasons);
	}

	long long next_flush = cmd_now_ns() + (long long)flush_s * 1000000000LL;
	while (!cmd_stopping()) {
		cmd_wait_ms(a.profiler, 1000);
		ember_spans_sync(a.spans, 100); /* requests in the samples are parsed */
		drain(&a);
		drain_net(&a);
		ember_symbolizer_maintain(a.sym);
		ember_server_release_idle(server, MEMORY_IDLE_NS);
		release_after_churn(&a);
		if (cmd_now_ns() >= next_flush) {
			flush(&a);
			next_flush += (long long)flush_s * 1000000000LL;
		}
		retention(&a);
	}
	fprintf(stderr, "ember: stopping; writing the last samples\n");
	ember_profiler_stop(a.profiler); /* no sample after the last drain's flip */
	ember_spans_drain(a.spans);
	drain(&a);
	drain_net(&a);
	flush(&a);
	fprintf(stderr, "ember: stored %llu samples in %llu flushes\n",
		(unsigned long long)a.flushed_samples, (unsigned long long)a.flushes);
	rc = 0;
out:
	ember_server_stop(server);
	ember_spans_stop(a.spans);
	ember_net_collector_free(a.net);
	ember_net_bpf_close(a.net_bpf);
	ember_profile_free(a.pending);
	ember_offcpu_recorder_free(a.offcpu);
	ember_collector_free(a.collector);
	ember_symbolizer_free(a.sym);
	ember_profiler_close(a.profiler);
	ember_kernel_close(a.kernel);
	ember_store_close(a.store);
	ember_service_map_free(services);
	return rc;
}
