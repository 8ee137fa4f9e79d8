/*
 * hist.c - sparse log-linear histograms (see hist.h for the layout).
 *
 * Adding and merging keep the bucket array sorted; merging walks both
 * arrays once into a new one.  Histograms are small (an RTT distribution
 * over a day of one peer rarely spans more than a few dozen buckets), so
 * sorted arrays beat any fancier structure here.
 */
#include "core/hist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/varint.h"

#define SUB (1u << EMBER_HIST_SUB_BITS)
#define BLOB_VERSION 1

unsigned ember_hist_index(uint64_t us)
{
	if (us >= (1ull << 32))
		us = (1ull << 32) - 1;
	if (us < SUB)
		return (unsigned)us;
	unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= EMBER_HIST_SUB_BITS */
	unsigned sub = (unsigned)(us >> (e - EMBER_HIST_SUB_BITS)) & (SUB - 1);
	return SUB + (e - EMBER_HIST_SUB_BITS) * SUB + sub;
}

uint64_t ember_hist_lower(unsigned index)
{
	if (index < SUB)
		return index;
	if (index >= EMBER_HIST_BUCKETS)
		return 1ull << 32;
	unsigned e = (index - SUB) / SUB + EMBER_HIST_SUB_BITS, sub = (index - SUB) % SUB;
	return (uint64_t)(SUB + sub) << (e - EMBER_HIST_SUB_BITS);
}

uint64_t ember_hist_upper(unsigned index)
{
	return ember_hist_lower(index + 1);
}

/* Position of index in h->b, or where it would go. */
static size_t find(const struct ember_hist *h, unsigned index)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->b[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int add_bucket(struct ember_hist *h, unsigned index, uint32_t count)
{
	size_t at = find(h, index);

	if (at < h->n && h->b[at].index == index) {
		uint64_t c = (uint64_t)h->b[at].count + count;
		h->b[at].count = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
		return 0;
	}
	if (ember_array_grow(&h->b, &h->cap, h->n + 1, sizeof(*h->b)))
		return -ENOMEM;
	memmove(&h->b[at + 1], &h->b[at], (h->n - at) * sizeof(*h->b));
	h->b[at] = (struct ember_hist_bucket){(uint16_t)index, count};
	h->n++;
	return 0;
}

int ember_hist_add(struct ember_hist *h, uint64_t us, uint32_t count)
{
	if (!count)
		return 0;
	if (add_bucket(h, ember_hist_index(us), count))
		return -ENOMEM;
	h->count += count;
	h->sum_us += us * count;
	return 0;
}

int ember_hist_merge(struct ember_hist *dst, const struct ember_hist *src)
{
	struct ember_hist_bucket *out;
	size_t i = 0, j = 0, n = 0;

	if (!src->n) {
		dst->sum_us += src->sum_us;
		return 0;
	}
	out = malloc((dst->n + src->n) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	while (i < dst->n || j < src->n) {
		if (j == src->n || (i < dst->n && dst->b[i].index < src->b[j].index)) {
			out[n++] = dst->b[i++];
		} else if (i == dst->n || src->b[j].index < dst->b[i].index) {
			out[n++] = src->b[j++];
		} else {
			uint64_t c = (uint64_t)dst->b[i].count + src->b[j].count;
			out[n] = dst->b[i];
			out[n++].count = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
			i++;
			j++;
		}
	}
	free(dst->b);
	dst->b = out;
	dst->n = n;
	dst->cap = n;
	dst->count += src->count;
	dst->sum_us += src->sum_us;
	return 0;
}

void ember_hist_reset(struct ember_hist *h)
{
	h->n = 0;
	h->count = 0;
	h->sum_us = 0;
}

void ember_hist_free(struct ember_hist *h)
{
	free(h->b);
	memset(h, 0, sizeof(*h));
}

double ember_hist_quantile(const struct ember_hist *h, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (size_t i = 0; i < h->n; i++)
		total += h->b[i].count;
	if (!total || !(q > 0))
		return 0;
	if (q > 1)
		q = 1;
	rank = (uint64_t)(q * (double)total);
	if ((double)rank < q * (double)total)
		rank++;
	if (!rank)
		rank = 1;
	for (size_t i = 0; i < h->n; i++) {
		seen += h->b[i].count;
		if (seen >= rank) {
			uint64_t lo = ember_hist_lower(h->b[i].index), hi = ember_hist_upper(h->b[i].index);
			return hi - lo <= 1 ? (double)lo : (double)lo + (double)(hi - lo) / 2;
		}
	}
	return (double)ember_hist_lower(h->b[h->n - 1].index);
}

uint64_t ember_hist_count_le(const struct ember_hist *h, uint64_t us)
{
	uint64_t n = 0;

	for (size_t i = 0; i < h->n && ember_hist_upper(h->b[i].index) <= us + 1; i++)
		n += h->b[i].count;
	return n;
}

void ember_hist_encode(const struct ember_hist *h, struct strbuf *sb)
{
	unsigned char buf[2 * EMBER_VARINT_MAX];
	long prev = -1;

	if (!h->n)
		return;
	buf[0] = BLOB_VERSION;
	sb_append(sb, buf, 1 + ember_varint_put(buf + 1, h->sum_us));
	for (size_t i = 0; i < h->n; i++) {
		size_t n = ember_varint_put(buf, (uint64_t)((long)h->b[i].index - prev));
		n += ember_varint_put(buf + n, h->b[i].count);
		sb_append(sb, buf, n);
		prev = h->b[i].index;
	}
}

int ember_hist_decode_add(struct ember_hist *h, const void *blob, size_t len)
{
	const unsigned char *p = blob, *end;
	struct ember_hist tmp = {0};
	uint64_t sum, delta, count;
	long prev = -1;
	int ret;

	if (!len)
		return 0;
	if (!blob || len > EMBER_HIST_MAX_BLOB || p[0] != BLOB_VERSION)
		return -EINVAL;
	end = p + len;
	p++;
	if (!ember_varint_get(&p, end, &sum))
		return -EINVAL;
	while (p < end) {
		if (!ember_varint_get(&p, end, &delta) || !ember_varint_get(&p, end, &count) || !delta ||
		    !count || count > UINT32_MAX || delta >= (uint64_t)(EMBER_HIST_BUCKETS - prev)) {
			ember_hist_free(&tmp);
			return -EINVAL;
		}
		prev += (long)delta;
		if (ember_array_grow(&tmp.b, &tmp.cap, tmp.n + 1, sizeof(*tmp.b))) {
			ember_hist_free(&tmp);
			return -ENOMEM;
		}
		tmp.b[tmp.n++] = (struct ember_hist_bucket){(uint16_t)prev, (uint32_t)count};
		tmp.count += count;
	}
	if (!tmp.n) {
		ember_hist_free(&tmp);
		return -EINVAL;
	}
	tmp.sum_us = sum;
	ret = ember_hist_merge(h, &tmp);
	ember_hist_free(&tmp);
	return ret;
}
