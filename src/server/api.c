/*
 * api.c - Ember's JSON API: parameter parsing and the /api/ endpoints.
 *
 * Endpoints (GET or HEAD; every /api/ response carries Cache-Control: no-store;
 * times are unix milliseconds):
 *
 *   GET /api/targets
 *       {"targets":[{"id":1,"service":"api","version":"1.2","host":"h","pid":42,
 *                    "comm":"api","exe":"/usr/bin/api","build_id":"ab12..",
 *                    "labels":null,"first_seen":MS,"last_seen":MS,"samples":N}, ...],
 *        "truncated":false}
 *       Newest first; at most 10000 targets ("truncated":true when cut).
 *
 * Selections.  target=ID, service=S, version=V, pid=P, from=MS, to=MS,
 * endpoint=E, type=cpu|offcpu, all optional (absent or empty = any; type:
 * cpu, samples of running threads; offcpu: nanoseconds threads spent
 * blocked, never mixed with cpu); endpoint keeps the CPU
 * samples of threads while they served requests of that L7 endpoint
 * ("GET /orders/{id}", see /api/spans); from is inclusive, to exclusive, and a
 * time bucket (10 s) is selected when it overlaps [from, to).  version may
 * be a comma-separated list ("v1,v2" = either; at most 32).  Two-sided
 * endpoints take the same parameters prefixed "a." and "b." (or "base."); a
 * side with no parameter at all selects everything.
 *
 *   GET /api/services
 *       {"services":[{"service":"api","samples":N,"first_seen":MS,"last_seen":MS,
 *                     "versions":[{"version":"1.2.3","first_seen":MS,"last_seen":MS,
 *                                  "samples":N,"targets":K}, ...]}, ...],
 *        "truncated":false}
 *       Services by name; versions newest (last_seen) first; at most 10000
 *       (service, version) pairs.  Versions come from the agent (the process
 *       environment, Go build info, else the short build-id).
 *
 *   GET /api/flamegraph?target=ID&service=S&version=V&pid=P&from=MS&to=MS
 *       {"total":N,"type":"cpu"|"offcpu","unit":"samples"|"nanoseconds",
 *        "from":MS|null,"to":MS|null,"nodes":K,"truncated":false,
 *        "root":{"name":"all","value":N,"self":0,"children":[
 *          {"name":"main","value":V,"self":S,"file":"main.c","line":12,
 *           "kernel":false,"inlined":false,"children":[...]}, ...]}}
 *       Every parameter is optional (absent or empty = any); from is
 *       inclusive, to exclusive.  Children are merged by (name, kernel) and
 *       sorted by value, largest first; "file"/"line" appear when known.
 *       Nodes below 1/100000 of the total are dropped and at most 200000
 *       nodes are sent; "truncated":true says that happened.  With
 *       group=process every stack is under its process, a frame named
 *       "COMM-PID" below the root (one tower per process).
 *
 *   GET /api/diff?a.<selection>&b.<selection>[&min_share=0.0001]
 *       {"a_total":NA,"b_total":NB,"nodes":K,"truncated":false,
 *        "root":{"name":"all","a":NA,"b":NB,"a_self":0,"b_self":0,"delta":0,
 *                "delta_self":0,"children":[
 *          {"name":"main","file":"m.c","line":3,"kernel":false,"inlined":false,
 *           "a":A,"b":B,"a_self":AS,"b_self":BS,"delta":F,"delta_self":F,
 *           "children":[...]}, ...]},
 *        "vanished":[{"name":"f","a_total_share":F,"a_self_share":F}, ...]}
 *       Both selections merged root first by (name, kernel).  Shares are
 *       normalized by each side's total, so a load difference is no
 *       regression: delta = B/NB - A/NA, delta_self = BS/NB - AS/NA (fractions
 *       of all samples; > 0 grew in B).  Children sorted by max(A/NA, B/NB);
 *       nodes under min_share on both sides dropped, at most 200000 nodes
 *       ("truncated":true when either cut something).  "vanished": functions
 *       of A that no stack of B contains, by A's share (at most 200).
 *
 *   GET /api/top?<selection>[&base.<selection>][&limit=100]
 *                [&sort=self|total|diff|diff_total][&order=desc|asc]
 *       {"total":N,"base_total":M|null,"functions_total":K,"functions":[
 *          {"name":"f","file":"f.c"|null,"line":7,"kernel":false,"self":S,"total":T,
 *           "self_share":F,"total_share":F,"base_self_share":F|null,
 *           "base_total_share":F|null,"diff_self":F|null,"diff_total":F|null}, ...]}
 *       A function is a frame name; total = samples whose stack contains it
 *       (once per stack, even when recursive), self = samples where it is the
 *       leaf.  With base.* the diff columns are share in the selection minus
 *       share in the base.  Sorted by self (default), total, diff_self
 *       (diff: default with a base; needs one) or diff_total (needs one),
 *       largest first, or smallest first with order=asc (improvements
 *       first); limit 1..10000.
 *
 *   GET /api/sandwich?function=NAME&<selection>
 *       {"function":NAME,"total":N,"self":S,"total_share":F,"samples":ALL,
 *        "callers":{"name":NAME,"value":N,"self":0,"children":[...]},
 *        "callees":{"name":NAME,"value":N,"self":S,"children":[...]}}
 *       Over the stacks containing the function, split at its outermost
 *       call: callers walk from it toward the root (its nearest caller is its
 *       child), callees from it to the leaf; nodes as in /api/flamegraph.
 *       An unknown function gives total 0 and empty trees.
 *
 *   GET /api/timeline?<selection>[&step=SECONDS]
 *       {"step_ms":S,"from":MS,"to":MS,"points":[[MS,N], ...]}
 *       Samples per step, ascending; steps without samples are left out.
 *       The span is from..to, or else the selection's first and last
 *       bucket; the step is rounded up to whole buckets (10 s) and raised
 *       so that the span holds at most 2000 steps; points are aligned to
 *       multiples of the step.
 *
 *   GET /api/pprof?<same selection>
 *       gzip'd profile.proto (application/octet-stream, attachment
 *       "ember-SERVICE-VERSION.pb.gz", "all" for no service, the UTC time
 *       range appended when from and to are both given), for `go tool pprof`; also the base of
 *       `go tool pprof -diff_base=base.pb.gz new.pb.gz`.  Samples carry the
 *       labels service, version and their target's own (endpoint=... for
 *       the CPU of threads serving an L7 endpoint: -tagfocus endpoint=...).
 *
 *   GET /api/folded?<same selection>[&group=process]
 *       text/plain folded stacks ("main;work;memcpy 42" per line); with
 *       group=process each line starts with its process ("api-4242;main;...").
 *
 *   GET /api/stats
 *       {"store":{"targets":N,"frames":N,"stacks":N,"sample_rows":N,"samples":N,
 *                 "oldest":MS|null,"newest":MS|null},
 *        "server":{...}|null, "agent":{...}|null}
 *       "server": the HTTP server's limits and counters (server.c).
 *
 *   GET /api/reports, /api/reports/ID[?format=json], /api/reports/report.css
 *       The regression reports `ember report` saved (src/server/reports_api.h).
 *
 *   GET /api/net, /api/topology
 *       TCP metrics per peer, their timeline, who calls whom (src/server/net_api.h).
 *
 *   GET /metrics
 *       Prometheus text format: the agent's health, TCP metrics, store size
 *       (src/server/metrics.h).
 *
 *   GET /api/spans, /api/spans/slow
 *       L7 requests: the RED table and the slowest requests (src/server/spans_api.h).
 *
 * Errors: 400 {"error":"target: must be a positive integer"} for a bad,
 * repeated, unknown or over-long (> 256 bytes) parameter or from > to (the
 * message starts with the parameter's full name, "a.from: ...");
 * 404 {"error":...} for an unknown endpoint; 500 {"error":...} when the
 * store fails (the message names the database).
 */
#include "server/api.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "pprof/folded.h"
#include "server/group.h"
#include "pprof/pprof.h"
#include "server/diff.h"
#include "server/flamegraph.h"
#include "server/metrics.h"
#include "server/net_api.h"
#include "server/reports_api.h"
#include "server/sandwich.h"
#include "server/spans_api.h"
#include "server/topfuncs.h"

#define NS_PER_MS ((int64_t)1000000)
#define MAX_MS (INT64_MAX / NS_PER_MS) /* keeps ms -> ns from overflowing */
#define MAX_TARGETS 10000

#define CT_JSON "application/json; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"

/*
 * One per query thread: the server makes one for each, so every thread has
 * its own read-only store connection and nothing here needs a lock.
 */
struct ember_api {
	char *db_path;
	struct ember_store *store; /* opened read-only on first use */
	void (*stats_json)(struct strbuf *sb, void *arg);
	void *stats_arg;
	void (*metrics_text)(struct strbuf *sb, void *arg);
	void *metrics_arg;
	void (*server_json)(struct strbuf *sb, void *arg);
	void *server_arg;
};

struct ember_api *ember_api_new(const struct ember_server_config *cfg)
{
	struct ember_api *api = calloc(1, sizeof(*api));

	if (!api)
		return NULL;
	api->db_path = strdup(cfg->db_path ? cfg->db_path : "");
	if (!api->db_path) {
		free(api);
		return NULL;
	}
	api->stats_json = cfg->stats_json;
	api->stats_arg = cfg->stats_arg;
	api->metrics_text = cfg->metrics_text;
	api->metrics_arg = cfg->metrics_arg;
	return api;
}

void ember_api_set_server_stats(struct ember_api *api,
				void (*fn)(struct strbuf *sb, void *arg), void *arg)
{
	api->server_json = fn;
	api->server_arg = arg;
}

void ember_api_free(struct ember_api *api)
{
	if (!api)
		return;
	if (api->store)
		ember_store_close(api->store);
	free(api->db_path);
	free(api);
}

/* ---- parameters ---- */

bool ember_api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

enum { P_TARGET, P_SERVICE, P_VERSION, P_PID, P_FROM, P_TO, P_ENDPOINT, P_TYPE, P_COUNT };
static const char *const param_names[P_COUNT] = {"target", "service", "version", "pid",
						 "from",   "to",      "endpoint", "type"};

static int param_index(const char *key)
{
	for (int i = 0; i < P_COUNT; i++)
		if (strcmp(key, param_names[i]) == 0)
			return i;
	return -1;
}

/* Split q->version at commas into q->versions; empty items are skipped. */
static int parse_versions(const char *key, const char *val, struct ember_api_query *q,
			  char *err, size_t errlen)
{
	size_t n = 0;
	char *save = NULL;

	snprintf(q->version, sizeof(q->version), "%.*s", EMBER_API_MAX_VALUE_LEN, val);
	for (char *v = strtok_r(q->version, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
		if (n == EMBER_API_MAX_VERSIONS)
			return fail(err, errlen, "%s: more than %d versions", key,
				    EMBER_API_MAX_VERSIONS);
		q->versions[n++] = v;
	}
	q->sel.versions = n ? q->versions : NULL;
	q->sel.n_versions = n;
	return 0;
}

static int parse_one(int which, const char *key, const char *val, struct ember_api_query *q,
		     char *err, size_t errlen)
{
	int64_t v;

	switch (which) {
	case P_TARGET:
		if (!ember_api_parse_int(val, 1, INT64_MAX, &v))
			return fail(err, errlen, "%s: must be a positive integer target id", key);
		q->sel.target_id = v;
		return 0;
	case P_SERVICE:
		snprintf(q->service, sizeof(q->service), "%.*s", EMBER_API_MAX_VALUE_LEN, val);
		q->sel.service = q->service;
		return 0;
	case P_VERSION:
		return parse_versions(key, val, q, err, errlen);
	case P_PID:
		if (!ember_api_parse_int(val, 1, UINT32_MAX, &v))
			return fail(err, errlen, "%s: must be a process id (1..%" PRIu32 ")", key,
				    UINT32_MAX);
		q->sel.pid = (uint32_t)v;
		return 0;
	case P_FROM:
		if (!ember_api_parse_int(val, 0, MAX_MS, &v))
			return fail(err, errlen, "%s: must be unix time in milliseconds", key);
		q->has_from = true;
		q->from_ms = v;
		q->sel.from_ns = v * NS_PER_MS;
		return 0;
	case P_ENDPOINT:
		snprintf(q->endpoint, sizeof(q->endpoint), "%s", val);
		q->sel.endpoint = q->endpoint;
		return 0;
	case P_TYPE:
		if (ember_profile_type_parse(val, &q->sel.type))
			return fail(err, errlen, "%s: must be cpu or offcpu", key);
		return 0;
	case P_TO:
		if (!ember_api_parse_int(val, 1, MAX_MS, &v))
			return fail(err, errlen, "%s: must be unix time in milliseconds (> 0)", key);
		q->has_to = true;
		q->to_ms = v;
		q->sel.to_ns = v * NS_PER_MS;
		return 0;
	}
	return -EINVAL;
}

int ember_api_parse_selection(const struct ember_api_param *params, size_t n,
			      const char *prefix, struct ember_api_query *q, char *err,
			      size_t errlen)
{
	bool seen[P_COUNT] = {false};
	size_t plen = strlen(prefix);

	memset(q, 0, sizeof(*q));
	if (n > EMBER_API_MAX_PARAMS)
		return fail(err, errlen, "too many parameters (at most %d)", EMBER_API_MAX_PARAMS);
	for (size_t i = 0; i < n; i++) {
		const char *key = params[i].key ? params[i].key : "";
		const char *val = params[i].value ? params[i].value : "";
		int which;
		int ret;

		if (strncmp(key, prefix, plen) != 0 || (which = param_index(key + plen)) < 0)
			continue;
		if (seen[which])
			return fail(err, errlen, "%s: given more than once", key);
		seen[which] = true;
		q->given = true;
		size_t max = which == P_ENDPOINT ? EMBER_API_MAX_ENDPOINT_LEN : EMBER_API_MAX_VALUE_LEN;
		if (strlen(val) > max)
			return fail(err, errlen, "%s: longer than %zu bytes", key, max);
		if (!*val)
			continue; /* empty = any */
		ret = parse_one(which, key, val, q, err, errlen);
		if (ret)
			return ret;
	}
	if (q->has_from && q->has_to && q->from_ms > q->to_ms)
		return fail(err, errlen, "%sfrom: %" PRId64 " is after %sto: %" PRId64, prefix,
			    q->from_ms, prefix, q->to_ms);
	return 0;
}

int ember_api_check_params(const struct ember_api_param *params, size_t n,
			const char *const *prefixes, const char *const *extras, char *err,
			size_t errlen)
{
	if (n > EMBER_API_MAX_PARAMS)
		return fail(err, errlen, "too many parameters (at most %d)", EMBER_API_MAX_PARAMS);
	for (size_t i = 0; i < n; i++) {
		const char *key = params[i].key ? params[i].key : "";
		bool known = false;

		for (const char *const *x = extras; x && *x && !known; x++) {
			if (strcmp(key, *x) != 0)
				continue;
			known = true;
			for (size_t j = 0; j < i; j++)
				if (params[j].key && strcmp(params[j].key, key) == 0)
					return fail(err, errlen, "%s: given more than once", key);
			if (params[i].value && strlen(params[i].value) > EMBER_API_MAX_VALUE_LEN)
				return fail(err, errlen, "%s: longer than %d bytes", key,
					    EMBER_API_MAX_VALUE_LEN);
		}
		for (const char *const *p = prefixes; p && *p && !known; p++) {
			size_t plen = strlen(*p);
			known = strncmp(key, *p, plen) == 0 && param_index(key + plen) >= 0;
		}
		if (!known)
			return fail(err, errlen, "unknown parameter '%.40s'", key);
	}
	return 0;
}

const char *ember_api_param_value(const struct ember_api_param *params, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (params[i].key && strcmp(params[i].key, key) == 0)
			return params[i].value ? params[i].value : "";
	return NULL;
}

int ember_api_parse_query(const struct ember_api_param *params, size_t n,
			  struct ember_api_query *q, char *err, size_t errlen)
{
	static const char *const plain[] = {"", NULL};
	int ret;

	memset(q, 0, sizeof(*q));
	ret = ember_api_check_params(params, n, plain, NULL, err, errlen);
	return ret ? ret : ember_api_parse_selection(params, n, "", q, err, errlen);
}

/* ---- replies ---- */

void ember_api_reply_sb(struct ember_api_reply *r, unsigned int status, const char *ctype,
			struct strbuf *sb)
{
	r->status = status;
	r->content_type = ctype;
	r->body = sb->oom ? NULL : sb_detach(sb, &r->len);
	if (!r->body) {
		r->status = 500;
		r->len = 0;
	}
	sb_free(sb);
}

void ember_api_reply_error(struct ember_api_reply *r, unsigned int status, const char *msg)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_puts(&sb, "{\"error\":");
	sb_json_str(&sb, msg);
	sb_puts(&sb, "}");
	ember_api_reply_sb(r, status, CT_JSON, &sb);
}

static int open_store(struct ember_api *api, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	int ret;

	if (api->store)
		return 0;
	ret = ember_store_open_readonly(api->db_path, &api->store, err, sizeof(err));
	if (ret) {
		api->store = NULL;
		ember_warn("server: cannot open store %s: %s", api->db_path, err);
		ember_api_reply_error(r, 500, err[0] ? err : "cannot open the store");
	}
	return ret;
}

static void json_ms(struct strbuf *sb, const char *key, bool has, int64_t ms)
{
	sb_printf(sb, ",\"%s\":", key);
	if (has)
		sb_printf(sb, "%" PRId64, ms);
	else
		sb_puts(sb, "null");
}

/* ---- /api/targets ---- */

struct targets_ctx {
	struct strbuf *sb;
	size_t n;
	bool truncated;
};

static int target_row(const struct ember_target_row *t, void *arg)
{
	struct targets_ctx *c = arg;
	struct strbuf *sb = c->sb;

	if (c->n == MAX_TARGETS) {
		c->truncated = true;
		return 1;
	}
	sb_puts(sb, c->n++ ? ",{" : "{");
	sb_printf(sb, "\"id\":%" PRId64 ",\"service\":", t->id);
	sb_json_str(sb, t->service);
	sb_puts(sb, ",\"version\":");
	sb_json_str(sb, t->version);
	sb_puts(sb, ",\"host\":");
	sb_json_str(sb, t->host);
	sb_printf(sb, ",\"pid\":%" PRIu32 ",\"comm\":", t->pid);
	sb_json_str(sb, t->comm);
	sb_puts(sb, ",\"exe\":");
	sb_json_str(sb, t->exe);
	sb_puts(sb, ",\"build_id\":");
	sb_json_str(sb, t->build_id);
	sb_puts(sb, ",\"labels\":");
	sb_json_str(sb, t->labels);
	sb_printf(sb, ",\"first_seen\":%" PRId64 ",\"last_seen\":%" PRId64
		      ",\"samples\":%" PRIu64 ",\"type\":\"%s\"}",
		  t->first_seen_ns / NS_PER_MS, t->last_seen_ns / NS_PER_MS, t->samples,
		  ember_profile_type_name(t->type));
	return sb->oom ? 1 : 0;
}

static void api_targets(struct ember_api *api, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct strbuf sb;
	struct targets_ctx c = {.sb = &sb};

	if (open_store(api, r))
		return;
	sb_init(&sb);
	sb_puts(&sb, "{\"targets\":[");
	if (ember_store_list_targets(api->store, target_row, &c, err, sizeof(err))) {
		sb_free(&sb);
		ember_api_reply_error(r, 500, err[0] ? err : "cannot list targets");
		return;
	}
	sb_printf(&sb, "],\"truncated\":%s}", c.truncated ? "true" : "false");
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

/* ---- selections: flamegraph, pprof, folded ---- */

/* The status of a failed store read: 503 when it ran over its time limit, else 500. */
static int store_status(int ret)
{
	return ret == -ETIMEDOUT ? 503 : 500;
}

/* Query an already parsed selection; on failure the reply is filled. */
static struct ember_profile *run_selection(struct ember_api *api, struct ember_api_query *q,
					   bool merge_targets, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_profile *p = NULL;
	int ret;

	if (open_store(api, r))
		return NULL;
	q->sel.merge_targets = merge_targets;
	ret = ember_store_query(api->store, &q->sel, &p, err, sizeof(err));
	if (ret || !p) {
		ember_api_reply_error(r, store_status(ret), err[0] ? err : "store query failed");
		return NULL;
	}
	return p;
}

/* Parse the selection and query the store; on failure the reply is filled. */
static struct ember_profile *select_profile(struct ember_api *api,
					    const struct ember_api_param *params, size_t n,
					    struct ember_api_query *q, bool merge_targets,
					    struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";

	if (ember_api_parse_query(params, n, q, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return NULL;
	}
	return run_selection(api, q, merge_targets, r);
}

/*
 * Query an already parsed selection for a computation that ignores targets
 * (stacks are merged over them, which is much faster); on failure the
 * reply is filled.
 */
static struct ember_profile *query_profile(struct ember_api *api, struct ember_api_query *q,
					   struct ember_api_reply *r)
{
	return run_selection(api, q, true, r);
}

/*
 * The selection and group=process|"" (each stack under its process, see
 * group.h) of /api/flamegraph and /api/folded; query the store.  On
 * failure the reply is filled and NULL returned.
 */
static struct ember_profile *select_grouped(struct ember_api *api,
					    const struct ember_api_param *params, size_t n,
					    struct ember_api_query *q, bool *by_process,
					    struct ember_api_reply *r)
{
	static const char *const prefixes[] = {"", NULL};
	static const char *const extras[] = {"group", NULL};
	char err[EMBER_STORE_ERRLEN] = "";
	const char *g;

	if (ember_api_check_params(params, n, prefixes, extras, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "", q, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return NULL;
	}
	g = ember_api_param_value(params, n, "group");
	*by_process = g && strcmp(g, "process") == 0;
	if (g && *g && !*by_process) {
		ember_api_reply_error(r, 400, "group: must be process (or empty)");
		return NULL;
	}
	return run_selection(api, q, !*by_process, r);
}

/* p grouped by process when asked (p is freed); NULL with the reply filled on failure. */
static struct ember_profile *group_profile(struct ember_profile *p, bool by_process,
					   struct ember_api_reply *r)
{
	struct ember_profile *g = NULL;

	if (!by_process)
		return p;
	if (ember_profile_by_process(p, &g))
		ember_api_reply_error(r, 500, "out of memory grouping by process");
	ember_profile_free(p);
	return g;
}

static void api_flamegraph(struct ember_api *api, const struct ember_api_param *params,
			   size_t n, struct ember_api_reply *r)
{
	struct ember_api_query q;
	struct ember_flame_result res;
	bool by_process = false;
	struct ember_profile *p = select_grouped(api, params, n, &q, &by_process, r);
	struct strbuf sb, tree;

	if (p)
		p = group_profile(p, by_process, r);
	if (!p)
		return;
	/* the tree is written first: its node count and truncation go before it */
	sb_init(&tree);
	if (ember_flamegraph_json(p, NULL, &tree, &res)) {
		sb_free(&tree);
		ember_profile_free(p);
		ember_api_reply_error(r, 500, "out of memory building the flame graph");
		return;
	}
	sb_init(&sb);
	sb_printf(&sb, "{\"total\":%" PRIu64 ",\"type\":\"%s\",\"unit\":\"%s\"", p->total,
		  ember_profile_type_name(p->type), ember_profile_type_unit(p->type));
	json_ms(&sb, "from", q.has_from, q.from_ms);
	json_ms(&sb, "to", q.has_to, q.to_ms);
	sb_printf(&sb, ",\"nodes\":%zu,\"truncated\":%s,\"root\":", res.nodes,
		  res.truncated ? "true" : "false");
	sb_append(&sb, tree.buf, tree.len);
	sb_putc(&sb, '}');
	sb_free(&tree);
	ember_profile_free(p);
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

/* Append s to the file name at *o, as characters safe in a file name and a header. */
static void name_part(char *dst, size_t size, size_t *o, const char *s)
{
	for (; *s && *o + 1 < size; s++)
		dst[(*o)++] = (isalnum((unsigned char)*s) || strchr("._+", *s)) ? *s : '-';
	dst[*o] = '\0';
}

static void name_time(char *dst, size_t size, size_t *o, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "-%Y%m%dT%H%MZ", &tm);
	name_part(dst, size, o, buf);
}

/*
 * The Content-Disposition of a pprof download, named by what it holds:
 * "ember-SERVICE-VERSION.pb.gz", and the time range when both ends were
 * given (two ranges of one version), so that the two files of a
 * `go tool pprof -diff_base=A B` do not share a name.
 */
static void pprof_filename(const struct ember_api_query *q, char *dst, size_t size)
{
	char name[112];
	size_t o = 0;

	name_part(name, sizeof(name) - 8, &o, "ember-");
	name_part(name, sizeof(name) - 8, &o, q->service[0] ? q->service : "all");
	if (q->version[0]) {
		name_part(name, sizeof(name) - 8, &o, "-");
		for (size_t i = 0; i < q->sel.n_versions; i++) {
			if (i)
				name_part(name, sizeof(name) - 8, &o, "+");
			name_part(name, sizeof(name) - 8, &o, q->versions[i]);
		}
	}
	if (q->has_from && q->has_to) {
		name_time(name, sizeof(name) - 8, &o, q->from_ms);
		name_time(name, sizeof(name) - 8, &o, q->to_ms);
	}
	snprintf(dst, size, "attachment; filename=\"%s.pb.gz\"", name);
}

static void api_pprof(struct ember_api *api, const struct ember_api_param *params, size_t n,
		      struct ember_api_reply *r)
{
	struct ember_api_query q;
	/* service, version and the targets' labels (endpoint=...) on each sample */
	struct ember_pprof_options opt = {.target_labels = true};
	struct ember_profile *p = select_profile(api, params, n, &q, false, r);
	uint8_t *out = NULL;
	size_t len = 0;
	int ret;

	if (!p)
		return;
	ret = ember_pprof_encode(p, &opt, &out, &len);
	ember_profile_free(p);
	if (ret) {
		char msg[128];
		snprintf(msg, sizeof(msg), "pprof encoding failed: %s", strerror(-ret));
		ember_api_reply_error(r, 500, msg);
		return;
	}
	r->status = 200;
	r->content_type = "application/octet-stream";
	pprof_filename(&q, r->disposition, sizeof(r->disposition));
	r->body = (char *)out;
	r->len = len;
}

static void api_folded(struct ember_api *api, const struct ember_api_param *params, size_t n,
		       struct ember_api_reply *r)
{
	struct ember_api_query q;
	bool by_process = false;
	struct ember_profile *p = select_grouped(api, params, n, &q, &by_process, r);
	struct ember_folded_options opt = {.with_process = by_process, .with_pid = by_process};
	struct strbuf sb;

	if (!p)
		return;
	sb_init(&sb);
	if (ember_folded_format(&sb, p, &opt)) {
		sb_free(&sb);
		ember_profile_free(p);
		ember_api_reply_error(r, 500, "out of memory writing folded stacks");
		return;
	}
	ember_profile_free(p);
	ember_api_reply_sb(r, 200, CT_TEXT, &sb);
}

/* ---- /api/services ---- */

struct services_ctx {
	struct strbuf *sb;      /* the reply */
	struct strbuf versions; /* the current service's versions */
	char service[EMBER_API_MAX_VALUE_LEN * 4 + 1];
	bool open;              /* a service is pending */
	uint64_t samples;
	int64_t first, last;
	size_t n_services, n_rows;
	bool truncated;
};

static void close_service(struct services_ctx *c)
{
	struct strbuf *sb = c->sb;

	if (!c->open)
		return;
	sb_puts(sb, c->n_services++ ? ",{\"service\":" : "{\"service\":");
	sb_json_str(sb, c->service);
	sb_printf(sb, ",\"samples\":%" PRIu64 ",\"first_seen\":%" PRId64 ",\"last_seen\":%" PRId64
		      ",\"versions\":[",
		  c->samples, c->first / NS_PER_MS, c->last / NS_PER_MS);
	sb_append(sb, c->versions.buf, c->versions.len);
	sb_puts(sb, "]}");
	sb_reset(&c->versions);
	c->open = false;
}

static int version_row(const struct ember_version_row *v, void *arg)
{
	struct services_ctx *c = arg;

	if (c->n_rows++ == MAX_TARGETS) {
		c->truncated = true;
		return 1;
	}
	if (c->open && strcmp(c->service, v->service) != 0)
		close_service(c);
	if (!c->open) {
		snprintf(c->service, sizeof(c->service), "%s", v->service);
		c->open = true;
		c->samples = 0;
		c->first = v->first_seen_ns;
		c->last = v->last_seen_ns;
	} else {
		sb_putc(&c->versions, ',');
	}
	c->samples += v->samples;
	if (v->first_seen_ns < c->first)
		c->first = v->first_seen_ns;
	if (v->last_seen_ns > c->last)
		c->last = v->last_seen_ns;
	sb_puts(&c->versions, "{\"version\":");
	sb_json_str(&c->versions, v->version);
	sb_printf(&c->versions,
		  ",\"first_seen\":%" PRId64 ",\"last_seen\":%" PRId64 ",\"samples\":%" PRIu64
		  ",\"targets\":%" PRIu64 "}",
		  v->first_seen_ns / NS_PER_MS, v->last_seen_ns / NS_PER_MS, v->samples, v->targets);
	return c->sb->oom || c->versions.oom;
}

static void api_services(struct ember_api *api, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct strbuf sb;
	struct services_ctx c = {.sb = &sb};

	if (open_store(api, r))
		return;
	sb_init(&sb);
	sb_init(&c.versions);
	sb_puts(&sb, "{\"services\":[");
	if (ember_store_list_versions(api->store, version_row, &c, err, sizeof(err))) {
		sb_free(&sb);
		sb_free(&c.versions);
		ember_api_reply_error(r, 500, err[0] ? err : "cannot list services");
		return;
	}
	close_service(&c);
	if (c.versions.oom)
		sb.oom = true;
	sb_free(&c.versions);
	sb_printf(&sb, "],\"truncated\":%s}", c.truncated ? "true" : "false");
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

/* ---- two selections: /api/diff, /api/top ---- */

/* A fraction in [0, 1]. */
static bool parse_fraction(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s || strlen(s) > 32)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (*end || errno || !(v >= 0.0 && v <= 1.0))
		return false;
	*out = v;
	return true;
}

static void api_diff(struct ember_api *api, const struct ember_api_param *params, size_t n,
		     struct ember_api_reply *r)
{
	static const char *const prefixes[] = {"a.", "b.", NULL};
	static const char *const extras[] = {"min_share", NULL};
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query qa, qb;
	struct ember_diff_options opt = {.min_share = -1};
	struct ember_profile *a = NULL, *b = NULL;
	const char *v;
	struct strbuf sb;

	if (ember_api_check_params(params, n, prefixes, extras, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "a.", &qa, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "b.", &qb, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return;
	}
	v = ember_api_param_value(params, n, "min_share");
	if (v && *v && !parse_fraction(v, &opt.min_share)) {
		ember_api_reply_error(r, 400, "min_share: must be a fraction between 0 and 1");
		return;
	}
	a = query_profile(api, &qa, r);
	b = a ? query_profile(api, &qb, r) : NULL;
	if (!b) {
		ember_profile_free(a);
		return;
	}
	sb_init(&sb);
	if (ember_diff_json(a, b, &opt, &sb)) {
		sb_free(&sb);
		ember_api_reply_error(r, 500, "out of memory building the diff");
	} else {
		ember_api_reply_sb(r, 200, CT_JSON, &sb);
	}
	ember_profile_free(a);
	ember_profile_free(b);
}

static int parse_sort(const char *v, enum ember_top_sort *sort)
{
	if (strcmp(v, "self") == 0)
		*sort = EMBER_TOP_SELF;
	else if (strcmp(v, "total") == 0)
		*sort = EMBER_TOP_TOTAL;
	else if (strcmp(v, "diff") == 0)
		*sort = EMBER_TOP_DIFF;
	else if (strcmp(v, "diff_total") == 0)
		*sort = EMBER_TOP_DIFF_TOTAL;
	else
		return -EINVAL;
	return 0;
}

static void api_top(struct ember_api *api, const struct ember_api_param *params, size_t n,
		    struct ember_api_reply *r)
{
	static const char *const prefixes[] = {"", "base.", NULL};
	static const char *const extras[] = {"limit", "sort", "order", NULL};
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query q, qbase;
	struct ember_profile *p = NULL, *base = NULL;
	enum ember_top_sort sort;
	bool ascending = false;
	int64_t limit = EMBER_TOP_DEFAULT_LIMIT;
	const char *v;
	struct strbuf sb;

	if (ember_api_check_params(params, n, prefixes, extras, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "", &q, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "base.", &qbase, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return;
	}
	sort = qbase.given ? EMBER_TOP_DIFF : EMBER_TOP_SELF;
	v = ember_api_param_value(params, n, "limit");
	if (v && *v && !ember_api_parse_int(v, 1, EMBER_TOP_MAX_LIMIT, &limit)) {
		snprintf(err, sizeof(err), "limit: must be an integer from 1 to %d",
			 EMBER_TOP_MAX_LIMIT);
		ember_api_reply_error(r, 400, err);
		return;
	}
	v = ember_api_param_value(params, n, "sort");
	if (v && *v && parse_sort(v, &sort)) {
		ember_api_reply_error(r, 400, "sort: must be self, total, diff or diff_total");
		return;
	}
	if ((sort == EMBER_TOP_DIFF || sort == EMBER_TOP_DIFF_TOTAL) && !qbase.given) {
		ember_api_reply_error(r, 400, "sort: diff and diff_total need a base (base.* parameters)");
		return;
	}
	v = ember_api_param_value(params, n, "order");
	if (v && *v) {
		if (strcmp(v, "asc") && strcmp(v, "desc")) {
			ember_api_reply_error(r, 400, "order: must be asc or desc");
			return;
		}
		ascending = !strcmp(v, "asc");
	}
	p = query_profile(api, &q, r);
	if (!p)
		return;
	if (qbase.given && !(base = query_profile(api, &qbase, r))) {
		ember_profile_free(p);
		return;
	}
	sb_init(&sb);
	if (ember_top_json(p, base, sort, ascending, (size_t)limit, &sb)) {
		sb_free(&sb);
		ember_api_reply_error(r, 500, "out of memory building the table");
	} else {
		ember_api_reply_sb(r, 200, CT_JSON, &sb);
	}
	ember_profile_free(p);
	ember_profile_free(base);
}

/* ---- one function: /api/sandwich ---- */

static void api_sandwich(struct ember_api *api, const struct ember_api_param *params, size_t n,
			 struct ember_api_reply *r)
{
	static const char *const prefixes[] = {"", NULL};
	static const char *const extras[] = {"function", NULL};
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query q;
	struct ember_profile *p;
	const char *function;
	struct strbuf sb;

	if (ember_api_check_params(params, n, prefixes, extras, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "", &q, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return;
	}
	function = ember_api_param_value(params, n, "function");
	if (!function || !*function) {
		ember_api_reply_error(r, 400, "function: required (the function's name)");
		return;
	}
	p = query_profile(api, &q, r);
	if (!p)
		return;
	sb_init(&sb);
	if (ember_sandwich_json(p, function, &sb)) {
		sb_free(&sb);
		ember_api_reply_error(r, 500, "out of memory building the sandwich view");
	} else {
		ember_api_reply_sb(r, 200, CT_JSON, &sb);
	}
	ember_profile_free(p);
}

/* ---- samples over time: /api/timeline ---- */

#define MAX_STEP_S (366LL * 24 * 3600)

static void api_timeline(struct ember_api *api, const struct ember_api_param *params, size_t n,
			 struct ember_api_reply *r)
{
	static const char *const prefixes[] = {"", NULL};
	static const char *const extras[] = {"step", NULL};
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_api_query q;
	struct ember_timeline tl;
	int64_t step_s = 0;
	const char *v;
	struct strbuf sb;

	if (ember_api_check_params(params, n, prefixes, extras, err, sizeof(err)) ||
	    ember_api_parse_selection(params, n, "", &q, err, sizeof(err))) {
		ember_api_reply_error(r, 400, err);
		return;
	}
	v = ember_api_param_value(params, n, "step");
	if (v && *v && !ember_api_parse_int(v, 1, MAX_STEP_S, &step_s)) {
		snprintf(err, sizeof(err), "step: must be seconds from 1 to %lld", MAX_STEP_S);
		ember_api_reply_error(r, 400, err);
		return;
	}
	if (open_store(api, r))
		return;
	int ret = ember_store_timeline(api->store, &q.sel, step_s * 1000 * NS_PER_MS, 0, &tl, err,
				       sizeof(err));
	if (ret) {
		ember_api_reply_error(r, store_status(ret), err[0] ? err : "cannot read the timeline");
		return;
	}
	sb_init(&sb);
	sb_printf(&sb, "{\"step_ms\":%" PRId64 ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"points\":[",
		  tl.step_ns / NS_PER_MS, tl.from_ns / NS_PER_MS, tl.to_ns / NS_PER_MS);
	for (size_t i = 0; i < tl.n; i++)
		sb_printf(&sb, "%s[%" PRId64 ",%" PRIu64 "]", i ? "," : "", tl.t_ns[i] / NS_PER_MS,
			  tl.samples[i]);
	sb_puts(&sb, "]}");
	ember_timeline_free(&tl);
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

/* ---- /api/stats ---- */

/* ,"key": and what fn appends, or null when there is no fn or it appends nothing */
static void json_object_of(struct strbuf *sb, const char *key,
			   void (*fn)(struct strbuf *sb, void *arg), void *arg)
{
	size_t mark;

	sb_printf(sb, ",\"%s\":", key);
	mark = sb->len;
	if (fn)
		fn(sb, arg);
	if (sb->len == mark)
		sb_puts(sb, "null");
}

static void api_stats(struct ember_api *api, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_store_stats st;
	struct strbuf sb;

	/* the agent's counters are served even when the database cannot be read
	 * (they say why: a damaged file, see store_file.c) */
	int ret = api->store ? 0 : ember_store_open(api->db_path, &api->store, err, sizeof(err));
	if (!ret)
		ret = ember_store_stats(api->store, &st, err, sizeof(err));
	sb_init(&sb);
	if (ret) {
		sb_puts(&sb, "{\"store\":{\"error\":");
		sb_json_str(&sb, err[0] ? err : "cannot read store stats");
	} else {
		sb_printf(&sb,
			  "{\"store\":{\"targets\":%" PRIu64 ",\"frames\":%" PRIu64
			  ",\"stacks\":%" PRIu64 ",\"sample_rows\":%" PRIu64 ",\"samples\":%" PRIu64,
			  st.targets, st.frames, st.stacks, st.sample_rows, st.samples);
		json_ms(&sb, "oldest", st.oldest_ns != 0, st.oldest_ns / NS_PER_MS);
		json_ms(&sb, "newest", st.newest_ns != 0, st.newest_ns / NS_PER_MS);
	}
	sb_putc(&sb, '}');
	json_object_of(&sb, "server", api->server_json, api->server_arg);
	json_object_of(&sb, "agent", api->stats_json, api->stats_arg);
	sb_putc(&sb, '}');
	ember_api_reply_sb(r, 200, CT_JSON, &sb);
}

/* ---- routing ---- */

static bool no_params(const struct ember_api_param *params, size_t n,
		      struct ember_api_reply *r)
{
	char msg[96];

	if (n == 0)
		return true;
	snprintf(msg, sizeof(msg), "unknown parameter '%.40s'",
		 params[0].key ? params[0].key : "");
	ember_api_reply_error(r, 400, msg);
	return false;
}

/* Every endpoint takes the same arguments; those without parameters ignore them. */
typedef void api_fn(struct ember_api *api, const char *path,
		    const struct ember_api_param *params, size_t n, struct ember_api_reply *r);

static void ep_targets(struct ember_api *api, const char *path,
		       const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	api_targets(api, r);
}

static void ep_services(struct ember_api *api, const char *path,
			const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	api_services(api, r);
}

static void ep_stats(struct ember_api *api, const char *path,
		     const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	api_stats(api, r);
}

static void ep_reports(struct ember_api *api, const char *path,
		       const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	if (open_store(api, r) == 0)
		ember_reports_api_handle(api->store, path, params, n, r);
}

static void ep_net(struct ember_api *api, const char *path,
		   const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	if (open_store(api, r) == 0)
		ember_net_api_handle(api->store, path, params, n, r);
}

static void ep_spans(struct ember_api *api, const char *path,
		     const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	if (open_store(api, r) == 0)
		ember_spans_api_handle(api->store, path, params, n, r);
}

static void ep_metrics(struct ember_api *api, const char *path,
		       const struct ember_api_param *params, size_t n, struct ember_api_reply *r)
{
	ember_metrics_reply(api->db_path, api->metrics_text, api->metrics_arg, r);
}

#define EP(fn)                                                                            \
	static void ep_##fn(struct ember_api *api, const char *path,                      \
			    const struct ember_api_param *params, size_t n,               \
			    struct ember_api_reply *r)                                    \
	{                                                                                 \
		api_##fn(api, params, n, r);                                              \
	}
EP(flamegraph)
EP(pprof)
EP(folded)
EP(diff)
EP(top)
EP(sandwich)
EP(timeline)
#undef EP

/*
 * The endpoints.  A new one is a function with api_fn's arguments and a
 * row here; `tree` also answers every path below it ("/api/reports/7").
 */
static const struct endpoint {
	const char *path;
	api_fn *fn;
	bool no_params; /* any parameter is a 400 */
	bool tree;
} endpoints[] = {
	{"/api/targets", ep_targets, true, false},
	{"/api/services", ep_services, true, false},
	{"/api/stats", ep_stats, true, false},
	{"/api/flamegraph", ep_flamegraph, false, false},
	{"/api/pprof", ep_pprof, false, false},
	{"/api/folded", ep_folded, false, false},
	{"/api/diff", ep_diff, false, false},
	{"/api/top", ep_top, false, false},
	{"/api/sandwich", ep_sandwich, false, false},
	{"/api/timeline", ep_timeline, false, false},
	{"/api/reports", ep_reports, false, true},
	{"/api/net", ep_net, false, false},
	{"/api/topology", ep_net, false, false},
	{"/api/spans", ep_spans, false, true},
	{"/metrics", ep_metrics, true, false},
};

static const struct endpoint *find_endpoint(const char *path)
{
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		const struct endpoint *e = &endpoints[i];
		size_t len = strlen(e->path);
		if (strcmp(path, e->path) == 0 ||
		    (e->tree && strncmp(path, e->path, len) == 0 && path[len] == '/'))
			return e;
	}
	return NULL;
}

void ember_api_handle(struct ember_api *api, const char *path,
		      const struct ember_api_param *params, size_t n,
		      struct ember_api_reply *reply)
{
	const struct endpoint *e = find_endpoint(path);

	memset(reply, 0, sizeof(*reply));
	if (!e) {
		char msg[128];
		snprintf(msg, sizeof(msg), "no such endpoint: %.80s", path);
		ember_api_reply_error(reply, 404, msg);
		return;
	}
	if (!e->no_params || no_params(params, n, reply))
		e->fn(api, path, params, n, reply);
}
