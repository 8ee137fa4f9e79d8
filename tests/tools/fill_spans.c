/*
 * fill_spans.c - write a small, known set of spans into an Ember database.
 *
 *   fill_spans DB [NOW_MS]
 *
 * For the browser test of the Requests tab (tests/web/requests.test.js),
 * beside the samples of tests/tools/fill_db.c.  Service "shop" (version
 * 2.0, pid 4242), every minute of the 60 before NOW:
 *   serves  GET /orders/{id}   600 requests, 6 of them 500s, 5 ms each
 *           POST /checkout     60 requests, 200, 120 ms each
 *   calls   mysql  SELECT * FROM orders WHERE id = ?  1200 calls, 2 ms,
 *                  on 10.0.0.9:3306
 *           redis  GET                             300 calls, 0.3 ms,
 *                  on 10.0.0.10:6379
 * and three slow spans: two of the SELECT (800 and 900 ms, with their full
 * text) and one POST /checkout (650 ms).  Written through the store API
 * (store_spans.h), ten-second buckets like the agent's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/hist.h"
#include "store/store.h"
#include "store/store_spans.h"

#define BUCKET_NS (10LL * 1000000000LL)
#define MS 1000000ULL

struct row {
	const char *protocol, *role, *endpoint, *peer, *status;
	unsigned per_minute;
	uint64_t dur_ns;
};

static const struct row rows[] = {
	{"http", "server", "GET /orders/{id}", "10.0.0.2", "200", 594, 5 * MS},
	{"http", "server", "GET /orders/{id}", "10.0.0.2", "500", 6, 5 * MS},
	{"http", "server", "POST /checkout", "10.0.0.2", "200", 60, 120 * MS},
	{"mysql", "client", "SELECT * FROM orders WHERE id = ?", "10.0.0.9:3306", "ok", 1200, 2 * MS},
	{"redis", "client", "GET", "10.0.0.10:6379", "ok", 300, 300000},
};

int main(int argc, char **argv)
{
	struct ember_store *st;
	char err[EMBER_STORE_ERRLEN];
	struct ember_target t = {.pid = 4242, .comm = "shop", .exe = "/usr/bin/shop",
				 .service = "shop", .version = "2.0", .build_id = "aa02"};
	size_t nrows = sizeof(rows) / sizeof(rows[0]);

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: fill_spans DB [NOW_MS]\n");
		return 2;
	}
	int64_t now_ms = argc == 3 ? strtoll(argv[2], NULL, 10) : (int64_t)time(NULL) * 1000;
	int64_t now_ns = now_ms / 60000 * 60000 * 1000000; /* whole minutes */
	if (ember_store_open(argv[1], &st, err, sizeof(err))) {
		fprintf(stderr, "fill_spans: %s\n", err);
		return 1;
	}
	ember_store_set_host(st, "testhost");
	struct ember_hist *hists = calloc(nrows, sizeof(*hists));
	struct ember_store_span *batch = calloc(nrows * 6, sizeof(*batch));
	if (!hists || !batch)
		return 1;
	for (size_t i = 0; i < nrows; i++)
		if (ember_hist_add(&hists[i], rows[i].dur_ns / 1000, (uint32_t)(rows[i].per_minute / 6)))
			return 1;
	for (int m = 60; m > 0; m--) {
		size_t n = 0;
		for (int b = 0; b < 6; b++) { /* six 10 s buckets a minute */
			int64_t bucket = now_ns - (int64_t)m * 60000000000LL + b * BUCKET_NS;
			for (size_t i = 0; i < nrows; i++) {
				uint64_t c = rows[i].per_minute / 6;
				batch[n++] = (struct ember_store_span){
					.target = &t, .bucket_ns = bucket, .protocol = rows[i].protocol,
					.role = rows[i].role, .endpoint = rows[i].endpoint, .peer = rows[i].peer,
					.status = rows[i].status, .count = c,
					.errors = rows[i].status[0] == '5' ? c : 0,
					.dur_sum_ns = c * rows[i].dur_ns, .dur_max_ns = rows[i].dur_ns,
					.req_bytes = c * 100, .resp_bytes = c * 1000, .hist = &hists[i]};
			}
		}
		if (ember_store_spans_ingest(st, batch, n, NULL, 0, err, sizeof(err))) {
			fprintf(stderr, "fill_spans: %s\n", err);
			return 1;
		}
	}
	struct ember_store_slow_span slow[] = {
		{.target = &t, .time_ns = now_ns - 30 * 60000000000LL, .duration_ns = 800 * MS,
		 .protocol = "mysql", .role = "client", .endpoint = rows[3].endpoint,
		 .peer = rows[3].peer, .status = "ok", .text = "SELECT * FROM orders WHERE id = 42",
		 .tid = 4243},
		{.target = &t, .time_ns = now_ns - 20 * 60000000000LL, .duration_ns = 900 * MS,
		 .protocol = "mysql", .role = "client", .endpoint = rows[3].endpoint,
		 .peer = rows[3].peer, .status = "ok", .text = "SELECT * FROM orders WHERE id = 7",
		 .tid = 4243},
		{.target = &t, .time_ns = now_ns - 10 * 60000000000LL, .duration_ns = 650 * MS,
		 .protocol = "http", .role = "server", .endpoint = "POST /checkout", .peer = "10.0.0.2",
		 .status = "200", .text = "POST /checkout?cart=991", .tid = 4244},
	};
	if (ember_store_spans_ingest(st, NULL, 0, slow, 3, err, sizeof(err))) {
		fprintf(stderr, "fill_spans: %s\n", err);
		return 1;
	}
	free(batch);
	for (size_t i = 0; i < nrows; i++)
		ember_hist_free(&hists[i]);
	free(hists);
	ember_store_close(st);
	return 0;
}
