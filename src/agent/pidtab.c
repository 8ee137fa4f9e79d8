/*
 * pidtab.c - pid -> value hash index (see pidtab.h).
 *
 * Deletion shifts later members of the probe run back into the hole
 * (Knuth's algorithm R), so lookups stay short however many pids have
 * come and gone.
 */
#include "agent/pidtab.h"

#include <errno.h>
#include <stdlib.h>

#define MIN_SLOTS 64

static size_t home(const struct ember_pidtab *t, uint32_t pid)
{
	return (size_t)(pid * 2654435761u) & t->mask; /* Fibonacci hashing */
}

static bool find(const struct ember_pidtab *t, uint32_t pid, size_t *slot)
{
	if (!t->mask)
		return false;
	for (size_t i = home(t, pid);; i = (i + 1) & t->mask) {
		if (t->pids[i] == pid) {
			*slot = i;
			return true;
		}
		if (t->pids[i] == 0)
			return false;
	}
}

bool ember_pidtab_get(const struct ember_pidtab *t, uint32_t pid, uint32_t *val)
{
	size_t i;

	if (pid == 0 || !find(t, pid, &i))
		return false;
	*val = t->vals[i];
	return true;
}

static void put(struct ember_pidtab *t, uint32_t pid, uint32_t val)
{
	size_t i = home(t, pid);

	while (t->pids[i] && t->pids[i] != pid)
		i = (i + 1) & t->mask;
	if (!t->pids[i])
		t->n++;
	t->pids[i] = pid;
	t->vals[i] = val;
}

static int grow(struct ember_pidtab *t)
{
	size_t slots = t->mask ? (t->mask + 1) * 2 : MIN_SLOTS;
	uint32_t *pids = calloc(slots, sizeof(*pids)), *vals = calloc(slots, sizeof(*vals));

	if (!pids || !vals) {
		free(pids);
		free(vals);
		return -ENOMEM;
	}
	struct ember_pidtab old = *t;
	t->pids = pids;
	t->vals = vals;
	t->mask = slots - 1;
	t->n = 0;
	for (size_t i = 0; old.mask && i <= old.mask; i++)
		if (old.pids[i])
			put(t, old.pids[i], old.vals[i]);
	free(old.pids);
	free(old.vals);
	return 0;
}

int ember_pidtab_set(struct ember_pidtab *t, uint32_t pid, uint32_t val)
{
	size_t i;

	if (pid == 0)
		return -EINVAL;
	if (find(t, pid, &i)) {
		t->vals[i] = val;
		return 0;
	}
	if ((t->n + 1) * 4 > (t->mask + 1) * 3 && grow(t))
		return -ENOMEM;
	put(t, pid, val);
	return 0;
}

bool ember_pidtab_del(struct ember_pidtab *t, uint32_t pid)
{
	size_t hole;

	if (pid == 0 || !find(t, pid, &hole))
		return false;
	/* Move back every later member of the run whose home is not in (hole, j]. */
	for (size_t j = (hole + 1) & t->mask; t->pids[j]; j = (j + 1) & t->mask) {
		size_t h = home(t, t->pids[j]);
		bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
		if (stays)
			continue;
		t->pids[hole] = t->pids[j];
		t->vals[hole] = t->vals[j];
		hole = j;
	}
	t->pids[hole] = 0;
	t->n--;
	return true;
}

void ember_pidtab_free(struct ember_pidtab *t)
{
	free(t->pids);
	free(t->vals);
	t->pids = t->vals = NULL;
	t->mask = 0;
	t->n = 0;
}
