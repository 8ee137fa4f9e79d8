/*
 * net_prom.h - running totals of the TCP metrics for Prometheus, with bounded labels.
 *
 * Prometheus wants counters that only grow, per label set, and every
 * distinct label set is a series it stores forever: a service talking to
 * ten thousand clients must not become ten thousand series.  So, per
 * (service, version):
 *
 *   - peers are ranked by a decaying rate of their traffic (bytes plus
 *     1000 per connection, half-life ~5 minutes); every minute the top N
 *     (default 20) get their own `peer` label;
 *   - everything else adds to peer="other" (one per direction);
 *   - a peer's series only counts while it is in the top N; when it drops
 *     out, its series ends and what it had counted moves into "other", so
 *     every series stays monotonic and every sum over peers continuous (a
 *     peer that comes back starts a new series from zero);
 *   - at most 4N peers are tracked for the ranking (the slowest unnamed
 *     one gives way to a new one) and at most 256 (service, version)
 *     pairs (then service="other").
 *
 * Drops are kept per (service, version, reason), without the peer label.
 * Totals are cumulative since the agent started; a restart is a counter
 * reset, which PromQL's rate() handles.  Thread-safe: the agent adds, the
 * HTTP server reads.
 */
#ifndef EMBER_NET_PROM_H
#define EMBER_NET_PROM_H

#include <stdint.h>

#include "net/net_batch.h"

#define EMBER_NET_PROM_LE 18 /* histogram buckets: 25 µs x 2^k, k = 0..17 (up to 3.3 s) */

struct ember_net_prom_hist {
	uint64_t le[EMBER_NET_PROM_LE]; /* cumulative, Prometheus style */
	uint64_t count;
	uint64_t sum_us;
};

struct ember_net_prom_values {
	uint64_t bytes_sent, bytes_recv, connects, accepts, closes, failures;
	uint64_t resets_sent, resets_recv, retransmits;
	struct ember_net_prom_hist rtt, connect;
};

struct ember_net_prom;

struct ember_net_prom *ember_net_prom_new(unsigned top_peers);
void ember_net_prom_free(struct ember_net_prom *p);

/* The upper bound of histogram bucket k, microseconds. */
uint64_t ember_net_prom_le_us(unsigned k);

/* Add what one row gained; peer is the label value ("redis", "10.0.0.7:5432"). */
void ember_net_prom_add(struct ember_net_prom *p, const char *service, const char *version,
			int direction, const char *peer, const struct ember_net_values *d,
			int64_t now_ns);
void ember_net_prom_drop(struct ember_net_prom *p, const char *service, const char *version,
			 const char *reason, uint64_t count);

/*
 * Every series, under the lock: fn(service, version, direction, peer,
 * values) for the named peers and the "other" ones, then drop_fn for the
 * drops.  Order: by (service, version), named peers before "other".
 */
void ember_net_prom_each(struct ember_net_prom *p,
			 void (*fn)(const char *service, const char *version, int direction,
				    const char *peer, const struct ember_net_prom_values *v,
				    void *arg),
			 void (*drop_fn)(const char *service, const char *version,
					 const char *reason, uint64_t count, void *arg),
			 void *arg);

/* Label bookkeeping for /api/stats: series shown, peers folded into "other". */
void ember_net_prom_counts(struct ember_net_prom *p, uint64_t *series, uint64_t *folded_adds);

#endif
