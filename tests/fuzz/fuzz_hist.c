/*
 * fuzz_hist.c - libFuzzer target for the histogram blob decoder.
 *
 * RTT, connect-latency and request-duration histograms are stored as
 * blobs (src/core/hist.h) in a database file anyone with write access
 * could damage.
 * The input is decoded; a blob that decodes must re-encode to one that
 * decodes to the same histogram, and its quantiles must be ordered and
 * inside the bucket range.  Besides sanitizer reports, the target aborts
 * when either does not hold.
 *
 * FUZZ_SOURCES: src/core/array.c src/core/strbuf.c src/core/hist.c
 * FUZZ_LIBS:
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ember_hist h = {0}, back = {0};
	struct strbuf sb;

	if (ember_hist_decode_add(&h, data, size) != 0) {
		if (h.n || h.count)
			abort(); /* a refused blob must leave the histogram alone */
		return 0;
	}
	sb_init(&sb);
	ember_hist_encode(&h, &sb);
	if (sb.oom || ember_hist_decode_add(&back, sb.buf, sb.len) != 0 || back.n != h.n ||
	    back.count != h.count || back.sum_us != h.sum_us ||
	    (h.n && memcmp(back.b, h.b, h.n * sizeof(*h.b)) != 0))
		abort();
	double p50 = ember_hist_quantile(&h, 0.5), p99 = ember_hist_quantile(&h, 0.99);
	if (p50 > p99 || p99 > (double)(1ull << 32))
		abort();
	sb_free(&sb);
	ember_hist_free(&h);
	ember_hist_free(&back);
	return 0;
}
