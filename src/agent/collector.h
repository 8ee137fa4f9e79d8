/*
 * collector.h - turn drained raw samples into a symbolized ember_profile.
 *
 * The collector is the glue between the profiler (raw addresses), the
 * symbolizer (names) and target naming (service/version of each process).
 * It keeps a per-pid cache of the process's target so /proc is read once
 * per process, not once per sample.
 */
#ifndef EMBER_AGENT_COLLECTOR_H
#define EMBER_AGENT_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/profiler.h"
#include "core/profile.h"
#include "symbolizer/symbolizer.h"

struct ember_collector;

struct ember_collector *ember_collector_new(struct ember_symbolizer *sym);
void ember_collector_free(struct ember_collector *c);

/* Samples from now on go into p (which the caller owns); time_ns stamps them. */
void ember_collector_set_profile(struct ember_collector *c, struct ember_profile *p,
				 int64_t time_ns);

struct ember_service_map; /* agent/target.h */

/* Name processes by the services file too (target.h); map stays the caller's. */
void ember_collector_set_service_map(struct ember_collector *c,
				     const struct ember_service_map *map);

/*
 * Name the endpoints CPU samples carry (per-endpoint CPU, src/spans/): a
 * sample of a thread serving endpoint id is recorded under its process's
 * target with the label "endpoint=NAME" added (commas in NAME become ';',
 * as labels are "k=v,k=v").  fn returns NULL for an unknown id.
 */
void ember_collector_set_endpoint_namer(struct ember_collector *c,
					const char *(*fn)(uint32_t id, void *arg), void *arg);

/*
 * The target of pid as the samples get it (service, version, ...), for
 * other collectors (the TCP metrics, the L7 spans) to record under the
 * same target.
 * Cached like the samples' targets; *t's strings stay valid until the
 * entry is replaced.  false when pid cannot be read (it exited before
 * it was first seen): the caller names it by comm.
 */
bool ember_collector_describe(struct ember_collector *c, uint32_t pid, const char *comm,
			      struct ember_target *t);

/* ember_sample_fn for ember_profiler_drain(): arg is the collector. */
void ember_collector_add(const struct ember_raw_sample *s, void *arg);

/* pid exited and its samples are drained: drop its cached target. */
void ember_collector_forget(struct ember_collector *c, uint32_t pid);

struct ember_collector_stats {
	uint64_t samples, stacks, truncated, processes;
	uint64_t garbage_callers; /* samples whose FP chain left the mapped code */
	uint64_t evictions;       /* cached targets displaced by another pid (bounded cache) */
	uint64_t forgotten;       /* cached targets dropped when their process exited */
};
void ember_collector_stats(const struct ember_collector *c, struct ember_collector_stats *st);

#endif
