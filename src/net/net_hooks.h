/*
 * net_hooks.h - which kernel hooks the TCP metrics can use here, and which they use.
 *
 * The send/receive byte counts have three possible sources (bpf/net/net.bpf.c):
 *
 *   fentry      fexit/tcp_sendmsg + fentry/tcp_cleanup_rbuf: cheapest, exact
 *               (5.5+, needs BPF trampolines, which not every kernel or
 *               hypervisor allows)
 *   kprobe      kprobe+kretprobe/tcp_sendmsg + kprobe/tcp_cleanup_rbuf: the
 *               classic path, 5.4 (needs CONFIG_KPROBES)
 *   tracepoint  tp_btf/sock_send_length + sock_recv_length: stable
 *               tracepoints (6.3+), every socket type, filtered to TCP
 *
 * "auto" tries them in that order and takes the first that loads and
 * attaches; each one skipped is a fallback, counted with its reason.
 * Connection events use tp_btf where the kernel has BTF trampolines for
 * tracepoints, else raw tracepoints; drops use the kfree_skb variant
 * matching the kernel's tracepoint arguments (none before 5.17).
 * Everything is read from the running kernel's BTF and sysfs; nothing is
 * guessed from the version number.
 */
#ifndef EMBER_NET_HOOKS_H
#define EMBER_NET_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

enum ember_net_io {
	EMBER_NET_IO_FENTRY,
	EMBER_NET_IO_KPROBE,
	EMBER_NET_IO_TRACEPOINT,
	EMBER_NET_IO__COUNT,
};

extern const char *const ember_net_io_names[EMBER_NET_IO__COUNT];

/* What the running kernel offers, from its BTF and sysfs. */
struct ember_net_features {
	bool btf;              /* /sys/kernel/btf/vmlinux loaded */
	bool fentry_targets;   /* tcp_sendmsg and tcp_cleanup_rbuf are BTF functions */
	bool kprobes;          /* a kprobe PMU or tracefs kprobe_events */
	bool tp_send_recv;     /* sock_send_length and sock_recv_length tracepoints */
	bool tp_state, tp_retransmit, tp_send_reset, tp_receive_reset, tp_destroy;
	int kfree_skb_args;    /* arguments of the kfree_skb tracepoint, 0 = unknown */
};

void ember_net_probe_features(struct ember_net_features *f);

/* Parse "auto", "fentry", "kprobe" or "tracepoint"; -1 for auto, -2 if unknown. */
int ember_net_io_parse(const char *name);

/*
 * Whether family io may work with features f; if not, *why says what is
 * missing (for the fallback list).
 */
bool ember_net_io_possible(const struct ember_net_features *f, enum ember_net_io io,
			   const char **why);

#endif
