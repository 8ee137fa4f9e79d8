/*
 * test_spans_tracker.c - framing, parsing and pairing of the four protocols.
 *
 * Each test plays one connection as the kernel would report it: control
 * events and data events carrying payload heads (cut to `head` bytes like
 * the BPF program does), in the order a client or a server would read and
 * write, and checks the spans that come out: their endpoints, statuses,
 * errors, durations and counts.  Covered: keep-alive, pipelining, reads
 * split anywhere, Content-Length and chunked bodies, bodies never captured
 * (payload heads and sendfile), HEAD/204/1xx/101, responses ending at the
 * close, RESP2/3 with errors and nesting, the MySQL handshake, result sets
 * with and without intermediate EOFs, prepared statements, ERR packets,
 * PostgreSQL startup, simple and extended (pipelined) protocols, errors,
 * events the kernel lost, and the connection bound.
 */
#include "testutil.h"

#include "spans/endpoints.h"
#include "spans/tracker.h"

#define MAX_SPANS 4096

struct got {
	char endpoint[512];
	char text[1024];
	char err[160];
	char peer[64];
	uint16_t status;
	bool error;
	uint8_t role;
	int64_t start, end;
	uint64_t req_bytes, resp_bytes;
	uint32_t tid;
};

static struct h {
	struct ember_endpoints *eps;
	struct ember_tracker *tr;
	struct got spans[MAX_SPANS];
	int n;
	int64_t ts;
	unsigned head; /* payload head */
	uint64_t tags[64][2];
	int n_tags;
} H;

static void on_span(const struct ember_span *s, void *arg)
{
	(void)arg;
	if (H.n >= MAX_SPANS)
		return;
	struct got *g = &H.spans[H.n++];
	snprintf(g->endpoint, sizeof(g->endpoint), "%s", ember_endpoints_name(H.eps, s->endpoint));
	snprintf(g->text, sizeof(g->text), "%s", s->text ? s->text : "");
	snprintf(g->err, sizeof(g->err), "%s", s->err ? s->err : "");
	snprintf(g->peer, sizeof(g->peer), "%s", s->peer ? s->peer : "");
	g->status = s->status;
	g->error = s->error;
	g->role = s->role;
	g->start = s->start_ns;
	g->end = s->end_ns;
	g->req_bytes = s->req_bytes;
	g->resp_bytes = s->resp_bytes;
	g->tid = s->tid;
}

static void on_tag(uint64_t req_id, uint32_t endpoint, void *arg)
{
	(void)arg;
	if (H.n_tags < 64) {
		H.tags[H.n_tags][0] = req_id;
		H.tags[H.n_tags++][1] = endpoint;
	}
}

static int setup(void **state)
{
	(void)state;
	memset(&H, 0, sizeof(H));
	H.eps = ember_endpoints_new(1000);
	struct ember_tracker_opts o = {.max_conns = 8, .endpoints = H.eps, .on_span = on_span,
				       .on_tag = on_tag};
	H.tr = ember_tracker_new(&o);
	H.ts = 1000000;
	H.head = 1024;
	return H.tr ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	ember_tracker_free(H.tr);
	ember_endpoints_free(H.eps);
	return 0;
}

static void open_conn(uint64_t conn, uint8_t proto, uint8_t role)
{
	struct ember_span_ctl ev = {.type = EMBER_CTL_OPEN, .tgid = 10, .fd = 3, .conn_id = conn,
				    .proto = proto, .role = role, .family = 2, .rport = 5432,
				    .raddr = {10, 0, 0, 7}, .comm = "test"};
	ember_tracker_ctl(H.tr, &ev);
}

static void close_conn(uint64_t conn)
{
	struct ember_span_ctl ev = {.type = EMBER_CTL_CLOSE, .tgid = 10, .conn_id = conn};
	ember_tracker_ctl(H.tr, &ev);
	ember_tracker_sweep(H.tr, H.ts);
	ember_tracker_sweep(H.tr, H.ts);
}

/* One syscall's worth of bytes: len moved, the first min(len, head) captured. */
static void io_flags(uint64_t conn, uint8_t proto, uint8_t role, uint8_t dir, const void *data,
		     size_t len, uint8_t flags, uint64_t req_id)
{
	static uint8_t buf[sizeof(struct ember_span_data) + 65536];
	struct ember_span_data *ev = (void *)buf;
	size_t cap = len < H.head ? len : H.head;

	memset(ev, 0, sizeof(*ev));
	ev->conn_id = conn;
	ev->ts_ns = (uint64_t)(H.ts += 1000);
	ev->tgid = 10;
	ev->tid = 11;
	ev->fd = 3;
	ev->len = (uint32_t)len;
	ev->captured = data ? (uint32_t)cap : 0;
	ev->dir = dir;
	ev->proto = proto;
	ev->role = role;
	ev->flags = flags;
	ev->req_id = req_id;
	if (data)
		memcpy(buf + sizeof(*ev), data, cap);
	ember_tracker_data(H.tr, ev, buf + sizeof(*ev));
}

static void io(uint64_t conn, uint8_t proto, uint8_t role, uint8_t dir, const void *data,
	       size_t len)
{
	io_flags(conn, proto, role, dir, data, len, 0, 0);
}

/* A string fed as reads of `step` bytes each. */
static void io_split(uint64_t conn, uint8_t proto, uint8_t role, uint8_t dir, const char *s,
		     size_t step)
{
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i += step)
		io(conn, proto, role, dir, s + i, len - i < step ? len - i : step);
}

/* len bytes fed as reads of `step` bytes each. */
static void io_split_n(uint64_t conn, uint8_t proto, uint8_t role, uint8_t dir, const void *p,
		       size_t len, size_t step)
{
	for (size_t i = 0; i < len; i += step)
		io(conn, proto, role, dir, (const uint8_t *)p + i, len - i < step ? len - i : step);
}

#define OUT EMBER_DIR_EGRESS
#define IN EMBER_DIR_INGRESS
#define HTTP EMBER_PROTO_HTTP
#define REDIS EMBER_PROTO_REDIS
#define MYSQL EMBER_PROTO_MYSQL
#define PGSQL EMBER_PROTO_PGSQL
#define SERVER EMBER_ROLE_SERVER
#define CLIENT EMBER_ROLE_CLIENT

/* The spans so far on stderr when DEBUG_SPANS is set; then the count. */
static int count(void)
{
	if (getenv("DEBUG_SPANS"))
		for (int k = 0; k < H.n; k++)
			fprintf(stderr, "span %d: %s %u %d err=%s\n", k, H.spans[k].endpoint,
				H.spans[k].status, H.spans[k].error, H.spans[k].err);
	return H.n;
}

static void expect(int i, const char *endpoint, uint16_t status, bool error)
{
	assert_true(i < H.n);
	assert_string_equal(H.spans[i].endpoint, endpoint);
	assert_int_equal(H.spans[i].status, status);
	assert_int_equal(H.spans[i].error, error);
}

static void sstr(uint64_t conn, uint8_t proto, uint8_t role, uint8_t dir, const char *s)
{
	io(conn, proto, role, dir, s, strlen(s));
}

/* ---- HTTP ---- */

static void test_http_server_keepalive(void **state)
{
	(void)state;
	open_conn(1, HTTP, SERVER);
	sstr(1, HTTP, SERVER, IN, "GET /users/42?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
	sstr(1, HTTP, SERVER, OUT, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
	sstr(1, HTTP, SERVER, IN, "POST /users HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
	sstr(1, HTTP, SERVER, OUT, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	sstr(1, HTTP, SERVER, IN, "DELETE /users/7 HTTP/1.1\r\n\r\n");
	sstr(1, HTTP, SERVER, OUT, "HTTP/1.1 503 Busy\r\ncontent-length: 2\r\n\r\nno");
	assert_int_equal(count(), 3);
	expect(0, "GET /users/{id}", 200, false);
	expect(1, "POST /users", 404, false); /* 4xx is not a server error */
	expect(2, "DELETE /users/{id}", 503, true);
	assert_string_equal(H.spans[0].text, "GET /users/42?x=1");
	assert_string_equal(H.spans[0].peer, "10.0.0.7"); /* a server's peer: the client's address */
	assert_int_equal(H.spans[1].req_bytes, strlen("POST /users HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
	assert_true(H.spans[0].end > H.spans[0].start);
}

static void test_http_client_pipelined_chunked(void **state)
{
	(void)state;
	open_conn(2, HTTP, CLIENT);
	sstr(2, HTTP, CLIENT, OUT,
	     "GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
	/* response 1: chunked, split inside the size line, the data and the trailer */
	io_split(2, HTTP, CLIENT, IN,
		 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n"
		 "10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n"
		 /* response 2 to HEAD: a length, no body */
		 "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
		 /* response 3 */
		 "HTTP/1.1 401 No\r\nContent-Length: 4\r\n\r\nnope",
		 7);
	assert_int_equal(count(), 3);
	expect(0, "GET /a", 200, false);
	expect(1, "HEAD /b", 200, false);
	expect(2, "GET /c", 401, true); /* a client sees 4xx as an error */
	assert_string_equal(H.spans[2].peer, "10.0.0.7:5432");
}

static void test_http_body_not_captured(void **state)
{
	static char resp[20000];

	(void)state;
	open_conn(3, HTTP, CLIENT);
	int hl = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 15000);
	memset(resp + hl, 'x', 15000);
	for (int round = 0; round < 3; round++) {
		sstr(3, HTTP, CLIENT, OUT, "GET /big HTTP/1.1\r\n\r\n");
		/* three reads, each cut to the 1 KiB head */
		io(3, HTTP, CLIENT, IN, resp, 8000);
		io(3, HTTP, CLIENT, IN, resp + 8000, 4000);
		io(3, HTTP, CLIENT, IN, resp + 12000, (size_t)hl + 15000 - 12000);
	}
	/* the body of a server's answer went out by sendfile: no bytes captured */
	open_conn(4, HTTP, SERVER);
	sstr(4, HTTP, SERVER, IN, "GET /f HTTP/1.1\r\n\r\n");
	io(4, HTTP, SERVER, OUT, resp, (size_t)hl);
	io(4, HTTP, SERVER, OUT, NULL, 15000);
	sstr(4, HTTP, SERVER, IN, "GET /g HTTP/1.1\r\n\r\n");
	sstr(4, HTTP, SERVER, OUT, "HTTP/1.1 204 No Content\r\n\r\n");
	assert_int_equal(count(), 5);
	for (int i = 0; i < 3; i++) {
		expect(i, "GET /big", 200, false);
		assert_int_equal(H.spans[i].resp_bytes, (uint64_t)hl + 15000);
	}
	expect(3, "GET /f", 200, false);
	expect(4, "GET /g", 204, false);
}

static void test_http_interim_until_close_upgrade(void **state)
{
	(void)state;
	open_conn(5, HTTP, CLIENT);
	sstr(5, HTTP, CLIENT, OUT, "POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
	sstr(5, HTTP, CLIENT, IN, "HTTP/1.1 100 Continue\r\n\r\n");
	sstr(5, HTTP, CLIENT, OUT, "ok");
	sstr(5, HTTP, CLIENT, IN, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(count(), 1);
	expect(0, "POST /up", 201, false);

	sstr(5, HTTP, CLIENT, OUT, "GET /old HTTP/1.0\r\n\r\n");
	sstr(5, HTTP, CLIENT, IN, "HTTP/1.0 200 OK\r\n\r\nbody until the close");
	sstr(5, HTTP, CLIENT, IN, "more body");
	assert_int_equal(count(), 1);
	close_conn(5);
	assert_int_equal(count(), 2);
	expect(1, "GET /old", 200, false);

	open_conn(6, HTTP, CLIENT);
	sstr(6, HTTP, CLIENT, OUT, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
	sstr(6, HTTP, CLIENT, IN, "HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello");
	sstr(6, HTTP, CLIENT, OUT, "GET /not-http HTTP/1.1\r\n\r\n"); /* websocket payload now */
	sstr(6, HTTP, CLIENT, IN, "HTTP/1.1 200 OK\r\n\r\n");
	assert_int_equal(count(), 3);
	expect(2, "GET /ws", 101, false);
	uint64_t st[EMBER_TRACKER__COUNT];
	ember_tracker_stats(H.tr, st);
	assert_int_equal(st[EMBER_TRACKER_CONNS_DEAD], 1);
}

static void test_http_garbage_and_long_headers(void **state)
{
	static char req[6000];

	(void)state;
	open_conn(7, HTTP, SERVER);
	/* headers longer than the head: the start line is used, the turn given up */
	int n = snprintf(req, sizeof(req), "GET /long/1 HTTP/1.1\r\nCookie: ");
	memset(req + n, 'c', 5000);
	memcpy(req + n + 5000, "\r\n\r\n", 4);
	io(7, HTTP, SERVER, IN, req, (size_t)n + 5004);
	sstr(7, HTTP, SERVER, OUT, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	/* garbage: no span, the next turn starts afresh */
	io(7, HTTP, SERVER, IN, "\x16\x03\x01\x02\x00garbage\r\n\r\n", 16);
	sstr(7, HTTP, SERVER, OUT, "HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n");
	sstr(7, HTTP, SERVER, IN, "GET /ok HTTP/1.1\r\n\r\n");
	sstr(7, HTTP, SERVER, OUT, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(count(), 2);
	expect(0, "GET /long/{id}", 200, false);
	expect(1, "GET /ok", 200, false);
	uint64_t st[EMBER_TRACKER__COUNT];
	ember_tracker_stats(H.tr, st);
	assert_true(st[EMBER_TRACKER_DESYNC] >= 2);
	assert_true(st[EMBER_TRACKER_UNMATCHED] >= 1);
}

/* ---- Redis ---- */

static void test_redis_pipelined(void **state)
{
	char req[4096] = "", resp[4096] = "";

	(void)state;
	open_conn(8, REDIS, CLIENT);
	for (int i = 0; i < 16; i++) {
		if (i % 2)
			strcat(req, "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$3\r\nxxx\r\n");
		else
			strcat(req, "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n");
		strcat(resp, i % 2 ? "+OK\r\n" : (i == 4 ? "$-1\r\n" : "$3\r\nxxx\r\n"));
	}
	sstr(8, REDIS, CLIENT, OUT, req);
	io_split(8, REDIS, CLIENT, IN, resp, 5);
	assert_int_equal(count(), 16);
	for (int i = 0; i < 16; i++)
		expect(i, i % 2 ? "SET" : "GET", 0, false);
	assert_string_equal(H.spans[0].text, "GET key:000000000042");

	/* errors, nesting, RESP3 push and attribute, inline commands */
	sstr(8, REDIS, CLIENT, OUT, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nLPOP\r\n$1\r\nk\r\nINFO\r\n"
				  "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n");
	sstr(8, REDIS, CLIENT, IN, ">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n+PONG\r\n");
	sstr(8, REDIS, CLIENT, IN, "-WRONGTYPE Operation against a key\r\n");
	sstr(8, REDIS, CLIENT, IN, "|1\r\n+ttl\r\n:3\r\n*2\r\n*1\r\n%1\r\n+a\r\n:1\r\n$2\r\nok\r\n");
	sstr(8, REDIS, CLIENT, IN, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
	assert_int_equal(count(), 20);
	expect(16, "PING", 0, false);
	expect(17, "LPOP", 0, true);
	assert_string_equal(H.spans[17].err, "WRONGTYPE Operation against a key");
	expect(18, "INFO", 0, false);
	expect(19, "CONFIG GET", 0, false);
}

static void test_redis_big_values(void **state)
{
	static char req[70000], resp[70000];

	(void)state;
	open_conn(9, REDIS, SERVER);
	int n = snprintf(req, sizeof(req), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$60000\r\n");
	memset(req + n, 'v', 60000);
	memcpy(req + n + 60000, "\r\n", 2);
	io(9, REDIS, SERVER, IN, req, 16384);
	io(9, REDIS, SERVER, IN, req + 16384, (size_t)n + 60002 - 16384);
	sstr(9, REDIS, SERVER, OUT, "+OK\r\n");
	sstr(9, REDIS, SERVER, IN, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
	n = snprintf(resp, sizeof(resp), "$60000\r\n");
	memset(resp + n, 'v', 60000);
	memcpy(resp + n + 60000, "\r\n", 2);
	io(9, REDIS, SERVER, OUT, resp, (size_t)n + 60002);
	assert_int_equal(count(), 2);
	expect(0, "SET", 0, false);
	expect(1, "GET", 0, false);
	assert_int_equal(H.spans[0].req_bytes, (uint64_t)strlen("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$60000\r\n") + 60002);
	assert_int_equal(H.spans[1].resp_bytes, (uint64_t)n + 60002);
}

/* ---- MySQL ---- */

static size_t packet(uint8_t *out, uint8_t seq, const void *payload, size_t len)
{
	out[0] = (uint8_t)len;
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)(len >> 16);
	out[3] = seq;
	memcpy(out + 4, payload, len);
	return len + 4;
}

static size_t query(uint8_t *out, uint8_t cmd, const char *sql)
{
	uint8_t p[1024];
	p[0] = cmd;
	memcpy(p + 1, sql, strlen(sql));
	return packet(out, 0, p, strlen(sql) + 1);
}

/* A result set: column count, definitions, [EOF], rows, EOF or OK. */
static size_t result_set(uint8_t *out, int cols, int rows, bool deprecate_eof, uint16_t status)
{
	size_t n = 0;
	uint8_t seq = 1, c = (uint8_t)cols;
	static const uint8_t def[] = "\x03" "def\x06sbtest\x07sbtest1\x07sbtest1\x01" "c\x01" "c";
	static const uint8_t eof[] = {0xfe, 0, 0, 2, 0};
	uint8_t ok[] = {0xfe, 0, 0, (uint8_t)status, (uint8_t)(status >> 8), 0, 0};
	uint8_t st_eof[] = {0xfe, 0, 0, (uint8_t)status, (uint8_t)(status >> 8)};

	n += packet(out + n, seq++, &c, 1);
	for (int i = 0; i < cols; i++)
		n += packet(out + n, seq++, def, sizeof(def) - 1);
	if (!deprecate_eof)
		n += packet(out + n, seq++, eof, sizeof(eof));
	for (int i = 0; i < rows; i++)
		n += packet(out + n, seq++, "\x05hello", 6);
	if (deprecate_eof)
		n += packet(out + n, seq++, ok, sizeof(ok));
	else
		n += packet(out + n, seq++, st_eof, sizeof(st_eof));
	return n;
}

static void handshake(uint64_t conn, uint8_t role, uint32_t client_caps)
{
	uint8_t buf[512], p[128] = {0};
	size_t n = 0;

	/* greeting: protocol 10, version, thread id, scramble, filler, caps (all) */
	p[n++] = 10;
	memcpy(p + n, "10.11.6-MariaDB", 16);
	n += 16 + 4 + 8 + 1;
	p[n++] = 0xff;
	p[n++] = 0xff; /* caps low */
	p[n++] = 8;    /* charset */
	n += 2;        /* status */
	p[n++] = 0xff;
	p[n++] = 0xff; /* caps high */
	n += 20;
	size_t len = packet(buf, 0, p, n);
	io(conn, MYSQL, role, role == SERVER ? OUT : IN, buf, len);
	uint8_t resp[40] = {(uint8_t)client_caps, (uint8_t)(client_caps >> 8),
			    (uint8_t)(client_caps >> 16), (uint8_t)(client_caps >> 24)};
	len = packet(buf, 1, resp, sizeof(resp));
	io(conn, MYSQL, role, role == SERVER ? IN : OUT, buf, len);
	static const uint8_t ok[] = {0, 0, 0, 2, 0, 0, 0};
	len = packet(buf, 2, ok, sizeof(ok));
	io(conn, MYSQL, role, role == SERVER ? OUT : IN, buf, len);
}

static void test_mysql_queries(void **state)
{
	uint8_t buf[65536];
	size_t n;

	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		uint64_t conn = 20 + (uint64_t)variant;
		bool deprecate = variant == 1;
		H.n = 0;
		open_conn(conn, MYSQL, CLIENT);
		if (variant < 2) /* variant 2: started mid-connection, handshake unseen */
			handshake(conn, CLIENT, 0x000fa68d | (deprecate ? 0x01000000u : 0));
		n = query(buf, 0x03, "SELECT c FROM sbtest1 WHERE id=42");
		io(conn, MYSQL, CLIENT, OUT, buf, n);
		n = result_set(buf, 1, 1, deprecate, 2);
		io_split_n(conn, MYSQL, CLIENT, IN, buf, n, 3);
		/* big result: 300 rows read in pieces cut to the head */
		n = query(buf, 0x03, "SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 300");
		io(conn, MYSQL, CLIENT, OUT, buf, n);
		n = result_set(buf, 1, 300, deprecate, 2);
		io(conn, MYSQL, CLIENT, IN, buf, 1500);
		io(conn, MYSQL, CLIENT, IN, buf + 1500, n - 1500);
		/* an error */
		n = query(buf, 0x03, "SELEC oops");
		io(conn, MYSQL, CLIENT, OUT, buf, n);
		static const char err[] = "\xff\x28\x04#42000You have an error in your SQL syntax";
		n = packet(buf, 1, err, sizeof(err) - 1);
		io(conn, MYSQL, CLIENT, IN, buf, n);
		/* OK for a statement without rows */
		n = query(buf, 0x03, "COMMIT");
		io(conn, MYSQL, CLIENT, OUT, buf, n);
		n = packet(buf, 1, "\x00\x00\x00\x02\x00\x00\x00", 7);
		io(conn, MYSQL, CLIENT, IN, buf, n);
		/* two result sets (CALL): MORE_RESULTS_EXISTS in the first end */
		n = query(buf, 0x03, "CALL p(1)");
		io(conn, MYSQL, CLIENT, OUT, buf, n);
		n = result_set(buf, 2, 3, deprecate, 0x0008 | 2);
		n += result_set(buf + n, 1, 1, deprecate, 2);
		io(conn, MYSQL, CLIENT, IN, buf, n);
		assert_int_equal(count(), 5);
		expect(0, "SELECT c FROM sbtest1 WHERE id=?", 0, false);
		expect(1, "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?", 0, false);
		expect(2, "SELEC oops", 0, true);
		assert_string_equal(H.spans[2].err, "1064 (42000): You have an error in your SQL syntax");
		expect(3, "COMMIT", 0, false);
		expect(4, "CALL p(?)", 0, false);
		assert_string_equal(H.spans[0].text, "SELECT c FROM sbtest1 WHERE id=42");
	}
}

static void test_mysql_prepared(void **state)
{
	uint8_t buf[4096], p[64];
	size_t n;

	(void)state;
	open_conn(30, MYSQL, SERVER);
	handshake(30, SERVER, 0x000fa68d);
	n = query(buf, 0x16, "SELECT c FROM sbtest1 WHERE id=?");
	io(30, MYSQL, SERVER, IN, buf, n);
	/* prepare OK: id 7, 1 column, 1 parameter; param def + EOF, column def + EOF */
	uint8_t okp[] = {0, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};
	n = packet(buf, 1, okp, sizeof(okp));
	n += packet(buf + n, 2, "\x03" "def\x00\x00\x00\x01?\x00", 10);
	n += packet(buf + n, 3, "\xfe\x00\x00\x02\x00", 5);
	n += packet(buf + n, 4, "\x03" "def\x00\x00\x00\x01" "c\x00", 10);
	n += packet(buf + n, 5, "\xfe\x00\x00\x02\x00", 5);
	io(30, MYSQL, SERVER, OUT, buf, n);
	for (int i = 0; i < 3; i++) {
		uint8_t ex[] = {0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0};
		n = packet(buf, 0, ex, sizeof(ex));
		io(30, MYSQL, SERVER, IN, buf, n);
		n = result_set(buf, 1, 2, false, 2);
		io(30, MYSQL, SERVER, OUT, buf, n);
	}
	/* close (no answer), then an unknown statement */
	uint8_t cl[] = {0x19, 7, 0, 0, 0};
	n = packet(buf, 0, cl, sizeof(cl));
	io(30, MYSQL, SERVER, IN, buf, n);
	uint8_t ex[] = {0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0};
	n = packet(buf, 0, ex, sizeof(ex));
	io(30, MYSQL, SERVER, IN, buf, n);
	n = packet(buf, 1, "\xff\x13\x05#HY000Unknown prepared statement handler", 44);
	io(30, MYSQL, SERVER, OUT, buf, n);
	/* ping, init db */
	p[0] = 0x0e;
	n = packet(buf, 0, p, 1);
	io(30, MYSQL, SERVER, IN, buf, n);
	n = packet(buf, 1, "\x00\x00\x00\x02\x00\x00\x00", 7);
	io(30, MYSQL, SERVER, OUT, buf, n);
	assert_int_equal(count(), 6);
	expect(0, "PREPARE SELECT c FROM sbtest1 WHERE id=?", 0, false);
	for (int i = 1; i <= 3; i++) {
		expect(i, "SELECT c FROM sbtest1 WHERE id=?", 0, false);
		assert_string_equal(H.spans[i].text, "SELECT c FROM sbtest1 WHERE id=?");
	}
	expect(4, "COM_STMT_EXECUTE", 0, true);
	expect(5, "COM_PING", 0, false);
}

/* ---- PostgreSQL ---- */

static size_t pg_msg(uint8_t *out, char type, const void *body, size_t len)
{
	size_t n = 0;
	if (type)
		out[n++] = (uint8_t)type;
	uint32_t l = (uint32_t)len + 4;
	out[n++] = (uint8_t)(l >> 24);
	out[n++] = (uint8_t)(l >> 16);
	out[n++] = (uint8_t)(l >> 8);
	out[n++] = (uint8_t)l;
	memcpy(out + n, body, len);
	return n + len;
}

static size_t pg_ready(uint8_t *out)
{
	return pg_msg(out, 'Z', "I", 1);
}

static void test_pgsql(void **state)
{
	uint8_t buf[8192];
	size_t n;

	(void)state;
	open_conn(40, PGSQL, CLIENT);
	/* SSLRequest refused, then startup and authentication */
	n = pg_msg(buf, 0, "\x04\xd2\x16\x2f", 4);
	io(40, PGSQL, CLIENT, OUT, buf, n);
	io(40, PGSQL, CLIENT, IN, "N", 1);
	n = pg_msg(buf, 0, "\x00\x03\x00\x00user\0postgres\0\0", 19);
	io(40, PGSQL, CLIENT, OUT, buf, n);
	n = pg_msg(buf, 'R', "\0\0\0\0", 4);
	n += pg_msg(buf + n, 'S', "a\0b\0", 4);
	n += pg_msg(buf + n, 'K', "12345678", 8);
	n += pg_ready(buf + n);
	io(40, PGSQL, CLIENT, IN, buf, n);
	/* simple query with rows, split */
	n = pg_msg(buf, 'Q', "SELECT abalance FROM pgbench_accounts WHERE aid = 7;", 52);
	io(40, PGSQL, CLIENT, OUT, buf, n);
	n = pg_msg(buf, 'T', "\0\1abalance\0....................", 30);
	n += pg_msg(buf + n, 'D', "\0\1\0\0\0\0010", 7);
	n += pg_msg(buf + n, 'C', "SELECT 1\0", 9);
	n += pg_ready(buf + n);
	io_split_n(40, PGSQL, CLIENT, IN, buf, n, 4);
	/* an error */
	n = pg_msg(buf, 'Q', "SELEC 1", 8);
	io(40, PGSQL, CLIENT, OUT, buf, n);
	n = pg_msg(buf, 'E', "SERROR\0C42601\0Msyntax error at or near \"SELEC\"\0\0", 47);
	n += pg_ready(buf + n);
	io(40, PGSQL, CLIENT, IN, buf, n);
	/* extended: a named statement parsed once, then two executions pipelined */
	n = pg_msg(buf, 'P', "s1\0SELECT 1 FROM t WHERE a = $1\0\0\0", 34);
	n += pg_msg(buf + n, 'S', "", 0);
	io(40, PGSQL, CLIENT, OUT, buf, n);
	n = pg_msg(buf, '1', "", 0);
	n += pg_ready(buf + n);
	io(40, PGSQL, CLIENT, IN, buf, n);
	n = 0;
	for (int i = 0; i < 2; i++) {
		n += pg_msg(buf + n, 'B', "\0s1\0\0\0\0\1\0\0\0\0011\0\0", 15);
		n += pg_msg(buf + n, 'E', "\0\0\0\0\0", 5);
		n += pg_msg(buf + n, 'S', "", 0);
	}
	io(40, PGSQL, CLIENT, OUT, buf, n);
	n = 0;
	for (int i = 0; i < 2; i++) {
		n += pg_msg(buf + n, '2', "", 0);
		n += pg_msg(buf + n, 'C', "SELECT 0\0", 9);
		n += pg_ready(buf + n);
	}
	io(40, PGSQL, CLIENT, IN, buf, n);
	/* unnamed statement, parse/bind/execute/sync in one write */
	n = pg_msg(buf, 'P', "\0select 2\0\0\0", 12);
	n += pg_msg(buf + n, 'B', "\0\0\0\0\0\0\0\0", 8);
	n += pg_msg(buf + n, 'E', "\0\0\0\0\0", 5);
	n += pg_msg(buf + n, 'S', "", 0);
	io(40, PGSQL, CLIENT, OUT, buf, n);
	n = pg_msg(buf, '1', "", 0);
	n += pg_msg(buf + n, '2', "", 0);
	n += pg_msg(buf + n, 'C', "SELECT 1\0", 9);
	n += pg_ready(buf + n);
	io(40, PGSQL, CLIENT, IN, buf, n);
	assert_int_equal(count(), 6);
	expect(0, "SELECT abalance FROM pgbench_accounts WHERE aid = ?", 0, false);
	expect(1, "SELEC ?", 0, true);
	assert_string_equal(H.spans[1].err, "42601: syntax error at or near \"SELEC\"");
	expect(2, "PREPARE SELECT ? FROM t WHERE a = $1", 0, false);
	expect(3, "SELECT ? FROM t WHERE a = $1", 0, false);
	expect(4, "SELECT ? FROM t WHERE a = $1", 0, false);
	expect(5, "select ?", 0, false);

	/* SSL accepted: the connection is given up */
	open_conn(41, PGSQL, CLIENT);
	n = pg_msg(buf, 0, "\x04\xd2\x16\x2f", 4);
	io(41, PGSQL, CLIENT, OUT, buf, n);
	io(41, PGSQL, CLIENT, IN, "S", 1);
	io(41, PGSQL, CLIENT, OUT, "\x16\x03\x01\x00\x10garbage", 12);
	assert_int_equal(count(), 6);
}

/* ---- losses, tags, bounds ---- */

static void test_lost_events_and_tags(void **state)
{
	(void)state;
	open_conn(50, HTTP, SERVER);
	io_flags(50, HTTP, SERVER, IN, "GET /a HTTP/1.1\r\n\r\n", 19, 0, 777);
	/* the response was lost: the next event says so; no span pairs wrongly */
	io_flags(50, HTTP, SERVER, IN, "GET /b HTTP/1.1\r\n\r\n", 19, EMBER_SPAN_F_LOST_BEFORE, 778);
	sstr(50, HTTP, SERVER, OUT, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(count(), 0); /* /b started in a lost turn: dropped with it */
	io_flags(50, HTTP, SERVER, IN, "GET /c HTTP/1.1\r\n\r\n", 19, 0, 779);
	sstr(50, HTTP, SERVER, OUT, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(count(), 1);
	expect(0, "GET /c", 200, false);
	/* each request a server read was tagged with its endpoint */
	assert_int_equal(H.n_tags, 2);
	assert_int_equal(H.tags[0][0], 777);
	assert_string_equal(ember_endpoints_name(H.eps, (uint32_t)H.tags[0][1]), "GET /a");
	assert_int_equal(H.tags[1][0], 779);
	uint64_t st[EMBER_TRACKER__COUNT];
	ember_tracker_stats(H.tr, st);
	assert_int_equal(st[EMBER_TRACKER_LOST], 1);
	assert_true(st[EMBER_TRACKER_UNANSWERED] >= 1);
}

static void test_bounds(void **state)
{
	(void)state;
	/* max_conns is 8: the least recently active connections make room */
	for (uint64_t c = 100; c < 150; c++) {
		open_conn(c, HTTP, CLIENT);
		sstr(c, HTTP, CLIENT, OUT, "GET /x HTTP/1.1\r\n\r\n");
	}
	uint64_t st[EMBER_TRACKER__COUNT];
	ember_tracker_stats(H.tr, st);
	assert_int_equal(st[EMBER_TRACKER_CONNS], 8);
	assert_int_equal(st[EMBER_TRACKER_CONNS_EVICTED], 42);
	/* unanswered requests per connection are bounded */
	open_conn(200, REDIS, CLIENT);
	for (int i = 0; i < 500; i++)
		sstr(200, REDIS, CLIENT, OUT, "*1\r\n$4\r\nPING\r\n");
	ember_tracker_stats(H.tr, st);
	assert_int_equal(st[EMBER_TRACKER_PENDING_FULL], 500 - 64);
	/* exit of the process ends its connections at the following sweeps */
	struct ember_span_ctl ex = {.type = EMBER_CTL_EXIT, .tgid = 10};
	ember_tracker_ctl(H.tr, &ex);
	ember_tracker_sweep(H.tr, H.ts);
	ember_tracker_sweep(H.tr, H.ts);
	ember_tracker_stats(H.tr, st);
	assert_int_equal(st[EMBER_TRACKER_CONNS], 0);
	/* idle connections are closed */
	open_conn(300, HTTP, CLIENT);
	sstr(300, HTTP, CLIENT, OUT, "GET /x HTTP/1.1\r\n\r\n");
	ember_tracker_sweep(H.tr, H.ts + EMBER_TRACKER_IDLE_NS + 1);
	ember_tracker_stats(H.tr, st);
	assert_int_equal(st[EMBER_TRACKER_CONNS], 0);
	assert_int_equal(st[EMBER_TRACKER_CONNS_IDLE], 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_http_server_keepalive),    T(test_http_client_pipelined_chunked),
		T(test_http_body_not_captured),   T(test_http_interim_until_close_upgrade),
		T(test_http_garbage_and_long_headers), T(test_redis_pipelined),
		T(test_redis_big_values),         T(test_mysql_queries),
		T(test_mysql_prepared),           T(test_pgsql),
		T(test_lost_events_and_tags),     T(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
