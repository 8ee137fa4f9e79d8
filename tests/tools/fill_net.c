/*
 * fill_net.c - add known TCP metrics to an Ember database (after fill_db).
 *
 *   fill_net DB [NOW_MS]
 *
 * For the browser test of the Network tab: the last 120 minutes before NOW
 * (whole minutes, as fill_db), one row per minute for service "shop"
 * version 2.0 (pid 102, fill_db's shop 2.0 process) and its peers:
 *
 *   out 127.0.0.1:6379, the local service "redis"   1000 B sent, 5000 B received
 *   out 10.0.0.7:5432, an external database        500 / 20000 B, RTT 2 ms
 *   in  10.1.1.1 to port 8080, a client            30000 / 800 B, 3 accepts
 *
 * and redis's side of the first edge.  At SPIKE_MIN minutes before NOW the
 * database link has 50 retransmits and an RTT of 40 ms: the spike the
 * test brushes to open the flame graph of that window.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net_batch.h"
#include "store/store.h"
#include "store/store_net.h"

#define MINUTE_NS (60LL * 1000000000LL)
#define SPIKE_MIN 30

static uint32_t peer(struct ember_net_batch *b, int in, const char *addr, unsigned port,
		     const char *service)
{
	struct ember_net_peer p = {.direction = (uint8_t)in, .port = (uint16_t)port};

	snprintf(p.addr, sizeof(p.addr), "%s", addr);
	snprintf(p.service, sizeof(p.service), "%s", service);
	return ember_net_batch_peer(b, &p);
}

static int add(struct ember_net_batch *b, int64_t t, uint32_t target, uint32_t pr,
	       uint64_t sent, uint64_t recv, uint64_t rtt_us, uint64_t retrans, uint64_t accepts)
{
	struct ember_net_batch_row *r = ember_net_batch_row(b, t, target, pr);

	if (!r)
		return -1;
	r->v.bytes_sent += sent;
	r->v.bytes_recv += recv;
	r->v.sends += 2;
	r->v.recvs += 2;
	r->v.retransmits += retrans;
	r->v.accepts += accepts;
	r->v.connects += accepts ? 0 : 1;
	r->v.closes += 1;
	return ember_hist_add(&r->v.rtt, rtt_us, 6);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: fill_net DB [NOW_MS]\n");
		return 2;
	}
	int64_t now_ms = argc == 3 ? strtoll(argv[2], NULL, 10) : (int64_t)time(NULL) * 1000;
	int64_t now_ns = now_ms / 60000 * 60000 * 1000000;
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *st;
	if (ember_store_open(argv[1], &st, err, sizeof(err))) {
		fprintf(stderr, "fill_net: %s\n", err);
		return 1;
	}
	ember_store_set_host(st, "testhost");
	struct ember_net_batch *b = ember_net_batch_new(0);
	if (!b)
		return 1;
	struct ember_target shop = {.pid = 102, .comm = "shop", .service = "shop", .version = "2.0"};
	struct ember_target redis = {.pid = 300, .comm = "redis", .service = "redis", .version = "7"};
	uint32_t ts = ember_profile_target(b->targets, &shop);
	uint32_t tr = ember_profile_target(b->targets, &redis);
	uint32_t p_redis = peer(b, 0, "127.0.0.1", 6379, "redis");
	uint32_t p_db = peer(b, 0, "10.0.0.7", 5432, "");
	uint32_t p_client = peer(b, 1, "10.1.1.1", 8080, "");
	uint32_t p_shop = peer(b, 1, "127.0.0.1", 6379, "shop");
	int rc = 0;
	for (int m = 0; m < 120 && !rc; m++) {
		int64_t t = now_ns - (int64_t)(120 - m) * MINUTE_NS;
		bool spike = 120 - m == SPIKE_MIN;
		rc = add(b, t, ts, p_redis, 1000, 5000, 200, 0, 0);
		rc |= add(b, t, ts, p_db, 500, 20000, spike ? 40000 : 2000, spike ? 50 : 0, 0);
		rc |= add(b, t, ts, p_client, 30000, 800, 900, 0, 3);
		rc |= add(b, t, tr, p_shop, 5000, 1000, 200, 0, 1);
	}
	if (!rc && ember_store_net_ingest(st, b, err, sizeof(err))) {
		fprintf(stderr, "fill_net: %s\n", err);
		rc = 1;
	}
	ember_net_batch_free(b);
	ember_store_close(st);
	if (rc)
		return 1;
	printf("fill_net: wrote %s\n", argv[1]);
	return 0;
}
