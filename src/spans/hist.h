/*
 * hist.h - latency histograms: log-linear bins for quantiles, fixed
 * Prometheus buckets for /metrics.
 *
 * Bins: durations below 1024 ns share bin 0; from there every power of two
 * is split into EMBER_HIST_SUB equal bins (each under 12.5% wide), up to
 * 2^38 ns (~275 s); longer ones share the last bin.  A quantile is
 * interpolated linearly inside its bin, so it is within the bin's width of
 * the true value.
 *
 * Stored as a blob of varint pairs (distance to the previous non-empty
 * bin + 1, count), ascending: an empty histogram is an empty blob, a
 * typical one a few dozen bytes.  Decoding is bounds-checked.
 */
#ifndef EMBER_SPANS_HIST_H
#define EMBER_SPANS_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMBER_HIST_SUB 8
#define EMBER_HIST_MIN_SHIFT 10
#define EMBER_HIST_MAX_SHIFT 38
#define EMBER_HIST_BINS (2 + (EMBER_HIST_MAX_SHIFT - EMBER_HIST_MIN_SHIFT) * EMBER_HIST_SUB)
#define EMBER_HIST_BLOB_MAX (EMBER_HIST_BINS * 12)

struct ember_hist {
	uint64_t bins[EMBER_HIST_BINS];
};

unsigned ember_hist_bin(uint64_t ns);
/* [lower, upper) of a bin in ns (the last bin's upper bound is its lower bound * 2). */
void ember_hist_bin_range(unsigned bin, uint64_t *lower, uint64_t *upper);

static inline void ember_hist_add(struct ember_hist *h, uint64_t ns, uint64_t n)
{
	h->bins[ember_hist_bin(ns)] += n;
}

void ember_hist_merge(struct ember_hist *into, const struct ember_hist *from);
uint64_t ember_hist_count(const struct ember_hist *h);
/* The q-quantile (0 < q <= 1) in ns, 0 for an empty histogram. */
uint64_t ember_hist_quantile(const struct ember_hist *h, double q);

/* Encode into out (EMBER_HIST_BLOB_MAX bytes); returns the length. */
size_t ember_hist_encode(const struct ember_hist *h, uint8_t *out);
/* Add a blob's counts to h; false (h partly updated) on a malformed blob. */
bool ember_hist_decode_add(struct ember_hist *h, const void *blob, size_t len);

/* Prometheus buckets of ember_request_duration_seconds (upper bounds, +Inf implied). */
#define EMBER_LE_N 14
extern const double ember_le_seconds[EMBER_LE_N];
/* Index of the first bucket whose bound holds ns (EMBER_LE_N for +Inf only). */
unsigned ember_le_index(uint64_t ns);

#endif
