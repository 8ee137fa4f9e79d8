/*
 * units.h - durations and sizes as users type them: "48h", "14d", "2G".
 *
 * One parser for every option and argument that takes them (`ember run
 * --retention`, `--max-db-size`, `ember report --from -7d`), so they all
 * accept the same spellings and refuse the same mistakes.
 */
#ifndef EMBER_CORE_UNITS_H
#define EMBER_CORE_UNITS_H

#include <stdint.h>

/*
 * Digits and one unit: s, m (minutes), h, d, w.  Returns 0 and the
 * nanoseconds, or -EINVAL (no digits, no or an unknown unit, trailing
 * text) or -ERANGE (beyond 100 years).
 */
int ember_parse_duration(const char *s, int64_t *ns);

/*
 * Digits and an optional unit: none (bytes), K, M, G, T (powers of 1024,
 * an optional "iB" or "B" after them).  Returns 0, -EINVAL or -ERANGE
 * (beyond 2^60 bytes).
 */
int ember_parse_size(const char *s, uint64_t *bytes);

#endif
