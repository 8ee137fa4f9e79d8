/*
 * ember_net.h - structures shared by the TCP metrics BPF program and user space.
 *
 * One definition, included by bpf/net/net.bpf.c and by src/net/.  Only
 * fixed-width types: the layout must be identical on both sides.
 *
 * The kernel keeps three kinds of maps (bpf/net/net.bpf.c says when each
 * is written):
 *
 *   counts0/1      (process, connection 4-tuple) -> ember_net_counts, per
 *                  CPU: bytes, calls, retransmitted segments, resets,
 *                  connection events and the last smoothed RTT.  Every hook
 *                  adds here.  Keyed by the 4-tuple, not by the socket's
 *                  kernel address: a busy server frees and reuses struct
 *                  sock addresses many times a second, a 4-tuple names one
 *                  connection.  Double-buffered like the profiler's stacks:
 *                  user space flips `active_gen`, waits a grace period,
 *                  then reads and clears the old generation, so nothing is
 *                  lost while draining.
 *   drops0/1       (process, 4-tuple, reason) -> packets freed by kfree_skb
 *                  with that drop reason, per CPU, double-buffered.
 *   socks          socket address -> ember_net_sock: the owner (the first
 *                  process seen using it), role (connect, accept, listen),
 *                  addresses and namespace.  Hooks that run in softirq,
 *                  where the current task is not the owner, find the
 *                  owner here.  User space deletes an entry once the kernel
 *                  marked it destroyed.
 *   listeners      (netns, port) -> the process that listens there: an
 *                  accepted socket's owner until the server first touches
 *                  it (the accept runs in softirq, with no process).
 */
#ifndef EMBER_BPF_NET_H
#define EMBER_BPF_NET_H

#include <linux/types.h>

#define EMBER_NET_COMM_LEN 16

/* How a socket came to be. */
enum ember_net_role {
	EMBER_NET_ROLE_UNKNOWN = 0, /* first seen mid-life (before Ember started) */
	EMBER_NET_ROLE_ACTIVE = 1,  /* connect(): the process is the client */
	EMBER_NET_ROLE_PASSIVE = 2, /* accepted from a listener: the process is the server */
	EMBER_NET_ROLE_LISTEN = 3,  /* a listening socket (no traffic of its own) */
};

/* TCP states (include/net/tcp_states.h), stable kernel ABI. */
enum ember_tcp_state {
	EMBER_TCP_ESTABLISHED = 1,
	EMBER_TCP_SYN_SENT = 2,
	EMBER_TCP_SYN_RECV = 3,
	EMBER_TCP_FIN_WAIT1 = 4,
	EMBER_TCP_FIN_WAIT2 = 5,
	EMBER_TCP_TIME_WAIT = 6,
	EMBER_TCP_CLOSE = 7,
	EMBER_TCP_CLOSE_WAIT = 8,
	EMBER_TCP_LAST_ACK = 9,
	EMBER_TCP_LISTEN = 10,
	EMBER_TCP_CLOSING = 11,
};

/* Value of the socks map. */
struct ember_net_sock {
	__u32 tgid;       /* owner: the first process seen using it, 0 = not yet known */
	__u32 netns;      /* inode number of its network namespace */
	__u16 family;     /* AF_INET or AF_INET6 */
	__u8 role;        /* enum ember_net_role */
	__u8 state;       /* last TCP state seen */
	__u16 sport;      /* local port, host byte order */
	__u16 dport;      /* remote port, host byte order */
	__u8 saddr[16];   /* local address; IPv4 in the first 4 bytes */
	__u8 daddr[16];   /* remote address */
	__u64 born_ns;    /* when Ember first saw this socket (bpf_ktime_get_ns): tells a
			     reused struct sock from the old one */
	__u64 syn_ns;     /* when connect() sent the SYN */
	__u32 retrans_seen; /* tcp_sock.total_retrans when last looked at */
	__u32 listener_tgid; /* accepted socket: the owner of its listener at the accept */
	__u8 destroyed;   /* the kernel freed the socket: user space deletes the entry */
	__u8 pad[7];
	char comm[EMBER_NET_COMM_LEN]; /* thread name of the owner at first sight */
};
_Static_assert(sizeof(struct ember_net_sock) == 96, "ember_net_sock layout");

/* Key of the listeners map: who listens on a port, for accepts in softirq. */
struct ember_net_listen_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

/* A connection as the kernel saw it at the event, and the process. */
struct ember_net_key {
	__u32 tgid;     /* the process; 0 when the event came without one (softirq)
			   and the socket's owner was not known yet */
	__u16 family;   /* AF_INET or AF_INET6 */
	__u16 sport;    /* local port, host byte order (0 before connect binds one) */
	__u16 dport;    /* remote port */
	__u16 pad;
	__u32 pad2;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes, the rest zero */
	__u8 daddr[16];
};
_Static_assert(sizeof(struct ember_net_key) == 48, "ember_net_key layout");

/* Per-CPU counters of one (process, connection), since the last drain. */
struct ember_net_counts {
	__u64 bytes_sent;
	__u64 bytes_recv;
	__u32 sends;        /* send calls that moved bytes */
	__u32 recvs;        /* receive calls that moved bytes */
	__u32 retrans;      /* retransmitted segments */
	__u32 resets_sent;
	__u32 resets_recv;
	__u32 srtt_us;      /* smoothed RTT at the first send/receive on this CPU, 0 = none */
	__u32 established;  /* connects that reached ESTABLISHED */
	__u32 accepts;      /* passive opens (SYN_RECV -> ESTABLISHED) */
	__u32 failures;     /* connects that ended before ESTABLISHED (refused, timed out) */
	__u32 closes;       /* established connections that closed */
	__u32 connect_us;   /* SYN sent to ESTABLISHED, when established */
	__u32 pad;
};
_Static_assert(sizeof(struct ember_net_counts) == 64, "ember_net_counts layout");

struct ember_net_drop_key {
	struct ember_net_key conn;
	__u32 reason; /* enum skb_drop_reason of the running kernel (names from its BTF) */
	__u32 pad;
};

/* Counters in the per-CPU net_stats map, indexed by this enum. */
enum ember_net_stat {
	EMBER_NET_STAT_SENDS,        /* send events on TCP sockets */
	EMBER_NET_STAT_RECVS,        /* receive events on TCP sockets */
	EMBER_NET_STAT_STATE_CHANGES,/* TCP state changes seen */
	EMBER_NET_STAT_RETRANSMITS,  /* retransmit events */
	EMBER_NET_STAT_RESETS,       /* resets sent or received */
	EMBER_NET_STAT_DROPS,        /* kfree_skb of a known TCP socket */
	EMBER_NET_STAT_SOCKS_FULL,   /* socks map full: socket not tracked */
	EMBER_NET_STAT_COUNTS_FULL,  /* counts map full: event lost */
	EMBER_NET_STAT_DROPS_FULL,   /* drops map full: drop lost */
	EMBER_NET_STAT_NO_OWNER,     /* softirq event on a socket never seen from a process */
	EMBER_NET_STAT_STASH_FULL,   /* kprobe path: entry/return stash full */
	EMBER_NET_STAT__COUNT,
};

#ifndef __BPF__
static const char *const ember_net_stat_names[EMBER_NET_STAT__COUNT] = {
	"sends",       "recvs",        "state_changes", "retransmits",
	"resets",      "drops",        "socks_full",    "counts_full",
	"drops_full",  "no_owner",     "stash_full",
};
#endif

#endif
