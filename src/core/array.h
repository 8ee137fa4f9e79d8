/*
 * array.h - growing a heap array by doubling.
 *
 * Every module keeps some "pointer + count + capacity" arrays; this is the
 * one place that grows them, with the overflow check done once.
 */
#ifndef EMBER_CORE_ARRAY_H
#define EMBER_CORE_ARRAY_H

#include <stddef.h>

/*
 * Make room for `need` elements of `elem` bytes in the array *arrp (a
 * pointer to the array pointer) of capacity *cap, doubling as needed.
 * Returns 0, or -ENOMEM (the array is unchanged) on OOM or size overflow.
 */
int ember_array_grow(void *arrp, size_t *cap, size_t need, size_t elem);

#endif
