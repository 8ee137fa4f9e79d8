/*
 * conn.h - a traced connection as the protocol parsers see it.
 *
 * Internal to src/spans/: tracker.c owns connections and feeds them bytes;
 * proto_http.c, proto_redis.c, proto_mysql.c and proto_pgsql.c frame and
 * parse them and report requests and responses back through the span_*
 * functions below, which pair them into spans.
 *
 * A connection has two streams: `req` carries the requests (what a client
 * writes, what a server reads), `resp` the responses.  Each stream is fed
 * the payload heads of the syscalls in order.  A payload may be cut (the
 * kernel copies at most the head size) and a message may be split over
 * several reads, so the stream layer offers a parser three things:
 *
 *   carry    bytes a parser could not use yet (a header split over two
 *            reads) are kept, up to SPAN_CARRY_MAX, and handed back with
 *            the next bytes;
 *   skip     a parser that knows how long the rest of a message is (a body
 *            with a Content-Length, a MySQL row, a Redis bulk string) sets
 *            s->skip; those bytes pass without a call, also when they were
 *            never captured (a hole after a cut payload);
 *   desync   a parser that cannot make sense of the bytes, or a hole the
 *            skip does not cover, loses the framing: the stream ignores
 *            everything until the next turn (the first payload in its
 *            direction after one in the other), where request/response
 *            protocols start a message again.
 *
 * Pairing is a FIFO of pending requests per connection (pipelining): a
 * request is pushed when its header is parsed, the oldest is answered by
 * the next complete response.
 */
#ifndef EMBER_SPANS_CONN_H
#define EMBER_SPANS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember_spans.h"

#define SPAN_CARRY_MAX 2048  /* bytes a parser may need at once */
#define SPAN_TEXT_MAX 1024   /* request text kept for slow spans, NUL included */
#define SPAN_ERR_MAX 160     /* error text kept, NUL included */
#define SPAN_MAX_PENDING 64  /* unanswered requests per connection (pipelining) */
#define SPAN_MAX_STMTS 256   /* prepared statements remembered per connection */

struct span_conn;
struct span_stream;
struct ember_tracker;

struct span_pending {
	int64_t start_ts;     /* first byte of the request */
	int64_t resp_ts;      /* last response byte seen so far */
	uint64_t start_pos;   /* stream offsets: request start, response start */
	uint64_t resp_pos;
	uint64_t req_bytes, resp_bytes;
	uint64_t req_id;      /* server: kernel's request id (thread tag), else 0 */
	uint32_t endpoint;    /* interned name (endpoints.h) */
	uint32_t aux;         /* the protocol's own (MySQL prepare: the statement's endpoint) */
	uint32_t tid;
	char *text;           /* request text (SQL, URL, command), may be NULL */
	char *err;            /* error text, may be NULL */
	uint16_t status;      /* HTTP status, 0 for other protocols */
	uint8_t kind;         /* the protocol's own (HEAD request, MySQL command, ...) */
	bool resp_started;
	bool error;
};

/* Per-direction state of each protocol (the parsers' own; see proto_*.c). */
struct span_http_stream {
	uint8_t phase;
	bool head;          /* response to a HEAD request: no body */
};

#define SPAN_REDIS_DEPTH 8
struct span_redis_stream {
	uint8_t depth;            /* open aggregates */
	uint8_t attr;             /* the reply so far is an attribute (|) */
	uint8_t args_seen;        /* request arguments read */
	bool error;               /* the reply is an error */
	bool in_msg;
	uint32_t remaining[SPAN_REDIS_DEPTH]; /* elements left per level */
	uint64_t msg_pos;
	char arg[2][40];          /* command and subcommand or key */
	uint8_t arg_len[2];
	char err[SPAN_ERR_MAX];
};

struct span_mysql_stream {
	uint8_t phase;
	uint8_t cmd;              /* request being answered */
	uint16_t pad;
	uint32_t left;            /* definitions left in this phase */
	uint32_t columns, params; /* of a prepare response */
	uint32_t stmt_id;         /* prepare response */
};

struct span_stream {
	uint8_t *carry;       /* SPAN_CARRY_MAX bytes when in use, else NULL */
	uint32_t carry_len;
	int64_t carry_ts;     /* time of the payload the carry's first byte came from */
	uint64_t skip;        /* bytes to pass without parsing */
	uint64_t pos;         /* stream offset of the next byte fed */
	uint64_t chunk_pos;   /* stream offset where the payload being fed starts */
	uint64_t pos_first;   /* stream offset of p[0] in the parse call */
	int64_t ts_now;       /* time of the payload being fed */
	bool desync;
	bool requests;        /* this stream carries requests */
	union {
		struct span_http_stream http;
		struct span_redis_stream redis;
		struct span_mysql_stream mysql;
	} u;
};

/* A prepared statement: MySQL statement id or PostgreSQL name -> text. */
struct span_stmt {
	uint64_t key;         /* id, or hash of the name */
	char *text;
	uint32_t endpoint;
	uint32_t age;
};

struct span_conn {
	uint64_t conn_id;
	uint32_t pid, fd;
	uint8_t proto, role;
	uint8_t last_dir;     /* direction + 1 of the last payload, 0 = none */
	bool dead;            /* TLS or another protocol took over: ignored */
	bool closed;
	uint64_t close_sweep;  /* tracker's sweep count at the close */
	int64_t last_ts;
	char peer[64];
	char comm[16];
	struct span_stream req, resp;
	struct span_pending *pending; /* ring of p_cap entries */
	uint32_t p_head, p_count, p_cap;
	uint32_t cur_tid;     /* thread of the payload being fed */
	uint64_t cur_req_id;  /* kernel request id of the payload being fed (server) */
	struct span_stmt *stmts; /* prepared statements, SPAN_MAX_STMTS at most */
	uint32_t n_stmts, stmt_clock;
	/* protocol state shared by both directions */
	uint32_t mysql_caps;  /* client capability flags from the handshake, 0 if unseen */
	uint32_t mysql_srv_caps; /* server capability flags from its greeting, 0 if unseen */
	uint8_t mysql_phase;  /* handshake progress */
	uint8_t pg_phase;
	bool pg_batch_open;   /* extended protocol: messages since the last Sync */
	bool pg_batch_exec;   /* ... among them an Execute */
	bool pg_batch_parse;  /* ... a Parse */
	uint64_t pg_batch_start; /* stream offset of the batch's first message */
	uint32_t pg_batch_endpoint;
	char *pg_batch_text;
	char *pg_unnamed_text; /* the unnamed prepared statement */
	uint32_t pg_unnamed_endpoint;
	struct ember_tracker *tr;
	/* tracker's bookkeeping */
	struct span_conn *hnext;      /* hash chain */
	struct span_conn *lru_prev, *lru_next;
};

/*
 * Parse p[0..n).  `gap` says the bytes after p[n - 1] were not captured.
 * Returns the bytes consumed (> 0), 0 when more bytes are needed before
 * anything can be consumed, -1 when the bytes make no sense.
 */
typedef int (*span_parse_fn)(struct span_conn *c, struct span_stream *s, const uint8_t *p,
			     size_t n, bool gap);

struct span_proto_ops {
	span_parse_fn parse;
	void (*skipped)(struct span_conn *c, struct span_stream *s); /* s->skip reached 0 */
	void (*reset)(struct span_conn *c, struct span_stream *s);   /* start a message afresh */
	bool pipelined; /* a request may be sent before the previous answer arrived */
};

extern const struct span_proto_ops span_http_ops, span_redis_ops, span_mysql_ops,
	span_pgsql_ops;

/* ---- what parsers call (tracker.c) ---- */

/* Time of the byte at stream offset pos (of the current payload or the carry). */
int64_t span_ts_of(const struct span_stream *s, uint64_t pos);

/*
 * A request starting at stream offset start_pos: endpoint is its name
 * (already normalized), text the raw text (up to SPAN_TEXT_MAX - 1 bytes
 * kept; may be NULL).  Returns the pending entry, NULL if it was dropped
 * (queue full, out of memory).
 */
struct span_pending *span_request(struct span_conn *c, struct span_stream *s, uint64_t start_pos,
				  const char *endpoint, const char *text, size_t tlen,
				  uint8_t kind);
/* Same with an endpoint already interned. */
struct span_pending *span_request_id(struct span_conn *c, struct span_stream *s,
				     uint64_t start_pos, uint32_t endpoint, const char *text,
				     size_t tlen, uint8_t kind);

/* The oldest unanswered request, or NULL. */
struct span_pending *span_head(struct span_conn *c);

/* A response to the head starts at stream offset pos (no-op when none). */
void span_response_start(struct span_conn *c, struct span_stream *s, uint64_t pos);
/* The head's response ends at stream offset end_pos: emit the span, pop it. */
void span_respond(struct span_conn *c, struct span_stream *s, uint64_t end_pos);
/* Pop the head without a span (a request that gets no answer). */
void span_drop_head(struct span_conn *c);
/* Record an error on p (text may be NULL). */
void span_set_error(struct span_pending *p, const char *text, size_t len);

/* Intern an endpoint name for the connection's protocol. */
uint32_t span_endpoint(struct span_conn *c, const char *name);
const char *span_endpoint_name(struct span_conn *c, uint32_t id);

/* Prepared statements of the connection. */
const struct span_stmt *span_stmt_get(struct span_conn *c, uint64_t key);
void span_stmt_put(struct span_conn *c, uint64_t key, const char *text, uint32_t endpoint);
void span_stmt_del(struct span_conn *c, uint64_t key);

/* The connection speaks something else now (TLS, an upgrade): stop parsing it. */
void span_conn_dead(struct span_conn *c, const char *why);

/* Count an event of the parsers (enum span_parser_stat in tracker.h). */
void span_count(struct span_conn *c, int stat);

/* Helpers for parsers. */
uint64_t span_hash(const void *data, size_t len);
char *span_strndup(const char *s, size_t n);

#endif
