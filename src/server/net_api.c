/*
 * net_api.c - /api/net and /api/topology (described in net_api.h).
 *
 * Parameters: the selection ones are parsed by api.c's parser (which
 * refuses unknown, repeated and over-long parameters); this file's own
 * extras (step, limit) are taken out of the list first and checked here
 * the same way.  Answers come from store_net.h and are written as JSON.
 */
#include "server/net_api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "store/store_net.h"

#define CT_JSON "application/json; charset=utf-8"
#define NS_PER_MS ((int64_t)1000000)
#define DEFAULT_LIMIT 200
#define MAX_STEP_S (366LL * 24 * 3600)

bool ember_net_api_path(const char *path)
{
	return strcmp(path, "/api/net") == 0 || strcmp(path, "/api/topology") == 0;
}

/*
 * Split params into the selection (sel, for api.c's parser) and the extras
 * named in `extras` (their values in vals, NULL when absent).  false with a
 * 400 reply for a repeated or over-long extra.
 */
static bool split_params(const struct ember_api_param *params, size_t n,
			 const char *const *extras, const char **vals,
			 struct ember_api_param *sel, size_t *n_sel, struct ember_api_reply *r)
{
	char msg[128];

	*n_sel = 0;
	for (size_t i = 0; i < n; i++) {
		const char *key = params[i].key ? params[i].key : "";
		const char *val = params[i].value ? params[i].value : "";
		int x = -1;
		for (int j = 0; extras[j]; j++)
			if (strcmp(key, extras[j]) == 0)
				x = j;
		if (x < 0) {
			if (*n_sel < EMBER_API_MAX_PARAMS + 1)
				sel[(*n_sel)++] = params[i];
			continue;
		}
		if (vals[x]) {
			snprintf(msg, sizeof(msg), "%s: given more than once", key);
			ember_api_reply_error(r, 400, msg);
			return false;
		}
		if (strlen(val) > EMBER_API_MAX_VALUE_LEN) {
			snprintf(msg, sizeof(msg), "%s: longer than %d bytes", key,
				 EMBER_API_MAX_VALUE_LEN);
			ember_api_reply_error(r, 400, msg);
			return false;
		}
		vals[x] = val;
	}
	return true;
}

static void json_ms_or_null(struct strbuf *sb, const char *key, int64_t ns, bool has)
{
	if (has)
		sb_printf(sb, ",\"%s\":%" PRId64, key, ns / NS_PER_MS);
	else
		sb_printf(sb, ",\"%s\":null", key);
}

static void json_quantile(struct strbuf *sb, const char *key, const struct ember_hist *h, double q)
{
	if (h->count)
		sb_printf(sb, ",\"%s\":%.3f", key, ember_hist_quantile(h, q) / 1000.0);
	else
		sb_printf(sb, ",\"%s\":null", key);
}

/* The VALUES fields, each preceded by a comma. */
static void json_values(struct strbuf *sb, const struct ember_net_values *v)
{
	sb_printf(sb,
		  ",\"sent_bytes\":%" PRIu64 ",\"received_bytes\":%" PRIu64 ",\"sends\":%" PRIu64
		  ",\"recvs\":%" PRIu64 ",\"connects\":%" PRIu64 ",\"accepts\":%" PRIu64
		  ",\"closes\":%" PRIu64 ",\"connect_failures\":%" PRIu64
		  ",\"resets_sent\":%" PRIu64 ",\"resets_received\":%" PRIu64
		  ",\"retransmits\":%" PRIu64 ",\"drops\":%" PRIu64 ",\"rtt_samples\":%" PRIu64,
		  v->bytes_sent, v->bytes_recv, v->sends, v->recvs, v->connects, v->accepts,
		  v->closes, v->failures, v->resets_sent, v->resets_recv, v->retransmits, v->drops,
		  v->rtt.count);
	json_quantile(sb, "rtt_p50_ms", &v->rtt, 0.5);
	json_quantile(sb, "rtt_p99_ms", &v->rtt, 0.99);
	sb_printf(sb, ",\"connect_samples\":%" PRIu64, v->connect.count);
	json_quantile(sb, "connect_p50_ms", &v->connect, 0.5);
	json_quantile(sb, "connect_p99_ms", &v->connect, 0.99);
}

static void json_peer(struct strbuf *sb, const struct ember_net_peer_stats *p)
{
	sb_printf(sb, "{\"direction\":\"%s\",\"addr\":",
		  p->peer.direction == EMBER_NET_IN ? "in" : "out");
	sb_json_str(sb, p->peer.addr);
	sb_printf(sb, ",\"port\":%u,\"service\":", p->peer.port);
	sb_json_str(sb, p->peer.service[0] ? p->peer.service : NULL);
	json_values(sb, &p->v);
	sb_puts(sb, ",\"drop_reasons\":{");
	for (size_t i = 0; i < p->n_reasons; i++) {
		sb_puts(sb, i ? "," : "");
		sb_json_str(sb, p->reasons[i].reason);
		sb_printf(sb, ":%" PRIu64, p->reasons[i].count);
	}
	sb_puts(sb, "}}");
}

/* One timeline array: "name":[f(point), ...]. */
static void json_series(struct strbuf *sb, const char *name, const struct ember_net_report *rep,
			uint64_t (*f)(const struct ember_net_values *))
{
	sb_printf(sb, ",\"%s\":[", name);
	for (size_t i = 0; i < rep->n_points; i++)
		sb_printf(sb, "%s%" PRIu64, i ? "," : "", f(&rep->points[i].v));
	sb_putc(sb, ']');
}

static void json_rtt_series(struct strbuf *sb, const char *name,
			    const struct ember_net_report *rep, double q)
{
	sb_printf(sb, ",\"%s\":[", name);
	for (size_t i = 0; i < rep->n_points; i++) {
		const struct ember_hist *h = &rep->points[i].v.rtt;
		if (h->count)
			sb_printf(sb, "%s%.3f", i ? "," : "", ember_hist_quantile(h, q) / 1000.0);
		else
			sb_printf(sb, "%snull", i ? "," : "");
	}
	sb_putc(sb, ']');
}

static uint64_t f_sent(const struct ember_net_values *v) { return v->bytes_sent; }
static uint64_t f_recv(const struct ember_net_values *v) { return v->bytes_recv; }
static uint64_t f_retrans(const struct ember_net_values *v) { return v->retransmits; }
static uint64_t f_conns(const struct ember_net_values *v) { return v->connects + v->accepts; }
static uint64_t f_fail(const struct ember_net_values *v) { return v->failures; }
static uint64_t f_resets(const struct ember_net_values *v) { return v->resets_sent + v->resets_recv; }
static uint64_t f_drops(const struct ember_net_values *v) { return v->drops; }

static int store_status(int ret)
{
	return ret == -ETIMEDOUT ? 503 : ret == -EINVAL ? 400 : 500;
}

static void api_net(struct ember_store *store, const struct ember_api_param *params, size_t n,
		    struct ember_api_reply *r)
{
	static const char *const extras[] = {"step", "limit", NULL};
	const char *vals[2] = {NULL, NULL};
	struct ember_api_param sel[EMBER_API_MAX_PARAMS + 1];
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query q;
	struct ember_net_report rep;
	int64_t step_s = 0, limit = DEFAULT_LIMIT;
	size_t n_sel;
	struct strbuf sb;
	int ret;

	if (!split_params(params, n, extras, vals, sel, &n_sel, r))
		return;
	if (ember_api_parse_query(sel, n_sel, &q, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return;
	}
	if (vals[0] && *vals[0] && !ember_api_parse_int(vals[0], 1, MAX_STEP_S, &step_s)) {
		snprintf(err, sizeof(err), "step: must be seconds from 1 to %lld", MAX_STEP_S);
		ember_api_reply_error(r, 400, err);
		return;
	}
	if (vals[1] && *vals[1] && !ember_api_parse_int(vals[1], 1, EMBER_STORE_NET_MAX_PEERS, &limit)) {
		snprintf(err, sizeof(err), "limit: must be an integer from 1 to %d",
			 EMBER_STORE_NET_MAX_PEERS);
		ember_api_reply_error(r, 400, err);
		return;
	}
	ret = ember_store_net_query(store, &q.sel, step_s * 1000 * NS_PER_MS, 0, (size_t)limit, &rep,
				    err, sizeof(err));
	if (ret) {
		ember_api_reply_error(r, store_status(ret), err[0] ? err : "cannot read the net tables");
		return;
	}
	sb_init(&sb);
	sb_putc(&sb, '{');
	sb_printf(&sb, "\"step_ms\":%" PRId64, rep.step_ns / NS_PER_MS);
	json_ms_or_null(&sb, "from", q.sel.from_ns, q.has_from);
	json_ms_or_null(&sb, "to", q.sel.to_ns, q.has_to);
	sb_printf(&sb, ",\"peers_total\":%zu,\"truncated\":%s,\"total\":{\"peers\":%zu", rep.n_peers,
		  rep.truncated ? "true" : "false", rep.n_peers);
	json_values(&sb, &rep.total);
	sb_puts(&sb, "},\"peers\":[");
	for (size_t i = 0; i < rep.n_peers; i++) {
		sb_puts(&sb, i ? "," : "");
		json_peer(&sb, &rep.peers[i]);
	}
	sb_puts(&sb, "],\"timeline\":{\"t\":[");
	for (size_t i = 0; i < rep.n_points; i++)
		sb_printf(&sb, "%s%" PRId64, i ? "," : "", rep.points[i].t_ns / NS_PER_MS);
	sb_putc(&sb, ']');
	json_series(&sb, "sent_bytes", &rep, f_sent);
	json_series(&sb, "received_bytes", &rep, f_recv);
	json_series(&sb, "retransmits", &rep, f_retrans);
	json_series(&sb, "connections", &rep, f_conns);
	json_series(&sb, "failures", &rep, f_fail);
	json_series(&sb, "resets", &rep, f_resets);
	json_series(&sb, "drops", &rep, f_drops);
	json_rtt_series(&sb, "rtt_p50_ms", &rep, 0.5);
	json_rtt_series(&sb, "rtt_p99_ms", &rep, 0.99);
	sb_puts(&sb, "}}");
	ember_net_report_free(&rep);
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

/* Add a node once (nodes are few: a linear search over what was written). */
static void add_node(struct strbuf *nodes, const char **seen, size_t *n_seen, size_t max,
		     const char *id, bool service)
{
	for (size_t i = 0; i < *n_seen; i++)
		if (strcmp(seen[i], id) == 0)
			return;
	if (*n_seen == max)
		return;
	seen[(*n_seen)++] = id;
	sb_puts(nodes, *n_seen > 1 ? ",{\"id\":" : "{\"id\":");
	sb_json_str(nodes, id);
	sb_printf(nodes, ",\"kind\":\"%s\"}", service ? "service" : "address");
}

static void api_topology(struct ember_store *store, const struct ember_api_param *params,
			 size_t n, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query q;
	struct ember_net_edge *edges;
	size_t n_edges, n_seen = 0;
	bool truncated;
	struct strbuf sb, nodes;
	int ret;

	if (ember_api_parse_query(params, n, &q, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return;
	}
	ret = ember_store_net_topology(store, &q.sel, &edges, &n_edges, &truncated, err,
				       sizeof(err));
	if (ret) {
		ember_api_reply_error(r, store_status(ret), err[0] ? err : "cannot read the net tables");
		return;
	}
	const char **seen = calloc(2 * n_edges + 1, sizeof(*seen));
	if (!seen) {
		ember_net_edges_free(edges, n_edges);
		ember_api_reply_error(r, 500, "out of memory building the topology");
		return;
	}
	sb_init(&sb);
	sb_init(&nodes);
	sb_puts(&sb, "{\"edges\":[");
	for (size_t i = 0; i < n_edges; i++) {
		const struct ember_net_edge *e = &edges[i];
		add_node(&nodes, seen, &n_seen, 2 * n_edges, e->from, e->from_service);
		add_node(&nodes, seen, &n_seen, 2 * n_edges, e->to, e->to_service);
		sb_puts(&sb, i ? ",{\"from\":" : "{\"from\":");
		sb_json_str(&sb, e->from);
		sb_puts(&sb, ",\"to\":");
		sb_json_str(&sb, e->to);
		json_values(&sb, &e->v);
		sb_putc(&sb, '}');
	}
	sb_puts(&sb, "],\"nodes\":[");
	sb_append(&sb, nodes.buf, nodes.len);
	if (nodes.oom)
		sb.oom = true;
	sb_printf(&sb, "],\"truncated\":%s}", truncated ? "true" : "false");
	sb_free(&nodes);
	free(seen);
	ember_net_edges_free(edges, n_edges);
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

void ember_net_api_handle(struct ember_store *store, const char *path,
			  const struct ember_api_param *params, size_t n,
			  struct ember_api_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	if (strcmp(path, "/api/net") == 0)
		api_net(store, params, n, reply);
	else
		api_topology(store, params, n, reply);
}
