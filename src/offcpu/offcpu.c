/*
 * offcpu.c - the user half of bpf/offcpu/offcpu.bpf.c.
 *
 * Opening: the tracer's maps that the sampler already has (process filter,
 * unwind tables, refresh rate limit, event buffer) are replaced by the
 * sampler's own before load (bpf_map__reuse_fd); then both tail-call
 * programs load, the walk's continuation goes into slot 0 of the tracer's
 * prog array, and the entry program is attached to sched_switch.
 *
 * Draining follows the sampler's double-buffer protocol (profiler.c): flip
 * active_gen, wait until no program runs with the old value, read and
 * delete the old generation's counts.  The stacks are read from the LRU
 * maps and left there: a thread still asleep will need its stack when it
 * wakes (ember_offcpu.h).
 */
#include "offcpu/offcpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpf_counters.h"
#include "core/bpf_sync.h"
#include "core/clock.h"
#include "offcpu.skel.h"

struct ember_offcpu {
	struct offcpu *skel;
	struct bpf_link *link;
	struct ember_profiler *profiler;
	struct ember_offcpu_key *keys; /* drain buffer, max_entries of a counts map */
	size_t max_keys;
	uint64_t stack_gone;
};

static int share(struct bpf_map *map, int fd, const char *name, char *err, size_t errlen)
{
	int rc = bpf_map__reuse_fd(map, fd);

	if (rc)
		snprintf(err, errlen, "cannot share the sampler's %s map with the off-CPU tracer: %s",
			 name, strerror(-rc));
	return rc;
}

int ember_offcpu_open(struct ember_profiler *pr, const struct ember_offcpu_opts *opts,
		      struct ember_offcpu **out, char *err, size_t errlen)
{
	struct ember_profiler_shared sh;
	struct ember_offcpu *oc = calloc(1, sizeof(*oc));
	int rc;

	if (!oc)
		return -ENOMEM;
	oc->profiler = pr;
	oc->skel = offcpu__open();
	if (!oc->skel) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the off-CPU BPF object: %s", strerror(errno));
		goto fail;
	}
	ember_profiler_shared_maps(pr, &sh);
	struct offcpu *sk = oc->skel;
	sk->rodata->filter_pids = sh.filtered;
	sk->rodata->have_find_vma = sh.have_find_vma;
	sk->rodata->have_task_pt_regs = sh.have_task_pt_regs;
	sk->rodata->have_probe_read_user = sh.have_probe_read_user;
	if (opts && opts->min_block_ns)
		sk->rodata->min_block_ns = opts->min_block_ns;
	if (opts && opts->max_walks_per_sec)
		sk->rodata->max_walks_per_sec = opts->max_walks_per_sec;
	if ((rc = share(sk->maps.pids, sh.pids_fd, "pids", err, errlen)) ||
	    (rc = share(sk->maps.procs, sh.procs_fd, "procs", err, errlen)) ||
	    (rc = share(sk->maps.unwind_index, sh.unwind_index_fd, "unwind_index", err, errlen)) ||
	    (rc = share(sk->maps.shards, sh.shards_fd, "shards", err, errlen)) ||
	    (rc = share(sk->maps.shard0, sh.shard0_fd, "shard0", err, errlen)) ||
	    (rc = share(sk->maps.rules, sh.rules_fd, "rules", err, errlen)) ||
	    (rc = share(sk->maps.go_runtimes, sh.go_runtimes_fd, "go_runtimes", err, errlen)) ||
	    (rc = share(sk->maps.file_tables, sh.file_tables_fd, "file_tables", err, errlen)) ||
	    (rc = share(sk->maps.early_vmas, sh.early_vmas_fd, "early_vmas", err, errlen)) ||
	    (rc = share(sk->maps.refresh_sent, sh.refresh_sent_fd, "refresh_sent", err, errlen)) ||
	    (rc = share(sk->maps.events, sh.events_fd, "events", err, errlen)))
		goto fail;
	rc = offcpu__load(sk);
	if (rc) {
		snprintf(err, errlen,
			 "cannot load the off-CPU tracer: %s (it needs tp_btf on sched_switch and "
			 "kernel BTF; run with -v for libbpf's log)",
			 strerror(-rc));
		goto fail;
	}
	__u32 slot = 0;
	int step_fd = bpf_program__fd(sk->progs.ember_offcpu_step);
	if (bpf_map__update_elem(sk->maps.offcpu_progs, &slot, sizeof(slot), &step_fd,
				 sizeof(step_fd), BPF_ANY)) {
		rc = -errno;
		snprintf(err, errlen, "cannot install the off-CPU walk's tail call: %s",
			 strerror(errno));
		goto fail;
	}
	oc->link = bpf_program__attach(sk->progs.ember_offcpu_switch);
	if (!oc->link) {
		rc = -errno;
		snprintf(err, errlen, "cannot attach the off-CPU tracer to sched_switch: %s",
			 strerror(errno));
		goto fail;
	}
	oc->max_keys = bpf_map__max_entries(sk->maps.offcpu_counts0);
	oc->keys = calloc(oc->max_keys, sizeof(*oc->keys));
	if (!oc->keys) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*out = oc;
	return 0;
fail:
	ember_offcpu_close(oc);
	return rc;
}

void ember_offcpu_close(struct ember_offcpu *oc)
{
	if (!oc)
		return;
	bpf_link__destroy(oc->link);
	offcpu__destroy(oc->skel);
	free(oc->keys);
	free(oc);
}

long long ember_offcpu_drain(struct ember_offcpu *oc, ember_sample_fn fn, void *arg)
{
	struct offcpu *sk = oc->skel;
	__u32 old = sk->bss->active_gen & 1;
	int counts_fd = bpf_map__fd(old ? sk->maps.offcpu_counts1 : sk->maps.offcpu_counts0);
	int ustacks_fd = bpf_map__fd(sk->maps.offcpu_ustacks);
	int kstacks_fd = bpf_map__fd(sk->maps.offcpu_kstacks);
	struct ember_user_stack ust;
	struct ember_kernel_stack kst;
	long long drained = 0;
	int64_t now = ember_monotonic_ns();
	size_t n = 0;

	__atomic_store_n(&sk->bss->active_gen, old ^ 1, __ATOMIC_SEQ_CST);
	ember_bpf_wait_for_programs();

	for (void *prev = NULL; n < oc->max_keys; prev = &oc->keys[n++])
		if (bpf_map_get_next_key(counts_fd, prev, &oc->keys[n]))
			break;
	for (size_t i = 0; i < n; i++) {
		const struct ember_offcpu_key *k = &oc->keys[i];
		struct ember_offcpu_value v;
		struct ember_raw_sample s = {.pid = k->pid};

		if (bpf_map_lookup_elem(counts_fd, k, &v))
			continue;
		v.comm[EMBER_COMM_LEN - 1] = '\0';
		s.comm = v.comm;
		s.count = v.ns;
		if (k->user_hash) {
			if (bpf_map_lookup_elem(ustacks_fd, &k->user_hash, &ust) == 0) {
				s.user_depth = ust.depth < EMBER_MAX_USER_DEPTH ? ust.depth
										  : EMBER_MAX_USER_DEPTH;
				s.user_flags = ust.flags;
				s.user_pcs = (const uint64_t *)ust.pcs;
			} else {
				oc->stack_gone++;
			}
		}
		if (k->kernel_hash) {
			if (bpf_map_lookup_elem(kstacks_fd, &k->kernel_hash, &kst) == 0) {
				s.kernel_depth = kst.depth < EMBER_MAX_KERNEL_DEPTH
							 ? kst.depth
							 : EMBER_MAX_KERNEL_DEPTH;
				s.kernel_pcs = (const uint64_t *)kst.pcs;
			} else {
				oc->stack_gone++;
			}
		}
		ember_profiler_seen(oc->profiler, s.pid, now);
		fn(&s, arg);
		drained += (long long)v.ns;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(counts_fd, &oc->keys[i]);
	return drained;
}

void ember_offcpu_stats(struct ember_offcpu *oc, struct ember_offcpu_stats *st)
{
	memset(st, 0, sizeof(*st));
	ember_bpf_percpu_sum(bpf_map__fd(oc->skel->maps.offcpu_stats), EMBER_OFFCPU__COUNT,
			     st->counters);
	ember_bpf_percpu_sum(bpf_map__fd(oc->skel->maps.stats), EMBER_STAT__COUNT, st->walk);
	st->stack_gone = oc->stack_gone;
	ember_bpf_prog_run_stats(bpf_program__fd(oc->skel->progs.ember_offcpu_switch),
				 &st->run_cnt, &st->run_ns);
	ember_bpf_prog_run_stats(bpf_program__fd(oc->skel->progs.ember_offcpu_step), &st->run_cnt,
				 &st->run_ns);
}

void ember_offcpu_print_stats(struct ember_offcpu *oc, FILE *f)
{
	struct ember_offcpu_stats st;

	ember_offcpu_stats(oc, &st);
	fprintf(f, "BPF off-CPU counters:\n");
	for (int i = 0; i < EMBER_OFFCPU__COUNT; i++)
		fprintf(f, "  %-16s %llu\n", ember_offcpu_stat_names[i],
			(unsigned long long)st.counters[i]);
	fprintf(f, "  %-16s %llu\n", "stack_gone", (unsigned long long)st.stack_gone);
	for (int i = 0; i < EMBER_STAT__COUNT; i++)
		if (st.walk[i])
			fprintf(f, "  walk.%-11s %llu\n", ember_stat_names[i],
				(unsigned long long)st.walk[i]);
	uint64_t switches = st.counters[EMBER_OFFCPU_SWITCHES];
	if (st.run_ns && switches)
		fprintf(f, "  %-16s %.0f ns (kernel.bpf_stats_enabled)\n", "per_switch_cost",
			(double)st.run_ns / (double)switches);
}
