/*
 * proctrack.h - which processes the agent holds state for, and when they die.
 *
 * The agent keeps something for every process it hears of: its unwind
 * tables in the kernel, its maps and names in the symbolizer, its target in
 * the collector.  All of it must go when the process exits, and the kernel
 * may not say so: an exit that happens before the agent first reads the
 * process, an event lost in a full perf buffer, a process whose main thread
 * exits first.  The tracker is the one list of such pids.  It learns of
 * them from the kernel's events and from drained samples, hears of exits
 * from the kernel, checks the others for life itself (a bounded sweep), and
 * calls `forget` exactly once per pid when its state can go: after the next
 * drain, so the last samples of a process are symbolized first.
 *
 * Bounded: at most max_pids live pids.  When full, the least recently seen
 * one (CLOCK, second chance) is forgotten as if it had exited and counted
 * as evicted; if it still runs it is simply read again when next seen.
 * Pids reported dead wait for the next collect, at most max_pids of them;
 * beyond that they are forgotten at once.
 */
#ifndef EMBER_AGENT_PROCTRACK_H
#define EMBER_AGENT_PROCTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ember_proctrack;

struct ember_proctrack_opts {
	size_t max_pids;         /* live pids tracked (default EMBER_PROCTRACK_DEFAULT_MAX) */
	int64_t recheck_ns;      /* a live pid is checked again after this (default 5 s) */
	size_t checks_per_sweep; /* at most this many life checks per collect (default 4096) */
	/* Is pid still running?  Default ember_proc_alive (procmaps.h). */
	bool (*alive)(uint32_t pid, void *arg);
	/* Drop what is kept for pid (required). */
	void (*forget)(uint32_t pid, void *arg);
	void *arg;
};

#define EMBER_PROCTRACK_DEFAULT_MAX 16384

struct ember_proctrack_stats {
	uint64_t tracked;        /* pids held now (live and waiting to be forgotten) */
	uint64_t max;            /* max_pids */
	uint64_t exits_reported; /* exits reported by the kernel for tracked pids */
	uint64_t reaped;         /* dead pids found by the sweep, whose exit was not reported */
	uint64_t evicted;        /* live pids forgotten because the tracker was full */
	uint64_t forgotten;      /* pids forgotten, all causes */
	uint64_t sweeps;         /* collects that ran life checks */
	uint64_t checks;         /* life checks made */
};

int ember_proctrack_new(const struct ember_proctrack_opts *opts, struct ember_proctrack **out);
/* Frees the tracker without calling forget. */
void ember_proctrack_free(struct ember_proctrack *pt);

/*
 * pid was seen at now_ns.  new_life: by an exec or a new-process event,
 * which proves it runs (again): a pending exit is cancelled.  A sample
 * (new_life false) of a pid whose exit is pending is its last one.
 * Returns 0 or -ENOMEM.
 */
int ember_proctrack_seen(struct ember_proctrack *pt, uint32_t pid, bool new_life, int64_t now_ns);

/* The kernel reported pid's exit: forgotten at the next collect.  Unknown pids are ignored. */
void ember_proctrack_exited(struct ember_proctrack *pt, uint32_t pid);

/* A drain begins (its maps generation was just flipped). */
void ember_proctrack_drain_begins(struct ember_proctrack *pt);

/*
 * Call after a drain: forget every pid whose exit was known before the
 * drain began (all its samples were in it), then check up to
 * checks_per_sweep live pids not checked for recheck_ns; the dead ones are
 * forgotten after the next drain.  Exits learnt during a drain (events
 * handled while it runs) also wait for the next one.
 */
void ember_proctrack_collect(struct ember_proctrack *pt, int64_t now_ns);

/* Is pid tracked (live or pending)? */
bool ember_proctrack_has(const struct ember_proctrack *pt, uint32_t pid);

void ember_proctrack_stats(const struct ember_proctrack *pt, struct ember_proctrack_stats *st);

#endif
