/*
 * test_spans_endpoint.c - endpoint names and the Prometheus duration buckets.
 *
 * HTTP path templates, SQL normalization (MySQL and PostgreSQL dialects,
 * the statements sysbench and pgbench send among them), Redis command
 * names, text sanitizing; where a duration falls among the le buckets.
 * (The duration histograms are core/hist.c's, tested by test_hist.c.)
 */
#include "testutil.h"

#include "spans/endpoint.h"
#include "spans/red.h"

static void check_path(const char *in, const char *want)
{
	char out[EMBER_ENDPOINT_MAX];

	ember_http_path_template(in, strlen(in), out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_http_templates(void **state)
{
	(void)state;
	check_path("/users/42/orders/7", "/users/{id}/orders/{id}");
	check_path("/users/42?page=3#top", "/users/{id}");
	check_path("/o/123e4567-e89b-12d3-a456-426614174000/x", "/o/{id}/x");
	check_path("/blob/9f86d081884c7d65", "/blob/{id}");
	check_path("/blob/deadbeef", "/blob/deadbeef"); /* no digit: a word */
	check_path("/v1/static/app.js", "/v1/static/app.js");
	check_path("/t/aB3dE5fG7hI9jK1lM", "/t/{id}");
	check_path("http://example.com:8080/a/1?q", "/a/{id}");
	check_path("https://example.com", "/");
	check_path("", "/");
	check_path("/", "/");
	check_path("/a//b/", "/a//b/");
	check_path("/x\x01y", "/x?y");

	char out[EMBER_ENDPOINT_MAX];
	ember_endpoint_http("GET", 3, "/items/99", 9, out, sizeof(out));
	assert_string_equal(out, "GET /items/{id}");
	/* a long path is cut, never overflowed */
	char big[3000];
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	ember_endpoint_http("GET", 3, big, sizeof(big), out, sizeof(out));
	assert_int_equal(strlen(out), EMBER_ENDPOINT_MAX - 1);
}

static void check_sql(enum ember_sql_dialect d, const char *in, const char *want)
{
	char out[EMBER_ENDPOINT_MAX];

	ember_sql_normalize(in, strlen(in), d, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_sql(void **state)
{
	(void)state;
	/* sysbench oltp_read_only, with the values its lua script fills in */
	check_sql(EMBER_SQL_MYSQL, "SELECT c FROM sbtest1 WHERE id=5012",
		  "SELECT c FROM sbtest1 WHERE id=?");
	check_sql(EMBER_SQL_MYSQL, "SELECT c FROM sbtest1 WHERE id BETWEEN 10 AND 109 ORDER BY c",
		  "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c");
	check_sql(EMBER_SQL_MYSQL, "SELECT c FROM sbtest1 WHERE id=?", "SELECT c FROM sbtest1 WHERE id=?");
	/* pgbench -S */
	check_sql(EMBER_SQL_PGSQL, "SELECT abalance FROM pgbench_accounts WHERE aid = 81234;",
		  "SELECT abalance FROM pgbench_accounts WHERE aid = ?");
	check_sql(EMBER_SQL_PGSQL, "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
		  "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
	/* strings, escapes, comments, blanks */
	check_sql(EMBER_SQL_MYSQL, "select *  from t\n where a = 'it''s' and b=\"x\\\"y\" -- c\n",
		  "select * from t where a = ? and b=?");
	check_sql(EMBER_SQL_MYSQL, "/* hint */ SELECT 1 # trailing", "SELECT ?");
	check_sql(EMBER_SQL_PGSQL, "select \"Col\" from t where x = E'a\\'b' and y = 1.5e-3",
		  "select \"Col\" from t where x = ? and y = ?");
	check_sql(EMBER_SQL_PGSQL, "select $$a 'b' c$$, $tag$x$tag$", "select ?, ?");
	check_sql(EMBER_SQL_MYSQL, "SELECT x FROM t WHERE h = 0xFF AND n = -3", "SELECT x FROM t WHERE h = ? AND n = -?");
	/* lists */
	check_sql(EMBER_SQL_MYSQL, "SELECT * FROM t WHERE id IN (1, 2, 3,4)", "SELECT * FROM t WHERE id IN (?)");
	check_sql(EMBER_SQL_MYSQL, "select * from t where id in(?,?)", "select * from t where id in(?)");
	check_sql(EMBER_SQL_MYSQL, "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
		  "SELECT * FROM t WHERE id IN (SELECT id FROM u)");
	check_sql(EMBER_SQL_MYSQL, "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'),(3,'z')",
		  "INSERT INTO t (a, b) VALUES (?, ?),(?,?)");
	check_sql(EMBER_SQL_MYSQL, "INSERT INTO t VALUES (1, 2), (3, 4)", "INSERT INTO t VALUES (?, ?)");
	check_sql(EMBER_SQL_MYSQL, "BEGIN", "BEGIN");
	check_sql(EMBER_SQL_MYSQL, "COMMIT;", "COMMIT");
	check_sql(EMBER_SQL_MYSQL, "   ", "");
	/* unterminated pieces end the statement, nothing is read past it */
	check_sql(EMBER_SQL_MYSQL, "select 'abc", "select ?");
	check_sql(EMBER_SQL_MYSQL, "select /* abc", "select");
	check_sql(EMBER_SQL_PGSQL, "select $$abc", "select ?");
	/* invalid UTF-8 and control bytes */
	check_sql(EMBER_SQL_MYSQL, "select a\x01\xff from t", "select a?? from t");
}

static void test_redis(void **state)
{
	char out[EMBER_ENDPOINT_MAX];

	(void)state;
	ember_endpoint_redis("get", 3, "key:1", 5, out, sizeof(out));
	assert_string_equal(out, "GET");
	ember_endpoint_redis("config", 6, "get", 3, out, sizeof(out));
	assert_string_equal(out, "CONFIG GET");
	ember_endpoint_redis("CLIENT", 6, "setname", 7, out, sizeof(out));
	assert_string_equal(out, "CLIENT SETNAME");
	ember_endpoint_redis("bad\r\n", 5, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "BAD??");
	ember_endpoint_redis("", 0, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "?");
}

static void test_sanitize(void **state)
{
	char out[8];

	(void)state;
	/* a 3-byte character that does not fit is left out whole */
	assert_int_equal(ember_text_sanitize("abcde\xe2\x82\xac", 8, out, sizeof(out)), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(ember_text_sanitize("\xc3\xa9t\xc3", 4, out, sizeof(out)), 4);
	assert_string_equal(out, "\xc3\xa9t?");
	/* overlong encodings and surrogates are invalid */
	ember_text_sanitize("\xc0\xaf\xed\xa0\x80", 5, out, sizeof(out));
	assert_int_equal(out[0], '?');
	assert_int_equal(ember_text_sanitize("x", 1, out, 1), 0);
}

/* The Prometheus buckets of ember_request_duration_seconds (spans/red.h). */
static void test_le(void **state)
{
	(void)state;
	assert_int_equal(ember_le_index(0), 0);
	assert_int_equal(ember_le_index(500000), 0);
	assert_int_equal(ember_le_index(500001), 1);
	assert_int_equal(ember_le_index(10000000000ull), EMBER_LE_N - 1);
	assert_int_equal(ember_le_index(20000000000ull), EMBER_LE_N);
	for (unsigned i = 1; i < EMBER_LE_N; i++)
		assert_true(ember_le_seconds[i] > ember_le_seconds[i - 1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_templates), cmocka_unit_test(test_sql),
		cmocka_unit_test(test_redis),          cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_le),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
