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
 *   GET /api/flamegraph?target=ID&service=S&version=V&pid=P&from=MS&to=MS
 *       {"total":N,"from":MS|null,"to":MS|null,"nodes":K,"truncated":false,
 *        "root":{"name":"all","value":N,"self":0,"children":[
 *          {"name":"main","value":V,"self":S,"file":"main.c","line":12,
 *           "kernel":false,"inlined":false,"children":[...]}, ...]}}
 *       Every parameter is optional (absent or empty = any); from is
 *       inclusive, to exclusive.  Children are merged by (name, kernel) and
 *       sorted by value, largest first; "file"/"line" appear when known.
 *       Nodes below 1/100000 of the total are dropped and at most 200000
 *       nodes are sent; "truncated":true says that happened.
 *
 *   GET /api/pprof?<same selection>
 *       gzip'd profile.proto (application/octet-stream, attachment
 *       "ember-profile.pb.gz"), for `go tool pprof`.
 *
 *   GET /api/folded?<same selection>
 *       text/plain folded stacks ("main;work;memcpy 42" per line).
 *
 *   GET /api/stats
 *       {"store":{"targets":N,"frames":N,"stacks":N,"sample_rows":N,"samples":N,
 *                 "oldest":MS|null,"newest":MS|null},
 *        "agent":{...}|null}
 *
 * Errors: 400 {"error":"target: must be a positive integer"} for a bad,
 * repeated, unknown or over-long (> 256 bytes) parameter or from > to;
 * 404 {"error":...} for an unknown endpoint; 500 {"error":...} when the
 * store fails (the message names the database).
 */
#include "server/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pprof/folded.h"
#include "pprof/pprof.h"
#include "server/flamegraph.h"

#define NS_PER_MS ((int64_t)1000000)
#define MAX_MS (INT64_MAX / NS_PER_MS) /* keeps ms -> ns from overflowing */
#define MAX_TARGETS 10000

#define CT_JSON "application/json; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"

struct ember_api {
	char *db_path;
	struct ember_store *store; /* opened on first use, on the server thread */
	void (*stats_json)(struct strbuf *sb, void *arg);
	void *stats_arg;
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
	return api;
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

/* Decimal digits only (no sign, no spaces), value in [min, max]. */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
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

enum { P_TARGET, P_SERVICE, P_VERSION, P_PID, P_FROM, P_TO, P_COUNT };
static const char *const param_names[P_COUNT] = {"target", "service", "version",
						 "pid",    "from",    "to"};

static int param_index(const char *key)
{
	for (int i = 0; i < P_COUNT; i++)
		if (strcmp(key, param_names[i]) == 0)
			return i;
	return -1;
}

static int parse_one(int which, const char *val, struct ember_api_query *q, char *err,
		     size_t errlen)
{
	int64_t v;

	switch (which) {
	case P_TARGET:
		if (!parse_int(val, 1, INT64_MAX, &v))
			return fail(err, errlen, "target: must be a positive integer target id");
		q->sel.target_id = v;
		return 0;
	case P_SERVICE:
		snprintf(q->service, sizeof(q->service), "%s", val);
		q->sel.service = q->service;
		return 0;
	case P_VERSION:
		snprintf(q->version, sizeof(q->version), "%s", val);
		q->sel.version = q->version;
		return 0;
	case P_PID:
		if (!parse_int(val, 1, UINT32_MAX, &v))
			return fail(err, errlen, "pid: must be a process id (1..%" PRIu32 ")",
				    UINT32_MAX);
		q->sel.pid = (uint32_t)v;
		return 0;
	case P_FROM:
		if (!parse_int(val, 0, MAX_MS, &v))
			return fail(err, errlen, "from: must be unix time in milliseconds");
		q->has_from = true;
		q->from_ms = v;
		q->sel.from_ns = v * NS_PER_MS;
		return 0;
	case P_TO:
		if (!parse_int(val, 1, MAX_MS, &v))
			return fail(err, errlen, "to: must be unix time in milliseconds (> 0)");
		q->has_to = true;
		q->to_ms = v;
		q->sel.to_ns = v * NS_PER_MS;
		return 0;
	}
	return -EINVAL;
}

int ember_api_parse_query(const struct ember_api_param *params, size_t n,
			  struct ember_api_query *q, char *err, size_t errlen)
{
	bool seen[P_COUNT] = {false};

	memset(q, 0, sizeof(*q));
	if (n > EMBER_API_MAX_PARAMS)
		return fail(err, errlen, "too many parameters (at most %d)", EMBER_API_MAX_PARAMS);
	for (size_t i = 0; i < n; i++) {
		const char *key = params[i].key ? params[i].key : "";
		const char *val = params[i].value ? params[i].value : "";
		int which = param_index(key);
		int ret;

		if (which < 0)
			return fail(err, errlen, "unknown parameter '%.40s'", key);
		if (seen[which])
			return fail(err, errlen, "%s: given more than once", key);
		seen[which] = true;
		if (strlen(val) > EMBER_API_MAX_VALUE_LEN)
			return fail(err, errlen, "%s: longer than %d bytes", key,
				    EMBER_API_MAX_VALUE_LEN);
		if (!*val)
			continue; /* empty = any */
		ret = parse_one(which, val, q, err, errlen);
		if (ret)
			return ret;
	}
	if (q->has_from && q->has_to && q->from_ms > q->to_ms)
		return fail(err, errlen, "from: %" PRId64 " is after to: %" PRId64, q->from_ms,
			    q->to_ms);
	return 0;
}

/* ---- replies ---- */

static void reply_sb(struct ember_api_reply *r, unsigned int status, const char *ctype,
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

static void reply_error(struct ember_api_reply *r, unsigned int status, const char *msg)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_puts(&sb, "{\"error\":");
	sb_json_str(&sb, msg);
	sb_puts(&sb, "}");
	reply_sb(r, status, CT_JSON, &sb);
}

static int open_store(struct ember_api *api, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	int ret;

	if (api->store)
		return 0;
	ret = ember_store_open(api->db_path, &api->store, err, sizeof(err));
	if (ret) {
		api->store = NULL;
		ember_warn("server: cannot open store %s: %s", api->db_path, err);
		reply_error(r, 500, err[0] ? err : "cannot open the store");
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
		      ",\"samples\":%" PRIu64 "}",
		  t->first_seen_ns / NS_PER_MS, t->last_seen_ns / NS_PER_MS, t->samples);
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
		reply_error(r, 500, err[0] ? err : "cannot list targets");
		return;
	}
	sb_printf(&sb, "],\"truncated\":%s}", c.truncated ? "true" : "false");
	reply_sb(r, 200, CT_JSON, &sb);
}

/* ---- selections: flamegraph, pprof, folded ---- */

/* Parse the selection and query the store; on failure the reply is filled. */
static struct ember_profile *select_profile(struct ember_api *api,
					    const struct ember_api_param *params, size_t n,
					    struct ember_api_query *q,
					    struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_profile *p = NULL;

	if (ember_api_parse_query(params, n, q, err, sizeof(err))) {
		reply_error(r, 400, err);
		return NULL;
	}
	if (open_store(api, r))
		return NULL;
	if (ember_store_query(api->store, &q->sel, &p, err, sizeof(err)) || !p) {
		reply_error(r, 500, err[0] ? err : "store query failed");
		return NULL;
	}
	return p;
}

static void api_flamegraph(struct ember_api *api, const struct ember_api_param *params,
			   size_t n, struct ember_api_reply *r)
{
	struct ember_api_query q;
	struct ember_flame_result res;
	struct ember_profile *p = select_profile(api, params, n, &q, r);
	struct strbuf sb, tree;

	if (!p)
		return;
	/* the tree is written first: its node count and truncation go before it */
	sb_init(&tree);
	if (ember_flamegraph_json(p, NULL, &tree, &res)) {
		sb_free(&tree);
		ember_profile_free(p);
		reply_error(r, 500, "out of memory building the flame graph");
		return;
	}
	sb_init(&sb);
	sb_printf(&sb, "{\"total\":%" PRIu64, p->total);
	json_ms(&sb, "from", q.has_from, q.from_ms);
	json_ms(&sb, "to", q.has_to, q.to_ms);
	sb_printf(&sb, ",\"nodes\":%zu,\"truncated\":%s,\"root\":", res.nodes,
		  res.truncated ? "true" : "false");
	sb_append(&sb, tree.buf, tree.len);
	sb_putc(&sb, '}');
	sb_free(&tree);
	ember_profile_free(p);
	reply_sb(r, 200, CT_JSON, &sb);
}

static void api_pprof(struct ember_api *api, const struct ember_api_param *params, size_t n,
		      struct ember_api_reply *r)
{
	struct ember_api_query q;
	struct ember_pprof_options opt = {0};
	struct ember_profile *p = select_profile(api, params, n, &q, r);
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
		reply_error(r, 500, msg);
		return;
	}
	r->status = 200;
	r->content_type = "application/octet-stream";
	r->disposition = "attachment; filename=\"ember-profile.pb.gz\"";
	r->body = (char *)out;
	r->len = len;
}

static void api_folded(struct ember_api *api, const struct ember_api_param *params, size_t n,
		       struct ember_api_reply *r)
{
	struct ember_api_query q;
	struct ember_profile *p = select_profile(api, params, n, &q, r);
	struct strbuf sb;

	if (!p)
		return;
	sb_init(&sb);
	if (ember_folded_format(&sb, p, NULL)) {
		sb_free(&sb);
		ember_profile_free(p);
		reply_error(r, 500, "out of memory writing folded stacks");
		return;
	}
	ember_profile_free(p);
	reply_sb(r, 200, CT_TEXT, &sb);
}

/* ---- /api/stats ---- */

static void api_stats(struct ember_api *api, struct ember_api_reply *r)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_store_stats st;
	struct strbuf sb;
	size_t mark;

	if (open_store(api, r))
		return;
	if (ember_store_stats(api->store, &st, err, sizeof(err))) {
		reply_error(r, 500, err[0] ? err : "cannot read store stats");
		return;
	}
	sb_init(&sb);
	sb_printf(&sb,
		  "{\"store\":{\"targets\":%" PRIu64 ",\"frames\":%" PRIu64 ",\"stacks\":%" PRIu64
		  ",\"sample_rows\":%" PRIu64 ",\"samples\":%" PRIu64,
		  st.targets, st.frames, st.stacks, st.sample_rows, st.samples);
	json_ms(&sb, "oldest", st.oldest_ns != 0, st.oldest_ns / NS_PER_MS);
	json_ms(&sb, "newest", st.newest_ns != 0, st.newest_ns / NS_PER_MS);
	sb_puts(&sb, "},\"agent\":");
	mark = sb.len;
	if (api->stats_json)
		api->stats_json(&sb, api->stats_arg);
	if (sb.len == mark)
		sb_puts(&sb, "null");
	sb_putc(&sb, '}');
	reply_sb(r, 200, CT_JSON, &sb);
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
	reply_error(r, 400, msg);
	return false;
}

void ember_api_handle(struct ember_api *api, const char *path,
		      const struct ember_api_param *params, size_t n,
		      struct ember_api_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	if (strcmp(path, "/api/targets") == 0) {
		if (no_params(params, n, reply))
			api_targets(api, reply);
	} else if (strcmp(path, "/api/flamegraph") == 0) {
		api_flamegraph(api, params, n, reply);
	} else if (strcmp(path, "/api/pprof") == 0) {
		api_pprof(api, params, n, reply);
	} else if (strcmp(path, "/api/folded") == 0) {
		api_folded(api, params, n, reply);
	} else if (strcmp(path, "/api/stats") == 0) {
		if (no_params(params, n, reply))
			api_stats(api, reply);
	} else {
		char msg[128];
		snprintf(msg, sizeof(msg), "no such endpoint: %.80s", path);
		reply_error(reply, 404, msg);
	}
}
