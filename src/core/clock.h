/*
 * clock.h - the monotonic clock in nanoseconds, for intervals, deadlines
 * and rate limits (wall-clock times are the store's and the commands' own).
 */
#ifndef EMBER_CORE_CLOCK_H
#define EMBER_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t ember_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
