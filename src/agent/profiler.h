/*
 * profiler.h - load the sampling BPF program, attach it to every CPU, drain its maps.
 *
 * The profiler owns the BPF skeleton and one cpu-clock perf event per
 * online CPU.  ember_profiler_drain() flips the double-buffered maps and
 * hands every aggregated sample of the previous generation to a callback,
 * as raw addresses: symbolization is the caller's business.
 */
#ifndef EMBER_AGENT_PROFILER_H
#define EMBER_AGENT_PROFILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/proctrack.h"
#include "ember_profiler.h"
#include "ember_unwind.h"
#include "symbolizer/symbolizer.h"

struct ember_profiler;
struct ember_kernel;

struct ember_profiler_opts {
	struct ember_kernel *kernel; /* BTF and features (agent/kernel.h); NULL: the default */
	unsigned frequency;    /* samples per second per CPU (default 19) */
	const uint32_t *pids;  /* process filter, NULL = every process */
	size_t n_pids;
	size_t unwind_budget;  /* bytes of unwind rows in the kernel (default 64 MiB) */
	const char *unwind_cache; /* directory caching compiled tables, NULL = none */
	bool frame_pointers_only; /* no DWARF tables: walk every frame by frame pointer */
	unsigned snapshot_every;  /* validation: snapshot 1 in N samples (0 = off) */
	void (*snapshot_fn)(const struct ember_stack_snapshot *snap, void *arg);
	void *snapshot_arg;
	/*
	 * Called once for each process the agent heard of (exec, refresh,
	 * sample) when it has exited, or was evicted because more than
	 * max_processes were tracked, once its last samples are drained: the
	 * moment to drop what is kept for it.
	 */
	void (*exit_fn)(uint32_t pid, void *arg);
	void *exit_arg;
	/*
	 * Called within ~100 ms (not at the next drain) when a process execs
	 * (exec true) or when a sampled process is new or has mapped new code
	 * (exec false): the moments to snapshot its maps for the symbolizer
	 * while it still runs.
	 */
	void (*refresh_fn)(uint32_t pid, bool exec, void *arg);
	void *refresh_arg;
	size_t max_processes; /* processes tracked at most (0: EMBER_PROCTRACK_DEFAULT_MAX) */
	/*
	 * Per-endpoint CPU: the span programs' span_threads and
	 * span_req_endpoint maps (src/spans/spans.h), shared so that a sample
	 * carries the endpoint its thread is serving.  0 (or negative): not
	 * shared, samples carry none.
	 */
	int span_threads_fd, span_req_endpoint_fd;
};

/* One aggregated sample as drained from the maps. */
struct ember_raw_sample {
	uint32_t pid;
	const char *comm;          /* thread name at the last sample */
	uint64_t count;
	uint32_t user_depth;       /* 0 when no user stack */
	uint32_t user_flags;       /* EMBER_STACK_* */
	const uint64_t *user_pcs;  /* leaf first; [1..] are return addresses */
	uint32_t kernel_depth;
	const uint64_t *kernel_pcs; /* leaf first */
	uint32_t endpoint;          /* span endpoint id the thread was serving, 0 = none */
};

typedef void (*ember_sample_fn)(const struct ember_raw_sample *s, void *arg);

/*
 * Load the programs and the process tracepoints; load the unwind tables of
 * the given pids.  Helpers and map features the kernel lacks are replaced
 * by their 5.4-era fallbacks, each noted on the kernel (ember_kernel_note_fallback).
 * On failure returns a negative errno and writes a message that says what
 * is missing (root, BPF permission, BTF, perf events).
 */
int ember_profiler_open(const struct ember_profiler_opts *opts, struct ember_profiler **out,
			char *err, size_t errlen);

/* Start sampling: one cpu-clock perf event per online CPU. */
int ember_profiler_start(struct ember_profiler *pr, char *err, size_t errlen);

/*
 * Stop sampling (detach from every CPU) and keep the maps: a drain after
 * this one gets every sample taken, none can land after the last flip.
 */
void ember_profiler_stop(struct ember_profiler *pr);

/*
 * Wait up to timeout_ms for kernel events and handle them: load the tables
 * of processes the unwinder met, reload after exec, note exits (unloaded
 * after the next drain), pass validation snapshots on.
 */
int ember_profiler_poll(struct ember_profiler *pr, int timeout_ms);

struct ember_unwind_tables;
struct ember_unwind_tables *ember_profiler_tables(struct ember_profiler *pr);
void ember_profiler_close(struct ember_profiler *pr);

/* Add a pid to the filter (no effect when profiling every process). */
int ember_profiler_add_pid(struct ember_profiler *pr, uint32_t pid);

/* Swap generations and pass every sample of the old one to fn.  Returns samples drained. */
long ember_profiler_drain(struct ember_profiler *pr, ember_sample_fn fn, void *arg);

/* Sum of the per-CPU counters, indexed by enum ember_stat. */
void ember_profiler_stats(struct ember_profiler *pr, uint64_t out[EMBER_STAT__COUNT]);

/* Number of CPUs the sampler is attached to. */
int ember_profiler_ncpus(const struct ember_profiler *pr);

/*
 * Instructions the verifier processed to accept each program (ember_profile,
 * ember_unwind_step): the complexity to hold against the 1M limit of 5.2+.
 * 0 on kernels before 5.16, which do not report it.
 */
void ember_profiler_verified_insns(struct ember_profiler *pr, uint32_t *profile, uint32_t *step);

/* Process lifetime: the tracker, lost kernel events, the kernel's procs map. */
struct ember_profiler_lifetime {
	struct ember_proctrack_stats tracker;
	uint64_t events_lost;       /* kernel events lost (full buffer): the sweep finds those exits */
	uint64_t procs_map_max;     /* capacity of the kernel's procs map */
	uint64_t drains_skipped;    /* drains that found nothing recorded: no flip, no walk */
};
void ember_profiler_lifetime_stats(struct ember_profiler *pr, struct ember_profiler_lifetime *out);

/* Entries in the kernel's procs map, counted there (a syscall per entry; any thread). */
size_t ember_profiler_procs_map_entries(struct ember_profiler *pr);
/* The kernel's early_vmas map (code mappings of processes not read yet): entries now, and its bound. */
void ember_profiler_early_vmas_fill(struct ember_profiler *pr, size_t *entries, size_t *max);

/* BPF program run statistics (needs kernel.bpf_stats_enabled=1 for run_time_ns). */
int ember_profiler_prog_stats(struct ember_profiler *pr, uint64_t *run_cnt, uint64_t *run_time_ns);

/*
 * The maps another BPF object shares with the sampler by file descriptor
 * (the off-CPU tracer, src/offcpu/): the process filter, the unwind tables,
 * the refresh rate limit and the event buffer, so one set of tables and
 * one event loop serve both.
 */
struct ember_profiler_shared {
	bool filtered;      /* pids holds the processes to profile */
	bool have_find_vma; /* file_tables usable (bpf_find_vma) */
	bool have_task_pt_regs, have_probe_read_user; /* the sampler's helper choices */
	int pids_fd, procs_fd, unwind_index_fd, shards_fd, shard0_fd, rules_fd, go_runtimes_fd;
	int file_tables_fd, early_vmas_fd, refresh_sent_fd, events_fd;
};
void ember_profiler_shared_maps(struct ember_profiler *pr, struct ember_profiler_shared *out);

/*
 * The code mappings the kernel noted for pid at exec and mmap (newest
 * first), kept past its exit until the tracker forgets it: an
 * ember_kernel_vmas_fn for ember_symbolizer_set_kernel_vmas (arg: the profiler).
 */
int ember_profiler_kernel_vmas(uint32_t pid, struct ember_kernel_vma *out, int max, void *arg);

/* pid has samples of another kind (off-CPU) at now_ns: tracked and its tables kept recent. */
void ember_profiler_seen(struct ember_profiler *pr, uint32_t pid, int64_t now_ns);

#endif
