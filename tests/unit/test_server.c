/*
 * test_server.c - the HTTP server end to end, over a real socket.
 *
 * A temporary database gets a known profile through the store API, the
 * server is started on 127.0.0.1 port 0, and a tiny HTTP/1.0 client written
 * here fetches the UI and every API endpoint and checks what comes back:
 * status codes, headers, the known function's sample counts, the gzip magic
 * of the pprof download, 400s naming the bad parameter, 404s, 405.  The
 * query-parameter parser and the listen-address parser are also tested
 * directly.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/profile.h"
#include "server/api.h"
#include "server/server.h"
#include "store/store.h"

static char tmpdir[64];
static char db_path[128];
static struct ember_server *server;
static int port;
static int64_t ingest_ms;

/* ---- a tiny HTTP client ---- */

struct http_reply {
	int status;
	char *head; /* status line and headers, NUL-terminated */
	char *body; /* NUL-terminated for convenience */
	size_t len;
};

static void http_free(struct http_reply *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Send a raw request, read to EOF, split head and body. */
static void http_raw(const char *request, struct http_reply *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	memset(r, 0, sizeof(*r));
	assert_non_null(buf);
	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			assert_true(cap < (64u << 20));
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	close(fd);
	buf[len] = '\0';

	char *end = strstr(buf, "\r\n\r\n");
	assert_non_null(end);
	size_t head_len = (size_t)(end - buf);
	r->head = strndup(buf, head_len);
	r->len = len - head_len - 4;
	r->body = malloc(r->len + 1);
	assert_non_null(r->head);
	assert_non_null(r->body);
	memcpy(r->body, end + 4, r->len);
	r->body[r->len] = '\0';
	assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1);
	free(buf);
}

static void http_get(const char *path, struct http_reply *r)
{
	char req[2048];

	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	http_raw(req, r);
}

/* Case-insensitive header lookup: true if "Name: value-prefix" is present. */
static bool has_header(const struct http_reply *r, const char *name, const char *value)
{
	char want[256];

	snprintf(want, sizeof(want), "\r\n%s: %s", name, value);
	return strcasestr(r->head, want) != NULL;
}

/* ---- fixture: a database with a known profile, a running server ---- */

static uint32_t frame(struct ember_profile *p, const char *fn, uint32_t line)
{
	struct ember_frame f = {.function = fn, .file = "svc.c", .line = line,
				.module = "/usr/bin/testsvc", .build_id = "abcdef0123456789",
				.address = 0x1000 + line};
	return ember_profile_frame(p, &f);
}

static void agent_stats(struct strbuf *sb, void *arg)
{
	sb_printf(sb, "{\"test_agent\":%d}", *(int *)arg);
}

static int agent_arg = 1;

static int group_setup(void **state)
{
	struct ember_target t = {.pid = 4242, .comm = "testsvc", .exe = "/usr/bin/testsvc",
				 .service = "testsvc", .version = "1.0",
				 .build_id = "abcdef0123456789"};
	struct ember_server_config cfg = {.listen = "127.0.0.1:0", .db_path = db_path,
					  .stats_json = agent_stats, .stats_arg = &agent_arg};
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_store *store;
	struct ember_profile *p = ember_profile_new();
	struct timespec now;
	uint32_t stack[3];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ember-test-server-XXXXXX");
	if (!mkdtemp(tmpdir) || !p)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/ember.db", tmpdir);

	uint32_t tid = ember_profile_target(p, &t);
	stack[0] = frame(p, "compute_hash", 30);
	stack[1] = frame(p, "handle_request", 20);
	stack[2] = frame(p, "main", 10);
	if (ember_profile_add(p, tid, stack, 3, 7, 0) || ember_profile_add(p, tid, stack + 1, 2, 3, 0))
		return -1;
	clock_gettime(CLOCK_REALTIME, &now);
	ingest_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (ember_store_open(db_path, &store, err, sizeof(err))) {
		fprintf(stderr, "store open: %s\n", err);
		return -1;
	}
	if (ember_store_ingest(store, p, ingest_ms * 1000000, err, sizeof(err))) {
		fprintf(stderr, "store ingest: %s\n", err);
		return -1;
	}
	ember_store_close(store);
	ember_profile_free(p);

	if (ember_server_start(&cfg, &server, err, sizeof(err))) {
		fprintf(stderr, "server start: %s\n", err);
		return -1;
	}
	port = ember_server_port(server);
	if (port <= 0)
		return -1;
	*state = NULL;
	return 0;
}

static int group_teardown(void **state)
{
	char path[256];

	ember_server_stop(server);
	for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", NULL}; *sfx; sfx++) {
		snprintf(path, sizeof(path), "%s%s", db_path, *sfx);
		unlink(path);
	}
	rmdir(tmpdir);
	return 0;
}

/* ---- the web UI ---- */

static void test_index(void **state)
{
	struct http_reply r;

	http_get("/", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type", "text/html"));
	assert_non_null(strstr(r.body, "Ember"));
	assert_null(strcasestr(r.head, "Content-Encoding"));
	http_free(&r);

	http_get("/flame.js", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type", "text/javascript"));
	http_free(&r);

	http_get("/style.css", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type", "text/css"));
	http_free(&r);
}

static void test_not_found(void **state)
{
	struct http_reply r;

	http_get("/no-such-file.html", &r);
	assert_int_equal(r.status, 404);
	http_free(&r);
	http_get("/../etc/passwd", &r);
	assert_int_equal(r.status, 404);
	http_free(&r);
	http_get("/api/nope", &r);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "\"error\""));
	http_free(&r);
}

static void test_method_not_allowed(void **state)
{
	struct http_reply r;

	http_raw("POST /api/targets HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "Allow", "GET"));
	http_free(&r);
}

/* On loopback, requests for other host names (DNS rebinding) are refused. */
static void test_host_check(void **state)
{
	struct http_reply r;

	http_raw("GET /api/targets HTTP/1.1\r\nHost: attacker.example:7070\r\n"
		 "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 403);
	http_free(&r);
	http_raw("GET /api/targets HTTP/1.1\r\nHost: localhost:7070\r\n"
		 "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	http_free(&r);
	http_raw("GET /api/targets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
		 &r);
	assert_int_equal(r.status, 200);
	http_free(&r);
}

/* ---- the API ---- */

static int64_t first_target_id(const char *json)
{
	const char *id = strstr(json, "\"id\":");

	assert_non_null(id);
	return strtoll(id + 5, NULL, 10);
}

static void test_targets(void **state)
{
	struct http_reply r;

	http_get("/api/targets", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type", "application/json"));
	assert_true(has_header(&r, "Cache-Control", "no-store"));
	assert_non_null(strstr(r.body, "{\"targets\":[{"));
	assert_non_null(strstr(r.body, "\"service\":\"testsvc\""));
	assert_non_null(strstr(r.body, "\"version\":\"1.0\""));
	assert_non_null(strstr(r.body, "\"pid\":4242"));
	assert_non_null(strstr(r.body, "\"comm\":\"testsvc\""));
	assert_non_null(strstr(r.body, "\"samples\":10"));
	assert_true(first_target_id(r.body) > 0);
	/* times are unix milliseconds around the ingest time (10 s buckets) */
	const char *last = strstr(r.body, "\"last_seen\":");
	assert_non_null(last);
	int64_t ms = strtoll(last + 12, NULL, 10);
	assert_true(ms > ingest_ms - 3600 * 1000 && ms < ingest_ms + 3600 * 1000);
	http_free(&r);
}

static void test_flamegraph(void **state)
{
	struct http_reply r;
	char path[256];
	int64_t id;

	http_get("/api/flamegraph", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Cache-Control", "no-store"));
	assert_non_null(strstr(r.body, "\"total\":10"));
	assert_non_null(strstr(r.body, "\"root\":{\"name\":\"all\",\"value\":10,"));
	assert_non_null(strstr(r.body, "{\"name\":\"main\",\"value\":10,\"self\":0,"));
	assert_non_null(strstr(r.body, "{\"name\":\"handle_request\",\"value\":10,\"self\":3,"));
	assert_non_null(strstr(r.body, "{\"name\":\"compute_hash\",\"value\":7,\"self\":7,"
				       "\"file\":\"svc.c\",\"line\":30,"));
	http_free(&r);

	/* the same through every selection parameter */
	http_get("/api/targets", &r);
	id = first_target_id(r.body);
	http_free(&r);
	snprintf(path, sizeof(path),
		 "/api/flamegraph?target=%lld&service=testsvc&version=1.0&pid=4242&from=%lld"
		 "&to=%lld",
		 (long long)id, (long long)(ingest_ms - 3600 * 1000),
		 (long long)(ingest_ms + 3600 * 1000));
	http_get(path, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"total\":10"));
	assert_non_null(strstr(r.body, "{\"name\":\"compute_hash\",\"value\":7,"));
	http_free(&r);

	/* a selection that matches nothing */
	http_get("/api/flamegraph?service=other", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"total\":0"));
	assert_null(strstr(r.body, "compute_hash"));
	http_free(&r);
	snprintf(path, sizeof(path), "/api/flamegraph?from=%lld",
		 (long long)(ingest_ms + 24 * 3600 * 1000));
	http_get(path, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"total\":0"));
	http_free(&r);
}

/* Bodies over 1 KiB are gzip'd for clients that ask (index.html is larger). */
static void test_gzip(void **state)
{
	struct http_reply r;

	http_raw("GET / HTTP/1.0\r\nAccept-Encoding: deflate, gzip\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_true(r.len > 2);
	assert_true(has_header(&r, "Content-Encoding", "gzip"));
	assert_int_equal((unsigned char)r.body[0], 0x1f);
	assert_int_equal((unsigned char)r.body[1], 0x8b);
	http_free(&r);
}

static void test_pprof(void **state)
{
	struct http_reply r;

	http_get("/api/pprof?service=testsvc", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type", "application/octet-stream"));
	assert_true(has_header(&r, "Content-Disposition",
			       "attachment; filename=\"ember-testsvc.pb.gz\""));
	assert_true(r.len > 20);
	assert_int_equal((unsigned char)r.body[0], 0x1f);
	assert_int_equal((unsigned char)r.body[1], 0x8b);
	http_free(&r);
}

static void test_folded(void **state)
{
	struct http_reply r;

	http_get("/api/folded", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type", "text/plain"));
	assert_non_null(strstr(r.body, "main;handle_request;compute_hash 7\n"));
	assert_non_null(strstr(r.body, "main;handle_request 3\n"));
	http_free(&r);
}

/* group=process: every stack under its process, named as `record --all` names it */
static void test_group_by_process(void **state)
{
	struct http_reply r;

	http_get("/api/folded?group=process", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "testsvc-4242;main;handle_request;compute_hash 7\n"));
	assert_non_null(strstr(r.body, "testsvc-4242;main;handle_request 3\n"));
	http_free(&r);
	http_get("/api/flamegraph?group=process&service=testsvc", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"root\":{\"name\":\"all\",\"value\":10,\"self\":0,\"children\":["
				       "{\"name\":\"testsvc-4242\",\"value\":10,\"self\":0,"));
	assert_non_null(strstr(r.body, "{\"name\":\"compute_hash\",\"value\":7,\"self\":7,"));
	http_free(&r);
	/* an empty group is no grouping */
	http_get("/api/folded?group=", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "main;handle_request;compute_hash 7\n"));
	assert_null(strstr(r.body, "testsvc-4242"));
	http_free(&r);
}

static void test_stats(void **state)
{
	struct http_reply r;

	http_get("/api/stats", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "{\"store\":{\"targets\":1,"));
	assert_non_null(strstr(r.body, "\"samples\":10"));
	assert_non_null(strstr(r.body, "\"agent\":{\"test_agent\":1}}"));
	/* the server's own limits and counters */
	assert_non_null(strstr(r.body, "\"server\":{\"threads\":"));
	assert_non_null(strstr(r.body, "\"max_per_client\":16,\"request_deadline_s\":10,"));
	assert_non_null(strstr(r.body, "\"connections\":{\"open\":"));
	assert_non_null(strstr(r.body, "\"queries\":{\"queued\":"));
	http_free(&r);
}

/*
 * A query thread's answer goes out at once: the event thread is woken when
 * a connection is resumed, not at its next 250 ms sweep.  40 requests in a
 * row took 5 s (125 ms each on average) before the wake-up; the bound is
 * loose enough for a busy machine.
 */
static void test_answers_without_delay(void **state)
{
	struct timespec t0, t1;
	struct http_reply r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 40; i++) {
		http_get("/api/targets", &r);
		assert_int_equal(r.status, 200);
		http_free(&r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (s > 2.5)
		fail_msg("40 API requests in a row took %.2f s", s);
}

static void test_default_limits(void **state)
{
	struct ember_server_limits lim;

	ember_server_get_limits(server, &lim);
	assert_true(lim.threads >= 2 && lim.threads <= EMBER_SERVER_MAX_THREADS);
	assert_true(lim.max_connections >= 64 && lim.max_connections <= EMBER_SERVER_MAX_CONNECTIONS);
	assert_int_equal(lim.max_per_client, EMBER_SERVER_MAX_PER_CLIENT);
	assert_int_equal(lim.request_deadline_s, EMBER_SERVER_REQUEST_DEADLINE_S);
	assert_int_equal(lim.send_deadline_s, EMBER_SERVER_SEND_DEADLINE_S);
	assert_int_equal(lim.queue_wait_s, EMBER_SERVER_QUEUE_WAIT_S);
}

/*
 * Stopping with API requests queued, running and waiting to be sent: every
 * client gets its answer (200) or a 503, or sees the connection close;
 * nothing aborts (libmicrohttpd refuses to stop with suspended connections)
 * or leaks (the ASan build checks).  Runs against a second server on the
 * same database, with one query thread so that requests queue.
 */
static void test_stop_under_load(void **state)
{
	enum { N = 24 };
	struct ember_server_config cfg = {.listen = "127.0.0.1:0", .db_path = db_path,
					  .limits = {.threads = 1, .max_per_client = 64}};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct ember_server *s2;
	char err[256], buf[256];
	int fds[N];
	const char *req = "GET /api/flamegraph HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";

	assert_int_equal(ember_server_start(&cfg, &s2, err, sizeof(err)), 0);
	sa.sin_port = htons((uint16_t)ember_server_port(s2));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	for (int i = 0; i < N; i++) {
		struct timeval tv = {.tv_sec = 20};
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fds[i] >= 0);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(write(fds[i], req, strlen(req)), (ssize_t)strlen(req));
	}
	/* stop at once: some requests are still being read, queued or run */
	ember_server_stop(s2);
	for (int i = 0; i < N; i++) {
		ssize_t n = read(fds[i], buf, sizeof(buf) - 1);
		int status = 0;
		if (n < 0 && errno == ECONNRESET)
			n = 0; /* closed */
		if (n < 0)
			fail_msg("connection %d: %s (no answer, no close)", i, strerror(errno));
		buf[n > 0 ? n : 0] = '\0';
		if (n > 0 && sscanf(buf, "HTTP/1.%*d %d", &status) == 1)
			assert_true(status == 200 || status == 503);
		close(fds[i]);
	}
}

static void expect_400(const char *path, const char *needle)
{
	struct http_reply r;

	http_get(path, &r);
	if (r.status != 400 || !strstr(r.body, needle))
		fail_msg("%s: status %d body %s (wanted 400 naming %s)", path, r.status, r.body,
			 needle);
	assert_non_null(strstr(r.body, "{\"error\":"));
	assert_true(has_header(&r, "Content-Type", "application/json"));
	http_free(&r);
}

static void test_bad_params(void **state)
{
	char path[1024];

	expect_400("/api/flamegraph?target=abc", "target");
	expect_400("/api/flamegraph?target=-1", "target");
	expect_400("/api/flamegraph?target=99999999999999999999999", "target");
	expect_400("/api/flamegraph?pid=12x", "pid");
	expect_400("/api/flamegraph?pid=4294967296", "pid");
	expect_400("/api/flamegraph?from=yesterday", "from");
	expect_400("/api/flamegraph?from=5&to=1", "from");
	expect_400("/api/flamegraph?to=0", "to");
	expect_400("/api/pprof?target=1&target=2", "target");
	expect_400("/api/folded?colour=red", "colour");
	expect_400("/api/folded?group=thread", "group");
	expect_400("/api/flamegraph?group=process&group=process", "group");
	expect_400("/api/targets?x=1", "x");
	snprintf(path, sizeof(path), "/api/flamegraph?service=%0300d", 0);
	expect_400(path, "service");
}

/* ---- pure parsers ---- */

static void test_parse_query(void **state)
{
	struct ember_api_param ok[] = {{"target", "12"}, {"service", "api"}, {"version", ""},
				       {"pid", "7"},     {"from", "1000"},   {"to", "2000"}};
	struct ember_api_param big[] = {{"from", "9223372036855"}};
	struct ember_api_query q;
	char err[256];

	assert_int_equal(ember_api_parse_query(ok, 6, &q, err, sizeof(err)), 0);
	assert_int_equal(q.sel.target_id, 12);
	assert_string_equal(q.sel.service, "api");
	assert_null(q.sel.version); /* empty = any */
	assert_int_equal(q.sel.pid, 7);
	assert_int_equal(q.sel.from_ns, 1000 * 1000000LL);
	assert_int_equal(q.sel.to_ns, 2000 * 1000000LL);

	/* milliseconds whose nanoseconds would overflow int64 */
	assert_int_equal(ember_api_parse_query(big, 1, &q, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "from"));

	assert_int_equal(ember_api_parse_query(NULL, 0, &q, err, sizeof(err)), 0);
	assert_int_equal(q.sel.target_id, 0);
	assert_int_equal(q.sel.from_ns, 0);
}

static void test_listen_parse(void **state)
{
	struct sockaddr_storage ss;
	unsigned int len;
	char err[256];

	assert_int_equal(ember_server_parse_listen("127.0.0.1:7070", &ss, &len, err, sizeof(err)),
			 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 7070);
	assert_int_equal(ember_server_parse_listen("[::1]:0", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ember_server_parse_listen("localhost:80", &ss, &len, err, sizeof(err)),
			 0);

	const char *bad[] = {"", "7070", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
			     "127.0.0.1:-1", "::1:80", "[::1]80", "[::1", "999.1.1.1:80",
			     "example.com:80", "1.2.3.4:80x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (ember_server_parse_listen(bad[i], &ss, &len, err, sizeof(err)) != -EINVAL)
			fail_msg("listen string \"%s\" was accepted", bad[i]);
		assert_non_null(strstr(err, "invalid listen address"));
	}
}

static void test_start_errors(void **state)
{
	struct ember_server_config cfg = {.listen = "not-an-address", .db_path = db_path};
	struct ember_server *s = NULL;
	char err[512] = "", listen[64];

	assert_true(ember_server_start(&cfg, &s, err, sizeof(err)) < 0);
	assert_null(s);
	assert_non_null(strstr(err, "not-an-address"));

	/* the port the test server holds cannot be bound twice */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	cfg.listen = listen;
	err[0] = '\0';
	assert_true(ember_server_start(&cfg, &s, err, sizeof(err)) < 0);
	assert_null(s);
	assert_non_null(strstr(err, listen));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_method_not_allowed),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_flamegraph),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_host_check),
		cmocka_unit_test(test_pprof),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_group_by_process),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_default_limits),
		cmocka_unit_test(test_answers_without_delay),
		cmocka_unit_test(test_stop_under_load),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_parse_query),
		cmocka_unit_test(test_listen_parse),
		cmocka_unit_test(test_start_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
