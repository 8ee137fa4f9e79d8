/*
 * bpf_counters.c - per-CPU counter maps and program run statistics (see bpf_counters.h).
 */
#include "core/bpf_counters.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ember_bpf_percpu_sum(int map_fd, uint32_t n, uint64_t *out)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *vals = ncpus > 0 ? calloc((size_t)ncpus, sizeof(*vals)) : NULL;

	memset(out, 0, sizeof(*out) * n);
	if (!vals)
		return;
	for (__u32 k = 0; k < n; k++) {
		if (bpf_map_lookup_elem(map_fd, &k, vals))
			continue;
		for (int c = 0; c < ncpus; c++)
			out[k] += vals[c];
	}
	free(vals);
}

int ember_bpf_percpu_get(int map_fd, uint32_t key, uint64_t *out)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *vals = ncpus > 0 ? calloc((size_t)ncpus, sizeof(*vals)) : NULL;
	int rc = 0;

	*out = 0;
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map_fd, &key, vals))
		rc = -errno;
	for (int c = 0; rc == 0 && c < ncpus; c++)
		*out += vals[c];
	free(vals);
	return rc;
}

int ember_bpf_prog_run_stats(int prog_fd, uint64_t *run_cnt, uint64_t *run_ns)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);

	if (prog_fd < 0)
		return -EBADF;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	*run_cnt += info.run_cnt;
	*run_ns += info.run_time_ns;
	return 0;
}

size_t ember_bpf_map_count(int map_fd)
{
	unsigned char key[64], next[64];
	size_t n = 0;

	for (void *prev = NULL; bpf_map_get_next_key(map_fd, prev, next) == 0; prev = key) {
		memcpy(key, next, sizeof(key));
		n++;
	}
	return n;
}
