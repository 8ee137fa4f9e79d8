/*
 * proto_pgsql.c - the PostgreSQL frontend/backend protocol (3.0) for the tracker.
 *
 * Every message but the first is a type byte and a big-endian length that
 * counts itself; the first from the client is the startup message (or an
 * SSLRequest / GSSENCRequest, answered by one byte, 'N' to go on in clear;
 * anything else means encryption and the connection is given up).
 *
 * A request ends where the server answers with ReadyForQuery ('Z'):
 *   - simple protocol: Query ('Q') is one request, its text the endpoint;
 *   - extended protocol: Parse/Bind/Describe/Execute/... up to Sync ('S')
 *     is one request.  Its endpoint is the statement executed, found
 *     through Bind's statement name (named statements are remembered per
 *     connection from their Parse); a batch that parses without executing
 *     is "PREPARE <statement>".
 * ErrorResponse ('E') marks the request failed with "SQLSTATE: message".
 * Sync-delimited batches may be pipelined; they are answered in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spans/conn.h"
#include "spans/endpoint.h"
#include "spans/tracker.h"

/* conn->pg_phase */
enum { PG_START, PG_SSL_WAIT, PG_STARTUP, PG_READY };

#define PG_HEADER 5
/* Backend message types of protocol 3.0 */
#define BACKEND_TYPES "123ACDEGHIKNRSTVWZcdnstv"
#define NAME_MAX_LOOK 256

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Length of the NUL-terminated string at p within n bytes; n when unterminated. */
static size_t cstr(const uint8_t *p, size_t n)
{
	const uint8_t *z = memchr(p, 0, n);
	return z ? (size_t)(z - p) : n;
}

static uint64_t name_key(const uint8_t *name, size_t len)
{
	return span_hash(name, len) | 1; /* never 0 */
}

static void set_batch(struct span_conn *c, uint32_t endpoint, const char *text, size_t len)
{
	free(c->pg_batch_text);
	c->pg_batch_text = text ? span_strndup(text, len) : NULL;
	c->pg_batch_endpoint = endpoint;
}

static uint32_t normalized(struct span_conn *c, const char *sql, size_t len)
{
	char norm[EMBER_ENDPOINT_MAX];

	ember_sql_normalize(sql, len, EMBER_SQL_PGSQL, norm, sizeof(norm));
	return span_endpoint(c, norm[0] ? norm : "(empty query)");
}

/* Parse: statement name, query. */
static void on_parse(struct span_conn *c, const uint8_t *b, size_t n)
{
	size_t nl = cstr(b, n);
	const char *q = nl < n ? (const char *)b + nl + 1 : "";
	size_t ql = nl < n ? cstr(b + nl + 1, n - nl - 1) : 0;
	uint32_t ep = normalized(c, q, ql);

	if (nl == 0) {
		free(c->pg_unnamed_text);
		c->pg_unnamed_text = span_strndup(q, ql);
		c->pg_unnamed_endpoint = ep;
	} else {
		char *t = span_strndup(q, ql);
		span_stmt_put(c, name_key(b, nl), t, ep);
		free(t);
	}
	c->pg_batch_parse = true;
	set_batch(c, ep, q, ql);
}

/* Bind: portal name, statement name. */
static void on_bind(struct span_conn *c, const uint8_t *b, size_t n)
{
	size_t pl = cstr(b, n);
	if (pl >= n)
		return;
	const uint8_t *name = b + pl + 1;
	size_t nl = cstr(name, n - pl - 1);

	if (nl == 0) {
		if (c->pg_unnamed_text)
			set_batch(c, c->pg_unnamed_endpoint, c->pg_unnamed_text,
				  strlen(c->pg_unnamed_text));
		return;
	}
	const struct span_stmt *st = span_stmt_get(c, name_key(name, nl));
	if (st) {
		set_batch(c, st->endpoint, st->text, st->text ? strlen(st->text) : 0);
	} else {
		span_count(c, EMBER_TRACKER_UNKNOWN_STMT);
		set_batch(c, span_endpoint(c, "(unknown prepared statement)"), NULL, 0);
	}
}

/* Sync: the batch since the last one is a request. */
static void on_sync(struct span_conn *c, struct span_stream *s, uint64_t len)
{
	uint32_t ep;
	const char *text = c->pg_batch_text;

	if (c->pg_batch_exec && (c->pg_batch_text || c->pg_batch_endpoint)) {
		ep = c->pg_batch_endpoint;
	} else if (c->pg_batch_parse) {
		char name[EMBER_ENDPOINT_MAX];
		snprintf(name, sizeof(name), "PREPARE %.*s", (int)(sizeof(name) - sizeof("PREPARE ")),
			 span_endpoint_name(c, c->pg_batch_endpoint));
		ep = span_endpoint(c, name);
	} else {
		ep = span_endpoint(c, "SYNC");
	}
	struct span_pending *p =
		span_request_id(c, s, c->pg_batch_start, ep, text, text ? strlen(text) : 0, 'S');
	if (p)
		p->req_bytes = s->pos_first + len - c->pg_batch_start;
	c->pg_batch_exec = c->pg_batch_parse = false;
	c->pg_batch_open = false;
	set_batch(c, 0, NULL, 0);
}

static int parse_startup(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n)
{
	uint32_t len = be32(p), code = be32(p + 4);

	(void)s;
	if (len < 8 || len > (1u << 16))
		return -1;
	if ((code >> 16) == 3) {
		c->pg_phase = PG_STARTUP;
	} else if (len == 8 && (code == 80877103 || code == 80877104)) {
		c->pg_phase = PG_SSL_WAIT;
	} else if (len == 16 && code == 80877102) {
		c->pg_phase = PG_START; /* CancelRequest: the connection closes after it */
	} else {
		return 0; /* not a startup: a typed message */
	}
	size_t take = len < n ? len : n;
	s->skip = len - take;
	return (int)take;
}

static int parse_frontend(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
			  bool gap)
{
	if (c->pg_phase == PG_START && n >= 8 && p[0] == 0) {
		int r = parse_startup(c, s, p, n);
		if (r != 0)
			return r;
	}
	if (n < PG_HEADER)
		return gap ? -1 : 0;
	uint8_t type = p[0];
	uint32_t len = be32(p + 1);
	if (len < 4 || len > (1u << 30))
		return -1;
	size_t want = 0;
	switch (type) {
	case 'Q': case 'P':
		want = SPAN_TEXT_MAX + NAME_MAX_LOOK;
		break;
	case 'B': case 'C':
		want = 2 * NAME_MAX_LOOK;
		break;
	case 'S': case 'E': case 'D': case 'H': case 'X': case 'F':
	case 'd': case 'c': case 'f': case 'p':
		break;
	default:
		return -1;
	}
	if (want > len - 4)
		want = len - 4;
	if (n < PG_HEADER + want && !gap && PG_HEADER + want <= SPAN_CARRY_MAX)
		return 0;
	size_t blen = n - PG_HEADER < len - 4 ? n - PG_HEADER : len - 4;
	const uint8_t *b = p + PG_HEADER;

	c->pg_phase = PG_READY;
	if (!c->pg_batch_open && type != 'Q' && type != 'X' && type != 'p' && type != 'd' &&
	    type != 'c' && type != 'f') {
		c->pg_batch_open = true;
		c->pg_batch_start = s->pos_first;
	}
	switch (type) {
	case 'Q': {
		size_t ql = cstr(b, blen);
		struct span_pending *pd = span_request_id(c, s, s->pos_first,
							  normalized(c, (const char *)b, ql),
							  (const char *)b, ql, 'Q');
		if (pd)
			pd->req_bytes = 1 + (uint64_t)len;
		break;
	}
	case 'P':
		on_parse(c, b, blen);
		break;
	case 'B':
		on_bind(c, b, blen);
		break;
	case 'E':
		c->pg_batch_exec = true;
		break;
	case 'C':
		if (blen >= 2 && b[0] == 'S')
			span_stmt_del(c, name_key(b + 1, cstr(b + 1, blen - 1)));
		break;
	case 'S':
		on_sync(c, s, 1 + (uint64_t)len);
		break;
	case 'F':
		span_request(c, s, s->pos_first, "FUNCTION CALL", NULL, 0, 'F');
		break;
	}
	s->skip = len - 4 - blen;
	return (int)(PG_HEADER + blen);
}

/* ErrorResponse fields: 'C' SQLSTATE, 'M' message. */
static void on_error(struct span_conn *c, const uint8_t *b, size_t n)
{
	struct span_pending *h = span_head(c);
	const char *code = "", *msg = "";
	size_t cl = 0, ml = 0, i = 0;
	char text[SPAN_ERR_MAX];

	if (!h)
		return;
	while (i < n && b[i]) {
		uint8_t f = b[i++];
		size_t l = cstr(b + i, n - i);
		if (f == 'C') {
			code = (const char *)b + i;
			cl = l;
		} else if (f == 'M') {
			msg = (const char *)b + i;
			ml = l;
		}
		i += l + 1;
	}
	int tl = snprintf(text, sizeof(text), "%.*s: %.*s", (int)cl, code, (int)ml, msg);
	span_set_error(h, text, tl < (int)sizeof(text) ? (size_t)tl : sizeof(text) - 1);
}

static int parse_backend(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
			 bool gap)
{
	if (c->pg_phase == PG_SSL_WAIT) {
		if (p[0] == 'N') {
			c->pg_phase = PG_START;
			return 1;
		}
		span_conn_dead(c, "TLS");
		return (int)n;
	}
	if (n < PG_HEADER)
		return gap ? -1 : 0;
	uint8_t type = p[0];
	uint32_t len = be32(p + 1);
	if (len < 4 || len > (1u << 30) || !type || !strchr(BACKEND_TYPES, type))
		return -1;
	size_t want = type == 'E' ? 256 : type == 'Z' ? 1 : 0;
	if (want > len - 4)
		want = len - 4;
	if (n < PG_HEADER + want && !gap)
		return 0;
	size_t blen = n - PG_HEADER < len - 4 ? n - PG_HEADER : len - 4;
	struct span_pending *h = span_head(c);

	if (h)
		span_response_start(c, s, s->pos_first);
	if (type == 'E') {
		on_error(c, p + PG_HEADER, blen);
	} else if (type == 'Z') {
		if (h)
			span_respond(c, s, s->pos_first + 1 + len);
		else if (c->pg_phase == PG_STARTUP)
			c->pg_phase = PG_READY;
	}
	s->skip = len - 4 - blen;
	return (int)(PG_HEADER + blen);
}

static int pgsql_parse(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
		       bool gap)
{
	return s->requests ? parse_frontend(c, s, p, n, gap) : parse_backend(c, s, p, n, gap);
}

static void pgsql_reset(struct span_conn *c, struct span_stream *s)
{
	if (s->requests) {
		c->pg_batch_open = c->pg_batch_exec = c->pg_batch_parse = false;
		set_batch(c, 0, NULL, 0);
	}
}

const struct span_proto_ops span_pgsql_ops = {
	.parse = pgsql_parse,
	.reset = pgsql_reset,
	.pipelined = true,
};
