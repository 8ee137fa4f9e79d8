/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tls.bpf.h - plaintext at the TLS library boundary (included by spans.bpf.c).
 *
 * The syscall hooks see only ciphertext on TLS connections.  These uprobes
 * read the plaintext where the application hands it to, or gets it from,
 * its TLS library, and feed it to the same path as socket data (on_bytes,
 * with the tls_conns states), so inference, events and the user-space
 * tracker are shared.
 *
 * OpenSSL (libssl.so.3; user space attaches to each libssl file it finds):
 *   SSL_write(ssl, buf, num)          SSL_read(ssl, buf, num)          -> int
 *   SSL_write_ex(ssl, buf, num, &n)   SSL_read_ex(ssl, buf, num, &n)   -> 1 on success
 * The entry probe keeps (buf, ssl, &n) per thread in tls_calls; the return
 * probe (a uretprobe: fine for C) takes them back.  The socket: OpenSSL
 * reads and writes its fd with read/write/sendmsg... on the calling thread
 * during the call, so the syscall hook (tls_note_socket) writes the fd into
 * the call in progress; the (ssl -> fd) pair is kept in tls_fds for calls
 * that move no bytes on the socket (a read served from OpenSSL's buffer).
 * This needs no knowledge of the SSL struct's layout, which changes
 * between OpenSSL versions.
 *
 * Go crypto/tls (attached by the .gopclntab symbol, so stripped binaries
 * too): (*Conn).Write(b []byte) and (*Conn).Read(b []byte), register ABI
 * (Go 1.17+): receiver in RAX, b's pointer and length in RBX and RCX, the
 * result n in RAX.  Write is sent from its entry (all of b, see
 * ember_go_tls_write); Read needs its return.  A uretprobe rewrites the return address on the
 * goroutine's stack, which Go may move (stack growth) or inspect
 * (tracebacks): it crashes Go programs.  So user space puts a plain uprobe
 * on every RET instruction of the function instead (ember_go_tls_ret).
 * Calls are keyed by goroutine (the g pointer, in R14 under the register
 * ABI), since a goroutine blocked in Read resumes on any thread.  The fd
 * is read through the structs: tls.Conn.conn (a net.Conn interface: data
 * pointer at +8) -> *net.TCPConn -> conn.fd (*netFD, at +0) ->
 * pfd.Sysfd (at +16, after the 16-byte fdMutex).  Those offsets have held
 * since Go 1.12; they are rodata so user space can change them, and a
 * wrong fd is caught: it must name a TCP socket (tcp_sock_of).
 */

/* Offsets in Go's structs (see above). */
const volatile __u32 go_tlsconn_conn_data = 8; /* tls.Conn.conn's data word */
const volatile __u32 go_tcpconn_fd = 0;        /* net.TCPConn.conn.fd */
const volatile __u32 go_netfd_sysfd = 16;      /* net.netFD.pfd.Sysfd */

#define EMBER_TLS_MAX_CALLS 16384
#define EMBER_TLS_MAX_SSL 65536

enum tls_call_kind { TLS_OPENSSL = 0, TLS_GO = 1 };

struct tls_call_key {
	__u32 tgid;
	__u32 kind; /* enum tls_call_kind */
	__u64 id;   /* OpenSSL: pid_tgid; Go: the goroutine's g */
};

struct tls_call {
	__u64 buf;
	__u64 ssl;     /* OpenSSL: the SSL *; Go: the *tls.Conn */
	__u64 out_len; /* _ex: where the library stores the byte count; else 0 */
	__u64 sk;      /* socket seen during the call, 0 if none */
	__u32 fd;
	__u8 dir;
	__u8 pad[3];
};

struct tls_ssl_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EMBER_TLS_MAX_CALLS);
	__type(key, struct tls_call_key);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* OpenSSL: the fd each SSL object was last seen moving bytes on. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EMBER_TLS_MAX_SSL);
	__type(key, struct tls_ssl_key);
	__type(value, __u32);
} tls_fds SEC(".maps");

/* User registers at a uprobe (x86-64 struct pt_regs, the uprobe's context). */
struct tls_regs {
	__u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs,
		flags, sp, ss;
};

/*
 * OpenSSL calls in progress per slot of thread ids (tid mod
 * EMBER_TLS_ACTIVE_SLOTS), so that the syscall hooks, which run for every
 * socket call, skip the tls_calls lookup on threads in no TLS call: an
 * array slot is a few instructions, a hash lookup a cache miss or two.
 * Counted up at entry, down when the return takes its call back; a call
 * whose return never comes (evicted, the process died) leaves its slot
 * counting, which only costs that slot's threads the lookup.
 */
#define EMBER_TLS_ACTIVE_SLOTS 4096

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EMBER_TLS_ACTIVE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} tls_active SEC(".maps");

static __always_inline __u32 *tls_active_slot(__u64 id)
{
	__u32 k = (__u32)id & (EMBER_TLS_ACTIVE_SLOTS - 1);
	return bpf_map_lookup_elem(&tls_active, &k);
}

/* Whether thread id may be in an OpenSSL call (0: certainly not). */
static __always_inline int tls_maybe_active(__u64 id)
{
	__u32 *a = tls_active_slot(id);
	return a && *a;
}

static __always_inline void tls_note_socket(__u64 id, __u32 fd, __u64 sk)
{
	if (!tls_maybe_active(id))
		return;
	struct tls_call_key key = {.tgid = id >> 32, .kind = TLS_OPENSSL, .id = id};
	struct tls_call *c = bpf_map_lookup_elem(&tls_calls, &key);

	if (c && !c->sk) {
		c->fd = fd;
		c->sk = sk;
	}
}

static __always_inline void tls_note_fd(__u64 id, __u32 fd)
{
	if (!tls_maybe_active(id))
		return;
	struct tls_call_key key = {.tgid = id >> 32, .kind = TLS_OPENSSL, .id = id};
	struct tls_call *c = bpf_map_lookup_elem(&tls_calls, &key);

	if (c && !c->sk) {
		__u64 sk = tcp_sock_of(fd);
		if (sk) {
			c->fd = fd;
			c->sk = sk;
		}
	}
}

static __always_inline void tls_enter(__u32 kind, __u64 id, __u64 ssl, __u64 buf, __u64 out_len,
				      __u8 dir, __u32 fd)
{
	struct tls_call_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .kind = kind, .id = id};
	struct tls_call c = {.buf = buf, .ssl = ssl, .out_len = out_len, .dir = dir, .fd = fd};

	if (bpf_map_update_elem(&tls_calls, &key, &c, BPF_ANY)) {
		count_stat(EMBER_SPAN_STAT_TLS_CALLS_FULL);
		return;
	}
	__u32 *a = kind == TLS_OPENSSL ? tls_active_slot(id) : 0;
	if (a)
		__sync_fetch_and_add(a, 1);
}

/* The call of (kind, id) returned n bytes of plaintext (n <= 0: none). */
static __always_inline void tls_return(void *ctx, __u32 kind, __u64 id, long n)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tls_call_key key = {.tgid = tgid, .kind = kind, .id = id};
	struct tls_call *cp = bpf_map_lookup_elem(&tls_calls, &key);
	struct call_args ca = {};

	if (!cp) {
		count_stat(EMBER_SPAN_STAT_TLS_NO_ENTRY);
		return;
	}
	struct tls_call c = *cp;
	bpf_map_delete_elem(&tls_calls, &key);
	__u32 *a = kind == TLS_OPENSSL ? tls_active_slot(id) : 0;
	if (a && *a)
		__sync_fetch_and_add(a, (__u32)-1); /* no fetch: a plain atomic add, any BPF ISA */
	if (c.out_len) { /* SSL_*_ex: 1 on success, the count in *out_len */
		__u64 done = 0;
		if (n != 1 || read_user(&done, sizeof(done), (void *)c.out_len))
			return;
		n = (long)done;
	}
	if (n <= 0)
		return;
	count_stat(EMBER_SPAN_STAT_TLS_CALLS);
	if (kind == TLS_OPENSSL) {
		struct tls_ssl_key sk = {.tgid = tgid, .ssl = c.ssl};
		if (c.sk) {
			bpf_map_update_elem(&tls_fds, &sk, &c.fd, BPF_ANY);
		} else {
			__u32 *fd = bpf_map_lookup_elem(&tls_fds, &sk);
			if (!fd) {
				count_stat(EMBER_SPAN_STAT_TLS_NO_FD);
				return;
			}
			c.fd = *fd;
		}
	}
	ca.fd = c.fd;
	ca.sk = tcp_sock_of(c.fd);
	if (!ca.sk) {
		count_stat(EMBER_SPAN_STAT_TLS_NO_FD);
		return;
	}
	ca.buf = c.buf;
	ca.dir = c.dir;
	on_bytes(ctx, &tls_conns, &ca, n, 1, conn_of(&tls_conns, tgid, ca.fd));
}

/* ---- OpenSSL ---------------------------------------------------------------- */

static __always_inline int ssl_enter(struct tls_regs *r, __u8 dir, int ex)
{
	tls_enter(TLS_OPENSSL, bpf_get_current_pid_tgid(), r->di, r->si, ex ? r->cx : 0, dir, 0);
	return 0;
}

SEC("uprobe")
int ember_ssl_write(struct tls_regs *r)
{
	return ssl_enter(r, EMBER_DIR_EGRESS, 0);
}

SEC("uprobe")
int ember_ssl_write_ex(struct tls_regs *r)
{
	return ssl_enter(r, EMBER_DIR_EGRESS, 1);
}

SEC("uprobe")
int ember_ssl_read(struct tls_regs *r)
{
	return ssl_enter(r, EMBER_DIR_INGRESS, 0);
}

SEC("uprobe")
int ember_ssl_read_ex(struct tls_regs *r)
{
	return ssl_enter(r, EMBER_DIR_INGRESS, 1);
}

/* SSL_read/SSL_write return an int; the _ex forms 1, with the count stored at entry's &n. */
SEC("uretprobe")
int ember_ssl_ret(struct tls_regs *r)
{
	tls_return(r, TLS_OPENSSL, bpf_get_current_pid_tgid(), (long)(int)r->ax);
	return 0;
}

/* ---- Go crypto/tls ------------------------------------------------------------ */

/* fd of the *net.TCPConn inside a *tls.Conn, or -1. */
static __always_inline __s64 go_conn_fd(__u64 conn)
{
	__u64 data = 0, netfd = 0;
	__s64 fd = -1;

	if (read_user(&data, sizeof(data), (void *)(conn + go_tlsconn_conn_data)) || !data ||
	    read_user(&netfd, sizeof(netfd), (void *)(data + go_tcpconn_fd)) || !netfd ||
	    read_user(&fd, sizeof(fd), (void *)(netfd + go_netfd_sysfd)))
		return -1;
	return fd;
}

static __always_inline int go_enter(struct tls_regs *r, __u8 dir)
{
	__s64 fd = go_conn_fd(r->ax);

	if (fd < 0 || fd > 0x7fffffff) {
		count_stat(EMBER_SPAN_STAT_TLS_NO_FD);
		return 0;
	}
	tls_enter(TLS_GO, r->r14, r->ax, r->bx, 0, dir, (__u32)fd);
	return 0;
}

/*
 * Write sends all of b or fails, so its bytes are known at entry and sent
 * from there: a client's request must reach user space before the response
 * its reader goroutine (on another thread) may get before this Write even
 * returns.  A failed Write is counted as sent (rare: the connection broke).
 */
SEC("uprobe")
int ember_go_tls_write(struct tls_regs *r)
{
	__s64 fd = go_conn_fd(r->ax);
	struct call_args ca = {};

	if ((__s64)r->cx <= 0)
		return 0;
	ca.fd = fd >= 0 && fd <= 0x7fffffff ? (__u32)fd : 0;
	ca.sk = fd >= 0 && fd <= 0x7fffffff ? tcp_sock_of(ca.fd) : 0;
	if (!ca.sk) {
		count_stat(EMBER_SPAN_STAT_TLS_NO_FD);
		return 0;
	}
	count_stat(EMBER_SPAN_STAT_TLS_CALLS);
	ca.buf = r->bx;
	ca.dir = EMBER_DIR_EGRESS;
	on_bytes(r, &tls_conns, &ca, (long)r->cx, 1,
		 conn_of(&tls_conns, bpf_get_current_pid_tgid() >> 32, ca.fd));
	return 0;
}

SEC("uprobe")
int ember_go_tls_read(struct tls_regs *r)
{
	return go_enter(r, EMBER_DIR_INGRESS);
}

/* A uprobe on each RET of (*Conn).Read: n in RAX, g in R14. */
SEC("uprobe")
int ember_go_tls_ret(struct tls_regs *r)
{
	tls_return(r, TLS_GO, r->r14, (long)r->ax);
	return 0;
}
