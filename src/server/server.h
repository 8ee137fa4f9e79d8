/*
 * server.h - Ember's HTTP server: the web UI and its JSON API.
 *
 * One event thread runs libmicrohttpd (epoll): it accepts, reads requests,
 * serves the UI's files and writes responses, and never waits for a query.
 * API requests go to a small pool of query threads (query_pool.h), each
 * with its own read-only store connection (opened on its first request, so
 * the agent may create the database after the server starts).  Slow
 * clients cost a connection slot, never a thread.  The endpoints are listed
 * at the top of src/server/api.c; the limits below and docs/server.md say
 * how no client can starve the others.
 *
 * The server listens on loopback unless told otherwise: the listen string is
 * "ADDR:PORT" or "[IPV6ADDR]:PORT" with a numeric address (or "localhost"),
 * and port 0 picks a free port (see ember_server_port()).  A server on
 * loopback answers only requests whose Host is a loopback name (403
 * otherwise: DNS-rebinding protection).
 */
#ifndef EMBER_SERVER_SERVER_H
#define EMBER_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

#define EMBER_SERVER_DEFAULT_LISTEN "127.0.0.1:7070"

struct ember_server;

/* Every field 0 = the default named after it. */
struct ember_server_limits {
	unsigned threads;            /* query threads: online CPUs, at least 2, at most 4 */
	unsigned max_connections;    /* open at once: half the open-file limit, 64..1024 */
	unsigned max_per_client;     /* per IPv4 address or IPv6 /64: 16 */
	unsigned request_deadline_s; /* a whole request (headers and body) must arrive: 10 */
	unsigned send_deadline_s;    /* a whole response must be sent: 60 */
	unsigned queue_wait_s;       /* longest wait for a query thread, then 503: 30 */
};
#define EMBER_SERVER_MAX_THREADS 4
#define EMBER_SERVER_MAX_CONNECTIONS 1024
#define EMBER_SERVER_MAX_PER_CLIENT 16
#define EMBER_SERVER_REQUEST_DEADLINE_S 10
#define EMBER_SERVER_SEND_DEADLINE_S 60
#define EMBER_SERVER_QUEUE_WAIT_S 30
#define EMBER_SERVER_MAX_HEADER_BYTES (32 * 1024) /* request line + headers */
#define EMBER_SERVER_MAX_BODY_BYTES (64 * 1024)   /* a GET's body is read and ignored */

struct ember_server_config {
	const char *listen;  /* NULL = EMBER_SERVER_DEFAULT_LISTEN */
	const char *db_path; /* the store the API reads */
	/* Appends one JSON object with the agent's stats to sb; may be NULL.
	 * Called from a query thread, never from two at once (the server
	 * serializes the calls); it must do its own locking against the
	 * agent's threads. */
	void (*stats_json)(struct strbuf *sb, void *arg);
	void *stats_arg;
	/* Appends the agent's part of GET /metrics (Prometheus text, metrics.h);
	 * may be NULL.  Called from a query thread, like stats_json. */
	void (*metrics_text)(struct strbuf *sb, void *arg);
	void *metrics_arg;
	struct ember_server_limits limits;
};

/*
 * Start serving.  On failure returns a negative errno and writes a message
 * naming the listen address (or the other input at fault) to err.
 */
int ember_server_start(const struct ember_server_config *cfg, struct ember_server **out,
		       char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
int ember_server_port(const struct ember_server *s);

/*
 * Hand freed query memory back to the kernel (core/memory.h) once no API
 * request has come for idle_ns.  Call it periodically; cheap otherwise.
 */
void ember_server_release_idle(struct ember_server *s, int64_t idle_ns);

/*
 * Stop: queued API requests get 503, running ones finish (each is bounded
 * by the store's query time limit), then the threads are joined and the
 * store connections closed.  NULL is fine.
 */
void ember_server_stop(struct ember_server *s);

/* The limits in force (defaults resolved), e.g. for a start-up message. */
void ember_server_get_limits(const struct ember_server *s, struct ember_server_limits *out);

/*
 * Parse a listen string into a socket address (exposed for tests).
 * Returns 0, or -EINVAL with a message naming the string.
 */
struct sockaddr_storage;
int ember_server_parse_listen(const char *listen, struct sockaddr_storage *addr,
			      unsigned int *addrlen, char *err, size_t errlen);

#endif
