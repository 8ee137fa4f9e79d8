/*
 * profiler.c - the user half of bpf/unwind/profiler.bpf.c.
 *
 * Opening: set the read-only configuration, load (CO-RE relocations happen
 * here against the running kernel's BTF), then open one cpu-clock perf
 * event per online CPU in frequency mode and attach the program to each.
 *
 * Draining, the double-buffer protocol:
 *   1. flip `active_gen` in the program's .bss (mmap'ed by libbpf);
 *   2. wait until no program still runs with the old value: the programs run
 *      with preemption disabled, so one RCU grace period is enough, which
 *      membarrier(MEMBARRIER_CMD_GLOBAL) waits for (a short sleep where the
 *      call is unavailable);
 *   3. read every (key, count) of the old generation's counts map, look up
 *      its user and kernel stacks, hand them to the callback;
 *   4. delete what was read, leaving the old generation empty for the next flip.
 */
#include "agent/profiler.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/log.h"
#include "profiler.skel.h"

struct ember_profiler {
	struct profiler *skel;
	struct bpf_link **links;
	int *perf_fds;
	int n_links;
	int ncpus;
	bool filtered;
};

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && ember_log_get_level() >= EMBER_LOG_DEBUG)
		return vfprintf(stderr, fmt, ap);
	if (level == LIBBPF_DEBUG && getenv("EMBER_LIBBPF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

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

static const char *permission_hint(void)
{
	return geteuid() != 0 ? "run ember as root (or grant CAP_BPF, CAP_PERFMON and "
				"CAP_SYS_RESOURCE)"
			      : "BPF is not permitted here (kernel.unprivileged_bpf_disabled, "
				"lockdown or a seccomp filter?)";
}

int ember_profiler_open(const struct ember_profiler_opts *opts, struct ember_profiler **out,
			char *err, size_t errlen)
{
	struct ember_profiler *pr;
	unsigned freq = opts->frequency ? opts->frequency : 19;
	int rc, ncpus;

	libbpf_set_print(libbpf_quiet);
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

	pr->skel = profiler__open();
	if (!pr->skel) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	pr->filtered = opts->pids != NULL;
	pr->skel->rodata->filter_pids = pr->filtered;

	rc = profiler__load(pr->skel);
	if (rc) {
		if (rc == -EPERM || rc == -EACCES)
			snprintf(err, errlen, "cannot load the BPF profiler: %s: %s", strerror(-rc),
				 permission_hint());
		else
			snprintf(err, errlen,
				 "cannot load the BPF profiler: %s (kernel BTF at "
				 "/sys/kernel/btf/vmlinux needed; run with -v for libbpf's log)",
				 strerror(-rc));
		goto fail;
	}

	for (size_t i = 0; i < opts->n_pids; i++) {
		rc = ember_profiler_add_pid(pr, opts->pids[i]);
		if (rc) {
			snprintf(err, errlen, "cannot add pid %u to the filter: %s", opts->pids[i],
				 strerror(-rc));
			goto fail;
		}
	}

	for (int cpu = 0; cpu < ncpus; cpu++) {
		int fd = open_cpu_clock(cpu, freq);
		if (fd < 0) {
			if (errno == ENODEV) /* offline CPU */
				continue;
			rc = -errno;
			snprintf(err, errlen, "cannot open a cpu-clock perf event on CPU %d: %s%s",
				 cpu, strerror(errno),
				 errno == EACCES || errno == EPERM
					 ? " (check kernel.perf_event_paranoid, or run as root)"
					 : "");
			goto fail;
		}
		pr->perf_fds[pr->n_links] = fd;
		pr->links[pr->n_links] = bpf_program__attach_perf_event(pr->skel->progs.ember_profile, fd);
		if (!pr->links[pr->n_links]) {
			rc = -errno;
			close(fd);
			snprintf(err, errlen, "cannot attach the profiler to CPU %d: %s", cpu,
				 strerror(errno));
			goto fail;
		}
		pr->n_links++;
	}
	if (pr->n_links == 0) {
		rc = -ENODEV;
		snprintf(err, errlen, "no online CPU accepted a cpu-clock perf event");
		goto fail;
	}
	*out = pr;
	return 0;
fail:
	ember_profiler_close(pr);
	return rc;
}

void ember_profiler_close(struct ember_profiler *pr)
{
	if (!pr)
		return;
	for (int i = 0; i < pr->n_links; i++) {
		bpf_link__destroy(pr->links[i]);
		close(pr->perf_fds[i]);
	}
	profiler__destroy(pr->skel);
	free(pr->links);
	free(pr->perf_fds);
	free(pr);
}

int ember_profiler_add_pid(struct ember_profiler *pr, uint32_t pid)
{
	__u8 one = 1;

	if (!pr->filtered)
		return 0;
	if (bpf_map__update_elem(pr->skel->maps.pids, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY))
		return -errno;
	return 0;
}

int ember_profiler_ncpus(const struct ember_profiler *pr) { return pr->n_links; }

/* Wait until every program that may have read the old generation has returned. */
static void wait_for_running_programs(void)
{
	static int membarrier_ok = -1;

	if (membarrier_ok != 0) {
		if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) {
			membarrier_ok = 1;
			return;
		}
		membarrier_ok = 0;
	}
	struct timespec ts = {0, 10 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

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

long ember_profiler_drain(struct ember_profiler *pr, ember_sample_fn fn, void *arg)
{
	struct profiler *sk = pr->skel;
	__u32 old = sk->bss->active_gen & 1;
	struct bpf_map *counts = old ? sk->maps.counts1 : sk->maps.counts0;
	struct bpf_map *ustacks = old ? sk->maps.ustacks1 : sk->maps.ustacks0;
	struct bpf_map *kstacks = old ? sk->maps.kstacks1 : sk->maps.kstacks0;
	int counts_fd = bpf_map__fd(counts), ustacks_fd = bpf_map__fd(ustacks);
	int kstacks_fd = bpf_map__fd(kstacks);
	size_t max_counts = bpf_map__max_entries(counts);
	size_t max_ustacks = bpf_map__max_entries(ustacks);
	struct ember_stack_key *keys = malloc(max_counts * sizeof(*keys));
	__u64 *uhashes = malloc(max_ustacks * sizeof(*uhashes));
	__u64 kpcs[EMBER_MAX_KERNEL_DEPTH];
	struct ember_user_stack ust;
	long drained = 0;

	if (!keys || !uhashes) {
		free(keys);
		free(uhashes);
		return -ENOMEM;
	}
	__atomic_store_n(&sk->bss->active_gen, old ^ 1, __ATOMIC_SEQ_CST);
	wait_for_running_programs();

	size_t n = map_keys(counts_fd, keys, sizeof(*keys), max_counts);
	for (size_t i = 0; i < n; i++) {
		struct ember_count c;
		struct ember_raw_sample s = {.pid = keys[i].pid};

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
		fn(&s, arg);
		drained += (long)c.count;
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

	free(keys);
	free(uhashes);
	return drained;
}

void ember_profiler_stats(struct ember_profiler *pr, uint64_t out[EMBER_STAT__COUNT])
{
	int fd = bpf_map__fd(pr->skel->maps.stats);
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals = calloc((size_t)ncpu, sizeof(*vals));

	memset(out, 0, sizeof(uint64_t) * EMBER_STAT__COUNT);
	if (!vals)
		return;
	for (__u32 k = 0; k < EMBER_STAT__COUNT; k++) {
		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	free(vals);
}

int ember_profiler_prog_stats(struct ember_profiler *pr, uint64_t *run_cnt, uint64_t *run_time_ns)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(pr->skel->progs.ember_profile);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*run_cnt = info.run_cnt;
	*run_time_ns = info.run_time_ns;
	return 0;
}
