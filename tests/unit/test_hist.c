/*
 * test_hist.c - the log-linear histograms of src/core/hist.c.
 *
 * Bucket bounds tile the values without gaps, and no bucket is wider than
 * 1/16 of its lower bound; quantiles land within that of the exact order
 * statistic of known samples; merging equals adding the same values; the
 * blob encoding round-trips, and every malformed blob is refused without
 * touching the histogram.
 */
#include "testutil.h"

#include <errno.h>
#include <math.h>

#include "core/hist.h"

static void bounds_tile(void **state)
{
	(void)state;
	assert_int_equal(ember_hist_lower(0), 0);
	for (unsigned i = 0; i + 1 < EMBER_HIST_BUCKETS; i++) {
		uint64_t lo = ember_hist_lower(i), hi = ember_hist_upper(i);
		assert_true(hi > lo);
		assert_int_equal(ember_hist_lower(i + 1), hi);
		if (lo >= 16)
			assert_true((hi - lo) * 16 <= lo);
		assert_int_equal(ember_hist_index(lo), i);
		assert_int_equal(ember_hist_index(hi - 1), i);
	}
	assert_int_equal(ember_hist_upper(EMBER_HIST_BUCKETS - 1), 1ull << 32);
	assert_int_equal(ember_hist_index(UINT64_MAX), EMBER_HIST_BUCKETS - 1);
	/* the Prometheus le bounds 25 us x 2^k are bucket bounds */
	for (unsigned k = 0; k < 18; k++)
		assert_int_equal(ember_hist_lower(ember_hist_index(25ull << k)), 25ull << k);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void quantiles_close(void **state)
{
	struct ember_hist h = {0};
	uint64_t v[1000];

	(void)state;
	srand(7);
	for (int i = 0; i < 1000; i++) {
		v[i] = 100 + (uint64_t)(rand() % 50000);
		assert_int_equal(ember_hist_add(&h, v[i], 1), 0);
	}
	qsort(v, 1000, sizeof(v[0]), cmp_u64);
	assert_int_equal(h.count, 1000);
	double p50 = ember_hist_quantile(&h, 0.5), p99 = ember_hist_quantile(&h, 0.99);
	assert_true(fabs(p50 - (double)v[499]) <= (double)v[499] / 32 + 1);
	assert_true(fabs(p99 - (double)v[989]) <= (double)v[989] / 32 + 1);
	assert_true(ember_hist_quantile(&h, 0) == 0); /* q must be > 0 */
	struct ember_hist empty = {0};
	assert_true(ember_hist_quantile(&empty, 0.5) == 0);
	/* count_le: everything at or below the largest value's bucket end */
	assert_int_equal(ember_hist_count_le(&h, 1ull << 31), 1000);
	assert_int_equal(ember_hist_count_le(&h, 50), 0);
	ember_hist_free(&h);
}

static void merge_is_add(void **state)
{
	struct ember_hist a = {0}, b = {0}, all = {0};

	(void)state;
	for (uint64_t x = 1; x < 100000; x = x * 3 + 1) {
		ember_hist_add(&a, x, 2);
		ember_hist_add(&all, x, 2);
	}
	for (uint64_t x = 5; x < 500000; x = x * 7 + 3) {
		ember_hist_add(&b, x, 1);
		ember_hist_add(&all, x, 1);
	}
	assert_int_equal(ember_hist_merge(&a, &b), 0);
	assert_int_equal(a.count, all.count);
	assert_int_equal(a.sum_us, all.sum_us);
	assert_int_equal(a.n, all.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_int_equal(a.b[i].index, all.b[i].index);
		assert_int_equal(a.b[i].count, all.b[i].count);
	}
	ember_hist_free(&a);
	ember_hist_free(&b);
	ember_hist_free(&all);
}

static void blob_round_trip(void **state)
{
	struct ember_hist h = {0}, back = {0};
	struct strbuf sb;

	(void)state;
	sb_init(&sb);
	ember_hist_encode(&h, &sb);
	assert_int_equal(sb.len, 0); /* empty: no blob */
	for (uint64_t x = 0; x < (1ull << 33); x = x * 2 + 1)
		ember_hist_add(&h, x, (uint32_t)(x % 7 + 1));
	ember_hist_encode(&h, &sb);
	assert_int_equal(ember_hist_decode_add(&back, sb.buf, sb.len), 0);
	assert_int_equal(back.count, h.count);
	assert_int_equal(back.sum_us, h.sum_us);
	assert_int_equal(back.n, h.n);
	assert_memory_equal(back.b, h.b, h.n * sizeof(*h.b));
	/* decoding adds */
	assert_int_equal(ember_hist_decode_add(&back, sb.buf, sb.len), 0);
	assert_int_equal(back.count, 2 * h.count);
	assert_int_equal(ember_hist_decode_add(&back, "", 0), 0);
	sb_free(&sb);
	ember_hist_free(&h);
	ember_hist_free(&back);
}

static void bad_blobs(void **state)
{
	struct ember_hist h = {0};
	static const struct {
		const char *blob;
		size_t len;
	} bad[] = {
		{"\x02\x00\x01\x01", 4},     /* unknown version */
		{"\x01", 1},                 /* no sum */
		{"\x01\x00", 2},             /* no pairs */
		{"\x01\x00\x00\x01", 4},     /* distance 0 */
		{"\x01\x00\x01\x00", 4},     /* count 0 */
		{"\x01\x00\x01", 3},         /* pair cut short */
		{"\x01\x00\xd1\x03\x01", 5}, /* index 464: past the last bucket */
		{"\x01\x00\x01\x80", 4},     /* varint cut short */
		{"\x01\x00\x01\x80\x80\x80\x80\x80\x01", 9}, /* count over 32 bits */
	};

	(void)state;
	ember_hist_add(&h, 1000, 3);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ember_hist_decode_add(&h, bad[i].blob, bad[i].len), -EINVAL);
		assert_int_equal(h.count, 3);
		assert_int_equal(h.n, 1);
	}
	/* the last bucket itself is fine: index 463 = distance 464 from -1 */
	assert_int_equal(ember_hist_decode_add(&h, "\x01\x00\xd0\x03\x01", 5), 0);
	assert_int_equal(h.count, 4);
	ember_hist_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bounds_tile),    cmocka_unit_test(quantiles_close),
		cmocka_unit_test(merge_is_add),   cmocka_unit_test(blob_round_trip),
		cmocka_unit_test(bad_blobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
