/*
 * test_net_api.c - /api/net, /api/topology and /metrics without a socket.
 *
 * The handlers are called with parameter lists as the server would pass
 * them: every bad parameter is a 400 naming it, good ones answer JSON with
 * the stored sums.  The Prometheus side: label values are escaped, the
 * top-N peer bound folds the rest into peer="other" while every series
 * stays monotonic as peers move in and out of the top, and the histogram
 * buckets are cumulative and end in +Inf = _count.
 */
#include "testutil.h"

#include <unistd.h>

#include "net/net_batch.h"
#include "net/net_prom.h"
#include "server/api.h"
#include "server/metrics.h"
#include "server/net_api.h"
#include "store/store.h"
#include "store/store_net.h"

#define SEC 1000000000LL

static char dir[64], path[128];
static struct ember_store *store;

static int setup(void **state)
{
	char err[EMBER_STORE_ERRLEN];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ember-netapi-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ember.db", dir);
	assert_int_equal(ember_store_open(path, &store, err, sizeof(err)), 0);
	struct ember_net_batch *b = ember_net_batch_new(0);
	struct ember_target t = {.pid = 7, .comm = "shop", .service = "shop", .version = "2"};
	uint32_t ti = ember_profile_target(b->targets, &t);
	struct ember_net_peer p = {.direction = EMBER_NET_OUT, .port = 5432, .addr = "10.1.2.3"};
	uint32_t pi = ember_net_batch_peer(b, &p);
	struct ember_net_batch_row *r = ember_net_batch_row(b, 1700000000LL * SEC, ti, pi);
	r->v.bytes_sent = 123;
	r->v.bytes_recv = 456;
	r->v.retransmits = 3;
	ember_hist_add(&r->v.rtt, 1500, 1);
	ember_net_batch_drop(b, 0, "NO_SOCKET", 2);
	r->v.drops = 2;
	assert_int_equal(ember_store_net_ingest(store, b, err, sizeof(err)), 0);
	ember_net_batch_free(b);
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	ember_store_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void get(const char *path_, const struct ember_api_param *ps, size_t n,
		struct ember_api_reply *r)
{
	assert_true(ember_net_api_path(path_));
	ember_net_api_handle(store, path_, ps, n, r);
	assert_non_null(r->body);
}

static void bad_parameters(void **state)
{
	static const struct {
		struct ember_api_param p[2];
		size_t n;
		const char *names;
	} cases[] = {
		{{{"step", "0"}}, 1, "step:"},
		{{{"step", "abc"}}, 1, "step:"},
		{{{"step", "1"}, {"step", "2"}}, 2, "step: given more than once"},
		{{{"limit", "1001"}}, 1, "limit:"},
		{{{"limit", "-1"}}, 1, "limit:"},
		{{{"frm", "1"}}, 1, "unknown parameter 'frm'"},
		{{{"from", "x"}}, 1, "from:"},
		{{{"from", "20"}, {"to", "10"}}, 2, "is after"},
		{{{"pid", "0"}}, 1, "pid:"},
	};
	struct ember_api_reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		get("/api/net", cases[i].p, cases[i].n, &r);
		assert_int_equal(r.status, 400);
		if (!strstr(r.body, cases[i].names))
			fail_msg("case %zu: %s lacks %s", i, r.body, cases[i].names);
		free(r.body);
	}
	struct ember_api_param topo[] = {{"step", "10"}};
	get("/api/topology", topo, 1, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "unknown parameter 'step'"));
	free(r.body);
	char longv[EMBER_API_MAX_VALUE_LEN + 2];
	memset(longv, '1', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	struct ember_api_param lng[] = {{"limit", longv}};
	get("/api/net", lng, 1, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "longer than"));
	free(r.body);
}

static void answers(void **state)
{
	struct ember_api_reply r;
	struct ember_api_param ps[] = {{"service", "shop"}, {"step", "60"}, {"limit", "5"}};

	(void)state;
	get("/api/net", ps, 3, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.content_type, "application/json"));
	assert_non_null(strstr(r.body, "\"addr\":\"10.1.2.3\",\"port\":5432,\"service\":null"));
	assert_non_null(strstr(r.body, "\"sent_bytes\":123,\"received_bytes\":456"));
	assert_non_null(strstr(r.body, "\"retransmits\":3"));
	assert_non_null(strstr(r.body, "\"drop_reasons\":{\"NO_SOCKET\":2}"));
	assert_non_null(strstr(r.body, "\"step_ms\":60000"));
	assert_non_null(strstr(r.body, "\"rtt_samples\":1,\"rtt_p50_ms\":1.5"));
	free(r.body);
	struct ember_api_param none[] = {{"service", "nobody"}};
	get("/api/net", none, 1, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"peers\":[]"));
	assert_non_null(strstr(r.body, "\"rtt_p50_ms\":null"));
	free(r.body);
	get("/api/topology", NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "{\"from\":\"shop\",\"to\":\"10.1.2.3:5432\""));
	assert_non_null(strstr(r.body, "{\"id\":\"10.1.2.3:5432\",\"kind\":\"address\"}"));
	assert_non_null(strstr(r.body, "{\"id\":\"shop\",\"kind\":\"service\"}"));
	free(r.body);
}

static void sample_escaping(void **state)
{
	struct strbuf sb;
	const char *l[] = {"service", "a\"b\\c\nd", "peer", "x"};

	(void)state;
	sb_init(&sb);
	ember_metrics_sample(&sb, "m_total", l, 2, 3);
	ember_metrics_sample(&sb, "g", NULL, 0, 0.25);
	ember_metrics_sample(&sb, "big", NULL, 0, 12345678901.0);
	assert_string_equal(sb.buf, "m_total{service=\"a\\\"b\\\\c\\nd\",peer=\"x\"} 3\n"
				    "g 0.25\nbig 12345678901\n");
	sb_free(&sb);
}

struct seen {
	char peer[64];
	int direction;
	uint64_t sent;
};

struct snapshot {
	struct seen s[64];
	size_t n;
};

static void collect(const char *service, const char *version, int direction, const char *peer,
		    const struct ember_net_prom_values *v, void *arg)
{
	struct snapshot *snap = arg;

	(void)service;
	(void)version;
	assert_true(snap->n < 64);
	snprintf(snap->s[snap->n].peer, sizeof(snap->s[0].peer), "%s", peer);
	snap->s[snap->n].direction = direction;
	snap->s[snap->n++].sent = v->bytes_sent;
}

static uint64_t sent_of(const struct snapshot *s, const char *peer)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->s[i].peer, peer) == 0)
			return s->s[i].sent;
	return 0;
}

static void top_peers(void **state)
{
	struct ember_net_prom *p = ember_net_prom_new(2);
	struct snapshot a = {0}, b = {0};
	int64_t t = 1000 * SEC;
	char name[16];

	(void)state;
	/* five peers: p0 and p1 take the two labels, the rest go to "other" */
	for (int i = 0; i < 5; i++) {
		struct ember_net_values d = {.bytes_sent = 100 * (uint64_t)(i + 1)};
		snprintf(name, sizeof(name), "p%d", i);
		ember_net_prom_add(p, "svc", "1", EMBER_NET_OUT, name, &d, t);
	}
	ember_net_prom_each(p, collect, NULL, &a);
	assert_int_equal(a.n, 3);
	assert_int_equal(sent_of(&a, "p0"), 100);
	assert_int_equal(sent_of(&a, "p1"), 200);
	assert_int_equal(sent_of(&a, "other"), 300 + 400 + 500);
	/* p4 gets busy; a minute later the ranking moves it to the top */
	struct ember_net_values big = {.bytes_sent = 1000000};
	ember_net_prom_add(p, "svc", "1", EMBER_NET_OUT, "p4", &big, t + SEC);
	ember_net_prom_add(p, "svc", "1", EMBER_NET_OUT, "p4", &big, t + 61 * SEC);
	ember_net_prom_each(p, collect, NULL, &b);
	uint64_t total = 0;
	for (size_t i = 0; i < b.n; i++)
		total += b.s[i].sent;
	assert_int_equal(total, 100 + 200 + 300 + 400 + 500 + 2000000);
	assert_int_equal(sent_of(&b, "p4"), 1000000); /* counts from its promotion */
	assert_true(sent_of(&b, "other") >= sent_of(&a, "other")); /* monotonic */
	size_t named = 0;
	for (size_t i = 0; i < b.n; i++)
		named += strcmp(b.s[i].peer, "other") != 0;
	assert_true(named <= 2);
	ember_net_prom_free(p);
}

static void histogram_family(void **state)
{
	struct ember_net_prom *p = ember_net_prom_new(5);
	struct ember_net_values d = {0};
	struct strbuf sb;

	(void)state;
	ember_hist_add(&d.rtt, 30, 1);    /* <= 50 us */
	ember_hist_add(&d.rtt, 20000, 2); /* <= 25.6 ms */
	ember_net_prom_add(p, "s", "v", EMBER_NET_IN, "10.0.0.1", &d, SEC);
	ember_net_prom_drop(p, "s", "v", "TCP_CSUM", 4);
	ember_hist_free(&d.rtt);
	sb_init(&sb);
	ember_metrics_net(&sb, p);
	assert_non_null(strstr(sb.buf, "# TYPE ember_tcp_rtt_seconds histogram\n"));
	assert_non_null(strstr(sb.buf, "ember_tcp_rtt_seconds_bucket{service=\"s\",version=\"v\","
				       "direction=\"in\",peer=\"10.0.0.1\",le=\"2.5e-05\"} 0\n"));
	assert_non_null(strstr(sb.buf, "le=\"5e-05\"} 1\n"));
	assert_non_null(strstr(sb.buf, "le=\"0.0256\"} 3\n"));
	assert_non_null(strstr(sb.buf, "le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(sb.buf, "ember_tcp_rtt_seconds_count{service=\"s\",version=\"v\","
				       "direction=\"in\",peer=\"10.0.0.1\"} 3\n"));
	assert_non_null(strstr(sb.buf, "ember_tcp_rtt_seconds_sum{service=\"s\",version=\"v\","
				       "direction=\"in\",peer=\"10.0.0.1\"} 0.04003\n"));
	assert_non_null(strstr(sb.buf, "ember_tcp_drops_total{service=\"s\",version=\"v\","
				       "reason=\"TCP_CSUM\"} 4\n"));
	sb_free(&sb);

	struct ember_api_reply r;
	ember_metrics_reply(path, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, EMBER_METRICS_CONTENT_TYPE);
	assert_non_null(strstr(r.body, "ember_store_size_bytes{file=\"db\"} "));
	assert_null(strstr(r.body, "ember_store_size_bytes{file=\"db\"} 0\n"));
	free(r.body);
	ember_net_prom_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_parameters),  cmocka_unit_test(answers),
		cmocka_unit_test(sample_escaping), cmocka_unit_test(top_peers),
		cmocka_unit_test(histogram_family),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
