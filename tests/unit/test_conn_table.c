/*
 * test_conn_table.c - the HTTP server's connection rules, without sockets:
 * who counts as one client (IPv4 address, IPv6 /64), the per-client limit,
 * eviction of the longest-waiting connection when full (never one being
 * answered), the request and send deadlines, and the counters.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "server/conn_table.h"

#define S 1000000000LL

static struct conn_client v4(const char *addr)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct conn_client c;

	assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
	conn_client_from_sockaddr((struct sockaddr *)&sa, sizeof(sa), &c);
	return c;
}

static struct conn_client v6(const char *addr)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
	struct conn_client c;

	assert_int_equal(inet_pton(AF_INET6, addr, &sa.sin6_addr), 1);
	conn_client_from_sockaddr((struct sockaddr *)&sa, sizeof(sa), &c);
	return c;
}

static void test_clients(void **state)
{
	struct conn_client a = v4("127.0.0.2"), b = v4("127.0.0.3");
	char text[64];

	struct conn_client a2 = v4("127.0.0.2");
	assert_true(conn_client_equal(&a, &a2));
	assert_false(conn_client_equal(&a, &b));
	/* an IPv4-mapped IPv6 peer is the same client as its IPv4 address */
	struct conn_client m = v6("::ffff:127.0.0.2");
	assert_true(conn_client_equal(&a, &m));
	/* one IPv6 /64 is one client; another /64 is another */
	struct conn_client p1 = v6("2001:db8:1:2::1"), p2 = v6("2001:db8:1:2:ffff:ffff:ffff:ffff"),
			   p3 = v6("2001:db8:1:3::1");
	assert_true(conn_client_equal(&p1, &p2));
	assert_false(conn_client_equal(&p1, &p3));
	conn_client_format(&a, text, sizeof(text));
	assert_string_equal(text, "127.0.0.2");
	conn_client_format(&p2, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1:2::/64");
	/* a short or foreign address is the all-zero client, not a crash */
	struct conn_client z, zero = {{0}};
	struct sockaddr_in6 short6 = {.sin6_family = AF_INET6};
	conn_client_from_sockaddr((struct sockaddr *)&short6, 8, &z);
	assert_true(conn_client_equal(&z, &zero));
	conn_client_from_sockaddr(NULL, 0, &z);
	assert_true(conn_client_equal(&z, &zero));
}

static void init(struct conn_table *t, unsigned max, unsigned per_client)
{
	struct conn_limits lim = {.max_connections = max, .max_per_client = per_client,
				  .request_deadline_ns = 10 * S, .send_deadline_ns = 60 * S};

	assert_int_equal(conn_table_init(t, &lim), 0);
}

static void test_init_limits(void **state)
{
	struct conn_table t;
	struct conn_limits bad = {.max_connections = 0, .max_per_client = 1,
				  .request_deadline_ns = S, .send_deadline_ns = S};

	assert_int_equal(conn_table_init(&t, &bad), -EINVAL);
	bad.max_connections = 1;
	bad.request_deadline_ns = 0;
	assert_int_equal(conn_table_init(&t, &bad), -EINVAL);
	init(&t, 3, 2);
	assert_int_equal(t.cap, 3 + CONN_TABLE_SLACK);
	conn_table_free(&t);
}

/* admit then add, as the server's callbacks do; returns the entry */
static struct conn *connect_one(struct conn_table *t, const struct conn_client *c, int fd,
				int64_t now)
{
	int evict;

	assert_int_equal(conn_table_admit(t, c, &evict), CONN_ADMIT);
	assert_int_equal(evict, -1);
	return conn_table_add(t, fd, c, now);
}

static void test_per_client_limit(void **state)
{
	struct conn_table t;
	struct conn_client a = v4("10.0.0.1"), b = v4("10.0.0.2");
	struct conn *conns[3];
	int evict;

	init(&t, 100, 3);
	for (int i = 0; i < 3; i++)
		assert_non_null(conns[i] = connect_one(&t, &a, 10 + i, 0));
	assert_int_equal(conn_table_client_count(&t, &a), 3);
	assert_int_equal(conn_table_admit(&t, &a, &evict), CONN_REFUSE_PER_CLIENT);
	assert_int_equal(evict, -1);
	assert_int_equal(conn_table_admit(&t, &a, &evict), CONN_REFUSE_PER_CLIENT);
	assert_int_equal(t.stats.refused_per_client, 2);
	/* another client is unaffected */
	assert_non_null(connect_one(&t, &b, 20, 0));
	/* one closes: room again */
	conn_table_remove(&t, conns[1]);
	assert_non_null(connect_one(&t, &a, 30, 0));
	assert_int_equal(t.stats.accepted, 5);
	assert_int_equal(t.stats.open, 4);
	assert_int_equal(t.stats.peak_open, 4);
	conn_table_free(&t);
}

static void test_eviction(void **state)
{
	struct conn_table t;
	struct conn_client a = v4("10.0.0.1"), b = v4("10.0.0.2"), c = v4("10.0.0.3");
	struct conn *x[4];
	int evict;

	init(&t, 4, 10);
	x[0] = connect_one(&t, &a, 100, 5 * S);
	x[1] = connect_one(&t, &a, 101, 1 * S); /* waited longest */
	x[2] = connect_one(&t, &b, 102, 2 * S);
	x[3] = connect_one(&t, &b, 103, 0);
	conn_table_set_phase(x[3], CONN_PROCESSING, 3 * S); /* being answered: never evicted */

	/* full: the longest-waiting receiving connection makes room */
	assert_int_equal(conn_table_admit(&t, &c, &evict), CONN_ADMIT);
	assert_int_equal(evict, 101);
	assert_true(x[1]->closing);
	assert_non_null(conn_table_add(&t, 104, &c, 6 * S));
	/* next: x[2] (2 s); a closing entry is not evicted twice */
	assert_int_equal(conn_table_admit(&t, &c, &evict), CONN_ADMIT);
	assert_int_equal(evict, 102);
	assert_non_null(conn_table_add(&t, 105, &c, 6 * S));
	/* nobody left waiting but the newest ones: x[0] (5 s) goes next */
	assert_int_equal(conn_table_admit(&t, &c, &evict), CONN_ADMIT);
	assert_int_equal(evict, 100);
	assert_non_null(conn_table_add(&t, 106, &c, 6 * S));
	/* everyone is being answered: refuse the newcomer */
	for (size_t i = 0; i < t.n_live; i++)
		if (!t.live[i]->closing)
			conn_table_set_phase(t.live[i], CONN_SENDING, 7 * S);
	assert_int_equal(conn_table_admit(&t, &c, &evict), CONN_REFUSE_FULL);
	assert_int_equal(evict, -1);
	assert_int_equal(t.stats.evicted, 3);
	assert_int_equal(t.stats.refused_full, 1);
	/* closing entries stay until the server closes them, then free their slots */
	assert_int_equal(t.n_live, 7);
	for (size_t i = t.n_live; i-- > 0;)
		if (t.live[i]->closing)
			conn_table_remove(&t, t.live[i]);
	assert_int_equal(t.n_live, 4);
	conn_table_free(&t);
}

static void test_deadlines(void **state)
{
	struct conn_table t;
	struct conn_client a = v4("10.0.0.1");
	struct conn *recv, *proc, *send, *keep;
	int fds[8];

	init(&t, 10, 10);
	recv = connect_one(&t, &a, 1, 0);
	proc = connect_one(&t, &a, 2, 0);
	send = connect_one(&t, &a, 3, 0);
	keep = connect_one(&t, &a, 4, 0);
	conn_table_set_phase(proc, CONN_PROCESSING, 1 * S);
	conn_table_set_phase(send, CONN_SENDING, 1 * S);
	conn_table_set_phase(keep, CONN_RECEIVING, 5 * S); /* a kept-alive connection's next request */

	assert_int_equal(conn_table_expired(&t, 9 * S, fds, 8), 0);
	/* 10 s after accept the first is cut, however many bytes it trickled */
	assert_int_equal(conn_table_expired(&t, 10 * S, fds, 8), 1);
	assert_int_equal(fds[0], 1);
	assert_true(recv->closing);
	/* returned once only */
	assert_int_equal(conn_table_expired(&t, 11 * S, fds, 8), 0);
	/* the kept-alive one: 10 s from the end of its previous response */
	assert_int_equal(conn_table_expired(&t, 15 * S, fds, 8), 1);
	assert_int_equal(fds[0], 4);
	/* processing: no deadline here (the query has its own); sending: 60 s */
	assert_int_equal(conn_table_expired(&t, 60 * S, fds, 8), 0);
	assert_int_equal(conn_table_expired(&t, 61 * S, fds, 8), 1);
	assert_int_equal(fds[0], 3);
	assert_false(proc->closing);
	assert_int_equal(t.stats.request_deadline, 2);
	assert_int_equal(t.stats.send_deadline, 1);
	/* closing connections do not count against their client */
	assert_int_equal(conn_table_client_count(&t, &a), 1);
	conn_table_free(&t);
}

/* More expired than the caller's array: the rest come on the next call. */
static void test_expired_batches(void **state)
{
	struct conn_table t;
	struct conn_client a = v4("10.0.0.1");
	int fds[3], seen = 0;
	size_t n;

	init(&t, 10, 10);
	for (int i = 0; i < 7; i++)
		connect_one(&t, &a, i, 0);
	while ((n = conn_table_expired(&t, 20 * S, fds, 3)) > 0)
		seen += (int)n;
	assert_int_equal(seen, 7);
	conn_table_free(&t);
}

/* The table never grows past its slots: a flood allocates nothing. */
static void test_slots(void **state)
{
	struct conn_table t;
	struct conn_client a = v4("10.0.0.1");
	struct conn *c;

	init(&t, 2, 100);
	for (unsigned i = 0; i < t.cap; i++) {
		assert_non_null(c = conn_table_add(&t, (int)i, &a, 0));
		c->closing = true; /* as if evicted */
	}
	assert_null(conn_table_add(&t, 999, &a, 0));
	int evict;
	assert_int_equal(conn_table_admit(&t, &a, &evict), CONN_ADMIT); /* all closing: room */
	conn_table_remove(&t, t.live[0]);
	assert_non_null(conn_table_add(&t, 1000, &a, 0));
	/* removing an entry twice is harmless */
	c = t.live[0];
	conn_table_remove(&t, c);
	conn_table_remove(&t, c);
	assert_int_equal(t.n_live + t.n_free, t.cap);
	conn_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clients),
		cmocka_unit_test(test_init_limits),
		cmocka_unit_test(test_per_client_limit),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_expired_batches),
		cmocka_unit_test(test_slots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
