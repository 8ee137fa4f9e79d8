/*
 * hist.h - log-linear histograms of durations (TCP RTT and connect latency,
 * L7 request durations).
 *
 * Values are microseconds.  Below 16 µs every value has its own bucket;
 * above, each power of two is split into 16 equal buckets, so a bucket is
 * at most 1/16 of its lower bound wide and a quantile read at the bucket's
 * middle is within ~3% of the truth.  Bucket bounds are fixed, so
 * histograms from different hosts, sockets and times merge by adding
 * counts.  Storage is sparse (only buckets that hold something), in memory
 * and in the store's blob encoding:
 *
 *   blob   = version (1 byte, 1) || varint sum_us || pairs
 *   pairs  = (varint index distance >= 1, varint count >= 1)*, indexes
 *            ascending, the first distance counted from -1
 *
 * The decoder checks every bound (the blob comes from a database file
 * someone may have damaged: tests/fuzz/fuzz_hist.c).
 */
#ifndef EMBER_CORE_HIST_H
#define EMBER_CORE_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

#define EMBER_HIST_SUB_BITS 4
#define EMBER_HIST_BUCKETS 464 /* values up to 2^32 - 1 µs (71 minutes) */
#define EMBER_HIST_MAX_BLOB (2 + 10 + EMBER_HIST_BUCKETS * 8)

struct ember_hist_bucket {
	uint16_t index;
	uint32_t count;
};

struct ember_hist {
	struct ember_hist_bucket *b; /* ascending index, counts > 0 */
	size_t n, cap;
	uint64_t count;  /* sum of the bucket counts */
	uint64_t sum_us; /* sum of the values (Prometheus _sum) */
};

/* Bucket of a value, and a bucket's bounds [lower, upper). */
unsigned ember_hist_index(uint64_t us);
uint64_t ember_hist_lower(unsigned index);
uint64_t ember_hist_upper(unsigned index);

/* Add count observations of a value.  Returns 0 or -ENOMEM. */
int ember_hist_add(struct ember_hist *h, uint64_t us, uint32_t count);
/* dst += src.  Returns 0 or -ENOMEM (dst unchanged). */
int ember_hist_merge(struct ember_hist *dst, const struct ember_hist *src);
void ember_hist_reset(struct ember_hist *h);
void ember_hist_free(struct ember_hist *h);

/*
 * The q-quantile (0 < q <= 1) in microseconds: the middle of the bucket
 * holding the observation of rank ceil(q * count).  0 when empty.
 */
double ember_hist_quantile(const struct ember_hist *h, double q);

/* Observations whose bucket lies wholly at or below `us` (for Prometheus le). */
uint64_t ember_hist_count_le(const struct ember_hist *h, uint64_t us);

/* Append the blob encoding to sb (nothing for an empty histogram). */
void ember_hist_encode(const struct ember_hist *h, struct strbuf *sb);

/*
 * Decode a blob and add it to h.  An empty blob is an empty histogram.
 * Returns 0, -EINVAL for a malformed blob (h unchanged) or -ENOMEM.
 */
int ember_hist_decode_add(struct ember_hist *h, const void *blob, size_t len);

#endif
