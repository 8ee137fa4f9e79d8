/*
 * net_api.h - the TCP metrics behind /api/net and /api/topology.
 *
 * Times are unix milliseconds; selections are those of api.c (target,
 * service, version, pid, from, to; absent or empty = any).
 *
 *   GET /api/net?<selection>[&step=SECONDS][&limit=N]
 *       {"from":MS|null,"to":MS|null,"step_ms":S,"peers_total":N,"truncated":false,
 *        "total":{VALUES},
 *        "peers":[{"direction":"out"|"in","addr":"127.0.0.1","port":6379,
 *                  "service":"redis"|null,VALUES,"drop_reasons":{"NAME":N,...}}, ...],
 *        "timeline":{"t":[MS,...],"sent_bytes":[...],"received_bytes":[...],
 *                    "retransmits":[...],"connections":[...],"failures":[...],
 *                    "resets":[...],"drops":[...],"rtt_p50_ms":[...],"rtt_p99_ms":[...]}}
 *       A peer is what the selected processes talked to: "out" the remote
 *       address and port they connected to, "in" a client address and the
 *       local port it connected to; "service" names a peer that is a local
 *       process.  Peers by bytes, largest first, at most limit (1..1000,
 *       default 200; "truncated" when cut).  The timeline has one entry per
 *       step holding data (step_ms: the step rounded up to whole 10 s
 *       buckets, raised to at most 600 steps); rtt values are null in a
 *       step without RTT samples.
 *       VALUES: "sent_bytes","received_bytes","sends","recvs","connects",
 *       "accepts","closes","connect_failures","resets_sent",
 *       "resets_received","retransmits","drops","rtt_samples",
 *       "rtt_p50_ms","rtt_p99_ms","connect_samples","connect_p50_ms",
 *       "connect_p99_ms" (quantiles null without samples).
 *
 *   GET /api/topology?<selection>
 *       {"nodes":[{"id":"redis","kind":"service"|"address"}, ...],
 *        "edges":[{"from":"redis-benchmark","to":"redis",VALUES}, ...],
 *        "truncated":false}
 *       Who calls whom over the selection's rows: from the connecting side
 *       to the accepting one, a side being a local service or an address.
 *       Edge values are the client's view (sent_bytes = client to server,
 *       connects = connections opened); at most 5000 edges, busiest first.
 *
 * Errors as in api.c: 400 naming the parameter, 500/503 when the store fails.
 */
#ifndef EMBER_SERVER_NET_API_H
#define EMBER_SERVER_NET_API_H

#include <stdbool.h>
#include <stddef.h>

#include "server/api.h"
#include "store/store.h"

/* Whether path is one of the endpoints above. */
bool ember_net_api_path(const char *path);

/* Answer a GET of such a path from store.  Always fills reply. */
void ember_net_api_handle(struct ember_store *store, const char *path,
			  const struct ember_api_param *params, size_t n,
			  struct ember_api_reply *reply);

#endif
