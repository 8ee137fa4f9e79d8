/*
 * test_spans_endpoint.c - endpoint names and latency histograms.
 *
 * HTTP path templates, SQL normalization (MySQL and PostgreSQL dialects,
 * the statements sysbench and pgbench send among them), Redis command
 * names, text sanitizing; histogram bins, quantiles against a sorted
 * sample, and the blob encoding's round trip and refusal of bad blobs.
 */
#include "testutil.h"

#include "spans/endpoint.h"
#include "spans/hist.h"

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

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_hist(void **state)
{
	struct ember_hist h = {0}, back = {0};
	uint64_t v[5000];
	uint8_t blob[EMBER_HIST_BLOB_MAX];

	(void)state;
	/* every bin's range holds the values that fall in it */
	for (uint64_t ns = 1; ns < (1ull << 40); ns = ns * 3 / 2 + 1) {
		uint64_t lo, hi;
		unsigned b = ember_hist_bin(ns);
		ember_hist_bin_range(b, &lo, &hi);
		assert_true(b < EMBER_HIST_BINS);
		assert_true(ns >= lo && (ns < hi || b == EMBER_HIST_BINS - 1));
	}
	/* quantiles within a bin's width (12.5%) of a sorted sample's */
	srand(7);
	for (int i = 0; i < 5000; i++) {
		v[i] = 20000 + (uint64_t)rand() % 5000000 + (i % 100 == 0 ? 400000000 : 0);
		ember_hist_add(&h, v[i], 1);
	}
	qsort(v, 5000, sizeof(v[0]), cmp_u64);
	const double qs[] = {0.5, 0.9, 0.99};
	for (int i = 0; i < 3; i++) {
		double want = (double)v[(size_t)(qs[i] * 5000) - 1], got = (double)ember_hist_quantile(&h, qs[i]);
		assert_true(got >= want * 0.87 && got <= want * 1.13);
	}
	assert_int_equal(ember_hist_count(&h), 5000);
	size_t n = ember_hist_encode(&h, blob);
	assert_true(ember_hist_decode_add(&back, blob, n));
	assert_memory_equal(&h, &back, sizeof(h));
	/* truncated or out-of-range blobs are refused */
	assert_false(ember_hist_decode_add(&back, blob, n - 1) && blob[n - 1] & 0x80);
	uint8_t bad[] = {0xff, 0x7f, 1};
	assert_false(ember_hist_decode_add(&back, bad, sizeof(bad)));
	uint8_t zero[] = {0, 1};
	assert_false(ember_hist_decode_add(&back, zero, sizeof(zero)));
	struct ember_hist empty = {0};
	assert_int_equal(ember_hist_quantile(&empty, 0.5), 0);
	assert_int_equal(ember_hist_encode(&empty, blob), 0);
	/* Prometheus buckets */
	assert_int_equal(ember_le_index(500000), 0);
	assert_int_equal(ember_le_index(500001), 1);
	assert_int_equal(ember_le_index(20000000000ull), EMBER_LE_N);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_templates), cmocka_unit_test(test_sql),
		cmocka_unit_test(test_redis),          cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_hist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
