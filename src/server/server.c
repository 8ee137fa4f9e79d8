/*
 * server.c - the HTTP server: its event thread, routing, static files, and
 * the hand-off of API requests to the query threads.
 *
 * Threads.  libmicrohttpd runs in "external" mode on the server's one event
 * thread (loop_main): epoll_wait() on MHD's epoll descriptor and an eventfd,
 * MHD_run(), and a sweep of the connection table 4 times a second.  That
 * thread accepts, reads requests, answers static files and errors itself,
 * and writes every response.  In external mode MHD processes a resumed
 * connection only in the next MHD_run(), so a query thread that resumes one
 * also writes the eventfd (without it the answer waited up to 250 ms).  A
 * complete /api/ request is copied into a job, its connection suspended
 * (MHD_suspend_connection) and the job queued on the query pool; a query
 * thread answers it with its own ember_api (and read-only store
 * connection), compresses the reply and resumes the connection, and the
 * event thread sends it.  So a query never blocks the event thread, and a
 * slow client only ever holds a connection slot, never a thread.
 *
 * Connections.  The connection table (conn_table.h) is fed by MHD's
 * callbacks, all on the event thread: the accept policy asks it whether a
 * new connection is admitted (per-client limit; when full, the
 * longest-waiting connection is evicted); the connection notifier adds and
 * removes entries; the request handler and the completion notifier move an
 * entry between receiving, processing and sending.  The sweep shuts down
 * (shutdown(2)) the connections past their deadline; MHD then sees the
 * socket end and closes it on the same thread, so the descriptor cannot be
 * reused under us.  MHD's own limits stay as a backstop: its connection
 * limit is the table's capacity, its idle timeout the request deadline, and
 * its per-connection memory (32 KiB) bounds the request line and headers,
 * and it runs strict (400 for HTTP/1.1 without Host, spaces in the URL).
 *
 * Stopping.  MHD refuses to stop while a connection is suspended, so the
 * event thread first stops the pool (queued jobs are answered 503, running
 * ones finish), answers new API requests 503 at once, and runs MHD until no
 * connection is suspended.
 *
 * The listen address is parsed here and bound exactly as given (loopback by
 * default); a bad string or a failed bind is reported with the address in
 * the message.  libmicrohttpd's own log lines are captured while starting,
 * so "address already in use" reaches the caller instead of stderr.  On
 * loopback, requests whose Host header is not a loopback name are refused
 * (403), so a web page cannot use DNS rebinding to read profiles through
 * the visitor's browser.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/memory.h"
#include "server/api.h"
#include "server/conn_table.h"
#include "server/http_reply.h"
#include "server/query_pool.h"
#include "server/web_assets.h"

#define NS_PER_S 1000000000LL
#define SWEEP_NS (NS_PER_S / 4)
#define REFUSAL_LOG_NS (60 * NS_PER_S) /* at most one refusal (or MHD) message a minute */
#define STOP_DRAIN_ROUNDS 1000         /* x 10 ms: resumed connections answered */
#define FD_RESERVE_DIVISOR 2           /* connections get half the open-file limit */

struct ember_server {
	struct MHD_Daemon *daemon;
	struct ember_server_config cfg; /* with defaults resolved (listen, db_path borrowed) */
	struct ember_server_limits lim;
	struct conn_table conns;        /* event thread only (counters: any thread) */
	struct query_pool *pool;
	pthread_t loop;
	bool loop_started;
	int epoll_fd;        /* the event thread waits here: MHD's epoll set and wake_fd */
	int wake_fd;         /* eventfd: a query thread resumed a connection, or stop */
	int port;
	bool loopback;       /* listening on 127.0.0.0/8 or ::1: check Host */
	bool starting;       /* capture MHD's log into start_err */
	char start_err[256];
	bool stopping;       /* set by ember_server_stop (atomic) */
	bool draining;       /* event thread: the pool is stopped, answer 503 at once */
	size_t n_suspended;  /* event thread: connections waiting for the pool */
	int64_t last_refusal_log_ns; /* event thread */
	int64_t last_mhd_log_ns;     /* any thread (atomic) */
	/* any thread (atomics) */
	uint64_t requests, api_requests, busy_replies;
	int64_t api_in_flight;
	int64_t last_api_ns; /* CLOCK_MONOTONIC end of the last API request */
	bool memory_kept;    /* freed query memory not handed back yet */
	pthread_mutex_t stats_lock; /* one agent stats_json call at a time */
};

/*
 * One HTTP request (MHD's req_cls), from its headers to its completion.
 * For an API request the path and parameters are copied here, because the
 * query thread reads them while the event thread goes on with MHD.
 */
struct request {
	struct query_job job; /* the pool's handle; first, see request_of() */
	struct ember_server *s;
	struct MHD_Connection *c;
	bool started;       /* the handler has seen the headers */
	bool bad_uri;       /* malformed percent-encoding in the raw URI */
	size_t body_bytes;  /* request body read and ignored */
	bool suspended;     /* waiting for a query thread */
	bool gzip;          /* the client accepts gzip */
	char *strings;      /* path and parameters, one allocation */
	const char *path;
	struct ember_api_param params[EMBER_API_MAX_PARAMS + 1];
	size_t n_params;
	struct http_reply reply; /* filled by the query thread */
};

static struct request *request_of(struct query_job *job)
{
	return (struct request *)((char *)job - offsetof(struct request, job));
}

/* ---- the listen address ---- */

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int ember_server_parse_listen(const char *listen, struct sockaddr_storage *addr,
			      unsigned int *addrlen, char *err, size_t errlen)
{
	char host[64];
	const char *port_str, *colon;
	size_t host_len;
	bool v6 = false;
	uint16_t port;

	memset(addr, 0, sizeof(*addr));
	if (!listen || !*listen || strlen(listen) > 128)
		goto bad;
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':')
			goto bad;
		v6 = true;
		host_len = (size_t)(close - listen - 1);
		memcpy(host, listen + 1, host_len < sizeof(host) ? host_len : 0);
		port_str = close + 2;
	} else {
		colon = strrchr(listen, ':');
		if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
			goto bad; /* no port, or an IPv6 address without brackets */
		host_len = (size_t)(colon - listen);
		memcpy(host, listen, host_len < sizeof(host) ? host_len : 0);
		port_str = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(host) || parse_port(port_str, &port))
		goto bad;
	host[host_len] = '\0';

	if (v6) {
		struct sockaddr_in6 *sa = (struct sockaddr_in6 *)addr;
		if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
			goto bad;
		sa->sin6_family = AF_INET6;
		sa->sin6_port = htons(port);
		*addrlen = sizeof(*sa);
	} else {
		struct sockaddr_in *sa = (struct sockaddr_in *)addr;
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
			goto bad;
		sa->sin_family = AF_INET;
		sa->sin_port = htons(port);
		*addrlen = sizeof(*sa);
	}
	return 0;
bad:
	snprintf(err, errlen,
		 "invalid listen address \"%.128s\": expected ADDR:PORT or [IPV6ADDR]:PORT "
		 "with a numeric address (e.g. 127.0.0.1:7070)",
		 listen ? listen : "");
	return -EINVAL;
}

static bool is_loopback(const struct sockaddr_storage *addr)
{
	if (addr->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)addr)->sin6_addr);
	return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
}

/*
 * A server on loopback answers only requests addressed to a loopback name.
 * Otherwise a web page could point its own host name at 127.0.0.1 (DNS
 * rebinding) and read the profiles from the visitor's browser.  No Host
 * header (HTTP/1.0) is fine: browsers always send one.
 */
static bool host_allowed(const char *host)
{
	char name[128];
	const char *end;
	struct in_addr a;

	if (!host)
		return true;
	if (host[0] == '[')
		end = strchr(host, ']') ? strchr(host, ']') + 1 : host + strlen(host);
	else
		end = strchr(host, ':') ? strchr(host, ':') : host + strlen(host);
	if ((size_t)(end - host) >= sizeof(name))
		return false;
	memcpy(name, host, (size_t)(end - host));
	name[end - host] = '\0';
	if (strcasecmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0)
		return true;
	return inet_pton(AF_INET, name, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* ---- connections: the table's callbacks (event thread) ---- */

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void set_phase(struct MHD_Connection *c, enum conn_phase phase)
{
	struct conn *conn = conn_of(c);

	if (conn)
		conn_table_set_phase(conn, phase, ember_monotonic_ns());
}

static void log_refusal(struct ember_server *s, const struct conn_client *client,
			enum conn_verdict v)
{
	int64_t now = ember_monotonic_ns();
	char who[64];

	if (s->last_refusal_log_ns && now - s->last_refusal_log_ns < REFUSAL_LOG_NS)
		return; /* the counters in /api/stats have the rest */
	s->last_refusal_log_ns = now;
	conn_client_format(client, who, sizeof(who));
	if (v == CONN_REFUSE_PER_CLIENT)
		ember_warn("server: refused a connection from %s: it already holds %u "
			   "(the per-client limit; further refusals this minute are only counted)",
			   who, s->lim.max_per_client);
	else
		ember_warn("server: refused a connection from %s: %u connections are open and "
			   "every one is being answered (further refusals this minute are only counted)",
			   who, s->lim.max_connections);
}

/* MHD's accept policy: admit, or refuse (MHD closes the socket). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct ember_server *s = cls;
	struct conn_client client;
	enum conn_verdict v;
	int evict_fd;

	conn_client_from_sockaddr(addr, addrlen, &client);
	v = conn_table_admit(&s->conns, &client, &evict_fd);
	if (evict_fd >= 0)
		shutdown(evict_fd, SHUT_RDWR); /* MHD closes it on this thread */
	if (v == CONN_ADMIT)
		return MHD_YES;
	log_refusal(s, &client, v);
	return MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct ember_server *s = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *peer =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const struct sockaddr *sa = peer ? peer->client_addr : NULL;
		struct conn_client client;

		conn_client_from_sockaddr(sa,
					  sa && sa->sa_family == AF_INET6
						  ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in),
					  &client);
		*socket_context = fd ? conn_table_add(&s->conns, fd->connect_fd, &client,
						      ember_monotonic_ns())
				     : NULL;
		if (!*socket_context && fd) /* no slot left: not ours to keep */
			shutdown(fd->connect_fd, SHUT_RDWR);
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		conn_table_remove(&s->conns, *socket_context);
		*socket_context = NULL;
	}
}

/* A request is over (answered, or its connection closed): free it, wait for the next. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *req_cls;

	set_phase(c, CONN_RECEIVING);
	if (!rq)
		return;
	http_reply_free(&rq->reply);
	free(rq->strings);
	free(rq);
	*req_cls = NULL;
}

/* Shut down the connections past their deadline (MHD then closes them). */
static void sweep(struct ember_server *s)
{
	int fds[64];
	size_t n;

	do {
		n = conn_table_expired(&s->conns, ember_monotonic_ns(), fds, 64);
		for (size_t i = 0; i < n; i++)
			shutdown(fds[i], SHUT_RDWR);
	} while (n == 64);
}

/* ---- replies (event thread) ---- */

static enum MHD_Result answer(struct MHD_Connection *c, struct http_reply *r)
{
	set_phase(c, CONN_SENDING);
	return http_reply_queue(c, r);
}

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned int status,
				   const char *text)
{
	struct http_reply r;

	http_reply_text(&r, status, text);
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		r.retry_after = "5";
	return answer(c, &r);
}

static const struct ember_web_asset *find_asset(const char *path)
{
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (const struct ember_web_asset *a = ember_web_assets; a->path; a++)
		if (strcmp(a->path, path) == 0)
			return a;
	return NULL;
}

static enum MHD_Result serve_static(struct MHD_Connection *c, const char *url)
{
	const struct ember_web_asset *a = find_asset(url);
	struct http_reply r;

	if (!a)
		return answer_text(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
	r = (struct http_reply){.status = MHD_HTTP_OK, .content_type = a->mime,
				.cache = "no-cache", .body = a->data, .len = a->size};
	http_reply_compress(&r, http_accepts_gzip(c));
	return answer(c, &r);
}

/* ---- the API: hand-off to the query threads ---- */

struct param_copy {
	struct request *rq;
	size_t bytes;   /* sizing pass: string bytes needed */
	char *out;      /* copying pass: where the next string goes */
	bool too_many;
};

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct param_copy *pc = cls;
	struct request *rq = pc->rq;

	key = key ? key : "";
	value = value ? value : "";
	if (!pc->out) { /* sizing */
		if (rq->n_params == EMBER_API_MAX_PARAMS + 1) {
			pc->too_many = true;
			return MHD_NO; /* one past the limit is enough for the API to refuse */
		}
		rq->n_params++;
		pc->bytes += strlen(key) + strlen(value) + 2;
		return MHD_YES;
	}
	if (rq->n_params == EMBER_API_MAX_PARAMS + 1)
		return MHD_NO;
	struct ember_api_param *p = &rq->params[rq->n_params++];
	p->key = pc->out;
	pc->out = stpcpy(pc->out, key) + 1;
	p->value = pc->out;
	pc->out = stpcpy(pc->out, value) + 1;
	return MHD_YES;
}

/* Copy the path and query parameters into rq.  Returns 0 or -ENOMEM. */
static int copy_request(struct request *rq, const char *url)
{
	struct param_copy pc = {.rq = rq};
	size_t url_len = strlen(url) + 1;

	rq->n_params = 0;
	MHD_get_connection_values(rq->c, MHD_GET_ARGUMENT_KIND, collect_param, &pc);
	rq->strings = malloc(url_len + pc.bytes);
	if (!rq->strings)
		return -ENOMEM;
	memcpy(rq->strings, url, url_len);
	rq->path = rq->strings;
	pc.out = rq->strings + url_len;
	rq->n_params = 0;
	MHD_get_connection_values(rq->c, MHD_GET_ARGUMENT_KIND, collect_param, &pc);
	return 0;
}

/*
 * Wake the event thread.  In MHD's external mode a resumed connection is
 * only processed by the next MHD_run(): without this it would wait for the
 * next network event or timeout.
 */
static void wake(struct ember_server *s)
{
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		ember_warn_once("server-wake", "server: cannot wake the event thread: %s",
				strerror(errno));
}

static void busy_reply(struct request *rq, const char *text)
{
	http_reply_free(&rq->reply);
	http_reply_text(&rq->reply, MHD_HTTP_SERVICE_UNAVAILABLE, text);
	rq->reply.retry_after = "5";
	__atomic_add_fetch(&rq->s->busy_replies, 1, __ATOMIC_RELAXED);
}

static enum MHD_Result serve_api(struct ember_server *s, struct request *rq, const char *url)
{
	struct conn *conn = conn_of(rq->c);

	__atomic_add_fetch(&s->api_requests, 1, __ATOMIC_RELAXED);
	if (s->draining) {
		__atomic_add_fetch(&s->busy_replies, 1, __ATOMIC_RELAXED);
		return answer_text(rq->c, MHD_HTTP_SERVICE_UNAVAILABLE,
				   "503 the server is stopping\n");
	}
	if (copy_request(rq, url))
		return answer_text(rq->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n");
	rq->gzip = http_accepts_gzip(rq->c);
	if (conn)
		rq->job.client = conn->client;
	/*
	 * Suspend before queueing: a query thread may finish and resume the
	 * connection before this function returns.  If the pool refuses the
	 * job, resume at once; the handler then sends the 503.
	 */
	MHD_suspend_connection(rq->c);
	rq->suspended = true;
	s->n_suspended++;
	__atomic_add_fetch(&s->api_in_flight, 1, __ATOMIC_RELAXED);
	if (query_pool_submit(s->pool, &rq->job)) {
		busy_reply(rq, "503 too many queries are waiting; retry later\n");
		__atomic_sub_fetch(&s->api_in_flight, 1, __ATOMIC_RELAXED);
		MHD_resume_connection(rq->c);
		wake(s);
	}
	return MHD_YES;
}

/* The agent's stats callback, one call at a time. */
static void agent_stats_json(struct strbuf *sb, void *arg)
{
	struct ember_server *s = arg;

	pthread_mutex_lock(&s->stats_lock);
	s->cfg.stats_json(sb, s->cfg.stats_arg);
	pthread_mutex_unlock(&s->stats_lock);
}

static uint64_t load_u64(const uint64_t *v) { return __atomic_load_n(v, __ATOMIC_RELAXED); }

/* The "server" object of /api/stats (any thread). */
static void server_stats_json(struct strbuf *sb, void *arg)
{
	struct ember_server *s = arg;
	const struct conn_stats *cs = &s->conns.stats;
	struct query_pool_stats qs;

	query_pool_stats(s->pool, &qs);
	sb_printf(sb,
		  "{\"threads\":%u,\"max_connections\":%u,\"max_per_client\":%u,"
		  "\"request_deadline_s\":%u,\"send_deadline_s\":%u,\"queue_wait_s\":%u,"
		  "\"requests\":%" PRIu64 ",\"api_requests\":%" PRIu64 ",\"busy_replies\":%" PRIu64,
		  s->lim.threads, s->lim.max_connections, s->lim.max_per_client,
		  s->lim.request_deadline_s, s->lim.send_deadline_s, s->lim.queue_wait_s,
		  load_u64(&s->requests), load_u64(&s->api_requests), load_u64(&s->busy_replies));
	sb_printf(sb,
		  ",\"connections\":{\"open\":%" PRIu64 ",\"peak\":%" PRIu64 ",\"accepted\":%" PRIu64
		  ",\"refused_per_client\":%" PRIu64 ",\"refused_full\":%" PRIu64
		  ",\"evicted\":%" PRIu64 ",\"closed_request_deadline\":%" PRIu64
		  ",\"closed_send_deadline\":%" PRIu64 "}",
		  load_u64(&cs->open), load_u64(&cs->peak_open), load_u64(&cs->accepted),
		  load_u64(&cs->refused_per_client), load_u64(&cs->refused_full),
		  load_u64(&cs->evicted), load_u64(&cs->request_deadline),
		  load_u64(&cs->send_deadline));
	sb_printf(sb,
		  ",\"queries\":{\"queued\":%" PRIu64 ",\"running\":%" PRIu64
		  ",\"peak_queued\":%" PRIu64 ",\"done\":%" PRIu64 ",\"expired\":%" PRIu64
		  ",\"rejected\":%" PRIu64 ",\"mean_wait_ms\":%.1f}}",
		  qs.queued, qs.running, qs.peak_queued, qs.done, qs.expired, qs.rejected,
		  qs.done ? (double)qs.wait_ns / (double)qs.done / 1e6 : 0.0);
}

/* ---- the query threads (query_pool callbacks) ---- */

static void *thread_api_new(void *arg)
{
	struct ember_server *s = arg;
	struct ember_server_config cfg = s->cfg;
	struct ember_api *api;

	if (cfg.stats_json) { /* serialized through the server */
		cfg.stats_json = agent_stats_json;
		cfg.stats_arg = s;
	}
	api = ember_api_new(&cfg);
	if (api)
		ember_api_set_server_stats(api, server_stats_json, s);
	return api;
}

static void thread_api_free(void *ctx, void *arg) { ember_api_free(ctx); }

/* The job is answered: account for it and wake the event thread. */
static void finish_job(struct request *rq)
{
	struct ember_server *s = rq->s;

	__atomic_store_n(&s->last_api_ns, ember_monotonic_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&s->memory_kept, true, __ATOMIC_RELEASE);
	__atomic_sub_fetch(&s->api_in_flight, 1, __ATOMIC_RELAXED);
	MHD_resume_connection(rq->c);
	wake(s);
}

static void run_job(struct query_job *job, void *ctx, void *arg)
{
	struct request *rq = request_of(job);
	struct ember_api_reply ar;

	ember_api_handle(ctx, rq->path, rq->params, rq->n_params, &ar);
	if (!ar.body) { /* only when out of memory */
		http_reply_text(&rq->reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n");
	} else {
		rq->reply = (struct http_reply){.status = ar.status, .content_type = ar.content_type,
						.disposition = ar.disposition, .cache = "no-store",
						.body = ar.body, .len = ar.len, .owned = true};
		http_reply_compress(&rq->reply, rq->gzip);
	}
	finish_job(rq);
}

static void refuse_job(struct query_job *job, enum query_refusal why, void *arg)
{
	struct request *rq = request_of(job);

	busy_reply(rq, why == QUERY_EXPIRED ? "503 the query waited too long for a free thread;"
					      " retry later\n"
					    : "503 the server is stopping\n");
	finish_job(rq);
}

void ember_server_release_idle(struct ember_server *s, int64_t idle_ns)
{
	if (!s || !__atomic_load_n(&s->memory_kept, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&s->api_in_flight, __ATOMIC_RELAXED) > 0 ||
	    ember_monotonic_ns() - __atomic_load_n(&s->last_api_ns, __ATOMIC_RELAXED) < idle_ns)
		return;
	__atomic_store_n(&s->memory_kept, false, __ATOMIC_RELAXED);
	ember_memory_release();
}

/* ---- requests (event thread) ---- */

static bool is_read_method(const char *method)
{
	return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* The request's Content-Length is over the limit (absent or garbage: no). */
static bool body_too_large(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long v;

	if (!cl)
		return false;
	errno = 0;
	v = strtoull(cl, &end, 10);
	return errno == ERANGE || (end != cl && v > EMBER_SERVER_MAX_BODY_BYTES);
}

/*
 * Every '%' starts an escape of two hex digits, none of them %00: MHD would
 * pass "%zz" on as it is and cut a value at "%00", so a client could not
 * tell what the server understood.  These requests get a 400.
 */
static bool percent_encoding_ok(const char *uri)
{
	for (const char *p = strchr(uri, '%'); p; p = strchr(p + 1, '%')) {
		if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]) ||
		    (p[1] == '0' && p[2] == '0'))
			return false;
	}
	return true;
}

/*
 * MHD's URI callback, as soon as the request line is in: the request's
 * state starts here (it becomes req_cls; on_completed frees it, which MHD
 * calls for every request that got this far).
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct request *rq = calloc(1, sizeof(*rq));

	if (rq) {
		rq->s = cls;
		rq->c = c;
		rq->bad_uri = !percent_encoding_ok(uri);
	}
	return rq;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	struct ember_server *s = cls;
	struct request *rq = *req_cls;

	if (!rq)
		return MHD_NO; /* out of memory in on_uri: close */
	if (!rq->started) {
		/*
		 * The first call has only the headers.  Refuse what needs no body
		 * to refuse (MHD then closes the connection, the body unread);
		 * otherwise wait for the last call, after any (ignored) body.
		 */
		rq->started = true;
		__atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
		if (!is_read_method(method))
			return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
					   "405 method not allowed\n");
		if (rq->bad_uri)
			return answer_text(c, MHD_HTTP_BAD_REQUEST,
					   "400 malformed percent-encoding in the URL (or %00)\n");
		if (body_too_large(c))
			return answer_text(c, MHD_HTTP_CONTENT_TOO_LARGE,
					   "413 a request body is not expected here\n");
		return MHD_YES;
	}
	if (rq->suspended) { /* resumed: a query thread has answered */
		rq->suspended = false;
		s->n_suspended--;
		return answer(c, &rq->reply);
	}
	if (*upload_data_size) {
		rq->body_bytes += *upload_data_size;
		*upload_data_size = 0;
		/* a chunked body has no length up front: cut it off here */
		return rq->body_bytes > EMBER_SERVER_MAX_BODY_BYTES ? MHD_NO : MHD_YES;
	}
	set_phase(c, CONN_PROCESSING);
	if (s->loopback &&
	    !host_allowed(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
		return answer_text(c, MHD_HTTP_FORBIDDEN,
				   "403 this server only answers requests for localhost\n");
	if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/metrics") == 0)
		return serve_api(s, rq, url);
	return serve_static(c, url);
}

/* ---- the event thread ---- */

/* Wait for MHD's sockets, a wake-up, MHD's next timeout or the next sweep. */
static void wait_events(struct ember_server *s, int64_t next_sweep)
{
	struct epoll_event ev[2];
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	int64_t left = next_sweep - ember_monotonic_ns();
	int ms = left > 0 ? (int)((left + 999999) / 1000000) : 0, n;
	uint64_t count;

	if (MHD_get_timeout(s->daemon, &mhd_ms) == MHD_YES && mhd_ms < (MHD_UNSIGNED_LONG_LONG)ms)
		ms = (int)mhd_ms;
	n = epoll_wait(s->epoll_fd, ev, 2, ms);
	for (int i = 0; i < n; i++)
		if (ev[i].data.fd == s->wake_fd && read(s->wake_fd, &count, sizeof(count)) < 0 &&
		    errno != EAGAIN)
			ember_warn_once("server-wake-read", "server: wake-up read: %s", strerror(errno));
}

static void *loop_main(void *arg)
{
	struct ember_server *s = arg;
	int64_t next_sweep = ember_monotonic_ns() + SWEEP_NS;

	while (!__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE)) {
		wait_events(s, next_sweep);
		if (MHD_run(s->daemon) != MHD_YES)
			usleep(10000); /* MHD logged why; do not spin */
		if (ember_monotonic_ns() >= next_sweep) {
			sweep(s);
			next_sweep = ember_monotonic_ns() + SWEEP_NS;
		}
	}
	/* MHD cannot stop with suspended connections: answer them all first */
	s->draining = true;
	query_pool_stop(s->pool);
	for (int i = 0; s->n_suspended && i < STOP_DRAIN_ROUNDS; i++) {
		wait_events(s, ember_monotonic_ns() + 10 * 1000000LL);
		MHD_run(s->daemon);
	}
	if (s->n_suspended)
		ember_err("server: %zu connections still wait for a query thread at stop",
			  s->n_suspended);
	return NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct ember_server *s = cls;
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (__atomic_load_n(&s->starting, __ATOMIC_ACQUIRE)) {
		if (!s->start_err[0]) /* the first message is the cause */
			snprintf(s->start_err, sizeof(s->start_err), "%s", msg);
		return;
	}
	/*
	 * Most of MHD's messages are about one connection (a client that went
	 * away, one closed at its deadline): one a minute is shown, the rest
	 * go to the debug level, or a client could flood the log.
	 */
	int64_t now = ember_monotonic_ns(), last = __atomic_load_n(&s->last_mhd_log_ns, __ATOMIC_RELAXED);
	if (last && now - last < REFUSAL_LOG_NS) {
		ember_debug("server: %s", msg);
		return;
	}
	__atomic_store_n(&s->last_mhd_log_ns, now, __ATOMIC_RELAXED);
	ember_warn("server: %s (libmicrohttpd; similar messages this minute go to the debug log)",
		   msg);
}

static int bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (info && info->port)
		return info->port;
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
	if (!info || getsockname(info->listen_fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}


/* ---- lifecycle ---- */

/* The limits with every 0 replaced by its default. */
static void resolve_limits(const struct ember_server_limits *in, struct ember_server_limits *out)
{
	struct rlimit nofile;

	*out = *in;
	if (!out->threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		out->threads = cpus < 2 ? 2 : cpus > EMBER_SERVER_MAX_THREADS
						  ? EMBER_SERVER_MAX_THREADS
						  : (unsigned)cpus;
	}
	if (out->threads > QUERY_POOL_MAX_THREADS)
		out->threads = QUERY_POOL_MAX_THREADS;
	if (!out->max_connections) {
		/* the rest of the descriptors: the agent's perf events, maps and files */
		rlim_t fds = getrlimit(RLIMIT_NOFILE, &nofile) == 0 ? nofile.rlim_cur : 1024;
		rlim_t half = fds / FD_RESERVE_DIVISOR;
		out->max_connections = half < 64 ? 64 : half > EMBER_SERVER_MAX_CONNECTIONS
							? EMBER_SERVER_MAX_CONNECTIONS
							: (unsigned)half;
	}
	if (!out->max_per_client)
		out->max_per_client = EMBER_SERVER_MAX_PER_CLIENT;
	if (!out->request_deadline_s)
		out->request_deadline_s = EMBER_SERVER_REQUEST_DEADLINE_S;
	if (!out->send_deadline_s)
		out->send_deadline_s = EMBER_SERVER_SEND_DEADLINE_S;
	if (!out->queue_wait_s)
		out->queue_wait_s = EMBER_SERVER_QUEUE_WAIT_S;
}

static void free_server(struct ember_server *s)
{
	query_pool_free(s->pool);
	conn_table_free(&s->conns);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_mutex_destroy(&s->stats_lock);
	free(s);
}

/* The event thread's epoll set: MHD's own epoll descriptor and the wake-up eventfd. */
static int watch_events(struct ember_server *s)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	struct epoll_event ev = {.events = EPOLLIN};

	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (!info || s->wake_fd < 0 || s->epoll_fd < 0)
		return -(errno ? errno : EINVAL);
	ev.data.fd = info->epoll_fd;
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, info->epoll_fd, &ev))
		return -errno;
	ev.data.fd = s->wake_fd;
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->wake_fd, &ev))
		return -errno;
	return 0;
}

int ember_server_start(const struct ember_server_config *cfg, struct ember_server **out,
		       char *err, size_t errlen)
{
	const char *listen = cfg->listen ? cfg->listen : EMBER_SERVER_DEFAULT_LISTEN;
	struct sockaddr_storage addr;
	unsigned int addrlen, flags;
	struct ember_server *s;
	int ret;

	*out = NULL;
	if (!cfg->db_path || !*cfg->db_path) {
		snprintf(err, errlen, "server: no database path given");
		return -EINVAL;
	}
	ret = ember_server_parse_listen(listen, &addr, &addrlen, err, errlen);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "server: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&s->stats_lock, NULL);
	s->epoll_fd = s->wake_fd = -1;
	s->cfg = *cfg;
	resolve_limits(&cfg->limits, &s->lim);
	struct conn_limits cl = {
		.max_connections = s->lim.max_connections,
		.max_per_client = s->lim.max_per_client,
		.request_deadline_ns = (int64_t)s->lim.request_deadline_s * NS_PER_S,
		.send_deadline_ns = (int64_t)s->lim.send_deadline_s * NS_PER_S,
	};
	struct query_pool_limits ql = {
		.threads = s->lim.threads,
		.max_queued = s->lim.max_connections, /* one job per connection at most */
		.max_wait_ns = (int64_t)s->lim.queue_wait_s * NS_PER_S,
	};
	struct query_pool_ops ops = {.thread_ctx_new = thread_api_new,
				     .thread_ctx_free = thread_api_free,
				     .run = run_job,
				     .refuse = refuse_job,
				     .arg = s};
	ret = conn_table_init(&s->conns, &cl);
	if (!ret)
		ret = query_pool_start(&ql, &ops, &s->pool);
	if (ret) {
		snprintf(err, errlen, "server: cannot start %u query threads: %s", s->lim.threads,
			 strerror(-ret));
		free_server(s);
		return ret;
	}

	flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->loopback = is_loopback(&addr);
	s->starting = true;
	errno = 0;
	s->daemon = MHD_start_daemon(
		flags, 0, on_accept, s, on_request, s,
		/* the logger must come first to see every message */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->conns.cap,
		MHD_OPTION_CONNECTION_TIMEOUT, s->lim.request_deadline_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)EMBER_SERVER_MAX_HEADER_BYTES,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		/* 400 for HTTP/1.1 without Host and for spaces in the URL */
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		MHD_OPTION_END);
	if (!s->daemon) {
		int e = errno ? errno : EADDRNOTAVAIL;
		/* "Failed to bind to port 0: Address already in use": keep the cause,
		 * the port MHD names is the unused port argument */
		const char *cause = strrchr(s->start_err, ':');
		if (cause)
			cause += strspn(cause + 1, " ") + 1;
		if (!cause || !*cause)
			cause = s->start_err[0] ? s->start_err : strerror(e);
		snprintf(err, errlen, "cannot listen on %s: %s", listen, cause);
		free_server(s);
		return -e;
	}
	__atomic_store_n(&s->starting, false, __ATOMIC_RELEASE);
	s->port = bound_port(s->daemon);
	ret = watch_events(s);
	if (ret) {
		snprintf(err, errlen, "server: cannot set up the event thread's epoll: %s",
			 strerror(-ret));
		MHD_stop_daemon(s->daemon);
		free_server(s);
		return ret;
	}
	ret = pthread_create(&s->loop, NULL, loop_main, s);
	if (ret) {
		snprintf(err, errlen, "server: cannot start the event thread: %s", strerror(ret));
		MHD_stop_daemon(s->daemon);
		free_server(s);
		return -ret;
	}
	s->loop_started = true;
	*out = s;
	return 0;
}

int ember_server_port(const struct ember_server *s) { return s ? s->port : -1; }

void ember_server_get_limits(const struct ember_server *s, struct ember_server_limits *out)
{
	*out = s->lim;
}

void ember_server_stop(struct ember_server *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
	wake(s);
	if (s->loop_started)
		pthread_join(s->loop, NULL);
	MHD_stop_daemon(s->daemon); /* closes the connections: the table's callbacks run */
	free_server(s);
}
