/*
 * test_net_store.c - the TCP metrics tables (src/store/store_net.c).
 *
 * A batch with known rows goes in through the store API, and the queries
 * must give back exactly its sums: per peer (with drops by reason and
 * histogram quantiles), over time (10 s steps, and whole hours read from
 * the roll-up must equal the 10 s rows), per edge (a local client and
 * server seen from both ends is one edge, counted from the client), on the
 * very target ids the samples use; a second ingest adds; retention deletes
 * what is old, unreferenced peers included, and nothing else.
 */
#include "testutil.h"

#include <errno.h>
#include <sqlite3.h>
#include <unistd.h>

#include "core/profile.h"
#include "net/net_batch.h"
#include "store/store.h"
#include "store/store_net.h"

#define SEC 1000000000LL
#define HOUR (3600 * SEC)
#define T0 (1700000000LL * SEC / HOUR * HOUR) /* an hour boundary */

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ember-netstore-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ember.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static uint32_t add_target(struct ember_net_batch *b, const char *service, uint32_t pid)
{
	struct ember_target t = {.pid = pid, .comm = service, .service = service, .version = "1.0"};
	return ember_profile_target(b->targets, &t);
}

static uint32_t add_peer(struct ember_net_batch *b, int dir_in, const char *addr, uint16_t port,
			 const char *service)
{
	struct ember_net_peer p = {.direction = (uint8_t)dir_in, .port = port};
	snprintf(p.addr, sizeof(p.addr), "%s", addr);
	snprintf(p.service, sizeof(p.service), "%s", service ? service : "");
	return ember_net_batch_peer(b, &p);
}

static struct ember_net_batch_row *row(struct ember_net_batch *b, int64_t t, uint32_t target,
				       uint32_t peer, uint64_t sent, uint64_t recv, uint64_t rtt_us)
{
	struct ember_net_batch_row *r = ember_net_batch_row(b, t, target, peer);
	assert_non_null(r);
	r->v.bytes_sent += sent;
	r->v.bytes_recv += recv;
	r->v.connects += 1;
	r->v.retransmits += 2;
	if (rtt_us)
		assert_int_equal(ember_hist_add(&r->v.rtt, rtt_us, 1), 0);
	return r;
}

/*
 * client (pid 10) -> server (pid 20) on :6379, both local, seen from both
 * ends, in the first and the second hour; the client also calls an
 * external 10.0.0.7:5432; the server drops two packets.
 */
static struct ember_net_batch *known_batch(void)
{
	struct ember_net_batch *b = ember_net_batch_new(0);
	assert_non_null(b);
	uint32_t client = add_target(b, "client", 10), server = add_target(b, "server", 20);
	uint32_t to_server = add_peer(b, 0, "127.0.0.1", 6379, "server");
	uint32_t from_client = add_peer(b, 1, "127.0.0.1", 6379, "client");
	uint32_t external = add_peer(b, 0, "10.0.0.7", 5432, NULL);
	for (int h = 0; h < 2; h++) {
		int64_t t = T0 + h * HOUR + 30 * SEC;
		row(b, t, client, to_server, 100, 1000, 200);
		struct ember_net_batch_row *r = row(b, t, server, from_client, 1000, 100, 210);
		r->v.connects = 0;
		r->v.accepts = 1;
		r->v.drops = 2;
		assert_int_equal(ember_net_batch_drop(b, (uint32_t)(r - b->rows), "TCP_CSUM", 2), 0);
		row(b, t + 10 * SEC, client, external, 5, 7, 20000);
	}
	return b;
}

static const struct ember_net_peer_stats *find_peer(const struct ember_net_report *r,
						    const char *addr, uint16_t port)
{
	for (size_t i = 0; i < r->n_peers; i++)
		if (strcmp(r->peers[i].peer.addr, addr) == 0 && r->peers[i].peer.port == port)
			return &r->peers[i];
	return NULL;
}

static void ingest_and_query(void **state)
{
	struct ember_store *s;
	char err[EMBER_STORE_ERRLEN];
	struct ember_net_report rep;

	(void)state;
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	struct ember_net_batch *b = known_batch();
	assert_int_equal(ember_store_net_ingest(s, b, err, sizeof(err)), 0);

	struct ember_selection sel = {.service = "client"};
	assert_int_equal(ember_store_net_query(s, &sel, 0, 2000, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.n_peers, 2);
	assert_false(rep.truncated);
	const struct ember_net_peer_stats *p = find_peer(&rep, "127.0.0.1", 6379);
	assert_non_null(p);
	assert_string_equal(p->peer.service, "server");
	assert_int_equal(p->v.bytes_sent, 200);
	assert_int_equal(p->v.bytes_recv, 2000);
	assert_int_equal(p->v.connects, 2);
	assert_int_equal(p->v.retransmits, 4);
	assert_int_equal(p->v.rtt.count, 2);
	assert_true(p->v.rtt.sum_us == 400);
	assert_int_equal(rep.peers[0].v.bytes_sent + rep.peers[0].v.bytes_recv, 2200); /* largest first */
	p = find_peer(&rep, "10.0.0.7", 5432);
	assert_non_null(p);
	double p50 = ember_hist_quantile(&p->v.rtt, 0.5);
	assert_true(p50 > 19000 && p50 < 21000);
	assert_int_equal(rep.total.bytes_sent, 210);
	/* timeline: two 10 s steps in each hour, ascending (the span reaches the
	 * end of the last hour in the roll-up: 2 h / 2000 points = 10 s steps) */
	assert_int_equal(rep.step_ns, 10 * SEC);
	assert_int_equal(rep.n_points, 4);
	assert_int_equal(rep.points[0].t_ns, T0 + 30 * SEC);
	assert_int_equal(rep.points[0].v.bytes_sent, 100);
	assert_int_equal(rep.points[1].t_ns, T0 + 40 * SEC);
	assert_int_equal(rep.points[3].t_ns, T0 + HOUR + 40 * SEC);
	ember_net_report_free(&rep);

	/* drops by reason, on the server */
	sel = (struct ember_selection){.service = "server"};
	assert_int_equal(ember_store_net_query(s, &sel, 0, 0, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.n_peers, 1);
	assert_int_equal(rep.peers[0].peer.direction, EMBER_NET_IN);
	assert_int_equal(rep.peers[0].v.accepts, 2);
	assert_int_equal(rep.peers[0].n_reasons, 1);
	assert_string_equal(rep.peers[0].reasons[0].reason, "TCP_CSUM");
	assert_int_equal(rep.peers[0].reasons[0].count, 4);
	ember_net_report_free(&rep);

	/* whole hours come from the roll-up and agree with the 10 s rows */
	sel = (struct ember_selection){.service = "client", .from_ns = T0, .to_ns = T0 + 2 * HOUR};
	assert_int_equal(ember_store_net_query(s, &sel, 3600 * SEC, 0, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.step_ns, HOUR);
	assert_int_equal(rep.n_points, 2);
	assert_int_equal(rep.points[0].v.bytes_sent, 105);
	assert_int_equal(rep.points[1].v.bytes_recv, 1007);
	assert_int_equal(rep.total.bytes_recv, 2014);
	ember_net_report_free(&rep);

	/* a second ingest adds, histograms merge */
	assert_int_equal(ember_store_net_ingest(s, b, err, sizeof(err)), 0);
	sel = (struct ember_selection){.service = "client"};
	assert_int_equal(ember_store_net_query(s, &sel, 0, 0, 1, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.n_peers, 1); /* limit 1 */
	assert_true(rep.truncated);
	assert_int_equal(rep.peers[0].v.bytes_recv, 4000);
	assert_int_equal(rep.peers[0].v.rtt.count, 4);
	ember_net_report_free(&rep);

	/* bad selections are refused */
	const char *many[EMBER_STORE_MAX_VERSIONS + 1];
	for (size_t i = 0; i <= EMBER_STORE_MAX_VERSIONS; i++)
		many[i] = "v";
	sel = (struct ember_selection){.versions = many, .n_versions = EMBER_STORE_MAX_VERSIONS + 1};
	assert_int_equal(ember_store_net_query(s, &sel, 0, 0, 0, &rep, err, sizeof(err)), -EINVAL);
	ember_net_batch_free(b);
	ember_store_close(s);
}

static void same_targets_as_samples(void **state)
{
	struct ember_store *s;
	char err[EMBER_STORE_ERRLEN];
	sqlite3 *db;
	sqlite3_stmt *st;

	(void)state;
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	/* a CPU sample of the client process, as the profiler would record it */
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 10, .comm = "client", .service = "client", .version = "1.0"};
	struct ember_frame f = {.function = "main"};
	uint32_t ti = ember_profile_target(p, &t), fi = ember_profile_frame(p, &f);
	assert_int_equal(ember_profile_add(p, ti, &fi, 1, 5, T0 + 30 * SEC), 0);
	assert_int_equal(ember_store_ingest(s, p, T0, err, sizeof(err)), 0);
	ember_profile_free(p);
	struct ember_net_batch *b = known_batch();
	assert_int_equal(ember_store_net_ingest(s, b, err, sizeof(err)), 0);
	ember_net_batch_free(b);
	ember_store_close(s);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(DISTINCT target_id) FROM (SELECT target_id FROM"
					    " samples UNION ALL SELECT target_id FROM net_samples n JOIN"
					    " targets t ON t.id = n.target_id WHERE t.pid = 10)",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void topology_edges(void **state)
{
	struct ember_store *s;
	char err[EMBER_STORE_ERRLEN];
	struct ember_net_edge *e;
	size_t n;
	bool truncated;

	(void)state;
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	struct ember_selection all = {0};
	assert_int_equal(ember_store_net_topology(s, &all, &e, &n, &truncated, err, sizeof(err)), 0);
	assert_int_equal(n, 2); /* client->server once, client->10.0.0.7:5432 */
	assert_false(truncated);
	assert_string_equal(e[0].from, "client");
	assert_string_equal(e[0].to, "server");
	assert_true(e[0].from_service && e[0].to_service);
	assert_int_equal(e[0].v.bytes_sent, 400); /* client's view, two ingests */
	assert_int_equal(e[0].v.bytes_recv, 4000);
	assert_string_equal(e[1].to, "10.0.0.7:5432");
	assert_false(e[1].to_service);
	ember_net_edges_free(e, n);

	/* only the server selected: the edge comes from its side, turned around */
	struct ember_selection srv = {.service = "server"};
	assert_int_equal(ember_store_net_topology(s, &srv, &e, &n, &truncated, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].from, "client");
	assert_string_equal(e[0].to, "server");
	assert_int_equal(e[0].v.bytes_sent, 400);  /* the server received it */
	assert_int_equal(e[0].v.connects, 4);      /* the server's accepts */
	ember_net_edges_free(e, n);
	ember_store_close(s);
}

/* Run the store's retention until it has nothing left to do at now_ns. */
static void retain(struct ember_store *s, int64_t keep_ns, int64_t now_ns)
{
	struct ember_retention_options o = {.full_res_ns = keep_ns, .retention_ns = keep_ns};
	char err[EMBER_STORE_ERRLEN];
	int rc;

	assert_int_equal(ember_store_retention_setup(s, &o, err, sizeof(err)), 0);
	for (int i = 0; i < 10000 && (rc = ember_store_retention_step(s, now_ns, err, sizeof(err))) > 0;
	     i++)
		;
	assert_int_equal(rc, 0);
}

/* The store's retention registry covers the net tables and their peers. */
static void retention(void **state)
{
	struct ember_store *s;
	char err[EMBER_STORE_ERRLEN];
	struct ember_net_report rep;

	(void)state;
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	/* keep one hour at T0 + 2 h: the first hour's 10 s and hourly rows go */
	retain(s, HOUR, T0 + 2 * HOUR);
	struct ember_selection sel = {.service = "client"};
	assert_int_equal(ember_store_net_query(s, &sel, 0, 0, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.n_points, 2); /* the second hour only */
	assert_true(rep.points[0].t_ns >= T0 + HOUR);
	ember_net_report_free(&rep);
	/* everything: the peers go too */
	retain(s, HOUR, T0 + 4 * HOUR);
	assert_int_equal(ember_store_net_query(s, &sel, 0, 0, 0, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.n_peers, 0);
	ember_net_report_free(&rep);
	ember_store_close(s);

	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM net_peers", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void bad_batch(void **state)
{
	struct ember_store *s;
	char err[EMBER_STORE_ERRLEN];

	(void)state;
	assert_int_equal(ember_store_open(path, &s, err, sizeof(err)), 0);
	struct ember_net_batch *b = known_batch();
	b->rows[0].peer = 99;
	assert_int_equal(ember_store_net_ingest(s, b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "peer 99"));
	b->rows[0].peer = 0;
	b->drops[0].row = 1000;
	assert_int_equal(ember_store_net_ingest(s, b, err, sizeof(err)), -EINVAL);
	ember_net_batch_free(b);
	assert_int_equal(ember_store_net_ingest(s, NULL, err, sizeof(err)), 0);
	ember_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ingest_and_query), cmocka_unit_test(topology_edges),
		cmocka_unit_test(retention),        cmocka_unit_test(bad_batch),
		cmocka_unit_test(same_targets_as_samples),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
