/*
 * hist.c - log-linear latency histograms and their blob encoding.
 */
#include "spans/hist.h"

#include <string.h>

const double ember_le_seconds[EMBER_LE_N] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
					     0.025,  0.05,  0.1,    0.25,  0.5,
					     1,      2.5,   5,      10};

unsigned ember_le_index(uint64_t ns)
{
	unsigned i = 0;

	while (i < EMBER_LE_N && (double)ns > ember_le_seconds[i] * 1e9)
		i++;
	return i;
}

unsigned ember_hist_bin(uint64_t ns)
{
	if (ns < (1ull << EMBER_HIST_MIN_SHIFT))
		return 0;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns);
	if (e >= EMBER_HIST_MAX_SHIFT)
		return EMBER_HIST_BINS - 1;
	unsigned sub = (unsigned)(ns >> (e - 3)) & (EMBER_HIST_SUB - 1);
	return 1 + (e - EMBER_HIST_MIN_SHIFT) * EMBER_HIST_SUB + sub;
}

void ember_hist_bin_range(unsigned bin, uint64_t *lower, uint64_t *upper)
{
	if (bin == 0) {
		*lower = 0;
		*upper = 1ull << EMBER_HIST_MIN_SHIFT;
		return;
	}
	if (bin >= EMBER_HIST_BINS - 1) {
		*lower = 1ull << EMBER_HIST_MAX_SHIFT;
		*upper = *lower * 2;
		return;
	}
	unsigned e = (bin - 1) / EMBER_HIST_SUB + EMBER_HIST_MIN_SHIFT;
	uint64_t sub = (bin - 1) % EMBER_HIST_SUB;
	*lower = (EMBER_HIST_SUB + sub) << (e - 3);
	*upper = (EMBER_HIST_SUB + sub + 1) << (e - 3);
}

void ember_hist_merge(struct ember_hist *into, const struct ember_hist *from)
{
	for (unsigned i = 0; i < EMBER_HIST_BINS; i++)
		into->bins[i] += from->bins[i];
}

uint64_t ember_hist_count(const struct ember_hist *h)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < EMBER_HIST_BINS; i++)
		n += h->bins[i];
	return n;
}

uint64_t ember_hist_quantile(const struct ember_hist *h, double q)
{
	uint64_t total = ember_hist_count(h), seen = 0;

	if (!total)
		return 0;
	if (q > 1)
		q = 1;
	double rank = q * (double)total;
	for (unsigned i = 0; i < EMBER_HIST_BINS; i++) {
		if (!h->bins[i])
			continue;
		if ((double)(seen + h->bins[i]) >= rank) {
			uint64_t lo, hi;
			ember_hist_bin_range(i, &lo, &hi);
			double frac = (rank - (double)seen) / (double)h->bins[i];
			if (frac < 0)
				frac = 0;
			return lo + (uint64_t)(frac * (double)(hi - lo));
		}
		seen += h->bins[i];
	}
	return 0;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

size_t ember_hist_encode(const struct ember_hist *h, uint8_t *out)
{
	size_t n = 0;
	unsigned prev = 0; /* bin index + 1 of the previous non-empty bin */

	for (unsigned i = 0; i < EMBER_HIST_BINS; i++) {
		if (!h->bins[i])
			continue;
		n += put_varint(out + n, i + 1 - prev);
		n += put_varint(out + n, h->bins[i]);
		prev = i + 1;
	}
	return n;
}

bool ember_hist_decode_add(struct ember_hist *h, const void *blob, size_t len)
{
	const uint8_t *p = blob, *end = p + (blob ? len : 0);
	uint64_t bin = 0;

	while (p < end) {
		uint64_t delta, count;
		if (!get_varint(&p, end, &delta) || !get_varint(&p, end, &count) || !delta ||
		    delta > EMBER_HIST_BINS || bin + delta > EMBER_HIST_BINS)
			return false;
		bin += delta;
		h->bins[bin - 1] += count;
	}
	return true;
}
