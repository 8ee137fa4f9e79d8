/*
 * pidtab.h - a hash index from pid to a 32-bit value (an array slot, a state).
 *
 * The agent keeps several per-process tables (unwind tables, the process
 * tracker) as dense arrays; this finds a pid's element in O(1) instead of
 * a scan, which matters once thousands of processes come and go a second.
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones, so a table that sees millions of pids never degrades); the
 * table doubles when three quarters full.  Pid 0 is never a key.
 */
#ifndef EMBER_AGENT_PIDTAB_H
#define EMBER_AGENT_PIDTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ember_pidtab {
	uint32_t *pids; /* 0 = empty slot */
	uint32_t *vals;
	size_t mask;    /* slots - 1 (slots a power of two), 0 before the first insert */
	size_t n;       /* keys held */
};

/* The value of pid in *val; false when pid is not a key. */
bool ember_pidtab_get(const struct ember_pidtab *t, uint32_t pid, uint32_t *val);

/* Insert pid or overwrite its value.  Returns 0, -EINVAL for pid 0, -ENOMEM. */
int ember_pidtab_set(struct ember_pidtab *t, uint32_t pid, uint32_t val);

/* Remove pid; false when it was not a key. */
bool ember_pidtab_del(struct ember_pidtab *t, uint32_t pid);

/* Free the slots; the table is empty and usable again. */
void ember_pidtab_free(struct ember_pidtab *t);

#endif
