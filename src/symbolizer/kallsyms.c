/*
 * kallsyms.c - parse /proc/kallsyms and look kernel addresses up.
 *
 * The file is read line by line; names are copied into one pool and
 * referenced by offset while parsing (the pool moves as it grows), then
 * turned into pointers once it is final.  Entries are sorted by address
 * with the preferred symbol first at equal addresses (global T before
 * local t before weak W/w), duplicates dropped, and runs of non-text
 * symbols squeezed to one end marker.
 */
#include "symbolizer/kallsyms.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No kernel function is bigger than this; beyond it an address is unknown. */
#define KSYM_MAX_REACH (1u << 20)
#define KSYM_NAME_MAX 512

struct raw_sym {
	uint64_t addr;
	uint32_t name;   /* pool offset */
	uint32_t module; /* pool offset, UINT32_MAX for vmlinux */
	uint8_t rank;    /* 0 T, 1 t, 2 W/w, 3 not text */
};

struct builder {
	struct raw_sym *syms;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t last_module; /* module names repeat on consecutive lines */
};

static int type_rank(char t)
{
	switch (t) {
	case 'T':
		return 0;
	case 't':
		return 1;
	case 'W':
	case 'w':
		return 2;
	default:
		return 3;
	}
}

static int pool_add(struct builder *b, const char *s, size_t len, uint32_t *off)
{
	if (b->pool_len + len + 1 > UINT32_MAX - 1)
		return -EFBIG;
	if (b->pool_len + len + 1 > b->pool_cap) {
		size_t cap = b->pool_cap ? b->pool_cap * 2 : 1 << 20;
		while (cap < b->pool_len + len + 1)
			cap *= 2;
		char *p = realloc(b->pool, cap);
		if (!p)
			return -ENOMEM;
		b->pool = p;
		b->pool_cap = cap;
	}
	memcpy(b->pool + b->pool_len, s, len);
	b->pool[b->pool_len + len] = '\0';
	*off = (uint32_t)b->pool_len;
	b->pool_len += len + 1;
	return 0;
}

/*
 * Parse "ADDR TYPE NAME[\t[MODULE]]".  Returns 0 on success, 1 for a
 * malformed line, or -ENOMEM.
 */
static int parse_line(struct builder *b, const char *line, size_t len)
{
	const char *p = line, *end = line + len;
	uint64_t addr = 0;
	int digits = 0;

	while (p < end && *p != ' ') {
		char c = *p++;
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (v < 0 || ++digits > 16)
			return 1;
		addr = addr << 4 | (uint64_t)v;
	}
	if (digits == 0 || end - p < 4 || p[0] != ' ' || p[2] != ' ')
		return 1;
	char type = p[1];
	p += 3;
	const char *name = p;
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	size_t name_len = (size_t)(p - name);
	if (name_len == 0 || name_len > KSYM_NAME_MAX)
		return 1;

	const char *mod = NULL;
	size_t mod_len = 0;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close || close == p + 1 || (size_t)(close - p - 1) > KSYM_NAME_MAX)
			return 1;
		mod = p + 1;
		mod_len = (size_t)(close - mod);
	}

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		struct raw_sym *s = realloc(b->syms, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		b->syms = s;
		b->cap = cap;
	}
	struct raw_sym *s = &b->syms[b->n];
	int err = pool_add(b, name, name_len, &s->name);
	if (err)
		return err;
	s->module = UINT32_MAX;
	if (mod) {
		if (b->last_module != UINT32_MAX && strlen(b->pool + b->last_module) == mod_len &&
		    memcmp(b->pool + b->last_module, mod, mod_len) == 0)
			s->module = b->last_module;
		else if ((err = pool_add(b, mod, mod_len, &s->module)) != 0)
			return err;
		b->last_module = s->module;
	}
	s->addr = addr;
	s->rank = (uint8_t)type_rank(type);
	b->n++;
	return 0;
}

static int leading_underscores(const char *s)
{
	int n = 0;
	while (s[n] == '_')
		n++;
	return n;
}

static int cmp_raw(const void *pa, const void *pb, void *pool)
{
	const struct raw_sym *a = pa, *b = pb;
	const char *na = (const char *)pool + a->name, *nb = (const char *)pool + b->name;
	int d;

	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank - b->rank;
	if ((d = leading_underscores(na) - leading_underscores(nb)) != 0)
		return d;
	return strcmp(na, nb);
}

/* Sort, deduplicate, and convert offsets to pointers into k->pool. */
static int finish(struct builder *b, struct ember_kallsyms *k)
{
	if (b->n > 1)
		qsort_r(b->syms, b->n, sizeof(*b->syms), cmp_raw, b->pool);
	k->syms = malloc((b->n ? b->n : 1) * sizeof(*k->syms));
	if (!k->syms)
		return -ENOMEM;
	k->pool = b->pool;
	k->pool_len = b->pool_len;
	k->pool_cap = b->pool_cap;
	b->pool = NULL;
	for (size_t i = 0; i < b->n; i++) {
		const struct raw_sym *r = &b->syms[i];
		bool text = r->rank < 3;
		if (i > 0 && b->syms[i - 1].addr == r->addr)
			continue; /* the preferred symbol came first */
		if (!text && k->n > 0 && !k->syms[k->n - 1].name)
			continue; /* one end marker per run of non-text symbols */
		struct ember_ksym *s = &k->syms[k->n++];
		s->addr = r->addr;
		s->name = text ? k->pool + r->name : NULL;
		s->module = r->module != UINT32_MAX ? k->pool + r->module : NULL;
		if (text)
			k->n_text++;
	}
	return 0;
}

int ember_kallsyms_load(const char *path, struct ember_kallsyms **out)
{
	struct builder b = {.last_module = UINT32_MAX};
	struct ember_kallsyms *k;
	size_t cap = 0, nonzero = 0, malformed = 0;
	char *line = NULL;
	ssize_t len;
	int err = 0;
	FILE *f;

	*out = NULL;
	f = fopen(path ? path : EMBER_KALLSYMS_PATH, "re");
	if (!f)
		return -errno;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			len--;
		int r = parse_line(&b, line, (size_t)len);
		if (r < 0) {
			err = r;
			break;
		}
		if (r > 0)
			malformed++;
		else if (b.syms[b.n - 1].addr != 0)
			nonzero++;
	}
	free(line);
	fclose(f);

	if (!err && b.n > 0 && nonzero == 0)
		err = -EPERM; /* kptr_restrict: addresses hidden from us */
	k = calloc(1, sizeof(*k));
	if (!err && !k)
		err = -ENOMEM;
	if (!err)
		err = finish(&b, k);
	if (!err && k->n_text == 0)
		err = -ENODATA;
	free(b.syms);
	free(b.pool);
	if (err) {
		ember_kallsyms_free(k);
		return err;
	}
	k->malformed = malformed;
	*out = k;
	return 0;
}

void ember_kallsyms_free(struct ember_kallsyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->pool);
	free(k);
}

const struct ember_ksym *ember_kallsyms_lookup(const struct ember_kallsyms *k, uint64_t addr,
					       uint64_t *offset)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct ember_ksym *s = &k->syms[lo - 1];
	if (!s->name || addr - s->addr >= KSYM_MAX_REACH)
		return NULL;
	if (offset)
		*offset = addr - s->addr;
	return s;
}
