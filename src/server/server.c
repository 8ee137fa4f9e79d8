/*
 * server.c - the libmicrohttpd daemon: listening, routing, static files.
 *
 * One internal polling thread answers every request, so the API's store
 * connection is only ever used from that thread and needs no locking.
 * Requests under /api/ go to api.c; everything else is one of the web UI
 * files compiled into the binary (web_assets.h), "/" being index.html.
 *
 * The listen address is parsed here and bound exactly as given (loopback by
 * default); a bad string or a failed bind is reported with the address in
 * the message.  libmicrohttpd's own log lines are captured while starting,
 * so "address already in use" reaches the caller instead of stderr.
 *
 * Large textual replies are gzip'd when the client accepts it: flame-graph
 * JSON shrinks about tenfold.  On loopback, requests whose Host header is
 * not a loopback name are refused (403), so a web page cannot use DNS
 * rebinding to read profiles through the visitor's browser.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <zlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/memory.h"
#include "server/api.h"
#include "server/web_assets.h"

#define GZIP_MIN_SIZE 1024
#define GZIP_MAX_SIZE (256u << 20)
#define CONNECTION_TIMEOUT_S 30u
#define CONNECTION_LIMIT 128u

/* Served with every response: no external resources, no framing, no sniffing. */
#define CSP "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"

struct ember_server {
	struct MHD_Daemon *daemon;
	struct ember_api *api;
	int port;
	bool loopback;         /* listening on 127.0.0.0/8 or ::1: check Host */
	bool starting;         /* capture MHD's log into start_err */
	char start_err[256];
	int64_t last_api_ns;   /* CLOCK_MONOTONIC end of the last API request */
	bool memory_kept;      /* freed query memory not handed back yet */
};

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

/* ---- responses ---- */

static bool accepts_gzip(struct MHD_Connection *c)
{
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_ACCEPT_ENCODING);
	const char *g = ae ? strstr(ae, "gzip") : NULL;

	return g && strncmp(g + 4, ";q=0", 4) != 0;
}

static bool compressible(const char *ctype)
{
	return strncmp(ctype, "text/", 5) == 0 || strncmp(ctype, "application/json", 16) == 0 ||
	       strncmp(ctype, "image/svg", 9) == 0;
}

/* gzip len bytes into a new malloc'd buffer.  Returns 0 or -1. */
static int gzip_bytes(const void *in, size_t len, char **out, size_t *out_len)
{
	z_stream zs;
	char *buf;
	size_t cap;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	cap = deflateBound(&zs, (uLong)len);
	buf = malloc(cap);
	if (!buf) {
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)buf;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return 0;
}

struct reply {
	unsigned int status;
	const char *content_type;
	const char *disposition;
	const char *cache;
	const char *allow;
	const void *body; /* owned when `owned` */
	size_t len;
	bool owned;
};

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *zbuf = NULL;
	size_t zlen = 0;
	bool gz = false;

	if (r->len >= GZIP_MIN_SIZE && r->len <= GZIP_MAX_SIZE && compressible(r->content_type) &&
	    accepts_gzip(c) && gzip_bytes(r->body, r->len, &zbuf, &zlen) == 0) {
		if (r->owned)
			free((void *)r->body);
		r->body = zbuf;
		r->len = zlen;
		r->owned = true;
		gz = true;
	}
	if (!r->body) {
		r->body = "";
		r->len = 0;
		r->owned = false;
	}
	resp = MHD_create_response_from_buffer(r->len, (void *)r->body,
					       r->owned ? MHD_RESPMEM_MUST_FREE
							: MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		if (r->owned)
			free((void *)r->body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, r->cache);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", CSP);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	if (gz)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	if (r->disposition)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, r->disposition);
	if (r->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	ret = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned int status,
				 const char *text)
{
	struct reply r = {.status = status, .content_type = "text/plain; charset=utf-8",
			  .cache = "no-store", .body = text, .len = strlen(text)};

	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		r.allow = "GET, HEAD";
	return send_reply(c, &r);
}

/* ---- static files ---- */

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
	struct reply r;

	if (!a)
		return send_text(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
	r = (struct reply){.status = MHD_HTTP_OK, .content_type = a->mime, .cache = "no-cache",
			   .body = a->data, .len = a->size};
	return send_reply(c, &r);
}

/* ---- the API ---- */

struct params {
	struct ember_api_param v[EMBER_API_MAX_PARAMS + 1];
	size_t n;
};

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct params *ps = cls;

	if (ps->n == EMBER_API_MAX_PARAMS + 1)
		return MHD_NO; /* one past the limit is enough for the API to refuse */
	ps->v[ps->n].key = key ? key : "";
	ps->v[ps->n].value = value ? value : "";
	ps->n++;
	return MHD_YES;
}

void ember_server_release_idle(struct ember_server *s, int64_t idle_ns)
{
	if (!s || !__atomic_load_n(&s->memory_kept, __ATOMIC_ACQUIRE) ||
	    ember_monotonic_ns() - __atomic_load_n(&s->last_api_ns, __ATOMIC_RELAXED) < idle_ns)
		return;
	__atomic_store_n(&s->memory_kept, false, __ATOMIC_RELAXED);
	ember_memory_release();
}

static enum MHD_Result serve_api(struct ember_server *s, struct MHD_Connection *c,
				 const char *url)
{
	struct params ps = {.n = 0};
	struct ember_api_reply ar;
	struct reply r;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &ps);
	ember_api_handle(s->api, url, ps.v, ps.n, &ar);
	__atomic_store_n(&s->last_api_ns, ember_monotonic_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&s->memory_kept, true, __ATOMIC_RELEASE);
	if (!ar.body) /* only when out of memory */
		return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n");
	r = (struct reply){.status = ar.status, .content_type = ar.content_type,
			   .disposition = ar.disposition, .cache = "no-store", .body = ar.body,
			   .len = ar.len, .owned = ar.body != NULL};
	return send_reply(c, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	struct ember_server *s = cls;
	static int headers_seen;

	/*
	 * The first call only has the headers.  Answering then makes MHD close
	 * the connection (the body is not read yet), so wait for the second
	 * call, after any (ignored) request body, to keep connections alive.
	 */
	if (!*req_cls) {
		*req_cls = &headers_seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed\n");
	if (s->loopback &&
	    !host_allowed(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
		return send_text(c, MHD_HTTP_FORBIDDEN,
				 "403 this server only answers requests for localhost\n");
	if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/metrics") == 0)
		return serve_api(s, c, url);
	return serve_static(c, url);
}

/* ---- lifecycle ---- */

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
	ember_warn("server: %s", msg);
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
	if (!s || !(s->api = ember_api_new(cfg))) {
		free(s);
		snprintf(err, errlen, "server: out of memory");
		return -ENOMEM;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->loopback = is_loopback(&addr);
	s->starting = true;
	errno = 0;
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				     /* the logger must come first to see every message */
				     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				     MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
				     MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
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
		ember_api_free(s->api);
		free(s);
		return -e;
	}
	__atomic_store_n(&s->starting, false, __ATOMIC_RELEASE);
	s->port = bound_port(s->daemon);
	*out = s;
	return 0;
}

int ember_server_port(const struct ember_server *s) { return s ? s->port : -1; }

void ember_server_stop(struct ember_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	ember_api_free(s->api);
	free(s);
}
