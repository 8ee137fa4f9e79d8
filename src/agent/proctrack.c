/*
 * proctrack.c - the agent's list of processes and their deaths (see proctrack.h).
 *
 * Entries live in a dense array indexed by pid through a pidtab; removal
 * moves the last entry into the hole.  Each entry is live or dead (exit
 * known, forgotten at the next collect).  Eviction is CLOCK: seen() sets an
 * entry's referenced bit, the hand clears it and passes over, and the first
 * live entry found unreferenced is the victim.  A death is stamped with the
 * drain epoch it became known in: a collect forgets only deaths known
 * before its drain began, so events handled during a drain wait one more.  The life-check sweep walks
 * the array from where the last one stopped, so every pid is checked within
 * about max_pids / checks_per_sweep collects even when a sweep cannot check
 * them all.
 */
#include "agent/proctrack.h"

#include <errno.h>
#include <stdlib.h>

#include "agent/pidtab.h"
#include "agent/procmaps.h"
#include "core/array.h"

#define DEFAULT_RECHECK_NS (5 * 1000000000LL)
#define DEFAULT_CHECKS 4096

struct tracked {
	uint32_t pid;
	uint32_t dead_epoch; /* when dead: the drain epoch its exit became known in */
	bool dead;       /* exit known: forget at the first collect of a later epoch */
	bool referenced; /* seen since the clock hand last passed */
	int64_t checked_ns; /* last life check, 0 = never */
};

struct ember_proctrack {
	struct ember_proctrack_opts o;
	struct ember_pidtab index; /* pid -> position in e[] */
	struct tracked *e;
	size_t n, cap, n_dead;
	size_t hand;   /* CLOCK hand */
	size_t cursor; /* where the life-check sweep resumes */
	uint32_t epoch; /* drains begun (ember_proctrack_drain_begins) */
	struct ember_proctrack_stats st;
};

static bool default_alive(uint32_t pid, void *arg)
{
	(void)arg;
	return ember_proc_alive(pid);
}

int ember_proctrack_new(const struct ember_proctrack_opts *opts, struct ember_proctrack **out)
{
	struct ember_proctrack *pt;

	if (!opts || !opts->forget)
		return -EINVAL;
	pt = calloc(1, sizeof(*pt));
	if (!pt)
		return -ENOMEM;
	pt->o = *opts;
	if (!pt->o.max_pids)
		pt->o.max_pids = EMBER_PROCTRACK_DEFAULT_MAX;
	if (pt->o.recheck_ns <= 0)
		pt->o.recheck_ns = DEFAULT_RECHECK_NS;
	if (!pt->o.checks_per_sweep)
		pt->o.checks_per_sweep = DEFAULT_CHECKS;
	if (!pt->o.alive)
		pt->o.alive = default_alive;
	pt->st.max = pt->o.max_pids;
	*out = pt;
	return 0;
}

void ember_proctrack_free(struct ember_proctrack *pt)
{
	if (!pt)
		return;
	ember_pidtab_free(&pt->index);
	free(pt->e);
	free(pt);
}

/* Drop entry i (its forget already called), moving the last entry into its place. */
static void remove_at(struct ember_proctrack *pt, size_t i)
{
	if (pt->e[i].dead)
		pt->n_dead--;
	ember_pidtab_del(&pt->index, pt->e[i].pid);
	if (i != pt->n - 1) {
		pt->e[i] = pt->e[pt->n - 1];
		ember_pidtab_set(&pt->index, pt->e[i].pid, (uint32_t)i); /* overwrite: no allocation */
	}
	pt->n--;
}

static void forget_at(struct ember_proctrack *pt, size_t i)
{
	uint32_t pid = pt->e[i].pid;

	remove_at(pt, i);
	pt->st.forgotten++;
	pt->o.forget(pid, pt->o.arg);
}

static void mark_dead(struct ember_proctrack *pt, size_t i)
{
	if (pt->e[i].dead)
		return;
	pt->e[i].dead = true;
	pt->e[i].dead_epoch = pt->epoch;
	pt->n_dead++;
}

/* Forget the dead entries marked before epoch `before` (UINT32_MAX: all of them). */
static void forget_dead(struct ember_proctrack *pt, uint32_t before)
{
	for (size_t i = 0; i < pt->n;) {
		if (pt->e[i].dead && (before == UINT32_MAX || pt->e[i].dead_epoch < before))
			forget_at(pt, i); /* the last entry moved to i: look at it next */
		else
			i++;
	}
}

/* CLOCK: mark the first unreferenced live entry dead (it is forgotten at the next collect). */
static void evict_one(struct ember_proctrack *pt)
{
	for (size_t steps = 0; steps < 2 * pt->n + 1; steps++) {
		if (pt->hand >= pt->n)
			pt->hand = 0;
		struct tracked *t = &pt->e[pt->hand++];
		if (t->dead)
			continue;
		if (t->referenced) {
			t->referenced = false;
			continue;
		}
		mark_dead(pt, (size_t)(t - pt->e));
		pt->st.evicted++;
		return;
	}
}

int ember_proctrack_seen(struct ember_proctrack *pt, uint32_t pid, bool new_life, int64_t now_ns)
{
	uint32_t i;

	(void)now_ns;
	if (pid == 0)
		return 0;
	if (ember_pidtab_get(&pt->index, pid, &i)) {
		struct tracked *t = &pt->e[i];
		t->referenced = true;
		if (new_life && t->dead) {
			t->dead = false; /* the pid runs a new life: check it again soon */
			t->checked_ns = 0;
			pt->n_dead--;
		}
		return 0;
	}
	if (pt->n - pt->n_dead >= pt->o.max_pids)
		evict_one(pt);
	if (pt->n_dead >= pt->o.max_pids)
		forget_dead(pt, UINT32_MAX);
	if (ember_array_grow(&pt->e, &pt->cap, pt->n + 1, sizeof(*pt->e)))
		return -ENOMEM;
	if (ember_pidtab_set(&pt->index, pid, (uint32_t)pt->n))
		return -ENOMEM;
	pt->e[pt->n++] = (struct tracked){.pid = pid, .referenced = true};
	return 0;
}

void ember_proctrack_exited(struct ember_proctrack *pt, uint32_t pid)
{
	uint32_t i;

	if (!ember_pidtab_get(&pt->index, pid, &i))
		return;
	if (!pt->e[i].dead)
		pt->st.exits_reported++;
	mark_dead(pt, i);
}

void ember_proctrack_drain_begins(struct ember_proctrack *pt)
{
	pt->epoch++;
}

void ember_proctrack_collect(struct ember_proctrack *pt, int64_t now_ns)
{
	forget_dead(pt, pt->epoch);
	if (pt->n == 0)
		return;
	size_t checks = 0;
	pt->st.sweeps++;
	for (size_t visited = 0; visited < pt->n && checks < pt->o.checks_per_sweep; visited++) {
		if (pt->cursor >= pt->n)
			pt->cursor = 0;
		struct tracked *t = &pt->e[pt->cursor++];
		if (t->checked_ns && now_ns - t->checked_ns < pt->o.recheck_ns)
			continue;
		checks++;
		t->checked_ns = now_ns;
		if (!pt->o.alive(t->pid, pt->o.arg)) {
			mark_dead(pt, (size_t)(t - pt->e));
			pt->st.reaped++;
		}
	}
	pt->st.checks += checks;
}

bool ember_proctrack_has(const struct ember_proctrack *pt, uint32_t pid)
{
	uint32_t i;
	return ember_pidtab_get(&pt->index, pid, &i);
}

void ember_proctrack_stats(const struct ember_proctrack *pt, struct ember_proctrack_stats *st)
{
	*st = pt->st;
	st->tracked = pt->n;
}
