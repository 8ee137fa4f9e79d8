/*
 * varint.h - unsigned LEB128 varints, for compact blobs (stacks, histograms).
 *
 * A value is written 7 bits at a time, low bits first, the high bit of each
 * byte saying another follows: row ids and counts below 2^21 take three
 * bytes or less.  The reader is bounds-checked and refuses a varint that is
 * cut short or longer than 64 bits.
 */
#ifndef EMBER_CORE_VARINT_H
#define EMBER_CORE_VARINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMBER_VARINT_MAX 10 /* bytes of the longest 64-bit varint */

/* Write v at out (room for EMBER_VARINT_MAX bytes); returns the bytes written. */
static inline size_t ember_varint_put(unsigned char *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (unsigned char)v;
	return n;
}

/* Decode one varint from [*p, end).  Returns false on a truncated or overlong one. */
static inline bool ember_varint_get(const unsigned char **p, const unsigned char *end,
				    uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

#endif
