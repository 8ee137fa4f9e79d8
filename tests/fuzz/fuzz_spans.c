/*
 * fuzz_spans.c - libFuzzer target for the connection tracker and its parsers.
 *
 * The input is a script of kernel events on four connections.  Byte 0
 * gives each connection a protocol (2 bits each: HTTP, MySQL, PostgreSQL,
 * Redis) and byte 1 their roles.  Then, per event, a control byte:
 *   bits 0-1  the connection, bit 2 the direction,
 *   bit 3     the payload is cut (captured = half of its length, as a
 *             payload head would be),
 *   bit 4     the kernel lost an event before this one,
 *   bits 5-7  7: close the connection; 6: sweep (time passes); else a
 *             payload whose length is the next byte + 1, times 64 when
 *             bit 5 is set, its bytes taken from the input.
 * Every span must be well formed (an endpoint, end >= start, text that is
 * valid UTF-8 without control bytes); connection state must stay within
 * its bounds.  (The duration histograms' blobs are fuzzed by fuzz_hist.c.)
 *
 * FUZZ_SOURCES: src/spans/tracker.c src/spans/proto_http.c src/spans/proto_redis.c src/spans/proto_mysql.c src/spans/proto_pgsql.c src/spans/endpoint.c src/spans/endpoints.c src/core/profile.c src/core/array.c src/core/strbuf.c
 * FUZZ_LIBS:
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spans/endpoint.h"
#include "spans/endpoints.h"
#include "spans/tracker.h"

static struct ember_endpoints *eps;

static void check_text(const char *s)
{
	char copy[2048];

	if (!s)
		return;
	size_t n = strlen(s);
	/* sanitized text is its own sanitization */
	if (n >= sizeof(copy) || ember_text_sanitize(s, n, copy, sizeof(copy)) != n ||
	    memcmp(copy, s, n) != 0)
		abort();
}

static void on_span(const struct ember_span *s, void *arg)
{
	(void)arg;
	const char *ep = ember_endpoints_name(eps, s->endpoint);
	if (!ep || s->end_ns < s->start_ns || s->proto == 0 || s->proto >= EMBER_PROTO__COUNT)
		abort();
	check_text(ep);
	check_text(s->text);
	check_text(s->err);
	if (s->text && strlen(s->text) >= 1024)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ev_buf[sizeof(struct ember_span_data) + 64 * 256];
	struct ember_span_data *ev = (void *)ev_buf;
	uint8_t protos[4], roles[4];
	size_t i = 2;
	int64_t ts = 1000;

	if (size < 2)
		return 0;
	if (!eps)
		eps = ember_endpoints_new(256);
	struct ember_tracker_opts o = {.max_conns = 3, .endpoints = eps, .on_span = on_span};
	struct ember_tracker *tr = ember_tracker_new(&o);
	if (!tr)
		return 0;
	for (int c = 0; c < 4; c++) {
		protos[c] = (uint8_t)(1 + ((data[0] >> (2 * c)) & 3));
		roles[c] = (data[1] >> c) & 1 ? EMBER_ROLE_SERVER : EMBER_ROLE_CLIENT;
	}
	while (i < size) {
		uint8_t ctl = data[i++];
		unsigned c = ctl & 3;
		if ((ctl >> 5) == 7) {
			struct ember_span_ctl cev = {.type = EMBER_CTL_CLOSE, .tgid = 1, .conn_id = c + 1};
			ember_tracker_ctl(tr, &cev);
			continue;
		}
		if ((ctl >> 5) == 6) {
			ember_tracker_sweep(tr, ts += 1000000000LL);
			continue;
		}
		if (i >= size)
			break;
		size_t len = (size_t)data[i++] + 1;
		if (ctl & 0x20)
			len *= 64;
		size_t avail = size - i < len ? size - i : len;
		size_t captured = ctl & 8 ? avail / 2 : avail;
		memset(ev, 0, sizeof(*ev));
		ev->conn_id = c + 1;
		ev->ts_ns = (uint64_t)(ts += 1000);
		ev->tgid = 1;
		ev->tid = 2;
		ev->fd = c;
		ev->len = (uint32_t)len;
		ev->captured = (uint32_t)captured;
		ev->dir = (ctl >> 2) & 1;
		ev->proto = protos[c];
		ev->role = roles[c];
		ev->flags = ctl & 0x10 ? EMBER_SPAN_F_LOST_BEFORE : 0;
		memcpy(ev_buf + sizeof(*ev), data + i, captured);
		i += avail;
		ember_tracker_data(tr, ev, ev_buf + sizeof(*ev));
		uint64_t st[EMBER_TRACKER__COUNT];
		ember_tracker_stats(tr, st);
		if (st[EMBER_TRACKER_CONNS] > 3)
			abort();
	}
	ember_tracker_sweep(tr, ts + 1);
	ember_tracker_sweep(tr, ts + 2);
	ember_tracker_free(tr);
	return 0;
}
