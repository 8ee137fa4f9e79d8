/*
 * kfeatures.h - what the running kernel offers BPF programs, probed at load time.
 *
 * Every program family (the profiler, net, spans) picks its hooks and
 * helpers from one struct ember_kfeatures instead of probing on its own:
 * kprobes or fentry or tracepoints, ring buffer or perf buffer,
 * bpf_task_pt_regs or the task's stack.  Each feature is found by trying
 * it (libbpf's probes, plus loading and attaching a tiny program where
 * "the verifier knows the helper" is not the same as "it works"), and can
 * be forced off (--no-kprobes, --force-perfbuf, --no-feature NAME) so the
 * fallbacks run on kernels that would not need them.
 */
#ifndef EMBER_AGENT_KFEATURES_H
#define EMBER_AGENT_KFEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ember_kfeature {
	EMBER_KF_KERNEL_BTF,      /* the kernel's own BTF (/sys/kernel/btf/vmlinux) */
	EMBER_KF_KPROBES,         /* a BPF program attaches to a kprobe (tcp_sendmsg) */
	EMBER_KF_FENTRY,          /* an fentry program attaches (tcp_sendmsg) */
	EMBER_KF_TP_BTF,          /* a BTF-typed tracepoint program attaches (sched_switch) */
	EMBER_KF_RAW_TP,          /* a raw tracepoint program attaches (sched_switch) */
	EMBER_KF_TRACEPOINTS,     /* tracepoint programs and tracefs syscall events */
	EMBER_KF_RINGBUF,         /* BPF_MAP_TYPE_RINGBUF */
	EMBER_KF_TASK_PT_REGS,    /* bpf_task_pt_regs(bpf_get_current_task_btf()) verifies */
	EMBER_KF_PROBE_READ_USER, /* bpf_probe_read_user */
	EMBER_KF_BPF_LOOP,        /* bpf_loop */
	EMBER_KF_MMAP_MAPS,       /* BPF_F_MMAPABLE arrays */
	EMBER_KF_FIND_VMA,        /* bpf_find_vma (new processes unwound by file table) */
	EMBER_KF__COUNT
};

/* Names used in --no-feature, the start-up line and /api/stats. */
extern const char *const ember_kfeature_names[EMBER_KF__COUNT];

#define EMBER_KF_DETAIL_LEN 96

struct ember_kfeatures {
	bool have[EMBER_KF__COUNT];
	bool forced_off[EMBER_KF__COUNT];        /* absent because a flag said so */
	char detail[EMBER_KF__COUNT][EMBER_KF_DETAIL_LEN]; /* why absent ("" when present) */
	uint64_t probe_ns;                       /* time the probes took */
};

/* The feature called name, or -1. */
int ember_kfeature_by_name(const char *name);

/*
 * Add the features of a comma-separated list of names to *mask
 * (1u << EMBER_KF_*).  Returns 0, or -EINVAL with err naming the unknown
 * name and the known ones.
 */
int ember_kfeatures_parse_list(const char *list, uint32_t *mask, char *err, size_t errlen);

/*
 * Probe every feature, skipping (and reporting as absent) those whose bit
 * is set in disabled (1u << EMBER_KF_*).  Never fails: a probe that cannot
 * run says the feature is absent and why.
 */
void ember_kfeatures_probe(struct ember_kfeatures *kf, uint32_t disabled);

#endif
