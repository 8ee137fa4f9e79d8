/*
 * kallsyms.h - kernel text symbols from /proc/kallsyms.
 *
 * Lines look like "ffffffff81000000 T _stext" or, for loadable modules,
 * "ffffffffc0a01000 t ext4_fill_super\t[ext4]".  We keep text symbols
 * (t/T/w/W) sorted by address; other symbols are kept only as end markers
 * so that an address in data after the last function is not attributed to
 * it.  kallsyms has no sizes: a function runs up to the next symbol.
 *
 * When kernel.kptr_restrict hides addresses (every address reads as 0, as
 * for unprivileged readers) loading fails with -EPERM and a clear reason,
 * instead of silently naming every kernel frame after the first symbol.
 */
#ifndef EMBER_SYMBOLIZER_KALLSYMS_H
#define EMBER_SYMBOLIZER_KALLSYMS_H

#include <stddef.h>
#include <stdint.h>

struct ember_ksym {
	uint64_t addr;
	const char *name;   /* NULL for an end marker (non-text symbol) */
	const char *module; /* module name without brackets, NULL for vmlinux */
};

struct ember_kallsyms {
	struct ember_ksym *syms; /* sorted by addr */
	size_t n;
	size_t n_text;    /* text symbols among syms */
	size_t malformed; /* lines skipped */
	char *pool;       /* names and module names */
	size_t pool_len, pool_cap;
};

/* Default location; tests pass their own fixture file. */
#define EMBER_KALLSYMS_PATH "/proc/kallsyms"

/*
 * Load kallsyms from path (NULL: /proc/kallsyms).  Returns 0 and *out, -EPERM
 * when every address is zero (kptr_restrict), -ENOENT/-EACCES when it cannot
 * be read, -ENODATA when it holds no text symbol, or -ENOMEM.
 */
int ember_kallsyms_load(const char *path, struct ember_kallsyms **out);

void ember_kallsyms_free(struct ember_kallsyms *k);

/* The text symbol covering addr, or NULL.  *offset (if not NULL) gets addr - sym->addr. */
const struct ember_ksym *ember_kallsyms_lookup(const struct ember_kallsyms *k, uint64_t addr,
					       uint64_t *offset);

#endif
