// SPDX-License-Identifier: GPL-2.0
/*
 * spans.bpf.c - L7 capture: socket syscalls, protocol inference, payload heads.
 *
 * A hooked syscall is handled at its exit (on_call_exit), where the
 * arguments are read back from the registers the task entered the kernel
 * with (the task's pt_regs: bpf_task_pt_regs, or the raw sys_exit
 * tracepoint's own argument).  Only a call that moved bytes goes further:
 * its fd is looked up in the task's file table (tcp_sock_of), and on a TCP
 * socket the head of the payload (at most payload_max bytes, over up to
 * EMBER_SPANS_MAX_IOV iovecs) is copied into a per-CPU scratch event
 * (on_bytes).  A connection without a protocol yet is inferred from those
 * bytes (infer()): HTTP/1.x, MySQL, PostgreSQL or Redis, and whether they
 * are a request or a response, which with the direction gives the role.
 * After EMBER_SPANS_INFER_TRIES misses the connection is marked unknown
 * and its calls are dropped, counted.  Inferred connections send the event
 * to user space (data_events).  So a syscall that fails or would block (a
 * non-blocking server's EAGAIN), or moves bytes of a file or pipe, costs
 * one short program run, and no map is touched for it.
 *
 * Without bpf_task_pt_regs (kernels before 5.15, or without BTF) the
 * syscall tracepoints work in two halves instead (args_at_exit = 0):
 *   on_enter   (sys_enter) keeps the call's fd and buffer (or iovec array)
 *              in `args`, keyed by thread, if the fd is a TCP socket whose
 *              connection is not known to carry an unknown protocol;
 *   on_exit    (sys_exit) takes them back and goes on as above.
 *
 * close(2) ends a connection's state (a control event if it was traced).
 * State is per (tgid, fd) in an LRU map, tagged with the struct sock the fd
 * pointed to: an fd that names another socket now (a close this program
 * did not see, a dup2) restarts the state.
 *
 * Hooks, chosen by user space at load time (src/spans/capture.c):
 *   - the syscalls:sys_exit_* tracepoints of the hooked calls, and
 *     sys_enter_close (needs tracefs; only those syscalls pay for the
 *     hook); sys_enter_* too in the two-halves mode;
 *   - else raw_tracepoint sys_exit alone, filtering the syscall number
 *     here (every syscall pays a few instructions); close is handled at
 *     its exit.
 *
 * Transport: BPF ring buffers (5.8+) or, where the kernel has none or
 * --force-perfbuf asks, perf buffers: user space retypes the two maps before
 * load and sets use_ringbuf, so the verifier never sees the other helper.
 * Output never blocks; a failed output is counted and flags the
 * connection, so user space knows its stream has a hole.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "ember_bpf_helpers.h"
#include "ember_spans.h"
#include "kernel_types.h"

char LICENSE[] SEC("license") = "GPL";

/* x86_64 syscall numbers */
#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_readv 19
#define NR_writev 20
#define NR_sendfile 40
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47

#define MSG_PEEK 2
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10

#define HEAD_MAX EMBER_SPANS_MAX_HEAD

/* Set by user space before load. */
const volatile __u32 payload_max = EMBER_SPANS_DEFAULT_HEAD;
const volatile __u32 self_tgid = 0; /* the agent itself is never traced */
const volatile __u8 use_ringbuf = 1;
const volatile __u8 tls_on = 0; /* TLS uprobes loaded: syscalls tell them their fd */
/* Syscall arguments read at exit from the task's registers (bpf_task_pt_regs), no sys_enter. */
const volatile __u8 args_at_exit = 0;
/* bpf_get_current_task_btf works: the file table is walked with plain loads. */
const volatile __u8 have_task_btf = 0;

enum call_kind { CALL_DATA = 0, CALL_SENDFILE = 1 };

struct call_args {
	__u64 buf;    /* buffer, or iovec array when iovcnt > 0 */
	__u64 sk;
	__u64 file;   /* struct file * at fd when sk was found, 0 if not known */
	__u32 fd;
	__u32 iovcnt;
	__u8 dir;
	__u8 kind;
	__u8 pad[6];
};

/* The data event and room for a payload head placed anywhere below HEAD_MAX. */
struct scratch {
	struct ember_span_data ev;
	__u8 payload[2 * HEAD_MAX];
};

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call_args);
} args SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EMBER_SPANS_MAX_CONNS);
	__type(key, struct ember_conn_key);
	__type(value, struct ember_conn_state);
} conns SEC(".maps");

/* The same for the plaintext of TLS connections (tls.bpf.h): the syscalls see ciphertext. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EMBER_SPANS_MAX_CONNS);
	__type(key, struct ember_conn_key);
	__type(value, struct ember_conn_state);
} tls_conns SEC(".maps");

/* Processes with a traced connection: their exit is reported. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} traced_procs SEC(".maps");

/* Per-endpoint CPU: shared with the profiler (ember_spans.h). */
EMBER_SPAN_SHARED_MAPS;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EMBER_SPAN_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} span_stats SEC(".maps");

/* Sizes are set by user space; perf event arrays in the fallback. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ctl_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} data_events SEC(".maps");

/* ---- helpers ------------------------------------------------------------- */

static __always_inline void count_stat(__u32 which)
{
	ember_count(&span_stats, which);
}

static __always_inline long emit(void *ctx, void *map, void *data, __u64 size)
{
	if (use_ringbuf)
		return bpf_ringbuf_output(map, data, size, 0);
	return bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, data, size);
}

/*
 * Data events do not wake the reader, which drains the ring every few
 * milliseconds anyway (one wakeup per event would cost more than the event
 * itself at high rates); past half full they do.
 */
static __always_inline long emit_data(void *ctx, void *data, __u64 size)
{
	if (!use_ringbuf)
		return bpf_perf_event_output(ctx, &data_events, BPF_F_CURRENT_CPU, data, size);
	__u64 flags = bpf_ringbuf_query(&data_events, BPF_RB_AVAIL_DATA) >
				      bpf_ringbuf_query(&data_events, BPF_RB_RING_SIZE) / 2
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;
	return bpf_ringbuf_output(&data_events, data, size, flags);
}

/* A fresh id: nanoseconds and CPU, unique on this host while it runs. */
static __always_inline __u64 new_id(void)
{
	return (bpf_ktime_get_ns() << 6) | (bpf_get_smp_processor_id() & 63);
}

/* The state of connection (tgid, fd) in map (conns or tls_conns), 0 if none. */
static __always_inline struct ember_conn_state *conn_of(void *map, __u32 tgid, __u32 fd)
{
	struct ember_conn_key key = {.tgid = tgid, .fd = fd};
	return bpf_map_lookup_elem(map, &key);
}

/* The struct file at fd in the current task's file table, 0 if none. */
static __always_inline __u64 file_at(__u32 fd)
{
	struct file___ember **fds;
	__u64 f = 0;

	if (have_task_btf) {
		/* plain loads through BTF pointers, not one helper call each */
		struct task_struct___ember *task = (void *)bpf_get_current_task_btf();
		struct fdtable___ember *fdt = task->files->fdt;
		if (!fdt || fd >= fdt->max_fds)
			return 0;
		fds = fdt->fd;
	} else {
		struct task_struct___ember *task = (void *)bpf_get_current_task();
		struct fdtable___ember *fdt = BPF_CORE_READ(task, files, fdt);
		if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
			return 0;
		fds = BPF_CORE_READ(fdt, fd);
	}
	if (!fds || bpf_core_read(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

/* The struct sock of an open file if it is a TCP socket (IPv4 or IPv6), else 0. */
static __always_inline __u64 tcp_sock_of_file(__u64 file)
{
	struct file___ember *f = (void *)file;

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket___ember *sock = BPF_CORE_READ(f, private_data);
	struct sock___ember *sk = sock ? BPF_CORE_READ(sock, sk) : 0;
	if (!sk)
		return 0;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	return (__u64)sk;
}

/* The struct sock behind fd if it is a TCP socket (IPv4 or IPv6), else 0. */
static __always_inline __u64 tcp_sock_of(__u32 fd)
{
	return tcp_sock_of_file(file_at(fd));
}

/*
 * The same for a call on (tgid, fd) whose state is st (0 if none): when
 * the fd still holds the file st last saw and that file's socket is still
 * st's sock, the file is that TCP socket and its inode, protocol and
 * family need no reading.  A struct file freed and reused for something
 * else would have to point at the same struct sock (a TCP sock's memory
 * is only ever reused for TCP socks) to pass.
 */
static __always_inline __u64 tcp_sock_cached(__u32 fd, const struct ember_conn_state *st,
					     __u64 *file)
{
	*file = file_at(fd);
	if (!*file)
		return 0;
	if (st && st->file == *file) {
		struct socket___ember *sock = BPF_CORE_READ((struct file___ember *)*file, private_data);
		if (sock && (__u64)BPF_CORE_READ(sock, sk) == st->sk) {
			count_stat(EMBER_SPAN_STAT_FD_CACHED);
			return st->sk;
		}
	}
	return tcp_sock_of_file(*file);
}

/* ---- protocol inference -------------------------------------------------- */

/*
 * The first 16 bytes are held in two scalars, not a stack array: clang
 * turns indexing with offsets it merged into pointer arithmetic the
 * verifier refuses on the stack.
 */
struct head16 {
	__u64 lo, hi;
};

#define B(h, i) ((__u8)((i) < 8 ? (h)->lo >> (8 * (i)) : (h)->hi >> (8 * ((i) - 8))))

enum { MSG_NONE, MSG_REQUEST, MSG_RESPONSE };

static __always_inline __u32 be32_at(const struct head16 *h, int i)
{
	return ((__u32)B(h, i) << 24) | ((__u32)B(h, i + 1) << 16) | ((__u32)B(h, i + 2) << 8) |
	       B(h, i + 3);
}

static __always_inline int printable(__u8 c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r';
}

static __always_inline int http_request(const struct head16 *h, __u32 n)
{
	if (n < 5)
		return 0;
	switch (B(h, 0)) {
	case 'G':
		return B(h, 1) == 'E' && B(h, 2) == 'T' && B(h, 3) == ' ';
	case 'P':
		if (B(h, 1) == 'U')
			return B(h, 2) == 'T' && B(h, 3) == ' ';
		if (B(h, 1) == 'O')
			return B(h, 2) == 'S' && B(h, 3) == 'T' && B(h, 4) == ' ';
		return n >= 6 && B(h, 1) == 'A' && B(h, 2) == 'T' && B(h, 3) == 'C' &&
		       B(h, 4) == 'H' && B(h, 5) == ' ';
	case 'H':
		return B(h, 1) == 'E' && B(h, 2) == 'A' && B(h, 3) == 'D' && B(h, 4) == ' ';
	case 'D':
		return n >= 7 && B(h, 1) == 'E' && B(h, 2) == 'L' && B(h, 3) == 'E' &&
		       B(h, 4) == 'T' && B(h, 5) == 'E' && B(h, 6) == ' ';
	case 'O':
		return n >= 8 && B(h, 1) == 'P' && B(h, 2) == 'T' && B(h, 3) == 'I' &&
		       B(h, 4) == 'O' && B(h, 5) == 'N' && B(h, 6) == 'S' && B(h, 7) == ' ';
	}
	return 0;
}

static __always_inline int http_response(const struct head16 *h, __u32 n)
{
	return n >= 12 && B(h, 0) == 'H' && B(h, 1) == 'T' && B(h, 2) == 'T' && B(h, 3) == 'P' &&
	       B(h, 4) == '/' && B(h, 5) == '1' && B(h, 6) == '.' && B(h, 8) == ' ';
}

static __always_inline int digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/* RESP array of bulk strings: "*N\r\n$" with 1 to 3 digits. */
static __always_inline int redis_request(const struct head16 *h, __u32 n)
{
	if (n < 8 || B(h, 0) != '*' || B(h, 1) < '1' || B(h, 1) > '9')
		return 0;
	if (B(h, 2) == '\r')
		return B(h, 3) == '\n' && B(h, 4) == '$';
	if (!digit(B(h, 2)))
		return 0;
	if (B(h, 3) == '\r')
		return B(h, 4) == '\n' && B(h, 5) == '$';
	return digit(B(h, 3)) && B(h, 4) == '\r' && B(h, 5) == '\n' && B(h, 6) == '$';
}

/*
 * MySQL: a packet is a 3-byte little-endian length and a sequence number.
 * The server's greeting (sequence 0, protocol 10, a version string), or a
 * command (sequence 0): 0x03 query, 0x16 prepare (SQL text follows), 0x17
 * execute (iteration count 1), 0x19 close statement (4-byte id), 0x0b
 * connect.
 */
static __always_inline int mysql_message(const struct head16 *h, __u32 n, __u32 len)
{
	if (n < 5 || B(h, 3) != 0)
		return MSG_NONE;
	__u32 plen = B(h, 0) | ((__u32)B(h, 1) << 8) | ((__u32)B(h, 2) << 16);
	if (plen == 0 || plen + 4 > len)
		return MSG_NONE;
	switch (B(h, 4)) {
	case 0x0a: /* greeting: "5.5.5-10.11.6-MariaDB\0", "8.0.36\0" */
		return plen + 4 == len && plen >= 32 && n >= 6 && B(h, 5) >= '1' && B(h, 5) <= '9'
			       ? MSG_RESPONSE
			       : MSG_NONE;
	case 0x03:
	case 0x16:
		return plen >= 2 && n >= 6 && printable(B(h, 5)) ? MSG_REQUEST : MSG_NONE;
	case 0x17:
		return plen >= 10 && n >= 14 && B(h, 10) == 1 && B(h, 11) == 0 && B(h, 12) == 0 &&
				       B(h, 13) == 0
			       ? MSG_REQUEST
			       : MSG_NONE;
	case 0x19:
		return plen == 5 ? MSG_REQUEST : MSG_NONE;
	case 0x0b:
		return plen == 1 ? MSG_REQUEST : MSG_NONE;
	}
	return MSG_NONE;
}

/*
 * PostgreSQL: the startup message (length, protocol 3.0), SSLRequest or
 * GSSENCRequest; or a typed frontend message Q, P, B, E or S with a
 * plausible length (type byte, then a big-endian length counting itself).
 */
static __always_inline int pgsql_request(const struct head16 *h, __u32 n, __u32 len)
{
	if (n < 8)
		return 0;
	__u32 l = be32_at(h, 0), code = be32_at(h, 4);
	if (l == len && (code == 0x00030000 || (l == 8 && (code == 80877103 || code == 80877104))))
		return 1;
	__u32 ml = be32_at(h, 1);
	if (ml < 4 || ml + 1 > len || ml > (1u << 24))
		return 0;
	switch (B(h, 0)) {
	case 'Q':
		return ml >= 5 && printable(B(h, 5));
	case 'S':
		return ml == 4;
	case 'P': /* statement name (often empty), then the query */
	case 'B': /* portal name, statement name */
	case 'E': /* portal name, row limit */
		return ml >= 8 && (B(h, 5) == 0 || printable(B(h, 5)));
	}
	return 0;
}

/* Protocol of a connection's first bytes; *kind is MSG_REQUEST or MSG_RESPONSE. */
static __always_inline __u8 infer(const __u8 *payload, __u32 n, __u32 len, int *kind)
{
	struct head16 h;

	if (n > 16)
		n = 16;
	__builtin_memcpy(&h, payload, sizeof(h)); /* bytes past n are ignored below */
	if (http_request(&h, n)) {
		*kind = MSG_REQUEST;
		return EMBER_PROTO_HTTP;
	}
	if (http_response(&h, n)) {
		*kind = MSG_RESPONSE;
		return EMBER_PROTO_HTTP;
	}
	if (redis_request(&h, n)) {
		*kind = MSG_REQUEST;
		return EMBER_PROTO_REDIS;
	}
	if (pgsql_request(&h, n, len)) {
		*kind = MSG_REQUEST;
		return EMBER_PROTO_PGSQL;
	}
	*kind = mysql_message(&h, n, len);
	return *kind != MSG_NONE ? EMBER_PROTO_MYSQL : EMBER_PROTO_UNKNOWN;
}

/* ---- events ------------------------------------------------------------- */

static __always_inline void send_ctl(void *ctx, __u32 type, __u32 tgid, __u32 fd,
				     const struct ember_conn_state *st, __u64 sk_addr, __u8 tls)
{
	struct ember_span_ctl ev = {};

	ev.type = type;
	ev.tls = tls;
	ev.tgid = tgid;
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.fd = fd;
	ev.ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (st) {
		ev.conn_id = st->conn_id;
		ev.proto = st->proto;
		ev.role = st->role;
	}
	if (sk_addr) {
		struct sock___ember *sk = (void *)sk_addr;
		ev.family = BPF_CORE_READ(sk, __sk_common.skc_family);
		ev.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		__u16 dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
		ev.rport = (__u16)((dport >> 8) | (dport << 8));
		if (ev.family == AF_INET6) {
			BPF_CORE_READ_INTO(&ev.laddr, sk, __sk_common.skc_v6_rcv_saddr);
			BPF_CORE_READ_INTO(&ev.raddr, sk, __sk_common.skc_v6_daddr);
		} else {
			BPF_CORE_READ_INTO((__u32 *)ev.laddr, sk, __sk_common.skc_rcv_saddr);
			BPF_CORE_READ_INTO((__u32 *)ev.raddr, sk, __sk_common.skc_daddr);
		}
	}
	if (emit(ctx, &ctl_events, &ev, sizeof(ev)))
		count_stat(EMBER_SPAN_STAT_CTL_LOST);
	else
		count_stat(EMBER_SPAN_STAT_CTL_EVENTS);
}

/* Copy the head of the payload (at most payload_max bytes of the ret moved). */
static __always_inline __u32 copy_payload(struct scratch *s, const struct call_args *a, __u64 ret)
{
	__u32 want = ret < payload_max ? (__u32)ret : payload_max;

	if (want > HEAD_MAX)
		want = HEAD_MAX;
	if (!a->iovcnt)
		return read_user(s->payload, want, (void *)a->buf) ? 0 : want;

	__u32 off = 0;
	for (int i = 0; i < EMBER_SPANS_MAX_IOV; i++) {
		struct {
			__u64 base, len;
		} iov;
		if (i >= a->iovcnt || off >= want)
			break;
		if (read_user(&iov, sizeof(iov), (void *)(a->buf + i * sizeof(iov))))
			break;
		__u64 n = want - off;
		if (iov.len < n)
			n = iov.len;
		if (off >= HEAD_MAX || n > HEAD_MAX)
			break;
		/* no-ops that keep both bounds visible to the verifier */
		__u32 o = off & (HEAD_MAX - 1);
		asm volatile("" : "+r"(o));
		o &= HEAD_MAX - 1;
		if (read_user(s->payload + o, (__u32)n, (void *)iov.base))
			break;
		off += (__u32)n;
	}
	return off;
}

static __always_inline void close_in(void *ctx, void *map, __u32 tgid, __u32 fd, __u8 tls)
{
	struct ember_conn_key key = {.tgid = tgid, .fd = fd};
	struct ember_conn_state *st = bpf_map_lookup_elem(map, &key);

	if (!st)
		return;
	if (st->conn_id) {
		send_ctl(ctx, EMBER_CTL_CLOSE, tgid, fd, st, 0, tls);
		count_stat(EMBER_SPAN_STAT_CLOSES);
	}
	bpf_map_delete_elem(map, &key);
}

static __always_inline void on_close(void *ctx, __u32 tgid, __u32 fd)
{
	close_in(ctx, &conns, tgid, fd, 0);
	if (tls_on)
		close_in(ctx, &tls_conns, tgid, fd, 1);
}

/* tls.bpf.h: a TLS call in progress on this thread learns the socket it moves bytes on. */
static __always_inline void tls_note_socket(__u64 id, __u32 fd, __u64 sk);
/* tls.bpf.h: the same for a call that moved no bytes (its socket is still worth knowing). */
static __always_inline void tls_note_fd(__u64 id, __u32 fd);

/*
 * What a hooked data syscall (nr, arguments a0..a3) moves: direction,
 * buffer or iovec array, fd.  0 if it is not one to trace (MSG_PEEK, no
 * iovec, not hooked).
 */
static __always_inline int decode_call(__u32 nr, __u64 a0, __u64 a1, __u64 a2, __u64 a3,
				       struct call_args *ca)
{
	switch (nr) {
	case NR_read:
		ca->dir = EMBER_DIR_INGRESS;
		ca->buf = a1;
		break;
	case NR_recvfrom:
		if (a3 & MSG_PEEK) {
			count_stat(EMBER_SPAN_STAT_PEEKS);
			return 0;
		}
		ca->dir = EMBER_DIR_INGRESS;
		ca->buf = a1;
		break;
	case NR_write:
	case NR_sendto:
		ca->dir = EMBER_DIR_EGRESS;
		ca->buf = a1;
		break;
	case NR_readv:
	case NR_writev:
		ca->dir = nr == NR_readv ? EMBER_DIR_INGRESS : EMBER_DIR_EGRESS;
		ca->buf = a1;
		ca->iovcnt = (__u32)a2;
		break;
	case NR_recvmsg:
	case NR_sendmsg: {
		if (nr == NR_recvmsg && (a2 & MSG_PEEK)) {
			count_stat(EMBER_SPAN_STAT_PEEKS);
			return 0;
		}
		/* struct user_msghdr: msg_iov at 16, msg_iovlen at 24 */
		__u64 iov[2];
		if (read_user(iov, sizeof(iov), (void *)(a1 + 16)))
			return 0;
		ca->dir = nr == NR_recvmsg ? EMBER_DIR_INGRESS : EMBER_DIR_EGRESS;
		ca->buf = iov[0];
		ca->iovcnt = iov[1] > EMBER_SPANS_MAX_IOV ? EMBER_SPANS_MAX_IOV : (__u32)iov[1];
		if (!ca->iovcnt)
			return 0;
		break;
	}
	case NR_sendfile:
		ca->dir = EMBER_DIR_EGRESS;
		ca->kind = CALL_SENDFILE;
		break;
	default:
		return 0;
	}
	ca->fd = (__u32)a0;
	return 1;
}

/*
 * A hooked data call (nr, a0..a3) of thread id: fills ca and returns 1 if
 * it is one to trace on a TCP socket, with *stp the connection's state (0
 * if none yet).
 */
static __always_inline int socket_call(__u64 id, __u32 nr, __u64 a0, __u64 a1, __u64 a2, __u64 a3,
				       struct call_args *ca, struct ember_conn_state **stp)
{
	if (!decode_call(nr, a0, a1, a2, a3, ca))
		return 0;
	*stp = conn_of(&conns, id >> 32, ca->fd);
	ca->sk = tcp_sock_cached(ca->fd, *stp, &ca->file);
	if (!ca->sk)
		return 0;
	if (tls_on)
		tls_note_socket(id, ca->fd, ca->sk);
	return 1;
}

/* Two-halves mode: a hooked syscall enters. */
static __always_inline void on_enter(void *ctx, __u32 nr, __u64 a0, __u64 a1, __u64 a2,
				     __u64 a3)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct call_args ca = {};

	if (tgid == self_tgid)
		return;
	if (nr == NR_close) {
		on_close(ctx, tgid, (__u32)a0);
		return;
	}
	struct ember_conn_state *st;
	if (!socket_call(id, nr, a0, a1, a2, a3, &ca, &st))
		return;
	if (st && st->sk == ca.sk) {
		if (st->flags & EMBER_CONN_F_UNKNOWN) {
			count_stat(EMBER_SPAN_STAT_UNKNOWN_EVENTS);
			return;
		}
	} else if (ca.kind == CALL_SENDFILE) {
		return; /* file bytes on a connection not traced yet: nothing to infer from */
	}
	if (bpf_map_update_elem(&args, &id, &ca, BPF_ANY))
		count_stat(EMBER_SPAN_STAT_ARGS_FULL);
}

/*
 * The server of a connection starts or ends serving a request on this
 * thread.  A thread's entry stays once made (0 when it serves nothing, as
 * the sampler reads it) and is written in place: a lookup costs less than
 * an update or a delete.  sched_process_exit removes it.
 */
static __always_inline void tag_thread(struct ember_conn_state *st, struct ember_span_data *ev,
				       __u32 tid)
{
	if (st->role != EMBER_ROLE_SERVER)
		return;
	__u64 *cur = bpf_map_lookup_elem(&span_threads, &tid);
	if (ev->dir == EMBER_DIR_INGRESS) {
		if (!(ev->flags & EMBER_SPAN_F_NEW_TURN))
			return;
		st->req_id = new_id();
		ev->req_id = st->req_id;
		if (cur)
			*cur = st->req_id;
		else if (bpf_map_update_elem(&span_threads, &tid, &st->req_id, BPF_ANY))
			count_stat(EMBER_SPAN_STAT_THREADS_FULL);
		return;
	}
	if (cur && *cur == st->req_id)
		*cur = 0;
}

/*
 * A call on connection (tgid, ca->fd) moved ret bytes: infer, or send its
 * payload head.  map is conns (syscalls) or tls_conns (TLS plaintext); st
 * is the connection's state in it as the caller found it (0 if none).
 */
static __always_inline void on_bytes(void *ctx, void *map, const struct call_args *ca, long ret,
				     __u8 tls, struct ember_conn_state *st)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	__u32 zero = 0;

	struct ember_conn_key key = {.tgid = tgid, .fd = ca->fd};
	if (st && st->sk != ca->sk) {
		count_stat(EMBER_SPAN_STAT_FD_REUSED);
		if (st->conn_id)
			send_ctl(ctx, EMBER_CTL_CLOSE, tgid, ca->fd, st, 0, tls);
		bpf_map_delete_elem(map, &key);
		st = 0;
	}
	if (!st) {
		if (ca->kind == CALL_SENDFILE)
			return; /* file bytes on a connection not traced yet: nothing to infer from */
		struct ember_conn_state init = {.sk = ca->sk, .file = ca->file};
		bpf_map_update_elem(map, &key, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(map, &key);
		if (!st) {
			count_stat(EMBER_SPAN_STAT_CONNS_FULL);
			return;
		}
	} else if (ca->file && st->file != ca->file) {
		st->file = ca->file;
	}
	if (st->flags & EMBER_CONN_F_UNKNOWN) {
		count_stat(EMBER_SPAN_STAT_UNKNOWN_EVENTS);
		return;
	}
	if (!tls)
		count_stat(EMBER_SPAN_STAT_CALLS);
	if (ca->kind == CALL_SENDFILE && !st->conn_id)
		return;

	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return;
	__u32 captured = ca->kind == CALL_SENDFILE ? 0 : copy_payload(s, ca, (__u64)ret);

	if (!st->conn_id) {
		int kind = MSG_NONE;
		__u8 proto = captured ? infer(s->payload, captured, (__u32)ret, &kind)
				      : EMBER_PROTO_UNKNOWN;
		if (proto == EMBER_PROTO_UNKNOWN) {
			count_stat(EMBER_SPAN_STAT_UNKNOWN_EVENTS);
			if (++st->tries >= EMBER_SPANS_INFER_TRIES) {
				st->flags |= EMBER_CONN_F_UNKNOWN;
				count_stat(EMBER_SPAN_STAT_UNKNOWN_CONNS);
			}
			return;
		}
		/* a request sent, or a response received, makes a client */
		st->role = (kind == MSG_REQUEST) == (ca->dir == EMBER_DIR_EGRESS) ? EMBER_ROLE_CLIENT
										  : EMBER_ROLE_SERVER;
		st->proto = proto;
		st->conn_id = new_id();
		count_stat(EMBER_SPAN_STAT_INFERRED);
		__u8 one = 1;
		bpf_map_update_elem(&traced_procs, &tgid, &one, BPF_ANY);
		send_ctl(ctx, EMBER_CTL_OPEN, tgid, ca->fd, st, ca->sk, tls);
	}

	struct ember_span_data *ev = &s->ev;
	ev->conn_id = st->conn_id;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->req_id = 0;
	ev->tgid = tgid;
	ev->tid = tid;
	ev->fd = ca->fd;
	ev->len = ret > 0xffffffffL ? 0xffffffffu : (__u32)ret;
	ev->captured = captured;
	ev->dir = ca->dir;
	ev->proto = st->proto;
	ev->role = st->role;
	ev->flags = tls ? EMBER_SPAN_F_TLS : 0;
	if (captured < ev->len && ca->kind != CALL_SENDFILE) {
		ev->flags |= EMBER_SPAN_F_TRUNCATED;
		count_stat(EMBER_SPAN_STAT_TRUNCATED);
	}
	if (st->last_dir != ca->dir + 1) {
		ev->flags |= EMBER_SPAN_F_NEW_TURN;
		st->last_dir = ca->dir + 1;
	}
	if (st->flags & EMBER_CONN_F_LOST)
		ev->flags |= EMBER_SPAN_F_LOST_BEFORE;
	tag_thread(st, ev, tid);

	/* captured <= HEAD_MAX already; the mask makes it plain to the verifier */
	__u64 size = captured;
	asm volatile("" : "+r"(size));
	size &= 2 * HEAD_MAX - 1;
	if (emit_data(ctx, s, sizeof(*ev) + size)) {
		st->flags |= EMBER_CONN_F_LOST;
		count_stat(EMBER_SPAN_STAT_DATA_LOST);
	} else {
		st->flags &= ~EMBER_CONN_F_LOST;
		count_stat(EMBER_SPAN_STAT_DATA_EVENTS);
	}
}

/* Two-halves mode: a hooked syscall returns. */
static __always_inline void on_exit(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_args *ap = bpf_map_lookup_elem(&args, &id);
	struct call_args ca;

	if (!ap)
		return;
	ca = *ap;
	bpf_map_delete_elem(&args, &id);
	if (ret <= 0)
		return;
	on_bytes(ctx, &conns, &ca, ret, 0, conn_of(&conns, id >> 32, ca.fd));
}

/* The x86-64 registers at kernel entry, from r10 on (struct pt_regs, a user ABI). */
struct syscall_regs {
	__u64 r10, r9, r8, ax, cx, dx, si, di, orig_ax;
};
#define SYSCALL_REGS_OFFSET 56 /* offsetof(struct pt_regs, r10) */

/*
 * close(2) returned 0 (raw hooks: no sys_enter).  Another thread may have
 * got the same fd number for a new socket in between and already
 * started its state: that state stays.
 */
static __always_inline void close_at_exit(void *ctx, __u32 tgid, __u32 fd)
{
	struct ember_conn_key key = {.tgid = tgid, .fd = fd};
	struct ember_conn_state *st = bpf_map_lookup_elem(&conns, &key);

	if (st && st->sk && st->sk == tcp_sock_of(fd))
		return;
	on_close(ctx, tgid, fd);
}

/* A hooked syscall returned ret; its arguments are read back from the registers at regs. */
static __always_inline void on_call_exit(void *ctx, __u32 nr, const void *regs, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct syscall_regs r;
	struct call_args ca = {};

	if (tgid == self_tgid)
		return;
	if (nr == NR_close ? ret != 0 : ret <= 0 && !tls_on)
		return;
	if (bpf_probe_read_kernel(&r, sizeof(r), regs + SYSCALL_REGS_OFFSET))
		return;
	if (nr == NR_close) {
		close_at_exit(ctx, tgid, (__u32)r.di);
		return;
	}
	if (ret <= 0) { /* a TLS call in progress may still learn its fd, as at entry */
		tls_note_fd(id, (__u32)r.di);
		return;
	}
	struct ember_conn_state *st;
	if (socket_call(id, nr, r.di, r.si, r.dx, r.r10, &ca, &st))
		on_bytes(ctx, &conns, &ca, ret, 0, st);
}

/* The registers the current task entered the kernel with (args_at_exit only). */
static __always_inline const void *current_regs(void)
{
	return (const void *)bpf_task_pt_regs((void *)bpf_get_current_task_btf());
}

#include "tls.bpf.h"

/* ---- hooks: syscall tracepoints ---------------------------------------- */

/* Layout of the syscalls:sys_enter_* and sys_exit_* records (a stable ABI). */
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

/*
 * sys_exit_NAME handles the call (args_at_exit) or takes back what
 * sys_enter_NAME kept; user space loads sys_enter_NAME only in the
 * two-halves mode.  A call that failed still tells a TLS call in progress
 * its fd (tls_note_fd), as the two-halves mode does at entry.
 */
/*
 * sys_exit_NAME handles the call (args_at_exit) or takes back what
 * sys_enter_NAME kept; user space loads sys_enter_NAME only in the
 * two-halves mode.
 */
#define TP_PAIR(name, nr)                                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                \
	int ember_enter_##name(struct sys_enter_ctx *ctx)                          \
	{                                                                          \
		on_enter(ctx, nr, ctx->args[0], ctx->args[1], ctx->args[2],        \
			 ctx->args[3]);                                            \
		return 0;                                                          \
	}                                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                 \
	int ember_exit_##name(struct sys_exit_ctx *ctx)                            \
	{                                                                          \
		if (args_at_exit)                                                  \
			on_call_exit(ctx, nr, current_regs(), ctx->ret);           \
		else                                                               \
			on_exit(ctx, ctx->ret);                                    \
		return 0;                                                          \
	}

TP_PAIR(read, NR_read)
TP_PAIR(write, NR_write)
TP_PAIR(readv, NR_readv)
TP_PAIR(writev, NR_writev)
TP_PAIR(sendto, NR_sendto)
TP_PAIR(recvfrom, NR_recvfrom)
TP_PAIR(sendmsg, NR_sendmsg)
TP_PAIR(recvmsg, NR_recvmsg)
TP_PAIR(sendfile64, NR_sendfile)

SEC("tracepoint/syscalls/sys_enter_close")
int ember_enter_close(struct sys_enter_ctx *ctx)
{
	on_enter(ctx, NR_close, ctx->args[0], 0, 0, 0);
	return 0;
}

/* ---- hooks: raw sys_exit (no tracefs) ---------------------------------------- */

/* Every syscall of the host comes here: the number is read first, the arguments only for ours. */
SEC("raw_tracepoint/sys_exit")
int ember_raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	const void *regs = (const void *)ctx->args[0];
	long ret = (long)ctx->args[1];
	__u64 nr = 0;

	if (bpf_probe_read_kernel(&nr, sizeof(nr),
				  regs + SYSCALL_REGS_OFFSET + __builtin_offsetof(struct syscall_regs, orig_ax)))
		return 0;
	switch (nr) {
	case NR_read: case NR_write: case NR_close: case NR_readv: case NR_writev:
	case NR_sendfile: case NR_sendto: case NR_recvfrom: case NR_sendmsg: case NR_recvmsg:
		break;
	default:
		return 0;
	}
	on_call_exit(ctx, (__u32)nr, regs, ret);
	return 0;
}

/* ---- process and thread exit -------------------------------------------- */

SEC("raw_tracepoint/sched_process_exit")
int ember_spans_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;

	bpf_map_delete_elem(&span_threads, &tid);
	/* the last thread out, whichever it is (signal->live was decremented before) */
	struct task_struct___ember *task = (void *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) != 0 ||
	    !bpf_map_lookup_elem(&traced_procs, &tgid))
		return 0;
	bpf_map_delete_elem(&traced_procs, &tgid);
	send_ctl(ctx, EMBER_CTL_EXIT, tgid, 0, 0, 0, 0);
	return 0;
}
