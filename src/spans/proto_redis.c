/*
 * proto_redis.c - RESP (Redis serialization protocol, 2 and 3) for the tracker.
 *
 * Requests are arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"),
 * or inline commands ("PING\r\n"); the first two arguments are read (the
 * command, and its subcommand or key), the others skipped.  Replies are any
 * RESP value, aggregates nested up to SPAN_REDIS_DEPTH deep; a reply whose
 * top level is an error (-ERR, !blob error) marks the span failed.  RESP3
 * push messages (>) are not replies; an attribute (|) comes before its
 * reply.  Pipelining pairs the n-th reply with the n-th command.
 *
 * The parser keeps its place per token: a call consumes whole tokens (a
 * line, or a line and its bulk string) and returns; a bulk string it does
 * not need is passed to the stream layer as a skip, so it may be any size
 * and need not have been captured.
 */
#include <string.h>

#include "spans/conn.h"
#include "spans/endpoint.h"
#include "spans/tracker.h"

#define MAX_LINE 4096
#define ARG_MAX 39 /* bytes kept of each of the first two arguments */

static bool parse_int(const uint8_t *p, size_t n, int64_t *out)
{
	bool neg = false;
	int64_t v = 0;
	size_t i = 0;

	if (n > 0 && p[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n || n - i > 18)
		return false;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = neg ? -v : v;
	return true;
}

static void message_done(struct span_conn *c, struct span_stream *s, uint64_t end_pos)
{
	struct span_redis_stream *r = &s->u.redis;

	r->in_msg = false;
	if (s->requests) {
		char endpoint[EMBER_ENDPOINT_MAX], text[2 * ARG_MAX + 2];
		size_t tl;
		if (!r->args_seen)
			return;
		ember_endpoint_redis(r->arg[0], r->arg_len[0], r->args_seen > 1 ? r->arg[1] : NULL,
				     r->arg_len[1], endpoint, sizeof(endpoint));
		memcpy(text, r->arg[0], r->arg_len[0]);
		tl = r->arg_len[0];
		if (r->args_seen > 1) {
			text[tl++] = ' ';
			memcpy(text + tl, r->arg[1], r->arg_len[1]);
			tl += r->arg_len[1];
		}
		struct span_pending *p = span_request(c, s, r->msg_pos, endpoint, text, tl, 0);
		if (p)
			p->req_bytes = end_pos - r->msg_pos;
		return;
	}
	if (r->attr) /* RESP3 push: not a reply */
		return;
	struct span_pending *h = span_head(c);
	if (h && r->error)
		span_set_error(h, r->err, strlen(r->err));
	span_respond(c, s, end_pos);
}

/* One value finished at end_pos: close the aggregates it completes. */
static void element_done(struct span_conn *c, struct span_stream *s, uint64_t end_pos)
{
	struct span_redis_stream *r = &s->u.redis;

	while (r->depth > 0) {
		if (--r->remaining[r->depth - 1] > 0)
			return;
		r->depth--;
	}
	if (r->attr == 2) { /* an attribute ended: its reply follows */
		r->attr = 0;
		return;
	}
	message_done(c, s, end_pos);
}

static void keep_arg(struct span_redis_stream *r, const uint8_t *p, size_t n)
{
	if (r->args_seen >= 2)
		return;
	if (n > ARG_MAX)
		n = ARG_MAX;
	memcpy(r->arg[r->args_seen], p, n);
	r->arg_len[r->args_seen] = (uint8_t)n;
	r->args_seen++;
}

/* An inline command: words separated by blanks on one line. */
static void inline_command(struct span_redis_stream *r, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && r->args_seen < 2) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		size_t start = i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		if (i > start)
			keep_arg(r, p + start, i - start);
	}
}

static int redis_parse(struct span_conn *c, struct span_stream *s, const uint8_t *p, size_t n,
		       bool gap)
{
	struct span_redis_stream *r = &s->u.redis;
	size_t i = 0;

	while (i < n) {
		uint64_t here = s->pos_first + i;
		size_t look = n - i < MAX_LINE ? n - i : MAX_LINE;
		const uint8_t *eol = memmem(p + i, look, "\r\n", 2);
		if (!eol) {
			if (i > 0)
				return (int)i;
			return gap || n >= MAX_LINE ? -1 : 0;
		}
		size_t ll = (size_t)(eol - (p + i)), next = i + ll + 2;
		uint8_t t = p[i];
		const uint8_t *line = p + i + 1;
		int64_t v = 0;

		if (!r->in_msg) {
			r->in_msg = true;
			r->msg_pos = here;
			r->depth = 0;
			r->args_seen = 0;
			r->error = false;
			r->attr = 0;
			r->err[0] = '\0';
			if (!s->requests && t != '>' && t != '|')
				span_response_start(c, s, here);
		}
		if (s->requests && r->depth == 0 && t != '*') {
			inline_command(r, p + i, ll);
			message_done(c, s, s->pos_first + next);
			i = next;
			continue;
		}
		switch (t) {
		case '-':
			if (r->depth == 0) {
				size_t el = ll - 1 < SPAN_ERR_MAX - 1 ? ll - 1 : SPAN_ERR_MAX - 1;
				memcpy(r->err, line, el);
				r->err[el] = '\0';
				r->error = true;
			}
			/* fall through */
		case '+': case ':': case ',': case '#': case '_': case '(':
			i = next;
			element_done(c, s, s->pos_first + i);
			continue;
		case '$': case '=': case '!': {
			if (!parse_int(line, ll - 1, &v) || v < -1)
				return -1;
			if (t == '!' && r->depth == 0)
				r->error = true;
			if (v == -1) {
				i = next;
				element_done(c, s, s->pos_first + i);
				continue;
			}
			uint64_t body = (uint64_t)v + 2;
			bool want = s->requests && r->depth == 1 && r->args_seen < 2;
			if (want && n - next >= body) {
				keep_arg(r, p + next, (size_t)v);
				i = next + (size_t)body;
				element_done(c, s, s->pos_first + i);
				continue;
			}
			if (want && !gap && body <= SPAN_CARRY_MAX / 2)
				return i > 0 ? (int)i : 0; /* wait for the whole argument */
			if (want)
				keep_arg(r, p + next, n - next < (size_t)v ? n - next : (size_t)v);
			/* let the stream pass the body; element_done when it has */
			s->skip = body;
			return (int)next;
		}
		case '*': case '~': case '>': case '%': case '|':
			if (!parse_int(line, ll - 1, &v) || v < -1 || v > (1 << 30))
				return -1;
			if (t == '%' || t == '|')
				v *= 2;
			if (r->depth == 0 && t == '>')
				r->attr = 1; /* a push: not a reply */
			if (r->depth == 0 && t == '|')
				r->attr = 2;
			i = next;
			if (v <= 0) {
				element_done(c, s, s->pos_first + i);
				continue;
			}
			if (r->depth >= SPAN_REDIS_DEPTH)
				return -1;
			r->remaining[r->depth++] = (uint32_t)v;
			continue;
		default:
			return -1;
		}
	}
	return (int)i;
}

static void redis_skipped(struct span_conn *c, struct span_stream *s)
{
	element_done(c, s, s->pos);
}

static void redis_reset(struct span_conn *c, struct span_stream *s)
{
	(void)c;
	memset(&s->u.redis, 0, sizeof(s->u.redis));
}

const struct span_proto_ops span_redis_ops = {
	.parse = redis_parse,
	.skipped = redis_skipped,
	.reset = redis_reset,
	.pipelined = true,
};
