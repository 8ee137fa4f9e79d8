/*
 * offcpu_recorder.h - the agent's off-CPU profile: tracer -> symbolized profile -> store.
 *
 * `ember run --offcpu` keeps the off-CPU profile beside the CPU one: its
 * own collector (names, targets) and its own pending profile, drained with
 * the sampler's maps every second, stamped with the same 10 s bucket, and
 * written to the store as profile type offcpu at every flush.  Pending
 * data is bounded like the CPU samples: over max_stacks, new waits are
 * counted as dropped.
 */
#ifndef EMBER_OFFCPU_RECORDER_H
#define EMBER_OFFCPU_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "agent/collector.h"
#include "offcpu/offcpu.h"
#include "store/store.h"

struct ember_offcpu_recorder;
struct strbuf;

int ember_offcpu_recorder_open(struct ember_profiler *pr, struct ember_symbolizer *sym,
			       const struct ember_offcpu_opts *opts, size_t max_stacks,
			       struct ember_offcpu_recorder **out, char *err, size_t errlen);
void ember_offcpu_recorder_free(struct ember_offcpu_recorder *r);

/* The collector, to name targets like the CPU one does (service map, forget). */
struct ember_collector *ember_offcpu_recorder_collector(struct ember_offcpu_recorder *r);

/* Drain the tracer into the pending profile, stamped with bucket_ns. */
void ember_offcpu_recorder_drain(struct ember_offcpu_recorder *r, int64_t bucket_ns);

/* Write the pending profile; kept for the next try on failure (-errno, err says why). */
int ember_offcpu_recorder_flush(struct ember_offcpu_recorder *r, struct ember_store *store,
				int64_t now_ns, char *err, size_t errlen);

/* "offcpu":{...} for /api/stats: the tracer's counters and the recorder's. */
void ember_offcpu_recorder_stats_json(struct ember_offcpu_recorder *r, struct strbuf *sb);

#endif
