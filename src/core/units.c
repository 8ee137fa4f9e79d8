/*
 * units.c - durations and sizes as users type them (see units.h).
 */
#include "core/units.h"

#include <errno.h>
#include <string.h>

#define NS 1000000000LL
#define MAX_SECONDS (100LL * 366 * 86400)

/* Leading decimal digits into *n (at most 18 of them); the rest in *end. */
static int digits(const char *s, uint64_t *n, const char **end)
{
	int k = 0;

	*n = 0;
	for (; *s >= '0' && *s <= '9'; s++, k++) {
		if (k == 18)
			return -ERANGE;
		*n = *n * 10 + (uint64_t)(*s - '0');
	}
	*end = s;
	return k ? 0 : -EINVAL;
}

int ember_parse_duration(const char *s, int64_t *ns)
{
	const char *u;
	uint64_t n, mul;
	int ret = s ? digits(s, &n, &u) : -EINVAL;

	if (ret)
		return ret;
	if (!u[0] || u[1])
		return -EINVAL;
	switch (u[0]) {
	case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	case 'w': mul = 7 * 86400; break;
	default: return -EINVAL;
	}
	if (n > (uint64_t)MAX_SECONDS / mul)
		return -ERANGE;
	*ns = (int64_t)(n * mul) * NS;
	return 0;
}

int ember_parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "KMGT";
	const char *u, *p;
	uint64_t n;
	unsigned shift = 0;
	int ret = s ? digits(s, &n, &u) : -EINVAL;

	if (ret)
		return ret;
	if (*u && (p = strchr(units, *u))) {
		shift = 10 * (unsigned)(p - units + 1);
		u++;
		if (strcmp(u, "iB") == 0 || strcmp(u, "B") == 0)
			u += strlen(u);
	}
	if (*u)
		return -EINVAL;
	if (n > (1ULL << 60) >> shift)
		return -ERANGE;
	*bytes = n << shift;
	return 0;
}
