/*
 * spans_api.h - /api/spans (the RED table) and /api/spans/slow.
 *
 * Both take the selection parameters of the other endpoints (target,
 * service, version, pid, from, to; see api.c) and the filters protocol
 * (http, mysql, pgsql, redis), role (client, server), endpoint and peer.
 *
 *   GET /api/spans?<selection>&<filters>[&by=peer][&step=SECONDS]
 *       {"from":MS|null,"to":MS|null,"step_ms":S|null,"hourly":false,
 *        "truncated":false,"rows":[
 *          {"service":"shop","protocol":"http","role":"server",
 *           "endpoint":"GET /orders/{id}","peer":"10.0.0.7" (with by=peer),
 *           "count":N,"errors":N,"error_rate":F,"tls":N (of count, read at the
 *           TLS library),"rate":F|null (per second),
 *           "avg_ms":F,"p50_ms":F,"p90_ms":F,"p99_ms":F,"max_ms":F,
 *           "req_bytes":N,"resp_bytes":N,"statuses":{"200":N,"404":N},
 *           "series":[N,...],"series_errors":[N,...]}, ...]}
 *       One row per (service, protocol, role, endpoint[, peer]), by count,
 *       largest first, at most 5000 ("truncated":true past it).  series
 *       are counts per step from "from" (aligned to the step), present
 *       when from and to are given; the step defaults to a 30th of the
 *       range, whole 10 s buckets (whole hours past 24 h, "hourly":true).
 *       rate is count / (to - from).
 *
 *   GET /api/spans/slow?<selection>&<filters>[&limit=100]
 *       {"spans":[{"time":MS,"duration_ms":F,"service":"shop","version":"1.2",
 *                  "target":ID,"pid":P,"tid":T,"protocol":"mysql","role":"client",
 *                  "endpoint":"SELECT ...","peer":"10.0.0.9:3306","status":"ok",
 *                  "error":false,"tls":false (read at the TLS library),
 *                  "text":"SELECT ... WHERE id=42","err":null}, ...]}
 *       Requests over the agent's slow threshold, slowest first; limit 1..1000.
 *
 * Errors as in api.c: 400 naming the parameter, 500/503 when the store fails.
 */
#ifndef EMBER_SERVER_SPANS_API_H
#define EMBER_SERVER_SPANS_API_H

#include <stdbool.h>
#include <stddef.h>

#include "server/api.h"
#include "store/store.h"

bool ember_spans_api_path(const char *path);

void ember_spans_api_handle(struct ember_store *store, const char *path,
			    const struct ember_api_param *params, size_t n,
			    struct ember_api_reply *reply);

#endif
