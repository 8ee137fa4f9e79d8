/*
 * kernel.h - the running kernel as every BPF program family sees it: BTF and features.
 *
 * Opened once per process, before any BPF object.  It answers two
 * questions for each family (the profiler, net, spans):
 *
 *   Which BTF do CO-RE relocations use?  The kernel's own
 *   (/sys/kernel/btf/vmlinux) when it has one; else --btf FILE; else the
 *   archive entry for this exact kernel release and build, from
 *   --btf-archive DIR or the archive compiled into the binary.  Failing
 *   all, opening refuses with a message naming the kernel and how to add
 *   it to the archive.
 *
 *   Which hooks and helpers work?  struct ember_kfeatures (kfeatures.h),
 *   probed here, with the features the user forced off.
 *
 * Every skeleton is opened with ember_kernel_open_opts() (libbpf's
 * btf_custom_path goes there), and each family records the hooks it chose
 * and every fallback it took; both show in the start-up output and in
 * /api/stats.
 */
#ifndef EMBER_AGENT_KERNEL_H
#define EMBER_AGENT_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/kfeatures.h"

struct bpf_map;
struct bpf_object_open_opts;
struct strbuf;

enum ember_btf_source {
	EMBER_BTF_KERNEL,   /* /sys/kernel/btf/vmlinux */
	EMBER_BTF_FILE,     /* --btf FILE */
	EMBER_BTF_ARCHIVE,  /* an archive entry (embedded or --btf-archive DIR) */
};

struct ember_kernel_opts {
	const char *btf_file;    /* --btf FILE: raw BTF, an ELF with .BTF, or either zstd'ed */
	const char *btf_archive; /* --btf-archive DIR: looked in before the embedded archive */
	uint32_t disabled;       /* features forced off: 1u << EMBER_KF_* */
};

struct ember_kernel;

/* Probe the features and find the BTF; on failure err says what and how to fix it. */
int ember_kernel_open(const struct ember_kernel_opts *opts, struct ember_kernel **out,
		      char *err, size_t errlen);
void ember_kernel_close(struct ember_kernel *k);

/*
 * The process-wide kernel for callers that were not handed one (test
 * tools), opened with the options in the environment: EMBER_BTF,
 * EMBER_BTF_ARCHIVE, EMBER_NO_FEATURE (as --btf, --btf-archive,
 * --no-feature).  NULL on failure, with err set.
 */
struct ember_kernel *ember_kernel_default(char *err, size_t errlen);

const struct ember_kfeatures *ember_kernel_features(const struct ember_kernel *k);
bool ember_kernel_has(const struct ember_kernel *k, enum ember_kfeature f);
enum ember_btf_source ember_kernel_btf_source(const struct ember_kernel *k);
const char *ember_kernel_release(const struct ember_kernel *k);

/*
 * Options for NAME__open_opts() of every skeleton: btf_custom_path set
 * when the BTF is not the kernel's own.  Valid while k is open.
 */
const struct bpf_object_open_opts *ember_kernel_open_opts(const struct ember_kernel *k);

/*
 * A message for a failed NAME__load(): permission, verifier, or CO-RE
 * relocation against which BTF.  what names the program family.
 */
void ember_kernel_load_error(const struct ember_kernel *k, const char *what, int rc, char *err,
			     size_t errlen);

/* The hooks a family attached, e.g. "perf_event cpu-clock; raw_tp sched_process_exec/exit". */
void ember_kernel_note_hooks(struct ember_kernel *k, const char *family, const char *hooks);

/* A family could not use `missing` and used `instead`; counted per (family, feature). */
void ember_kernel_note_fallback(struct ember_kernel *k, const char *family,
				enum ember_kfeature missing, const char *instead);

/* Total fallbacks noted. */
uint64_t ember_kernel_fallbacks(const struct ember_kernel *k);

/*
 * A __u32 global of a skeleton's .bss (field points into skel->bss; bss is
 * skel->maps.bss), read or written where the programs see it: through
 * libbpf's mmap of the map when the kernel has mmap-able maps (5.5+),
 * else by a lookup (and an update) of the whole section, user space being
 * its only writer (k NULL: the mmap).  The double-buffered families flip
 * their generation so.
 */
uint32_t ember_kernel_bss_load(const struct ember_kernel *k, const struct bpf_map *bss,
			       const void *base, const uint32_t *field);
int ember_kernel_bss_store(const struct ember_kernel *k, struct bpf_map *bss, void *base,
			   uint32_t *field, uint32_t value);

/* Start-up lines (prefixed "ember: "): the kernel, where BTF came from, the features. */
void ember_kernel_describe(const struct ember_kernel *k, FILE *f);
/* Start-up lines once the families are loaded: the hooks each chose, each fallback taken. */
void ember_kernel_describe_choices(const struct ember_kernel *k, FILE *f);

/* The "kernel" object of /api/stats (thread-safe). */
void ember_kernel_json(const struct ember_kernel *k, struct strbuf *sb);

#endif
