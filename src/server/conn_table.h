/*
 * conn_table.h - the HTTP server's open connections: whose they are, what
 * each is doing since when, and which to refuse, evict or close.
 *
 * libmicrohttpd's connection timeout restarts whenever a byte arrives, so a
 * client trickling one byte every few seconds holds a connection for ever,
 * and a few such clients fill its global connection limit.  This table,
 * fed by the server's connection callbacks, enforces what MHD does not:
 *
 *   - a per-client limit: connections from one IPv4 address or one IPv6 /64;
 *   - a whole-request deadline: a request must arrive complete (headers and
 *     body) within request_deadline of the connection's accept, or of the
 *     end of the previous response on a kept-alive connection, however its
 *     bytes trickle in; a response must be sent within send_deadline;
 *   - room for newcomers: when max_connections are open, the connection
 *     that has waited longest for its request is evicted (a slowloris
 *     connection or an idle keep-alive, never one whose request is being
 *     answered).
 *
 * The table knows nothing of HTTP: it hands back the file descriptors to
 * shut down, and the server does.  Only the server's event thread uses it;
 * the counters in `stats` may be read from any thread (__atomic loads).
 */
#ifndef EMBER_SERVER_CONN_TABLE_H
#define EMBER_SERVER_CONN_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Who a connection belongs to: an IPv4 address or an IPv6 /64 prefix. */
struct conn_client {
	uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d; IPv6 with the low 64 bits zeroed */
};

/* The client of a peer address (IPv4-mapped IPv6 counts as IPv4). */
void conn_client_from_sockaddr(const struct sockaddr *sa, socklen_t len,
			       struct conn_client *out);
bool conn_client_equal(const struct conn_client *a, const struct conn_client *b);
/* "127.0.0.1" or "2001:db8::/64", for log lines. */
void conn_client_format(const struct conn_client *c, char *buf, size_t len);

enum conn_phase {
	CONN_RECEIVING,  /* waiting for a request, or for the rest of one */
	CONN_PROCESSING, /* the request is complete and being answered */
	CONN_SENDING,    /* the response is queued and being sent */
};

struct conn {
	int fd;
	struct conn_client client;
	enum conn_phase phase;
	int64_t since_ns; /* CLOCK_MONOTONIC start of the phase */
	bool closing;     /* shut down by the table; the server closes it soon */
	size_t index;     /* in conn_table.live */
};

struct conn_limits {
	unsigned max_connections; /* open at once, before the oldest waiting is evicted */
	unsigned max_per_client;
	int64_t request_deadline_ns;
	int64_t send_deadline_ns;
};

/* Counters since start (monotonic) and the current count (`open`). */
struct conn_stats {
	uint64_t accepted;
	uint64_t refused_per_client; /* the client already held max_per_client */
	uint64_t refused_full;       /* full and nobody waiting to evict */
	uint64_t evicted;            /* closed to make room for a newcomer */
	uint64_t request_deadline;   /* closed: request incomplete at its deadline */
	uint64_t send_deadline;      /* closed: response unsent at its deadline */
	uint64_t open, peak_open;
};

/*
 * Entries beyond max_connections: connections already shut down that the
 * server has not closed yet.  The server's own hard limit (MHD's) is
 * max_connections + CONN_TABLE_SLACK, so it never refuses before the table.
 */
#define CONN_TABLE_SLACK 64u

struct conn_table {
	struct conn_limits lim;
	struct conn *slots;  /* max_connections + CONN_TABLE_SLACK, preallocated */
	struct conn **free;  /* unused slots (a stack) */
	struct conn **live;  /* open connections, in no order */
	size_t n_free, n_live, cap;
	struct conn_stats stats;
};

/* Returns 0 or -ENOMEM (or -EINVAL for a zero limit). */
int conn_table_init(struct conn_table *t, const struct conn_limits *lim);
void conn_table_free(struct conn_table *t);

enum conn_verdict {
	CONN_ADMIT,
	CONN_REFUSE_PER_CLIENT,
	CONN_REFUSE_FULL,
};

/*
 * Decide on a connection just accepted from client.  When the table is full
 * the longest-waiting connection in CONN_RECEIVING is marked closing and its
 * descriptor stored in *evict_fd for the caller to shut down (-1: none).
 * Counts refusals and evictions.
 */
enum conn_verdict conn_table_admit(struct conn_table *t, const struct conn_client *client,
				   int *evict_fd);

/* Record an admitted connection (in CONN_RECEIVING).  NULL when no slot is left. */
struct conn *conn_table_add(struct conn_table *t, int fd, const struct conn_client *client,
			    int64_t now_ns);
void conn_table_remove(struct conn_table *t, struct conn *c);
void conn_table_set_phase(struct conn *c, enum conn_phase phase, int64_t now_ns);

/* Open connections of client that are not closing. */
size_t conn_table_client_count(const struct conn_table *t, const struct conn_client *client);

/*
 * Mark the connections past their phase's deadline closing and store up to
 * max of their descriptors in fds (each is returned once).  Returns how
 * many were stored; call again while it returns max.
 */
size_t conn_table_expired(struct conn_table *t, int64_t now_ns, int *fds, size_t max);

#endif
