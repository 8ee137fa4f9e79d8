// SPDX-License-Identifier: GPL-2.0
/*
 * net.bpf.c - TCP metrics per (socket, process), aggregated in the kernel.
 *
 * Nothing here sends an event per packet or per call: every hook adds to a
 * map that user space drains once a second (src/net/net_collector.c).  The
 * maps are described in bpf/include/ember_net.h.
 *
 * Hooks, and which context they run in:
 *
 *   bytes sent / received     process context (the caller of send/recv):
 *                             attributed to the current process.  One of
 *                             three families, chosen by user space at
 *                             load time (src/net/net_hooks.c):
 *       fentry    fexit/tcp_sendmsg + fentry/tcp_cleanup_rbuf
 *       kprobe    kprobe+kretprobe/tcp_sendmsg + kprobe/tcp_cleanup_rbuf
 *                 (the 5.4-era path; the kretprobe finds its socket in
 *                 send_stash, filled by the kprobe)
 *       tracepoint  tp_btf/sock_send_length + tp_btf/sock_recv_length (6.3+)
 *   inet_sock_set_state       either context: connect (-> SYN_SENT) and
 *                             listen (-> LISTEN) run in the process; the
 *                             rest (established, closed) often in softirq
 *   tcp_retransmit_skb, tcp_send_reset, tcp_receive_reset, tcp_destroy_sock,
 *   kfree_skb                 mostly softirq, where the current task is
 *                             whatever was interrupted
 *
 * Hence the rule: only send, receive, connect and listen look at the
 * current process.  Every other hook attributes by socket, to the owner
 * remembered in the socks map (the first process seen using the socket).
 * A passive socket's owner is unknown until the server first reads or
 * writes it (the accept happens in softirq); its events carry tgid 0 and
 * user space resolves them (the connection's owner by then, else the
 * listener's).
 *
 * Every event is counted under the connection's 4-tuple as it is at the
 * event, so a struct sock freed and reused within a drain interval (a
 * server doing thousands of short connections a second) never mixes two
 * connections.  A connect is counted when it ends, established (with its
 * local port bound) or failed.
 *
 * Hot path cost: a send or receive reads the socket's family, protocol,
 * ports and addresses, then does one lookup in the active counts map (plus
 * a create and a socks lookup the first time a connection is seen on a CPU
 * in a drain interval, when it also reads the smoothed RTT).
 * Retransmitted segments come from tcp_sock.total_retrans deltas, which
 * count segments exactly as the kernel's TcpRetransSegs does (a TSO skb
 * holds several).
 *
 * Kernel features: fentry/fexit need 5.5 and tp_btf 5.5; the kprobe family
 * and raw tracepoints work on 5.4.  kfree_skb has a drop reason since 5.17
 * and the receiving socket as a fourth argument since 6.11: user space
 * loads the variant matching the running kernel's BTF, or none.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "ember_net.h"
#include "kernel_types.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MSG_PEEK 2

/* Flipped by user space (0 or 1) to double-buffer counts and drops. */
__u32 active_gen = 0;

/* ---- maps (sizes are defaults; user space may change them before load) ---- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ember_net_sock);
} socks SEC(".maps");

/* LRU: a listener whose close was never seen gives way to new ones */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ember_net_listen_key);
	__type(value, __u32);
} listeners SEC(".maps");

#define COUNTS_MAP(name)                                                                  \
	struct {                                                                          \
		__uint(type, BPF_MAP_TYPE_PERCPU_HASH);                                   \
		__uint(max_entries, 8192);                                                \
		__type(key, struct ember_net_key);                                        \
		__type(value, struct ember_net_counts);                                   \
	} name SEC(".maps")

#define DROPS_MAP(name)                                                                   \
	struct {                                                                          \
		__uint(type, BPF_MAP_TYPE_PERCPU_HASH);                                   \
		__uint(max_entries, 1024);                                                \
		__type(key, struct ember_net_drop_key);                                   \
		__type(value, __u64);                                                     \
	} name SEC(".maps")

COUNTS_MAP(counts0);
COUNTS_MAP(counts1);
DROPS_MAP(drops0);
DROPS_MAP(drops1);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EMBER_NET_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} net_stats SEC(".maps");

/* kprobe family: tcp_sendmsg's socket, from its entry to its return (per thread). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} send_stash SEC(".maps");

/* ---- helpers ---------------------------------------------------------------- */

static __always_inline void count_stat(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&net_stats, &which);

	if (v)
		(*v)++;
}

static __always_inline bool is_inet_tcp(struct sock___ember *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return false;
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) == IPPROTO_TCP;
}

/* Addresses, ports, namespace and state, as they are now. */
static __always_inline void read_tuple(struct sock___ember *sk, struct ember_net_sock *e)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* skc_net.net exists only with CONFIG_NET_NS (tinyconfig-like kernels
	 * lack it: one namespace); 0 is "unknown, any" to user space */
	e->netns = bpf_core_field_exists(sk->__sk_common.skc_net.net)
			   ? BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum)
			   : 0;
	if (e->family == AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memset(e->saddr, 0, sizeof(e->saddr));
		__builtin_memset(e->daddr, 0, sizeof(e->daddr));
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else if (bpf_core_field_exists(sk->__sk_common.skc_v6_daddr)) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr);
	}
}

/* The counters key of sk for process tgid: the 4-tuple as it is now. */
static __always_inline void conn_key(struct sock___ember *sk, __u32 tgid, struct ember_net_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->tgid = tgid;
	k->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	k->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (k->family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 b = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(k->saddr, &a, 4);
		__builtin_memcpy(k->daddr, &b, 4);
	} else if (bpf_core_field_exists(sk->__sk_common.skc_v6_daddr)) {
		BPF_CORE_READ_INTO(&k->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&k->daddr, sk, __sk_common.skc_v6_daddr);
	}
}

/*
 * The same for a pointer the verifier knows as a kernel struct sock (tp_btf
 * and fentry arguments): plain loads at CO-RE-relocated offsets instead of
 * bpf_probe_read_kernel calls, which is what the hot path can afford.
 * Returns false for anything but an IPv4/IPv6 TCP socket.
 */
static __always_inline bool conn_key_btf(struct sock___ember *sk, __u32 tgid,
					 struct ember_net_key *k)
{
	__u16 family = sk->__sk_common.skc_family;

	if (family != AF_INET && family != AF_INET6)
		return false;
	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	__builtin_memset(k, 0, sizeof(*k));
	k->tgid = tgid;
	k->family = family;
	k->sport = sk->__sk_common.skc_num;
	k->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == AF_INET) {
		__be32 a = sk->__sk_common.skc_rcv_saddr, b = sk->__sk_common.skc_daddr;
		__builtin_memcpy(k->saddr, &a, 4);
		__builtin_memcpy(k->daddr, &b, 4);
	} else if (bpf_core_field_exists(sk->__sk_common.skc_v6_daddr)) {
		__builtin_memcpy(k->saddr, sk->__sk_common.skc_v6_rcv_saddr.s6_addr, 16);
		__builtin_memcpy(k->daddr, sk->__sk_common.skc_v6_daddr.s6_addr, 16);
	}
	return true;
}

static __always_inline __u32 total_retrans(struct sock___ember *sk)
{
	return BPF_CORE_READ((struct tcp_sock___ember *)sk, total_retrans);
}

/*
 * The socket's entry, created when create is set (and the map has room).
 * tgid is the current process where the hook runs in its context, else 0;
 * it becomes the owner of an entry that has none yet.
 */
static __always_inline struct ember_net_sock *sock_entry(struct sock___ember *sk, __u32 tgid,
							  bool create)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct ember_net_sock *e = bpf_map_lookup_elem(&socks, &key);

	if (e) {
		if (!e->tgid && tgid) {
			e->tgid = tgid;
			bpf_get_current_comm(e->comm, sizeof(e->comm));
		}
		return e;
	}
	if (!create)
		return NULL;

	struct ember_net_sock init = {};
	read_tuple(sk, &init);
	init.born_ns = bpf_ktime_get_ns();
	init.retrans_seen = total_retrans(sk);
	init.tgid = tgid;
	if (tgid)
		bpf_get_current_comm(init.comm, sizeof(init.comm));
	long err = bpf_map_update_elem(&socks, &key, &init, BPF_NOEXIST);
	if (err && err != -17 /* -EEXIST: created meanwhile on another CPU */) {
		count_stat(EMBER_NET_STAT_SOCKS_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&socks, &key);
}

/*
 * A fresh entry for a socket starting a new life (connect, accept, listen):
 * an entry left at the same address by a destroyed socket is replaced.
 */
static __always_inline struct ember_net_sock *sock_begin(struct sock___ember *sk, __u32 tgid)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct ember_net_sock *e = bpf_map_lookup_elem(&socks, &key);

	if (e && e->destroyed)
		bpf_map_delete_elem(&socks, &key);
	return sock_entry(sk, tgid, true);
}

/* This CPU's counters of (sk, tgid) in the active generation, created if new. */
static __always_inline struct ember_net_counts *counts_of(struct ember_net_key *key, bool *fresh)
{
	__u32 gen = active_gen & 1;
	struct ember_net_counts *v;

	v = gen ? bpf_map_lookup_elem(&counts1, key) : bpf_map_lookup_elem(&counts0, key);
	if (v)
		return v;
	struct ember_net_counts zero = {};
	long err = gen ? bpf_map_update_elem(&counts1, key, &zero, BPF_NOEXIST)
		       : bpf_map_update_elem(&counts0, key, &zero, BPF_NOEXIST);
	if (err && err != -17) {
		count_stat(EMBER_NET_STAT_COUNTS_FULL);
		return NULL;
	}
	*fresh = true;
	return gen ? bpf_map_lookup_elem(&counts1, key) : bpf_map_lookup_elem(&counts0, key);
}

/* ---- bytes: the hot path ------------------------------------------------------ */

/*
 * Add a send or receive to (current process, sk's connection).  btf: sk is
 * a BTF pointer (tp_btf, fentry) and is read directly; else (kprobe) through
 * bpf_probe_read_kernel.  Constant at every call site, so each program
 * keeps one of the two.
 */
static __always_inline int account_io(struct sock___ember *sk, long bytes, bool send, bool btf)
{
	struct ember_net_key key;

	if (bytes <= 0 || !sk)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (btf) {
		if (!conn_key_btf(sk, tgid, &key))
			return 0;
	} else {
		if (!is_inet_tcp(sk))
			return 0;
		conn_key(sk, tgid, &key);
	}
	count_stat(send ? EMBER_NET_STAT_SENDS : EMBER_NET_STAT_RECVS);

	bool fresh = false;
	struct ember_net_counts *v = counts_of(&key, &fresh);
	if (!v)
		return 0;
	if (fresh) /* first time this interval on this CPU: make sure the owner is known */
		sock_entry(sk, key.tgid, true);
	/* one RTT sample per interval (the entry may come from a softirq hook);
	 * a probe read: the verifier knows sk as a struct sock, not a tcp_sock */
	if (!v->srtt_us)
		v->srtt_us = BPF_CORE_READ((struct tcp_sock___ember *)sk, srtt_us) >> 3;
	if (send) {
		v->bytes_sent += bytes;
		v->sends++;
	} else {
		v->bytes_recv += bytes;
		v->recvs++;
	}
	return 0;
}

/* tracepoint family (sock_sendmsg / sock_recvmsg, every socket type: filtered) */
SEC("tp_btf/sock_send_length")
int BPF_PROG(ember_tp_send, struct sock___ember *sk, int ret, int flags)
{
	return account_io(sk, ret, true, true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(ember_tp_recv, struct sock___ember *sk, int ret, int flags)
{
	if (flags & MSG_PEEK) /* the bytes stay queued: counted when really read */
		return 0;
	return account_io(sk, ret, false, true);
}

/* fentry family */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(ember_fexit_sendmsg, struct sock___ember *sk, void *msg, __u64 size, int ret)
{
	return account_io(sk, ret, true, true);
}

SEC("fentry/tcp_cleanup_rbuf")
int BPF_PROG(ember_fentry_cleanup_rbuf, struct sock___ember *sk, int copied)
{
	return account_io(sk, copied, false, true);
}

/* kprobe family */
SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(ember_kprobe_sendmsg, void *sk)
{
	__u64 id = bpf_get_current_pid_tgid(), skp = (__u64)(unsigned long)sk;

	if (bpf_map_update_elem(&send_stash, &id, &skp, BPF_ANY))
		count_stat(EMBER_NET_STAT_STASH_FULL);
	return 0;
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(ember_kretprobe_sendmsg, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *skp = bpf_map_lookup_elem(&send_stash, &id);

	if (!skp)
		return 0;
	struct sock___ember *sk = (void *)(unsigned long)*skp;
	bpf_map_delete_elem(&send_stash, &id);
	return account_io(sk, ret, true, false);
}

SEC("kprobe/tcp_cleanup_rbuf")
int BPF_KPROBE(ember_kprobe_cleanup_rbuf, void *sk, int copied)
{
	return account_io(sk, copied, false, false);
}

/* ---- connections -------------------------------------------------------------- */

/*
 * A hook whose first argument is the socket, as tp_btf (5.5+) and as a raw
 * tracepoint (5.4); user space loads one of the two.
 */
#define SOCK_HOOK(name, tracepoint, call)                                                 \
	SEC("tp_btf/" tracepoint)                                                         \
	int BPF_PROG(ember_tp_##name, struct sock___ember *sk)                            \
	{                                                                                 \
		return call;                                                              \
	}                                                                                 \
	SEC("raw_tp/" tracepoint)                                                         \
	int BPF_PROG(ember_raw_##name, struct sock___ember *sk)                           \
	{                                                                                 \
		return call;                                                              \
	}

/*
 * The key of (sk's owner, sk's connection), for a hook without a process:
 * the 4-tuple the socket's entry last saw (at its state changes) when it
 * has one.  A closing socket's ports and addresses are being reset while
 * its last events (the close, the reset that may follow) fire, so reading
 * them live would file those events under a connection that never was.
 */
static __always_inline void owner_key(struct sock___ember *sk, struct ember_net_sock *e,
				      struct ember_net_key *key)
{
	conn_key(sk, e ? (e->tgid ? e->tgid : e->listener_tgid) : 0, key);
	if (e && e->dport) {
		key->family = e->family;
		key->sport = e->sport;
		key->dport = e->dport;
		__builtin_memcpy(key->saddr, e->saddr, sizeof(key->saddr));
		__builtin_memcpy(key->daddr, e->daddr, sizeof(key->daddr));
	}
}

static __always_inline struct ember_net_counts *owner_counts(struct sock___ember *sk,
							     struct ember_net_sock *e)
{
	struct ember_net_key key;
	bool fresh = false;

	owner_key(sk, e, &key);
	return counts_of(&key, &fresh);
}

/* Retransmitted segments since the last look, added to the owner's counters. */
static __always_inline void account_retrans(struct sock___ember *sk, struct ember_net_sock *e)
{
	__u32 total = total_retrans(sk);
	__u32 delta = total - e->retrans_seen;

	if (!delta || delta > (1u << 24)) /* none, or the counter went back (reuse) */
		return;
	e->retrans_seen = total;
	struct ember_net_counts *v = owner_counts(sk, e);
	if (v)
		v->retrans += delta;
}

static __always_inline int on_state(struct sock___ember *sk, int old, int new)
{
	struct ember_net_counts *v;
	struct ember_net_sock *e;
	__u32 me = bpf_get_current_pid_tgid() >> 32;

	if (!sk || !is_inet_tcp(sk))
		return 0;
	count_stat(EMBER_NET_STAT_STATE_CHANGES);
	if (new == EMBER_TCP_SYN_SENT) {
		/* connect(): in the caller's context, which owns the socket */
		e = sock_begin(sk, me);
		if (e) {
			e->tgid = me;
			e->role = EMBER_NET_ROLE_ACTIVE;
			e->syn_ns = bpf_ktime_get_ns();
			read_tuple(sk, e);
		}
		/* counted when it ends: established, or failed (full 4-tuple by then) */
		return 0;
	}
	if (new == EMBER_TCP_LISTEN) {
		e = sock_begin(sk, me);
		if (e) {
			e->tgid = me;
			e->role = EMBER_NET_ROLE_LISTEN;
			read_tuple(sk, e);
			struct ember_net_listen_key lk = {.netns = e->netns, .port = e->sport};
			bpf_map_update_elem(&listeners, &lk, &me, BPF_ANY);
		}
		return 0;
	}
	if (new == EMBER_TCP_ESTABLISHED && old == EMBER_TCP_SYN_RECV) {
		/* a passive open, in softirq: its owner is known at the first read;
		 * until then its events go to the listener's owner */
		e = sock_begin(sk, 0);
		if (e) {
			e->role = EMBER_NET_ROLE_PASSIVE;
			read_tuple(sk, e);
			struct ember_net_listen_key lk = {.netns = e->netns, .port = e->sport};
			__u32 *owner = bpf_map_lookup_elem(&listeners, &lk);
			if (owner)
				e->listener_tgid = *owner;
		}
		v = owner_counts(sk, e);
		if (v)
			v->accepts++;
		return 0;
	}
	e = sock_entry(sk, 0, false);
	if (new == EMBER_TCP_ESTABLISHED && old == EMBER_TCP_SYN_SENT) {
		if (e)
			read_tuple(sk, e); /* the local port is bound after SYN_SENT */
		v = owner_counts(sk, e);
		if (v) {
			v->established++;
			if (e && e->syn_ns)
				v->connect_us = (bpf_ktime_get_ns() - e->syn_ns) / 1000;
		}
	} else if (new == EMBER_TCP_CLOSE && old != EMBER_TCP_LISTEN &&
		   old != EMBER_TCP_SYN_RECV) {
		v = owner_counts(sk, e);
		if (v && old == EMBER_TCP_SYN_SENT)
			v->failures++;
		else if (v)
			v->closes++;
		if (e)
			account_retrans(sk, e);
	}
	if (e)
		e->state = new;
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(ember_tp_set_state, struct sock___ember *sk, int old, int new)
{
	return on_state(sk, old, new);
}

/* The same for kernels without tp_btf (5.4): raw tracepoint, same arguments. */
SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(ember_raw_set_state, struct sock___ember *sk, int old, int new)
{
	return on_state(sk, old, new);
}

static __always_inline int on_retransmit(struct sock___ember *sk)
{
	struct ember_net_sock *e;

	if (!sk)
		return 0;
	count_stat(EMBER_NET_STAT_RETRANSMITS);
	e = sock_entry(sk, 0, false);
	if (!e) {
		/* no baseline for total_retrans: count the event as one segment */
		count_stat(EMBER_NET_STAT_NO_OWNER);
		struct ember_net_counts *v = owner_counts(sk, NULL);
		if (v)
			v->retrans++;
		return 0;
	}
	account_retrans(sk, e);
	return 0;
}

SOCK_HOOK(retransmit, "tcp_retransmit_skb", on_retransmit(sk))

static __always_inline int on_reset(struct sock___ember *sk, bool sent)
{
	if (!sk) /* a reset answering a segment for no socket */
		return 0;
	count_stat(EMBER_NET_STAT_RESETS);
	struct ember_net_sock *e = sock_entry(sk, 0, false);
	if (!e)
		count_stat(EMBER_NET_STAT_NO_OWNER);
	struct ember_net_counts *v = owner_counts(sk, e);
	if (!v)
		return 0;
	if (sent)
		v->resets_sent++;
	else
		v->resets_recv++;
	return 0;
}

SOCK_HOOK(send_reset, "tcp_send_reset", on_reset(sk, true))
SOCK_HOOK(receive_reset, "tcp_receive_reset", on_reset(sk, false))

static __always_inline int on_destroy(struct sock___ember *sk)
{
	struct ember_net_sock *e = sk ? sock_entry(sk, 0, false) : NULL;

	if (e) {
		account_retrans(sk, e);
		e->destroyed = 1;
		if (e->role == EMBER_NET_ROLE_LISTEN) {
			/* its port's entry, unless another listener took it since */
			struct ember_net_listen_key lk = {.netns = e->netns, .port = e->sport};
			__u32 *owner = bpf_map_lookup_elem(&listeners, &lk);
			if (owner && *owner == e->tgid)
				bpf_map_delete_elem(&listeners, &lk);
		}
	}
	return 0;
}

SOCK_HOOK(destroy, "tcp_destroy_sock", on_destroy(sk))

/* ---- drops -------------------------------------------------------------------- */

static __always_inline int on_drop(struct sk_buff___ember *skb, __u32 reason,
				   struct sock___ember *rx_sk)
{
	struct sock___ember *sk = BPF_CORE_READ(skb, sk);

	if (!sk)
		sk = rx_sk;
	if (!sk)
		return 0;
	/* the socks lookup is the filter: only TCP sockets Ember tracks */
	struct ember_net_sock *e = sock_entry(sk, 0, false);
	if (!e)
		return 0;
	count_stat(EMBER_NET_STAT_DROPS);

	struct ember_net_drop_key key;
	owner_key(sk, e, &key.conn);
	key.reason = reason;
	key.pad = 0;
	__u32 gen = active_gen & 1;
	__u64 *v = gen ? bpf_map_lookup_elem(&drops1, &key) : bpf_map_lookup_elem(&drops0, &key);
	if (v) {
		(*v)++;
		return 0;
	}
	__u64 one = 1;
	long err = gen ? bpf_map_update_elem(&drops1, &key, &one, BPF_NOEXIST)
		       : bpf_map_update_elem(&drops0, &key, &one, BPF_NOEXIST);
	if (err)
		count_stat(EMBER_NET_STAT_DROPS_FULL);
	return 0;
}

/* 5.17 - 6.10: kfree_skb(skb, location, reason) */
SEC("tp_btf/kfree_skb")
int BPF_PROG(ember_tp_kfree_skb3, struct sk_buff___ember *skb, void *location, int reason)
{
	return on_drop(skb, (__u32)reason, NULL);
}

/* 6.11+: kfree_skb(skb, location, reason, rx_sk): the receiving socket of an
 * skb not yet charged to one */
SEC("tp_btf/kfree_skb")
int BPF_PROG(ember_tp_kfree_skb4, struct sk_buff___ember *skb, void *location, int reason,
	     struct sock___ember *rx_sk)
{
	return on_drop(skb, (__u32)reason, rx_sk);
}
