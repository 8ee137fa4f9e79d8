/*
 * profiler.c - the user half of bpf/unwind/profiler.bpf.c.
 *
 * Opening: set the read-only configuration, load (CO-RE relocations happen
 * here against the running kernel's BTF), then open one cpu-clock perf
 * event per online CPU in frequency mode and attach the program to each.
 *
 * Draining, the double-buffer protocol:
 *   1. flip `active_gen` in the program's .bss (mmap'ed by libbpf; a map
 *      update on kernels before 5.5, which cannot mmap maps);
 *   2. wait until no program still runs with the old value: the programs run
 *      with preemption disabled, so one RCU grace period is enough, which
 *      membarrier(MEMBARRIER_CMD_GLOBAL) waits for (a short sleep where the
 *      call is unavailable);
 *   3. read every (key, count) of the old generation's counts map, look up
 *      its user and kernel stacks, hand them to the callback;
 *   4. delete what was read, leaving the old generation empty for the next flip.
 *
 * Kernel events are handled between polls and, every 10 ms, during a
 * drain, so that a busy drain does not make a short-lived process miss
 * its snapshot at exec.
 *
 * Process lifetime: every pid the agent hears of (exec, refresh request,
 * drained sample) goes into the process tracker (proctrack.h).  An exit
 * reported by the kernel unloads the pid's unwind tables at once (no more
 * samples can come) and lets the tracker forget it after the next drain:
 * exit_fn is called then, when its last samples have been symbolized.
 * Exits the kernel did not report (lost events, exits before the agent
 * first read the process) are found by the tracker's sweep after a drain.
 */
#include "agent/profiler.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/kernel.h"
#include "agent/proctrack.h"
#include "agent/unwind_tables.h"
#include "core/bpf_counters.h"
#include "core/bpf_sync.h"
#include "core/clock.h"
#include "core/log.h"
#include "profiler.skel.h"

#define EVENTS_DURING_DRAIN_NS (10 * 1000000LL) /* kernel events handled this often in a drain */

struct ember_profiler {
	struct profiler *skel;
	struct ember_kernel *kernel;
	struct bpf_link **links;
	int *perf_fds;
	int n_links;
	int ncpus;
	unsigned frequency;
	bool filtered;
	bool fp_only;
	struct bpf_link *exit_link, *exec_link;
	struct bpf_link *mmap_links[2]; /* NULL without syscall tracepoints (tracefs) */
	struct perf_buffer *events, *snapshots;
	struct ember_unwind_tables *tables;
	void (*snapshot_fn)(const struct ember_stack_snapshot *snap, void *arg);
	void *snapshot_arg;
	void (*exit_fn)(uint32_t pid, void *arg);
	void *exit_arg;
	void (*refresh_fn)(uint32_t pid, bool exec, void *arg);
	void *refresh_arg;
	struct ember_proctrack *tracker;
	uint64_t events_lost;
	/* drain buffers, sized once for the maps (a per-drain malloc of this
	 * size is an mmap + munmap, whose TLB shootdown hits every CPU) */
	struct ember_stack_key *drain_keys;
	__u64 *drain_uhashes;
	uint64_t recorded_at_drain; /* the kernel's `recorded` when the last drain began */
	uint64_t drains_skipped;    /* drains with nothing recorded since the last: no flip */
};

static int open_cpu_clock(int cpu, unsigned frequency)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.sample_freq = frequency,
		.freq = 1,
	};
	return (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

static void on_event(void *ctx, int cpu, void *data, __u32 size)
{
	struct ember_profiler *pr = ctx;
	struct ember_event ev;

	if (size < sizeof(ev))
		return;
	memcpy(&ev, data, sizeof(ev));
	switch (ev.type) {
	case EMBER_EVENT_REFRESH:
	case EMBER_EVENT_EXEC:
		ember_proctrack_seen(pr->tracker, ev.pid, true, ember_monotonic_ns());
		if (pr->tables && !pr->fp_only)
			ember_unwind_tables_load(pr->tables, ev.pid);
		if (pr->refresh_fn)
			pr->refresh_fn(ev.pid, ev.type == EMBER_EVENT_EXEC, pr->refresh_arg);
		break;
	case EMBER_EVENT_EXIT:
		/* no more samples can come: the tables go now; the rest after the next drain */
		if (pr->tables)
			ember_unwind_tables_unload(pr->tables, ev.pid);
		ember_proctrack_exited(pr->tracker, ev.pid);
		break;
	}
}

static void on_lost(void *ctx, int cpu, __u64 count)
{
	struct ember_profiler *pr = ctx;

	pr->events_lost += count;
	ember_debug("lost %llu kernel events on CPU %d", (unsigned long long)count, cpu);
}

/* The tracker's forget: pid exited (or was evicted) and its samples are drained. */
static void forget_pid(uint32_t pid, void *arg)
{
	struct ember_profiler *pr = arg;

	if (pr->tables)
		ember_unwind_tables_unload(pr->tables, pid);
	/* the kernel keeps it past the exit for the symbolizer (ember_profiler_kernel_vmas) */
	bpf_map_delete_elem(bpf_map__fd(pr->skel->maps.early_vmas), &pid);
	if (pr->exit_fn)
		pr->exit_fn(pid, pr->exit_arg);
}

static void on_snapshot(void *ctx, int cpu, void *data, __u32 size)
{
	struct ember_profiler *pr = ctx;

	if (size >= sizeof(struct ember_stack_snapshot) && pr->snapshot_fn)
		pr->snapshot_fn(data, pr->snapshot_arg);
}

/*
 * Set the program's feature flags from what the kernel offers, and for
 * each feature missing note the fallback.  Returns whether maps may be
 * mmap'ed; when not, the shard maps are declared without BPF_F_MMAPABLE
 * (libbpf does the same for .bss/.rodata on such kernels).
 */
static bool choose_features(struct ember_profiler *pr)
{
	struct ember_kernel *k = pr->kernel;
	struct profiler *sk = pr->skel;

	sk->rodata->have_probe_read_user = ember_kernel_has(k, EMBER_KF_PROBE_READ_USER);
	if (!sk->rodata->have_probe_read_user)
		ember_kernel_note_fallback(k, "profiler", EMBER_KF_PROBE_READ_USER, "bpf_probe_read");
	/* new processes unwound by their files' tables before the agent reads them */
	sk->rodata->have_find_vma = ember_kernel_has(k, EMBER_KF_FIND_VMA);
	if (!sk->rodata->have_find_vma)
		ember_kernel_note_fallback(k, "profiler", EMBER_KF_FIND_VMA,
					   "frame pointers until the agent has read a new process");
	sk->rodata->have_task_pt_regs = ember_kernel_has(k, EMBER_KF_TASK_PT_REGS);
	if (!sk->rodata->have_task_pt_regs)
		ember_kernel_note_fallback(k, "profiler", EMBER_KF_TASK_PT_REGS,
					   "user registers from the top of the task's kernel stack");
	if (ember_kernel_has(k, EMBER_KF_MMAP_MAPS))
		return true;
	struct bpf_map *maps[] = {sk->maps.shard0, bpf_map__inner_map(sk->maps.shards)};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (maps[i])
			bpf_map__set_map_flags(maps[i],
					       bpf_map__map_flags(maps[i]) & ~(__u32)BPF_F_MMAPABLE);
	ember_kernel_note_fallback(k, "profiler", EMBER_KF_MMAP_MAPS,
				   "unwind rows and the active generation written by map updates");
	return false;
}

int ember_profiler_open(const struct ember_profiler_opts *opts, struct ember_profiler **out,
			char *err, size_t errlen)
{
	struct ember_profiler *pr;
	int rc, ncpus;

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		snprintf(err, errlen, "cannot count CPUs: %s", strerror(-ncpus));
		return ncpus ? ncpus : -EINVAL;
	}
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	pr->links = calloc((size_t)ncpus, sizeof(*pr->links));
	pr->perf_fds = calloc((size_t)ncpus, sizeof(*pr->perf_fds));
	if (!pr->links || !pr->perf_fds) {
		rc = -ENOMEM;
		goto fail;
	}
	pr->ncpus = ncpus;
	pr->frequency = opts->frequency ? opts->frequency : 19;
	pr->fp_only = opts->frame_pointers_only;
	pr->snapshot_fn = opts->snapshot_fn;
	pr->snapshot_arg = opts->snapshot_arg;
	pr->exit_fn = opts->exit_fn;
	pr->exit_arg = opts->exit_arg;
	pr->refresh_fn = opts->refresh_fn;
	pr->refresh_arg = opts->refresh_arg;
	struct ember_proctrack_opts tops = {.max_pids = opts->max_processes,
					    .forget = forget_pid,
					    .arg = pr};
	rc = ember_proctrack_new(&tops, &pr->tracker);
	if (rc) {
		snprintf(err, errlen, "cannot set up the process tracker: %s", strerror(-rc));
		goto fail;
	}

	pr->kernel = opts->kernel ? opts->kernel : ember_kernel_default(err, errlen);
	if (!pr->kernel) {
		rc = -ENOENT;
		goto fail;
	}
	pr->skel = profiler__open_opts(ember_kernel_open_opts(pr->kernel));
	if (!pr->skel) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	pr->filtered = opts->pids != NULL;
	pr->skel->rodata->filter_pids = pr->filtered;
	pr->skel->rodata->snapshot_every = opts->snapshot_fn ? opts->snapshot_every : 0;
	bool mmap_maps = choose_features(pr);

	if (opts->span_threads_fd > 0 && opts->span_req_endpoint_fd > 0 &&
	    (bpf_map__reuse_fd(pr->skel->maps.span_threads, opts->span_threads_fd) ||
	     bpf_map__reuse_fd(pr->skel->maps.span_req_endpoint, opts->span_req_endpoint_fd)))
		ember_warn("cannot share the span maps with the profiler: CPU samples carry no "
			   "endpoint");
	rc = profiler__load(pr->skel);
	if (rc) {
		ember_kernel_load_error(pr->kernel, "profiler", rc, err, errlen);
		goto fail;
	}
	ember_kernel_note_hooks(pr->kernel, "profiler",
				"perf_event cpu-clock on every CPU; raw_tp sched_process_exec, "
				"sched_process_exit; perf buffers");

	/* the unwinder continues through tail calls into slot 0 */
	__u32 slot = 0;
	int step_fd = bpf_program__fd(pr->skel->progs.ember_unwind_step);
	if (bpf_map__update_elem(pr->skel->maps.progs, &slot, sizeof(slot), &step_fd,
				 sizeof(step_fd), BPF_ANY)) {
		rc = -errno;
		snprintf(err, errlen, "cannot install the unwinder's tail call: %s", strerror(errno));
		goto fail;
	}
	pr->exit_link = bpf_program__attach(pr->skel->progs.ember_process_exit);
	pr->exec_link = bpf_program__attach(pr->skel->progs.ember_process_exec);
	if (!pr->exit_link || !pr->exec_link) {
		rc = -errno;
		snprintf(err, errlen, "cannot attach the sched_process_exit/exec raw tracepoints: %s",
			 strerror(errno));
		goto fail;
	}
	/* libraries' tables as soon as they are mapped; without tracefs, at their first sample */
	pr->mmap_links[0] = bpf_program__attach(pr->skel->progs.ember_mmap_enter);
	pr->mmap_links[1] = pr->mmap_links[0] ? bpf_program__attach(pr->skel->progs.ember_mmap_exit)
					      : NULL;
	if (!pr->mmap_links[1]) {
		ember_debug("no syscall tracepoints for mmap (%s): new libraries get their tables "
			    "at their first sample", strerror(errno));
		bpf_link__destroy(pr->mmap_links[0]);
		pr->mmap_links[0] = NULL;
	}
	pr->events = perf_buffer__new(bpf_map__fd(pr->skel->maps.events), 16, on_event, on_lost,
				      pr, NULL);
	if (!pr->events) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the event buffer: %s", strerror(errno));
		goto fail;
	}
	if (pr->snapshot_fn) {
		pr->snapshots = perf_buffer__new(bpf_map__fd(pr->skel->maps.snapshots), 256,
						 on_snapshot, on_lost, pr, NULL);
		if (!pr->snapshots) {
			rc = -errno;
			snprintf(err, errlen, "cannot open the snapshot buffer: %s", strerror(errno));
			goto fail;
		}
	}

	struct ember_unwind_maps maps = {
		.procs_fd = bpf_map__fd(pr->skel->maps.procs),
		.index_fd = bpf_map__fd(pr->skel->maps.unwind_index),
		.shards_fd = bpf_map__fd(pr->skel->maps.shards),
		.rules_fd = bpf_map__fd(pr->skel->maps.rules),
		.shard0_fd = bpf_map__fd(pr->skel->maps.shard0),
		.go_runtimes_fd = bpf_map__fd(pr->skel->maps.go_runtimes),
		.file_tables_fd = bpf_map__fd(pr->skel->maps.file_tables),
		.procs_max = bpf_map__max_entries(pr->skel->maps.procs),
	};
	struct ember_unwind_tables_opts topts = {.budget_bytes = opts->unwind_budget,
						 .cache_dir = opts->unwind_cache,
						 .no_mmap = !mmap_maps};
	pr->drain_keys = malloc(bpf_map__max_entries(pr->skel->maps.counts0) * sizeof(*pr->drain_keys));
	pr->drain_uhashes =
		malloc(bpf_map__max_entries(pr->skel->maps.ustacks0) * sizeof(*pr->drain_uhashes));
	if (!pr->drain_keys || !pr->drain_uhashes) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rc = ember_unwind_tables_new(&maps, &topts, &pr->tables);
	if (rc) {
		snprintf(err, errlen, "cannot set up the unwind tables: %s", strerror(-rc));
		goto fail;
	}

	for (size_t i = 0; i < opts->n_pids; i++) {
		rc = ember_profiler_add_pid(pr, opts->pids[i]);
		if (rc) {
			snprintf(err, errlen, "cannot add pid %u to the filter: %s", opts->pids[i],
				 strerror(-rc));
			goto fail;
		}
		ember_proctrack_seen(pr->tracker, opts->pids[i], true, ember_monotonic_ns());
		if (!pr->fp_only)
			ember_unwind_tables_load(pr->tables, opts->pids[i]);
	}
	*out = pr;
	return 0;
fail:
	ember_profiler_close(pr);
	return rc;
}

int ember_profiler_start(struct ember_profiler *pr, char *err, size_t errlen)
{
	int rc;

	for (int cpu = 0; cpu < pr->ncpus; cpu++) {
		int fd = open_cpu_clock(cpu, pr->frequency);
		if (fd < 0) {
			if (errno == ENODEV) /* offline CPU */
				continue;
			rc = -errno;
			snprintf(err, errlen, "cannot open a cpu-clock perf event on CPU %d: %s%s",
				 cpu, strerror(errno),
				 errno == EACCES || errno == EPERM
					 ? " (check kernel.perf_event_paranoid, or run as root)"
					 : "");
			return rc;
		}
		pr->perf_fds[pr->n_links] = fd;
		pr->links[pr->n_links] = bpf_program__attach_perf_event(pr->skel->progs.ember_profile, fd);
		if (!pr->links[pr->n_links]) {
			rc = -errno;
			close(fd);
			snprintf(err, errlen, "cannot attach the profiler to CPU %d: %s", cpu,
				 strerror(errno));
			return rc;
		}
		pr->n_links++;
	}
	if (pr->n_links == 0) {
		snprintf(err, errlen, "no online CPU accepted a cpu-clock perf event");
		return -ENODEV;
	}
	return 0;
}

void ember_profiler_stop(struct ember_profiler *pr)
{
	for (int i = 0; i < pr->n_links; i++) {
		bpf_link__destroy(pr->links[i]);
		pr->links[i] = NULL;
		if (pr->perf_fds[i] >= 0)
			close(pr->perf_fds[i]);
		pr->perf_fds[i] = -1;
	}
}

int ember_profiler_poll(struct ember_profiler *pr, int timeout_ms)
{
	int rc = 0;

	if (pr->snapshots) {
		perf_buffer__consume(pr->snapshots);
		rc = perf_buffer__poll(pr->events, timeout_ms / 2);
		perf_buffer__poll(pr->snapshots, timeout_ms / 2);
		return rc;
	}
	return perf_buffer__poll(pr->events, timeout_ms);
}

struct ember_unwind_tables *ember_profiler_tables(struct ember_profiler *pr)
{
	return pr->tables;
}

void ember_profiler_close(struct ember_profiler *pr)
{
	if (!pr)
		return;
	ember_profiler_stop(pr);
	bpf_link__destroy(pr->exit_link);
	bpf_link__destroy(pr->exec_link);
	bpf_link__destroy(pr->mmap_links[0]);
	bpf_link__destroy(pr->mmap_links[1]);
	perf_buffer__free(pr->events);
	perf_buffer__free(pr->snapshots);
	ember_unwind_tables_free(pr->tables);
	ember_proctrack_free(pr->tracker);
	profiler__destroy(pr->skel);
	free(pr->drain_keys);
	free(pr->drain_uhashes);
	free(pr->links);
	free(pr->perf_fds);
	free(pr);
}

int ember_profiler_add_pid(struct ember_profiler *pr, uint32_t pid)
{
	__u32 slot = pid % EMBER_PID_SLOTS, held = 0;
	__u8 one = 1;

	if (!pr->filtered)
		return 0;
	/* the hash first: a slot marked shared sends the program to it */
	if (bpf_map__update_elem(pr->skel->maps.pids, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY))
		return -errno;
	if (bpf_map__lookup_elem(pr->skel->maps.pid_slots, &slot, sizeof(slot), &held, sizeof(held), 0))
		return -errno;
	__u32 value = held == 0 || held == pid ? pid : EMBER_PID_SLOT_SHARED;
	if (bpf_map__update_elem(pr->skel->maps.pid_slots, &slot, sizeof(slot), &value, sizeof(value),
				 BPF_ANY))
		return -errno;
	return 0;
}

int ember_profiler_ncpus(const struct ember_profiler *pr) { return pr->n_links; }

/* Collect every key of a hash map (they are deleted after reading). */
static size_t map_keys(int fd, void *keys, size_t key_size, size_t max)
{
	size_t n = 0;
	char *prev = NULL;

	while (n < max) {
		char *next = (char *)keys + n * key_size;
		if (bpf_map_get_next_key(fd, prev, next))
			break;
		prev = next;
		n++;
	}
	return n;
}

/* active_gen in .bss: through the mmap'ed map, or a lookup and an update of it. */
static __u32 get_active_gen(struct ember_profiler *pr)
{
	return ember_kernel_bss_load(pr->kernel, pr->skel->maps.bss, pr->skel->bss,
				     &pr->skel->bss->active_gen);
}

static void set_active_gen(struct ember_profiler *pr, __u32 gen)
{
	ember_kernel_bss_store(pr->kernel, pr->skel->maps.bss, pr->skel->bss,
			       &pr->skel->bss->active_gen, gen);
}

long ember_profiler_drain(struct ember_profiler *pr, ember_sample_fn fn, void *arg)
{
	struct profiler *sk = pr->skel;
	__u32 old = get_active_gen(pr) & 1;
	struct bpf_map *counts = old ? sk->maps.counts1 : sk->maps.counts0;
	struct bpf_map *ustacks = old ? sk->maps.ustacks1 : sk->maps.ustacks0;
	struct bpf_map *kstacks = old ? sk->maps.kstacks1 : sk->maps.kstacks0;
	int counts_fd = bpf_map__fd(counts), ustacks_fd = bpf_map__fd(ustacks);
	int kstacks_fd = bpf_map__fd(kstacks);
	size_t max_counts = bpf_map__max_entries(counts);
	size_t max_ustacks = bpf_map__max_entries(ustacks);
	struct ember_stack_key *keys = pr->drain_keys;
	__u64 *uhashes = pr->drain_uhashes;
	__u64 kpcs[EMBER_MAX_KERNEL_DEPTH];
	struct ember_user_stack ust;
	long drained = 0;
	int64_t now = ember_monotonic_ns(), consumed_ns = now;

	/*
	 * Nothing recorded since the last drain began: the active generation
	 * is empty (a sample being counted now bumps `recorded` after its
	 * insert, so the next drain takes it).  No flip, no grace period, no
	 * walk of empty maps: an idle host costs one lookup a second.
	 */
	__u32 rec_key = EMBER_STAT_RECORDED;
	uint64_t recorded = 0;
	if (ember_bpf_percpu_get(bpf_map__fd(sk->maps.stats), rec_key, &recorded) == 0 &&
	    recorded == pr->recorded_at_drain) {
		pr->drains_skipped++;
		ember_proctrack_drain_begins(pr->tracker); /* every sample of an exit is in */
		goto maintain;
	}
	pr->recorded_at_drain = recorded;
	set_active_gen(pr, old ^ 1);
	ember_proctrack_drain_begins(pr->tracker);
	ember_bpf_wait_for_programs();

	size_t n = map_keys(counts_fd, keys, sizeof(*keys), max_counts);
	for (size_t i = 0; i < n; i++) {
		struct ember_count c;
		struct ember_raw_sample s = {.pid = keys[i].pid};
		if (keys[i].req_id)
			bpf_map__lookup_elem(pr->skel->maps.span_req_endpoint, &keys[i].req_id,
					     sizeof(keys[i].req_id), &s.endpoint, sizeof(s.endpoint), 0);

		if (bpf_map_lookup_elem(counts_fd, &keys[i], &c))
			continue;
		c.comm[EMBER_COMM_LEN - 1] = '\0';
		s.comm = c.comm;
		s.count = c.count;
		if (keys[i].user_stack_hash &&
		    bpf_map_lookup_elem(ustacks_fd, &keys[i].user_stack_hash, &ust) == 0) {
			s.user_depth = ust.depth < EMBER_MAX_USER_DEPTH ? ust.depth : EMBER_MAX_USER_DEPTH;
			s.user_flags = ust.flags;
			s.user_pcs = (const uint64_t *)ust.pcs;
		}
		if (keys[i].kernel_stack_id >= 0 &&
		    bpf_map_lookup_elem(kstacks_fd, &keys[i].kernel_stack_id, kpcs) == 0) {
			uint32_t d = 0;
			while (d < EMBER_MAX_KERNEL_DEPTH && kpcs[d])
				d++;
			s.kernel_depth = d;
			s.kernel_pcs = (const uint64_t *)kpcs;
		}
		ember_proctrack_seen(pr->tracker, s.pid, false, now);
		ember_unwind_tables_touch(pr->tables, s.pid, now);
		fn(&s, arg);
		drained += (long)c.count;
		/*
		 * A long drain (a loaded host, many new stacks to symbolize) must
		 * not delay exec events: a short-lived process is snapshotted for
		 * the symbolizer at its exec, or its samples go unnamed.
		 */
		int64_t t = ember_monotonic_ns();
		if (t - consumed_ns >= EVENTS_DURING_DRAIN_NS) {
			perf_buffer__consume(pr->events);
			consumed_ns = t;
		}
	}

	/* Clear the old generation for its next turn. */
	for (size_t i = 0; i < n; i++) {
		bpf_map_delete_elem(counts_fd, &keys[i]);
		if (keys[i].kernel_stack_id >= 0)
			bpf_map_delete_elem(kstacks_fd, &keys[i].kernel_stack_id);
	}
	size_t nu = map_keys(ustacks_fd, uhashes, sizeof(*uhashes), max_ustacks);
	for (size_t i = 0; i < nu; i++)
		bpf_map_delete_elem(ustacks_fd, &uhashes[i]);

maintain:
	/* processes that exited before this drain: their samples are in */
	ember_proctrack_collect(pr->tracker, ember_monotonic_ns());
	ember_unwind_tables_maintain(pr->tables, ember_monotonic_ns());
	return drained;
}

void ember_profiler_stats(struct ember_profiler *pr, uint64_t out[EMBER_STAT__COUNT])
{
	ember_bpf_percpu_sum(bpf_map__fd(pr->skel->maps.stats), EMBER_STAT__COUNT, out);
}

void ember_profiler_lifetime_stats(struct ember_profiler *pr, struct ember_profiler_lifetime *out)
{
	ember_proctrack_stats(pr->tracker, &out->tracker);
	out->events_lost = pr->events_lost;
	out->drains_skipped = pr->drains_skipped;
	out->procs_map_max = bpf_map__max_entries(pr->skel->maps.procs);
}

size_t ember_profiler_procs_map_entries(struct ember_profiler *pr)
{
	return ember_unwind_tables_map_entries(pr->tables);
}

void ember_profiler_early_vmas_fill(struct ember_profiler *pr, size_t *entries, size_t *max)
{
	*entries = ember_bpf_map_count(bpf_map__fd(pr->skel->maps.early_vmas));
	*max = bpf_map__max_entries(pr->skel->maps.early_vmas);
}

static uint32_t verified_insns(const struct bpf_program *prog)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.verified_insns;
}

void ember_profiler_verified_insns(struct ember_profiler *pr, uint32_t *profile, uint32_t *step)
{
	*profile = verified_insns(pr->skel->progs.ember_profile);
	*step = verified_insns(pr->skel->progs.ember_unwind_step);
}

int ember_profiler_prog_stats(struct ember_profiler *pr, uint64_t *run_cnt, uint64_t *run_time_ns)
{
	*run_cnt = *run_time_ns = 0;
	return ember_bpf_prog_run_stats(bpf_program__fd(pr->skel->progs.ember_profile), run_cnt,
					run_time_ns);
}

void ember_profiler_shared_maps(struct ember_profiler *pr, struct ember_profiler_shared *out)
{
	struct profiler *sk = pr->skel;

	*out = (struct ember_profiler_shared){
		.filtered = pr->filtered,
		.pids_fd = bpf_map__fd(sk->maps.pids),
		.procs_fd = bpf_map__fd(sk->maps.procs),
		.unwind_index_fd = bpf_map__fd(sk->maps.unwind_index),
		.shards_fd = bpf_map__fd(sk->maps.shards),
		.shard0_fd = bpf_map__fd(sk->maps.shard0),
		.rules_fd = bpf_map__fd(sk->maps.rules),
		.go_runtimes_fd = bpf_map__fd(sk->maps.go_runtimes),
		.have_find_vma = sk->rodata->have_find_vma,
		.have_task_pt_regs = sk->rodata->have_task_pt_regs,
		.have_probe_read_user = sk->rodata->have_probe_read_user,
		.file_tables_fd = bpf_map__fd(sk->maps.file_tables),
		.early_vmas_fd = bpf_map__fd(sk->maps.early_vmas),
		.refresh_sent_fd = bpf_map__fd(sk->maps.refresh_sent),
		.events_fd = bpf_map__fd(sk->maps.events),
	};
}

int ember_profiler_kernel_vmas(uint32_t pid, struct ember_kernel_vma *out, int max, void *arg)
{
	struct ember_profiler *pr = arg;
	struct ember_early_vmas ev;
	int n = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(pr->skel->maps.early_vmas), &pid, &ev))
		return 0;
	uint32_t held = ev.n < EMBER_EARLY_VMAS ? ev.n : EMBER_EARLY_VMAS;
	for (uint32_t k = 0; k < held && n < max; k++) {
		const struct ember_vma *v = &ev.vmas[(ev.n - 1 - k) & (EMBER_EARLY_VMAS - 1)];
		out[n++] = (struct ember_kernel_vma){.start = v->start, .end = v->end,
						      .offset = v->pgoff << 12, .dev = v->dev, .ino = v->ino};
	}
	return n;
}

void ember_profiler_seen(struct ember_profiler *pr, uint32_t pid, int64_t now_ns)
{
	ember_proctrack_seen(pr->tracker, pid, false, now_ns);
	ember_unwind_tables_touch(pr->tables, pid, now_ns);
}
