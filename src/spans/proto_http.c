/*
 * proto_http.c - HTTP/1.x framing and parsing for the connection tracker.
 *
 * A message is a start line and headers up to the empty line, then a body
 * whose end is found as HTTP/1.1 says (RFC 9112, section 6): none for a
 * response to HEAD, for 1xx, 204 and 304; the chunks of a chunked body; a
 * Content-Length; else, for a response, everything until the close.  Body
 * bytes are skipped by the stream layer, so a body never has to be
 * captured; chunk-size lines and trailers are read.
 *
 * Requests give the method and target (the endpoint is the method and the
 * path template); responses the status.  Interim 1xx responses are
 * consumed without answering the request; 101 Switching Protocols answers
 * it and ends the parsing of the connection (what follows is not HTTP).
 *
 * Headers longer than the carry (2 KiB), or cut by the payload head: the
 * start line is used if it is there, then the rest of the turn is given up
 * (desync); the response ends with its last payload, at the next request or
 * at the close.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spans/conn.h"
#include "spans/endpoint.h"
#include "spans/tracker.h"

enum { H_START, H_BODY, H_CHUNK_SIZE, H_CHUNK_DATA, H_TRAILERS, H_UNTIL_CLOSE };

#define KIND_HEAD 1
#define MAX_CHUNK_LINE 1024

static const uint8_t *find(const uint8_t *p, size_t n, const char *needle, size_t nlen)
{
	return memmem(p, n, needle, nlen);
}

struct head {
	const char *method, *target;
	size_t mlen, tlen;
	int status;          /* response */
	int64_t length;      /* Content-Length, -1 when absent */
	bool chunked;
};

static bool token_char(char c)
{
	return c > ' ' && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* "HTTP/1.x" at p (n bytes). */
static bool http_version(const char *p, size_t n)
{
	return n >= 8 && memcmp(p, "HTTP/1.", 7) == 0 && p[7] >= '0' && p[7] <= '9';
}

static bool parse_request_line(const char *l, size_t n, struct head *h, bool whole)
{
	size_t i = 0;

	while (i < n && i < 24 && token_char(l[i]))
		i++;
	if (i == 0 || i >= n || l[i] != ' ')
		return false;
	h->method = l;
	h->mlen = i;
	size_t t = ++i;
	while (i < n && l[i] != ' ')
		i++;
	if (i == t)
		return false;
	h->target = l + t;
	h->tlen = i - t;
	if (!whole)
		return true; /* cut: method and (part of) the target are all there is */
	return i < n && http_version(l + i + 1, n - i - 1);
}

static bool parse_status_line(const char *l, size_t n, struct head *h)
{
	if (n < 12 || !http_version(l, n) || l[8] != ' ')
		return false;
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (l[i] < '0' || l[i] > '9')
			return false;
		st = st * 10 + (l[i] - '0');
	}
	if (st < 100 || (n > 12 && l[12] != ' '))
		return false;
	h->status = st;
	return true;
}

static bool header_is(const char *l, size_t n, const char *name, const char **value, size_t *vlen)
{
	size_t k = strlen(name);

	if (n <= k || l[k] != ':' || strncasecmp(l, name, k) != 0)
		return false;
	size_t i = k + 1;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	size_t e = n;
	while (e > i && (l[e - 1] == ' ' || l[e - 1] == '\t'))
		e--;
	*value = l + i;
	*vlen = e - i;
	return true;
}

/* Headers in [p, end): Content-Length and Transfer-Encoding.  False if malformed. */
static bool parse_headers(const char *p, const char *end, struct head *h)
{
	h->length = -1;
	h->chunked = false;
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		const char *v;
		size_t vl;
		if (header_is(p, n, "content-length", &v, &vl)) {
			int64_t len = 0;
			if (vl == 0 || vl > 18)
				return false;
			for (size_t i = 0; i < vl; i++) {
				if (v[i] < '0' || v[i] > '9')
					return false;
				len = len * 10 + (v[i] - '0');
			}
			if (h->length < 0)
				h->length = len;
		} else if (header_is(p, n, "transfer-encoding", &v, &vl)) {
			/* chunked must be the last coding */
			h->chunked = vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0;
		}
		p += n + 2;
	}
	return true;
}

static void new_request(struct span_conn *c, struct span_stream *s, const struct head *h,
			uint64_t hlen)
{
	char endpoint[EMBER_ENDPOINT_MAX];
	char text[SPAN_TEXT_MAX];
	size_t tl;

	ember_endpoint_http(h->method, h->mlen, h->target, h->tlen, endpoint, sizeof(endpoint));
	tl = h->mlen + 1 + h->tlen < sizeof(text) ? h->mlen + 1 + h->tlen : sizeof(text) - 1;
	memcpy(text, h->method, h->mlen);
	text[h->mlen] = ' ';
	memcpy(text + h->mlen + 1, h->target, tl - h->mlen - 1);
	bool head = h->mlen == 4 && memcmp(h->method, "HEAD", 4) == 0;
	struct span_pending *p = span_request(c, s, s->pos_first, endpoint, text, tl,
					      head ? KIND_HEAD : 0);
	if (p)
		p->req_bytes = hlen + (h->length > 0 && !h->chunked ? (uint64_t)h->length : 0);
}

/* Status of the head request; the error rule is OpenTelemetry's (5xx server, 4xx+ client). */
static void set_status(struct span_conn *c, int status)
{
	struct span_pending *p = span_head(c);

	if (!p)
		return;
	p->status = (uint16_t)status;
	if (status >= 500 || (c->role == EMBER_ROLE_CLIENT && status >= 400))
		p->error = true;
}

static int parse_start(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
		       bool gap)
{
	size_t look = n < SPAN_CARRY_MAX ? n : SPAN_CARRY_MAX;
	const uint8_t *hend = find(p, look, "\r\n\r\n", 4);
	const uint8_t *eol = find(p, look, "\r\n", 2);
	struct head h = {0};

	if (!hend) {
		if (!gap && n < SPAN_CARRY_MAX)
			return 0; /* wait for the rest of the headers */
		/* cut: use the start line (or its start), then give the turn up */
		size_t ln = eol ? (size_t)(eol - p) : look;
		if (s->requests) {
			if (parse_request_line((const char *)p, ln, &h, eol != NULL))
				new_request(c, s, &h, n);
		} else if (parse_status_line((const char *)p, ln, &h)) {
			span_response_start(c, s, s->pos_first);
			set_status(c, h.status);
		}
		return -1;
	}
	size_t hlen = (size_t)(hend - p) + 4;
	bool ok = s->requests ? parse_request_line((const char *)p, (size_t)(eol - p), &h, true)
			      : parse_status_line((const char *)p, (size_t)(eol - p), &h);
	if (!ok || !parse_headers((const char *)eol + 2, (const char *)hend + 2, &h))
		return -1;

	struct span_http_stream *hs = &s->u.http;
	if (s->requests) {
		new_request(c, s, &h, hlen);
		if (h.chunked) {
			hs->phase = H_CHUNK_SIZE;
		} else if (h.length > 0) {
			hs->phase = H_BODY;
			s->skip = (uint64_t)h.length;
		}
		return (int)hlen;
	}

	struct span_pending *req = span_head(c);
	span_response_start(c, s, s->pos_first);
	if (h.status < 200 && h.status != 101)
		return (int)hlen; /* interim: the final response follows */
	set_status(c, h.status);
	bool no_body = (req && req->kind == KIND_HEAD) || h.status == 204 || h.status == 304 ||
		       h.status == 101;
	if (no_body || (!h.chunked && h.length == 0)) {
		span_respond(c, s, s->pos_first + hlen);
		if (h.status == 101)
			span_conn_dead(c, "protocol upgrade");
	} else if (h.chunked) {
		hs->phase = H_CHUNK_SIZE;
	} else if (h.length > 0) {
		hs->phase = H_BODY;
		s->skip = (uint64_t)h.length;
	} else {
		hs->phase = H_UNTIL_CLOSE; /* ends at the close (finish_conn) */
	}
	return (int)hlen;
}

static int parse_chunk_size(struct span_stream *s, const uint8_t *p, size_t n, bool gap)
{
	size_t look = n < MAX_CHUNK_LINE ? n : MAX_CHUNK_LINE;
	const uint8_t *eol = find(p, look, "\r\n", 2);
	uint64_t size = 0;
	size_t i = 0;

	if (!eol)
		return gap || n >= MAX_CHUNK_LINE ? -1 : 0;
	for (; p + i < eol && i < 15; i++) {
		uint8_t ch = p[i];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
						 : -1;
		if (d < 0)
			break;
		size = size * 16 + (uint64_t)d;
	}
	if (i == 0 || (p + i < eol && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
		return -1;
	if (size == 0) {
		s->u.http.phase = H_TRAILERS;
	} else {
		s->u.http.phase = H_CHUNK_DATA;
		s->skip = size + 2; /* data and its CRLF */
	}
	return (int)(eol - p) + 2;
}

static void message_end(struct span_conn *c, struct span_stream *s, uint64_t end_pos)
{
	s->u.http.phase = H_START;
	if (!s->requests)
		span_respond(c, s, end_pos);
}

static int parse_trailers(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
			  bool gap)
{
	size_t look = n < SPAN_CARRY_MAX ? n : SPAN_CARRY_MAX;
	const uint8_t *end;
	size_t len;

	if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
		len = 2;
	} else if ((end = find(p, look, "\r\n\r\n", 4))) {
		len = (size_t)(end - p) + 4;
	} else {
		return gap || n >= SPAN_CARRY_MAX ? -1 : 0;
	}
	message_end(c, s, s->pos_first + len);
	return (int)len;
}

static int http_parse(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
		      bool gap)
{
	switch (s->u.http.phase) {
	case H_START:
		return parse_start(c, s, p, n, gap);
	case H_CHUNK_SIZE:
		return parse_chunk_size(s, p, n, gap);
	case H_TRAILERS:
		return parse_trailers(c, s, p, n, gap);
	case H_UNTIL_CLOSE:
		return (int)(n < (1u << 30) ? n : (1u << 30));
	}
	return -1; /* a body phase without a skip: cannot happen */
}

static void http_skipped(struct span_conn *c, struct span_stream *s)
{
	if (s->u.http.phase == H_BODY)
		message_end(c, s, s->pos);
	else if (s->u.http.phase == H_CHUNK_DATA)
		s->u.http.phase = H_CHUNK_SIZE;
}

static void http_reset(struct span_conn *c, struct span_stream *s)
{
	(void)c;
	memset(&s->u.http, 0, sizeof(s->u.http));
}

const struct span_proto_ops span_http_ops = {
	.parse = http_parse,
	.skipped = http_skipped,
	.reset = http_reset,
	.pipelined = true,
};
