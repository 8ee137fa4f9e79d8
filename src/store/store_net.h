/*
 * store_net.h - the TCP metrics in the store: ingest, per-peer and topology queries.
 *
 * Rows are (10 s bucket, target, peer) with the counters and histograms of
 * src/net/net_batch.h, rolled up per hour in the same transaction, beside
 * the samples and on the same target ids (schema version 6, store_schema.c).
 * Queries take the samples' selections (service, version, target, pid,
 * from, to) and read whole hours from the roll-up, like the sample queries.
 */
#ifndef EMBER_STORE_NET_H
#define EMBER_STORE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net_batch.h"
#include "store/store.h"

/* Store a batch: one write transaction.  Returns 0 or -errno with err filled. */
int ember_store_net_ingest(struct ember_store *s, const struct ember_net_batch *b, char *err,
			   size_t errlen);

struct ember_net_reason_count {
	char reason[EMBER_NET_REASON_LEN];
	uint64_t count;
};

/* One peer of a selection, summed over the selection's targets and time. */
struct ember_net_peer_stats {
	struct ember_net_peer peer;
	struct ember_net_values v;
	struct ember_net_reason_count *reasons; /* drops by reason, largest first */
	size_t n_reasons;
};

struct ember_net_point {
	int64_t t_ns; /* start of the step */
	struct ember_net_values v;
};

struct ember_net_report {
	struct ember_net_peer_stats *peers; /* by bytes sent + received, largest first */
	size_t n_peers;
	bool truncated;                     /* more than max_peers peers: the largest kept */
	struct ember_net_values total;
	int64_t step_ns, from_ns, to_ns;    /* the timeline's span and step */
	struct ember_net_point *points;     /* ascending, steps with data only */
	size_t n_points;
};

#define EMBER_STORE_NET_MAX_PEERS 1000

/*
 * Peers and timeline of a selection.  The timeline's step is step_ns (0 =
 * automatic) rounded up to whole buckets and raised so the span holds at
 * most max_points steps (0 = 600); steps of an hour or more read the
 * hourly roll-up.  Free with ember_net_report_free().
 */
int ember_store_net_query(struct ember_store *s, const struct ember_selection *sel,
			  int64_t step_ns, size_t max_points, size_t max_peers,
			  struct ember_net_report *out, char *err, size_t errlen);
void ember_net_report_free(struct ember_net_report *r);

/*
 * Who calls whom.  An edge goes from the connecting side to the accepting
 * one; a side is a service (local process) or an address ("10.0.0.7:5432"
 * for a server, "10.0.0.9" for a client).  Local-to-local edges are counted
 * from the client's rows (bytes_sent = client to server); the server's
 * rows count for edges whose client is not local.
 */
struct ember_net_edge {
	char from[EMBER_NET_NAME_LEN + EMBER_NET_ADDR_LEN];
	char to[EMBER_NET_NAME_LEN + EMBER_NET_ADDR_LEN];
	bool from_service, to_service; /* a local service, else an address */
	struct ember_net_values v;     /* from the client's side when it is local */
};

#define EMBER_STORE_NET_MAX_EDGES 5000

int ember_store_net_topology(struct ember_store *s, const struct ember_selection *sel,
			     struct ember_net_edge **edges, size_t *n_edges, bool *truncated,
			     char *err, size_t errlen);
void ember_net_edges_free(struct ember_net_edge *edges, size_t n);

#endif
