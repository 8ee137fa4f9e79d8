/*
 * ember_spans.h - what bpf/spans/spans.bpf.c and src/spans/ share.
 *
 * The kernel side hooks the socket syscalls (read, write, readv, writev,
 * sendto, recvfrom, sendmsg, recvmsg, sendfile, close), keeps one state per
 * (process, fd) of a TCP socket, infers the protocol from the first bytes
 * seen in either direction, and from then on sends user space the head of
 * each payload.  Two channels (ring buffers, or perf buffers on kernels
 * without them):
 *
 *   ctl_events   struct ember_span_ctl: a connection's protocol was
 *                inferred (with its addresses), it closed, its process
 *                exited.  Small and rare, so a flood of data never drops
 *                the events that bound the tracker's state.
 *   data_events  struct ember_span_data, then `captured` payload bytes: one per
 *                syscall that moved bytes on an inferred connection.
 *
 * Connections whose first bytes match no protocol are dropped in the
 * kernel and counted (EMBER_SPAN_STAT_UNKNOWN_*).
 *
 * Per-endpoint CPU: when a server reads the start of a request, the kernel
 * gives the request an id (req_id, in the data event) and sets
 * span_threads[tid] = req_id; the write of the response sets it back to 0
 * (none: the entry stays until the thread exits).  User space, once it has
 * parsed the request, sets span_req_endpoint[req_id] = endpoint id (in one
 * batch per poll).  The perf-event sampler (bpf/unwind/profiler.bpf.c) puts
 * the thread's req_id in the sample's key (span_threads is shared by file
 * descriptor); when user space drains the sample, a second or more later,
 * it finds the endpoint in span_req_endpoint.  So a sample is attributed
 * however late the request is parsed, and only to its own request.
 *
 * TLS (uprobes on OpenSSL's SSL_read/SSL_write and Go's crypto/tls
 * (*Conn).Read/Write, bpf/spans/tls.bpf.h): the plaintext goes through the
 * same inference and the same two channels, on connection states of its
 * own (tls_conns), flagged tls in the control event and EMBER_SPAN_F_TLS in
 * the data events.  The syscall hooks keep seeing the ciphertext of those
 * sockets, which matches no protocol and is dropped as unknown.
 *
 * Only fixed-width types: the layout must be identical on both sides.
 */
#ifndef EMBER_BPF_SPANS_H
#define EMBER_BPF_SPANS_H

#include <linux/types.h>

#define EMBER_SPANS_MAX_HEAD 4096     /* largest payload head user space may ask for */
#define EMBER_SPANS_DEFAULT_HEAD 1024 /* default payload head */
#define EMBER_SPANS_MAX_IOV 8         /* iovecs of a vectored call copied from */
#define EMBER_SPANS_INFER_TRIES 3     /* unmatched payloads before a connection is unknown */
#define EMBER_SPANS_MAX_CONNS 65536   /* kernel connection states (LRU) */
#define EMBER_SPANS_MAX_THREADS 16384 /* threads serving a request (span_threads) */
#define EMBER_SPANS_MAX_REQS 16384    /* request -> endpoint tags (span_req_endpoint, LRU) */

enum ember_span_proto {
	EMBER_PROTO_UNKNOWN = 0,
	EMBER_PROTO_HTTP = 1,
	EMBER_PROTO_MYSQL = 2,
	EMBER_PROTO_PGSQL = 3,
	EMBER_PROTO_REDIS = 4,
	EMBER_PROTO__COUNT,
};

enum ember_span_role {
	EMBER_ROLE_UNKNOWN = 0,
	EMBER_ROLE_CLIENT = 1, /* this process sends the requests */
	EMBER_ROLE_SERVER = 2, /* this process answers them */
};

enum ember_span_dir {
	EMBER_DIR_EGRESS = 0,  /* written by the process */
	EMBER_DIR_INGRESS = 1, /* read by the process */
};

enum ember_span_ctl_type {
	EMBER_CTL_OPEN = 1,  /* protocol inferred: the connection is traced from now on */
	EMBER_CTL_CLOSE = 2, /* closed (close(2), or the fd now names another socket) */
	EMBER_CTL_EXIT = 3,  /* the process exited: its connections are gone */
};

struct ember_span_ctl {
	__u32 type;   /* enum ember_span_ctl_type */
	__u32 tgid;
	__u32 tid;
	__u32 fd;
	__u64 conn_id; /* unique per traced connection (0 for EXIT) */
	__u64 ts_ns;   /* bpf_ktime_get_ns() */
	__u8 proto;    /* enum ember_span_proto */
	__u8 role;     /* enum ember_span_role */
	__u16 family;  /* AF_INET or AF_INET6 */
	__u16 lport;   /* local port, host order */
	__u16 rport;   /* remote port, host order */
	__u8 laddr[16]; /* IPv4 in the first 4 bytes, network order */
	__u8 raddr[16];
	char comm[16];
	__u8 tls;      /* plaintext read at the TLS library (uprobes), not the socket */
	__u8 pad[7];
};

/* Flags of a data event. */
#define EMBER_SPAN_F_TRUNCATED (1u << 0) /* len > captured: the rest was not copied */
#define EMBER_SPAN_F_LOST_BEFORE (1u << 1) /* an earlier event of this connection was lost */
#define EMBER_SPAN_F_NEW_TURN (1u << 2)   /* first event in this direction since the other's */
#define EMBER_SPAN_F_TLS (1u << 3)        /* plaintext read at the TLS library (uprobes) */

struct ember_span_data {
	__u64 conn_id;
	__u64 ts_ns;    /* at the syscall's exit */
	__u64 req_id;   /* server: id of the request this read starts, else 0 */
	__u32 tgid;
	__u32 tid;
	__u32 fd;
	__u32 len;      /* bytes the syscall moved */
	__u32 captured; /* payload bytes that follow the header */
	__u8 dir;       /* enum ember_span_dir */
	__u8 proto;
	__u8 role;
	__u8 flags;     /* EMBER_SPAN_F_* */
	__u8 pad[8];
	/* `captured` payload bytes follow (at offset 56) */
};

#ifdef __BPF__
/*
 * The maps the span programs and the sampler share, defined once for both
 * objects: span_threads (tid -> request being served, kernel-written) and
 * span_req_endpoint (req_id -> endpoint id, written by user space).  The
 * sampler's copies are replaced by the span object's with
 * bpf_map__reuse_fd before load.
 */
#define EMBER_SPAN_SHARED_MAPS                                                              \
	struct {                                                                            \
		__uint(type, BPF_MAP_TYPE_HASH);                                            \
		__uint(max_entries, EMBER_SPANS_MAX_THREADS);                               \
		__type(key, __u32);                                                         \
		__type(value, __u64);                                                       \
	} span_threads SEC(".maps");                                                        \
	struct {                                                                            \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                                        \
		__uint(max_entries, EMBER_SPANS_MAX_REQS);                                  \
		__type(key, __u64);                                                         \
		__type(value, __u32);                                                       \
	} span_req_endpoint SEC(".maps")
#endif

/* Kernel state of one (process, fd); user space only reads it (tests). */
struct ember_conn_key {
	__u32 tgid;
	__u32 fd;
};

#define EMBER_CONN_F_LOST (1u << 0)      /* an event was lost since the last one sent */
#define EMBER_CONN_F_UNKNOWN (1u << 1)   /* gave up: no protocol matched */

struct ember_conn_state {
	__u64 sk;      /* struct sock *: identity of the socket behind the fd */
	__u64 conn_id; /* 0 until the protocol is inferred */
	__u64 req_id;  /* server: the request being served */
	__u8 proto;
	__u8 role;
	__u8 tries;    /* payloads that matched no protocol */
	__u8 flags;    /* EMBER_CONN_F_* */
	__u8 last_dir; /* direction of the last event + 1, 0 = none yet */
	__u8 pad[3];
	__u64 file;    /* struct file * the fd held at the last call: tcp_sock_cached() */
};

/* Counters in the per-CPU span_stats map, indexed by this enum. */
enum ember_span_stat {
	EMBER_SPAN_STAT_CALLS,          /* hooked syscalls on TCP sockets that moved bytes */
	EMBER_SPAN_STAT_INFERRED,       /* connections whose protocol was inferred */
	EMBER_SPAN_STAT_UNKNOWN_CONNS,  /* connections given up: no protocol matched */
	EMBER_SPAN_STAT_UNKNOWN_EVENTS, /* calls on unknown connections dropped */
	EMBER_SPAN_STAT_DATA_EVENTS,    /* data events sent */
	EMBER_SPAN_STAT_DATA_LOST,      /* data events lost (ring or perf buffer full) */
	EMBER_SPAN_STAT_CTL_EVENTS,     /* control events sent */
	EMBER_SPAN_STAT_CTL_LOST,       /* control events lost */
	EMBER_SPAN_STAT_TRUNCATED,      /* payloads longer than the head */
	EMBER_SPAN_STAT_ARGS_FULL,      /* per-thread syscall arguments map full */
	EMBER_SPAN_STAT_CONNS_FULL,     /* connection map update failed */
	EMBER_SPAN_STAT_FD_REUSED,      /* fd now names another socket (close not seen) */
	EMBER_SPAN_STAT_CLOSES,         /* traced connections closed */
	EMBER_SPAN_STAT_PEEKS,          /* MSG_PEEK reads skipped (read again later) */
	EMBER_SPAN_STAT_THREADS_FULL,   /* span_threads full: a request's thread untagged */
	EMBER_SPAN_STAT_TLS_CALLS,      /* TLS library calls that moved plaintext */
	EMBER_SPAN_STAT_TLS_NO_FD,      /* TLS calls whose socket was not found (dropped) */
	EMBER_SPAN_STAT_TLS_NO_ENTRY,   /* TLS returns without their entry (dropped) */
	EMBER_SPAN_STAT_TLS_CALLS_FULL, /* per-thread/goroutine TLS call map update failed */
	EMBER_SPAN_STAT_FD_CACHED,      /* socket calls whose fd still held the file last seen */
	EMBER_SPAN_STAT__COUNT,
};

#ifndef __BPF__
static const char *const ember_span_stat_names[EMBER_SPAN_STAT__COUNT] = {
	"calls",      "inferred",   "unknown_conns", "unknown_events", "data_events",
	"data_lost",  "ctl_events", "ctl_lost",      "truncated",      "args_full",
	"conns_full", "fd_reused",  "closes",        "peeks",          "threads_full",
	"tls_calls",  "tls_no_fd",  "tls_no_entry",  "tls_calls_full", "fd_cached",
};
#endif

#endif
