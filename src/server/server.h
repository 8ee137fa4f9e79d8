/*
 * server.h - Ember's HTTP server: the web UI and its JSON API.
 *
 * One libmicrohttpd daemon with one internal polling thread.  Every request
 * is answered on that thread, which also owns the server's own store
 * connection (opened on the first API request, so the agent may create the
 * database after the server starts).  The endpoints are listed at the top of
 * src/server/api.c.
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

struct ember_server_config {
	const char *listen;  /* NULL = EMBER_SERVER_DEFAULT_LISTEN */
	const char *db_path; /* the store the API reads */
	/* Appends one JSON object with the agent's stats to sb; may be NULL.
	 * Called on the server thread: it must do its own locking. */
	void (*stats_json)(struct strbuf *sb, void *arg);
	void *stats_arg;
	/* Appends the agent's part of GET /metrics (Prometheus text, metrics.h);
	 * may be NULL.  Called on a server thread, like stats_json. */
	void (*metrics_text)(struct strbuf *sb, void *arg);
	void *metrics_arg;
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

/* Stop the daemon, wait for its thread, close the store.  NULL is fine. */
void ember_server_stop(struct ember_server *s);

/*
 * Parse a listen string into a socket address (exposed for tests).
 * Returns 0, or -EINVAL with a message naming the string.
 */
struct sockaddr_storage;
int ember_server_parse_listen(const char *listen, struct sockaddr_storage *addr,
			      unsigned int *addrlen, char *err, size_t errlen);

#endif
