/*
 * endpoints.h - interned endpoint names: (protocol, name) -> small id.
 *
 * The span thread interns a request's endpoint once and then speaks ids:
 * aggregation keys, the kernel's request -> endpoint tags (per-endpoint CPU
 * profiles) and the store all use them.  The table is bounded: past `max`
 * names every new one is EMBER_ENDPOINT_OTHER ("other"), counted.
 *
 * One thread interns (the span thread); any thread may read a name by id:
 * names are written before the count that publishes them and never move.
 */
#ifndef EMBER_SPANS_ENDPOINTS_H
#define EMBER_SPANS_ENDPOINTS_H

#include <stddef.h>
#include <stdint.h>

#define EMBER_ENDPOINT_OTHER 0u
#define EMBER_ENDPOINTS_DEFAULT_MAX 16384

struct ember_endpoints;

struct ember_endpoints *ember_endpoints_new(size_t max);
void ember_endpoints_free(struct ember_endpoints *e);

/* The id of (proto, name); EMBER_ENDPOINT_OTHER when the table is full or out of memory. */
uint32_t ember_endpoints_intern(struct ember_endpoints *e, uint8_t proto, const char *name);

/* The id of (proto, name) if interned, else UINT32_MAX (span thread). */
uint32_t ember_endpoints_find(const struct ember_endpoints *e, uint8_t proto, const char *name);

/* Name and protocol of an id (any thread); "other" / 0 for EMBER_ENDPOINT_OTHER, NULL if unknown. */
const char *ember_endpoints_name(const struct ember_endpoints *e, uint32_t id);
uint8_t ember_endpoints_proto(const struct ember_endpoints *e, uint32_t id);

size_t ember_endpoints_count(const struct ember_endpoints *e);
/* Names refused because the table was full. */
uint64_t ember_endpoints_overflow(const struct ember_endpoints *e);

#endif
