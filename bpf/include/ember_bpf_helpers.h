/*
 * ember_bpf_helpers.h - small helpers every Ember BPF program uses.
 *
 * Included by the .bpf.c files after bpf_helpers.h and bpf_core_read.h.
 */
#ifndef EMBER_BPF_HELPERS_H
#define EMBER_BPF_HELPERS_H

/* Add one to counter `which` of a per-CPU array of __u64 (a stats map). */
static __always_inline void ember_count(void *stats_map, __u32 which)
{
	__u64 *v = bpf_map_lookup_elem(stats_map, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/*
 * bpf_probe_read_user appeared in 5.5; older kernels only have
 * bpf_probe_read.  The kernel's BTF says which helpers exist; user space
 * may also clear have_probe_read_user before load (from its feature probe,
 * or --no-feature probe_read_user to run the 5.4 path on a newer kernel).
 */
const volatile __u8 have_probe_read_user = 1;

static __always_inline long read_user(void *dst, __u32 size, const void *src)
{
	if (have_probe_read_user &&
	    bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_probe_read_user))
		return bpf_probe_read_user(dst, size, src);
	return bpf_probe_read(dst, size, src);
}

#endif
