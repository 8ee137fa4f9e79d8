/*
 * bpf_counters.h - reading the counters kept for and by BPF programs.
 *
 * The profiler, the TCP metrics and the span capture each count events
 * (samples by outcome, overflows, drops, ...) in a per-CPU array map, one
 * entry per counter; user space sums the CPUs.  The kernel itself counts
 * how often and how long each program ran (run_cnt, run_time_ns, while
 * kernel.bpf_stats_enabled=1), which /api/stats and the benchmarks report.
 */
#ifndef EMBER_CORE_BPF_COUNTERS_H
#define EMBER_CORE_BPF_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

/* out[k] = entry k of the per-CPU array map_fd summed over the CPUs, k < n
 * (0 where it cannot be read). */
void ember_bpf_percpu_sum(int map_fd, uint32_t n, uint64_t *out);

/* *out = entry key of the per-CPU array map_fd summed over the CPUs (one lookup).  0 or -errno. */
int ember_bpf_percpu_get(int map_fd, uint32_t key, uint64_t *out);

/* Entries in hash map map_fd now (keys of at most 64 bytes), walked key by key. */
size_t ember_bpf_map_count(int map_fd);

/* Add program prog_fd's run count and run time (ns) to *run_cnt and
 * *run_ns.  0, or -errno (nothing added) when it cannot be read. */
int ember_bpf_prog_run_stats(int prog_fd, uint64_t *run_cnt, uint64_t *run_ns);

#endif
