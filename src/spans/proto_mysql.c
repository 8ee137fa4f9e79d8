/*
 * proto_mysql.c - the MySQL/MariaDB client/server protocol for the tracker.
 *
 * Everything is a packet: a 3-byte little-endian length, a sequence
 * number, the payload.  One packet is handled per call; the parser looks
 * at most a few dozen bytes of it (the whole statement text for a query)
 * and the stream layer skips the rest.
 *
 * Requests (sequence 0; the command byte first):
 *   0x03 COM_QUERY, 0x16 COM_STMT_PREPARE  the SQL text, normalized into
 *        the endpoint (a prepare is counted as "PREPARE <statement>");
 *   0x17 COM_STMT_EXECUTE  the statement id, mapped to the text its
 *        prepare response announced (per connection);
 *   0x19 COM_STMT_CLOSE, 0x18 COM_STMT_SEND_LONG_DATA, 0x01 COM_QUIT get no
 *        response: no span;
 *   others are spans named after the command (COM_PING, COM_INIT_DB, ...).
 * Packets with another sequence number belong to the handshake; the
 * client's handshake response gives its capability flags.
 *
 * Responses: OK (0x00), ERR (0xff: code, SQL state, message) and EOF
 * (0xfe, under 9 bytes) end a response; anything else starts a result set:
 * column count, column definitions, an EOF unless both sides agreed on
 * CLIENT_DEPRECATE_EOF, rows, then EOF or OK (or ERR).  The status flag
 * SERVER_MORE_RESULTS_EXISTS means another result set follows.  A prepare
 * response (OK, statement id, column and parameter counts) is followed by
 * the parameter and column definitions, each list closed by an EOF under
 * the same rule.  When the handshake was not seen (a connection older than
 * the agent) the intermediate EOF is recognized by its length (5).
 * The server's greeting (protocol 10) gives the server's capabilities.
 */
#include <stdio.h>
#include <string.h>

#include "spans/conn.h"
#include "spans/endpoint.h"
#include "spans/tracker.h"

#define CLIENT_SSL 0x00000800u
#define CLIENT_DEPRECATE_EOF 0x01000000u
#define CLIENT_QUERY_ATTRIBUTES 0x08000000u
#define SERVER_MORE_RESULTS_EXISTS 0x0008

enum { COM_QUIT = 0x01, COM_INIT_DB = 0x02, COM_QUERY = 0x03, COM_STATISTICS = 0x09,
       COM_STMT_PREPARE = 0x16, COM_STMT_EXECUTE = 0x17, COM_STMT_SEND_LONG_DATA = 0x18,
       COM_STMT_CLOSE = 0x19 };

/* Handshake progress (conn->mysql_phase). */
enum { HS_UNKNOWN, HS_GREETED, HS_AUTH, HS_DONE };

/* Response phases. */
enum { R_FIRST, R_COLDEFS, R_COLS_EOF, R_ROWS, R_PARAMS, R_PARAMS_EOF, R_PCOLS, R_PCOLS_EOF };

#define HEADER 4
#define LOOK_ERR (9 + SPAN_ERR_MAX) /* bytes of an ERR packet read */

static uint32_t le16(const uint8_t *p) { return p[0] | ((uint32_t)p[1] << 8); }
static uint32_t le24(const uint8_t *p) { return le16(p) | ((uint32_t)p[2] << 16); }
static uint32_t le32(const uint8_t *p) { return le24(p) | ((uint32_t)p[3] << 24); }

/* A length-encoded integer at p (n bytes); its size in *len, 0 when cut or invalid. */
static uint64_t lenenc(const uint8_t *p, size_t n, size_t *len)
{
	*len = 0;
	if (n < 1)
		return 0;
	if (p[0] < 0xfb) {
		*len = 1;
		return p[0];
	}
	size_t sz = p[0] == 0xfc ? 2 : p[0] == 0xfd ? 3 : p[0] == 0xfe ? 8 : 0;
	if (!sz || n < 1 + sz)
		return 0;
	uint64_t v = 0;
	for (size_t i = 0; i < sz; i++)
		v |= (uint64_t)p[1 + i] << (8 * i);
	*len = 1 + sz;
	return v;
}

/* Whether both sides agreed to drop the intermediate EOFs; -1 when unknown. */
static int deprecate_eof(const struct span_conn *c)
{
	if (!c->mysql_caps)
		return -1;
	if (!c->mysql_srv_caps)
		return (c->mysql_caps & CLIENT_DEPRECATE_EOF) ? -1 : 0;
	return (c->mysql_caps & c->mysql_srv_caps & CLIENT_DEPRECATE_EOF) ? 1 : 0;
}

/*
 * Consume a packet of plen payload bytes of which `take` (<= n - HEADER) are
 * in p: the rest is skipped by the stream.
 */
static int consume(struct span_stream *s, size_t n, uint32_t plen)
{
	size_t avail = n - HEADER;
	size_t take = plen < avail ? plen : avail;

	s->skip = plen - take;
	return (int)(HEADER + take);
}

/* Need `want` payload bytes (capped at plen): 1 when there, 0 to wait, -1 if never. */
static int need(size_t n, uint32_t plen, size_t want, bool gap)
{
	if (want > plen)
		want = plen;
	if (n >= HEADER + want)
		return 1;
	return gap ? -1 : 0;
}

static const char *command_name(uint8_t cmd, char *buf, size_t size)
{
	static const char *const names[] = {
		[0x00] = "COM_SLEEP",       [0x02] = "COM_INIT_DB",      [0x04] = "COM_FIELD_LIST",
		[0x05] = "COM_CREATE_DB",   [0x06] = "COM_DROP_DB",      [0x07] = "COM_REFRESH",
		[0x08] = "COM_SHUTDOWN",    [0x09] = "COM_STATISTICS",   [0x0a] = "COM_PROCESS_INFO",
		[0x0b] = "COM_CONNECT",     [0x0c] = "COM_PROCESS_KILL", [0x0d] = "COM_DEBUG",
		[0x0e] = "COM_PING",        [0x11] = "COM_CHANGE_USER",  [0x1a] = "COM_STMT_RESET",
		[0x1b] = "COM_SET_OPTION",  [0x1c] = "COM_STMT_FETCH",   [0x1f] = "COM_RESET_CONNECTION",
	};
	if (cmd < sizeof(names) / sizeof(names[0]) && names[cmd])
		return names[cmd];
	snprintf(buf, size, "COM_0x%02x", cmd);
	return buf;
}

static int parse_request(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
			 bool gap)
{
	uint32_t plen = le24(p);
	uint8_t seq = p[3];
	char endpoint[EMBER_ENDPOINT_MAX];

	if (seq != 0 || plen == 0) {
		/* the handshake: the client's response to the greeting has its capabilities */
		if (seq == 1 && plen >= 4 && c->mysql_phase <= HS_GREETED) {
			int r = need(n, plen, 4, gap);
			if (r <= 0)
				return r;
			c->mysql_caps = le32(p + HEADER) | 1u; /* bit 0 marks "seen" */
			c->mysql_phase = HS_AUTH;
			if ((c->mysql_caps & CLIENT_SSL) && plen == 32)
				span_conn_dead(c, "TLS");
		}
		return consume(s, n, plen);
	}
	if (n < HEADER + 1)
		return gap ? -1 : 0;
	uint8_t cmd = p[HEADER];
	c->mysql_phase = HS_DONE;
	switch (cmd) {
	case COM_QUERY:
	case COM_STMT_PREPARE: {
		size_t off = HEADER + 1;
		if (cmd == COM_QUERY && (c->mysql_caps & c->mysql_srv_caps & CLIENT_QUERY_ATTRIBUTES)) {
			/* parameter count and parameter set count precede the text */
			if (n < off + 2)
				return gap ? -1 : 0;
			if (p[off] != 0)
				off = 0; /* attributes with values: not read */
			else
				off += 2;
		}
		int r = need(n, plen, 1 + SPAN_TEXT_MAX, gap);
		if (r == 0)
			return 0;
		size_t end = HEADER + plen < n ? HEADER + plen : n;
		const char *sql = off ? (const char *)p + off : "";
		size_t sl = off && end > off ? end - off : 0;
		char norm[EMBER_ENDPOINT_MAX];
		ember_sql_normalize(sql, sl, EMBER_SQL_MYSQL, norm, sizeof(norm));
		if (!norm[0])
			snprintf(norm, sizeof(norm), "%s", cmd == COM_QUERY ? "COM_QUERY" : "COM_STMT_PREPARE");
		uint32_t stmt_ep = span_endpoint(c, norm);
		uint32_t ep = stmt_ep;
		if (cmd == COM_STMT_PREPARE) {
			snprintf(endpoint, sizeof(endpoint), "PREPARE %.*s",
				 (int)(sizeof(endpoint) - sizeof("PREPARE ")), norm);
			ep = span_endpoint(c, endpoint);
		}
		struct span_pending *pd = span_request_id(c, s, s->pos_first, ep, sql, sl, cmd);
		if (pd) {
			pd->aux = stmt_ep;
			pd->req_bytes = HEADER + plen;
		}
		return consume(s, n, plen);
	}
	case COM_STMT_EXECUTE: {
		int r = need(n, plen, 5, gap);
		if (r <= 0)
			return r;
		const struct span_stmt *st = plen >= 5 ? span_stmt_get(c, le32(p + HEADER + 1)) : NULL;
		struct span_pending *pd;
		if (st) {
			pd = span_request_id(c, s, s->pos_first, st->endpoint, st->text,
					     st->text ? strlen(st->text) : 0, cmd);
		} else {
			span_count(c, EMBER_TRACKER_UNKNOWN_STMT);
			pd = span_request(c, s, s->pos_first, "COM_STMT_EXECUTE", NULL, 0, cmd);
		}
		if (pd)
			pd->req_bytes = HEADER + plen;
		return consume(s, n, plen);
	}
	case COM_STMT_CLOSE: {
		int r = need(n, plen, 5, gap);
		if (r <= 0)
			return r;
		if (plen >= 5)
			span_stmt_del(c, le32(p + HEADER + 1));
		return consume(s, n, plen);
	}
	case COM_STMT_SEND_LONG_DATA:
	case COM_QUIT:
		return consume(s, n, plen);
	default: {
		char buf[16];
		const char *text = NULL;
		size_t tl = 0;
		if (cmd == COM_INIT_DB) { /* the database name */
			int r = need(n, plen, 1 + 64, gap);
			if (r == 0)
				return 0;
			text = (const char *)p + HEADER + 1;
			tl = (HEADER + plen < n ? HEADER + plen : n) - (HEADER + 1);
		}
		struct span_pending *pd =
			span_request(c, s, s->pos_first, command_name(cmd, buf, sizeof(buf)), text, tl, cmd);
		if (pd)
			pd->req_bytes = HEADER + plen;
		return consume(s, n, plen);
	}
	}
}

/* "1064 (42000): message" from an ERR packet's payload. */
static void set_error(struct span_conn *c, const uint8_t *pl, size_t len)
{
	struct span_pending *h = span_head(c);
	char text[SPAN_ERR_MAX];
	size_t tl;

	if (!h)
		return;
	if (len < 3) {
		span_set_error(h, NULL, 0);
		return;
	}
	unsigned code = le16(pl + 1);
	if (len >= 9 && pl[3] == '#')
		tl = (size_t)snprintf(text, sizeof(text), "%u (%.5s): %.*s", code, (const char *)pl + 4,
				      (int)(len - 9), (const char *)pl + 9);
	else
		tl = (size_t)snprintf(text, sizeof(text), "%u: %.*s", code, (int)(len - 3),
				      (const char *)pl + 3);
	span_set_error(h, text, tl < sizeof(text) ? tl : sizeof(text) - 1);
}

/* The server's greeting: protocol 10, version, thread id, scramble, capabilities. */
static void greeting(struct span_conn *c, const uint8_t *pl, size_t len)
{
	const uint8_t *nul = len > 1 ? memchr(pl + 1, 0, len - 1) : NULL;

	c->mysql_phase = HS_GREETED;
	if (!nul)
		return;
	size_t off = (size_t)(nul - pl) + 1 + 4 + 8 + 1; /* thread id, scramble 1, filler */
	if (off + 2 > len)
		return;
	uint32_t caps = le16(pl + off);
	if (off + 7 <= len)
		caps |= le16(pl + off + 5) << 16; /* after charset and status */
	c->mysql_srv_caps = caps | 1u;
}

/* End of a result set or of the response: EOF/OK status flags decide. */
static void terminal(struct span_conn *c, struct span_stream *s, const uint8_t *pl, size_t len,
		     uint32_t plen, uint64_t end_pos)
{
	uint32_t status = 0;

	if (plen == 5 && len >= 5) {
		status = le16(pl + 3); /* EOF: warnings, status */
	} else {
		size_t a, b;
		lenenc(pl + 1, len > 1 ? len - 1 : 0, &a);
		if (a)
			lenenc(pl + 1 + a, len - 1 - a, &b);
		if (a && b && 1 + a + b + 2 <= len)
			status = le16(pl + 1 + a + b);
	}
	if (status & SERVER_MORE_RESULTS_EXISTS) {
		s->u.mysql.phase = R_FIRST;
		return;
	}
	s->u.mysql.phase = R_FIRST;
	span_respond(c, s, end_pos);
}

static int parse_response(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
			  bool gap)
{
	struct span_mysql_stream *m = &s->u.mysql;
	uint32_t plen = le24(p);
	uint64_t end_pos = s->pos_first + HEADER + plen;
	struct span_pending *h = span_head(c);
	int r;

	if (plen == 0)
		return consume(s, n, plen);
	if (!h) {
		if (p[3] == 0 && n == HEADER && !gap)
			return 0; /* a greeting?  Its first byte says */
		if (p[3] == 0 && n > HEADER && p[HEADER] == 0x0a) {
			if (need(n, plen, 64, gap) == 0)
				return 0;
			greeting(c, p + HEADER, n - HEADER < plen ? n - HEADER : plen);
		}
		if (c->mysql_phase == HS_DONE)
			span_count(c, EMBER_TRACKER_UNMATCHED);
		return consume(s, n, plen);
	}
	if (m->phase == R_FIRST) {
		r = need(n, plen, h->kind == COM_STMT_PREPARE ? 12 : LOOK_ERR, gap);
		if (r == 0)
			return 0;
		if (n < HEADER + 1)
			return -1;
		span_response_start(c, s, s->pos_first);
	} else {
		r = need(n, plen, 9, gap); /* enough to tell EOF, OK and ERR from a row */
		if (r == 0)
			return 0;
		if (n < HEADER + 1)
			return -1;
		h->resp_ts = span_ts_of(s, s->pos_first);
	}
	const uint8_t *pl = p + HEADER;
	size_t len = n - HEADER < plen ? n - HEADER : plen;
	uint8_t b = pl[0];
	int deof = deprecate_eof(c);

	if (b == 0xff && m->phase != R_COLDEFS && m->phase != R_PARAMS && m->phase != R_PCOLS) {
		set_error(c, pl, len);
		m->phase = R_FIRST;
		span_respond(c, s, end_pos);
		return consume(s, n, plen);
	}
	switch (m->phase) {
	case R_FIRST:
		if (b == 0x00 && h->kind == COM_STMT_PREPARE && plen >= 12 && len >= 9) {
			m->stmt_id = le32(pl + 1);
			m->columns = le16(pl + 5);
			m->params = le16(pl + 7);
			span_stmt_put(c, m->stmt_id, h->text, h->aux);
			if (m->params) {
				m->phase = R_PARAMS;
				m->left = m->params;
			} else if (m->columns) {
				m->phase = R_PCOLS;
				m->left = m->columns;
			} else {
				span_respond(c, s, end_pos);
			}
		} else if ((b == 0x00 && plen >= 7) || (b == 0xfe && plen < 9)) {
			terminal(c, s, pl, len, plen, end_pos);
		} else if (b == 0xfb || h->kind == COM_STATISTICS || (b == 0xfe && h->kind == 0x11)) {
			span_respond(c, s, end_pos); /* LOCAL INFILE request, statistics text, auth switch */
		} else {
			size_t l;
			uint64_t cols = lenenc(pl, len, &l);
			if (!l || cols == 0 || cols > 4096)
				return -1;
			m->phase = R_COLDEFS;
			m->left = (uint32_t)cols;
		}
		break;
	case R_COLDEFS:
	case R_PARAMS:
	case R_PCOLS:
		if (--m->left == 0)
			m->phase = m->phase == R_COLDEFS ? R_COLS_EOF
				   : m->phase == R_PARAMS ? R_PARAMS_EOF
							  : R_PCOLS_EOF;
		if (m->phase == R_PCOLS_EOF && deof == 1) {
			m->phase = R_FIRST;
			span_respond(c, s, end_pos);
		} else if (m->phase == R_PARAMS_EOF && deof == 1) {
			m->phase = m->columns ? R_PCOLS : R_FIRST;
			m->left = m->columns;
			if (!m->columns)
				span_respond(c, s, end_pos);
		}
		break;
	case R_COLS_EOF:
		if (deof != 1 && b == 0xfe && plen == 5) {
			m->phase = R_ROWS;
			break;
		}
		m->phase = R_ROWS;
		/* no intermediate EOF: this is a row or the end */
		/* fall through */
	case R_ROWS:
		if (b == 0xfe && plen < 9)
			terminal(c, s, pl, len, plen, end_pos);
		break;
	case R_PARAMS_EOF:
		if (b == 0xfe && plen == 5) {
			m->phase = m->columns ? R_PCOLS : R_FIRST;
			m->left = m->columns;
			if (!m->columns)
				span_respond(c, s, end_pos);
			break;
		}
		if (deof == 0 || !m->columns)
			return -1;
		/* no EOF after the parameters (handshake unseen): the first column */
		m->left = m->columns - 1;
		m->phase = m->left ? R_PCOLS : R_PCOLS_EOF;
		break;
	case R_PCOLS_EOF:
		m->phase = R_FIRST;
		if (b == 0xfe && plen == 5) {
			span_respond(c, s, end_pos);
			break;
		}
		/* no EOF (handshake unseen): the response ended before this packet */
		span_respond(c, s, s->pos_first);
		return -1;
	}
	return consume(s, n, plen);
}

static int mysql_parse(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
		       bool gap)
{
	if (n < HEADER)
		return gap ? -1 : 0;
	return s->requests ? parse_request(c, s, p, n, gap) : parse_response(c, s, p, n, gap);
}

static void mysql_reset(struct span_conn *c, struct span_stream *s)
{
	(void)c;
	memset(&s->u.mysql, 0, sizeof(s->u.mysql));
}

const struct span_proto_ops span_mysql_ops = {
	.parse = mysql_parse,
	.reset = mysql_reset,
	.pipelined = false,
};
