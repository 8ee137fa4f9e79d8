/*
 * net_bpf.h - load bpf/net/net.bpf.c with the hooks this kernel offers, and drain it.
 *
 * The loader picks the send/receive hook family (net_hooks.h), sizes the
 * maps, loads and attaches; if a family loads but will not attach (fentry
 * without trampolines) it tears the object down and tries the next,
 * counting the fallback.  Draining flips the double-buffered counters,
 * waits out the programs still running with the old generation, and hands
 * every (socket, process) row and drop of the old generation to callbacks,
 * summed over CPUs.  The socket table is read separately.
 */
#ifndef EMBER_NET_BPF_H
#define EMBER_NET_BPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember_net.h"
#include "net/net_hooks.h"

struct ember_net_bpf;
struct ember_kernel;

struct ember_net_bpf_opts {
	/*
	 * The kernel as agent/kernel.h opened it: BTF for CO-RE (the archive
	 * on kernels without their own), features forced off (--no-kprobes,
	 * --no-fentry), and where the hooks chosen and fallbacks are noted.
	 * NULL: the running kernel's BTF, every feature it has, no notes.
	 */
	struct ember_kernel *kernel;
	int io;               /* enum ember_net_io, or -1 for auto */
	uint32_t max_sockets; /* socks map entries (0 = 16384) */
	uint32_t max_counts;  /* counters per generation (0 = from a memory budget) */
	bool no_drops;        /* leave kfree_skb alone */
};

/* What was chosen, for /api/stats and the start-up line. */
struct ember_net_hook_report {
	enum ember_net_io io;
	const char *events;   /* "tp_btf" or "raw_tp" */
	const char *drops;    /* "kfree_skb(4 args)", "kfree_skb(3 args)" or "off" */
	unsigned fallbacks;   /* hook families or hooks skipped */
	char reasons[512];    /* "; "-separated, "" when none */
	uint32_t max_sockets, max_counts, max_drops;
};

int ember_net_bpf_open(const struct ember_net_bpf_opts *opts, struct ember_net_bpf **out,
		       char *err, size_t errlen);
void ember_net_bpf_close(struct ember_net_bpf *nb);

void ember_net_bpf_report(const struct ember_net_bpf *nb, struct ember_net_hook_report *r);

/* One (socket, process) of the drained generation, summed over CPUs. */
struct ember_net_row {
	struct ember_net_key key;
	struct ember_net_counts c; /* srtt_us: mean of the CPUs that saw one */
};

struct ember_net_drop_row {
	struct ember_net_drop_key key;
	uint64_t count;
};

/*
 * Flip generations and read the old one.  *rows / *drops point into
 * buffers owned by nb, valid until the next drain.  Returns 0 or -errno.
 */
int ember_net_bpf_drain(struct ember_net_bpf *nb, const struct ember_net_row **rows,
			size_t *n_rows, const struct ember_net_drop_row **drops, size_t *n_drops);

/* Every socket entry; fn may not touch the map.  Returns entries seen or -errno. */
long ember_net_bpf_socks(struct ember_net_bpf *nb,
			 void (*fn)(uint64_t sk, const struct ember_net_sock *e, void *arg),
			 void *arg);
/*
 * Delete a socket's entry, unless the kernel has meanwhile given the
 * address to a new socket (born_ns differs).  0, or -errno.
 */
int ember_net_bpf_forget_sock(struct ember_net_bpf *nb, uint64_t sk, uint64_t born_ns);

/* Sum of the per-CPU counters, indexed by enum ember_net_stat. */
void ember_net_bpf_stats(struct ember_net_bpf *nb, uint64_t out[EMBER_NET_STAT__COUNT]);

/* Kernel memory charged to the maps (memlock in /proc/self/fdinfo), bytes. */
uint64_t ember_net_bpf_map_bytes(struct ember_net_bpf *nb);

/* Run count and time of the send/receive programs (time needs kernel.bpf_stats_enabled). */
void ember_net_bpf_io_prog_stats(struct ember_net_bpf *nb, uint64_t *run_cnt,
				 uint64_t *run_time_ns);

#endif
