/*
 * offcpu_recorder.c - the agent's off-CPU profile (see offcpu_recorder.h).
 *
 * The pending profile is replaced after each successful flush, as the CPU
 * one in cmd_run.c; only the agent thread touches it (the stats JSON,
 * written by the HTTP thread, reads counters).  The tracer's counters are
 * BPF maps, readable from any thread.  The collector is told the new profile and bucket
 * whenever either changes; over the bound, waits go into a scratch profile
 * that only counts them (dropped_ns).
 */
#include "offcpu/offcpu_recorder.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

struct ember_offcpu_recorder {
	struct ember_offcpu *tracer;
	struct ember_collector *collector;
	struct ember_profile *pending;
	int64_t bucket; /* the bucket the collector stamps with, 0 = not set */
	size_t max_stacks;
	uint64_t flushes, flush_errors, flushed_ns, dropped_ns;
	size_t pending_stacks; /* a copy for the HTTP thread, which never touches pending */
};

static int new_pending(struct ember_offcpu_recorder *r)
{
	r->pending = ember_profile_new();
	if (!r->pending)
		return -ENOMEM;
	r->pending->type = EMBER_PROFILE_OFFCPU;
	r->pending->period_ns = 1;
	r->bucket = 0;
	return 0;
}

int ember_offcpu_recorder_open(struct ember_profiler *pr, struct ember_symbolizer *sym,
			       const struct ember_offcpu_opts *opts, size_t max_stacks,
			       struct ember_offcpu_recorder **out, char *err, size_t errlen)
{
	struct ember_offcpu_recorder *r = calloc(1, sizeof(*r));
	int rc;

	if (!r || !(r->collector = ember_collector_new(sym)) || new_pending(r)) {
		snprintf(err, errlen, "out of memory");
		ember_offcpu_recorder_free(r);
		return -ENOMEM;
	}
	r->max_stacks = max_stacks;
	rc = ember_offcpu_open(pr, opts, &r->tracer, err, errlen);
	if (rc) {
		ember_offcpu_recorder_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void ember_offcpu_recorder_free(struct ember_offcpu_recorder *r)
{
	if (!r)
		return;
	ember_offcpu_close(r->tracer);
	ember_collector_free(r->collector);
	ember_profile_free(r->pending);
	free(r);
}

struct ember_collector *ember_offcpu_recorder_collector(struct ember_offcpu_recorder *r)
{
	return r->collector;
}

void ember_offcpu_recorder_drain(struct ember_offcpu_recorder *r, int64_t bucket_ns)
{
	struct ember_profile *scratch = NULL;

	if (!r->pending && new_pending(r))
		return; /* the kernel maps keep the waits */
	if (r->pending->n_stacks >= r->max_stacks || r->pending->n_frames >= 2 * r->max_stacks) {
		scratch = ember_profile_new();
		if (!scratch)
			return;
		scratch->type = EMBER_PROFILE_OFFCPU;
		ember_collector_set_profile(r->collector, scratch, bucket_ns);
		r->bucket = 0;
	} else if (bucket_ns != r->bucket) {
		ember_collector_set_profile(r->collector, r->pending, bucket_ns);
		r->bucket = bucket_ns;
	}
	if (!r->pending->start_ns)
		r->pending->start_ns = bucket_ns;
	ember_offcpu_drain(r->tracer, ember_collector_add, r->collector);
	if (scratch) {
		r->dropped_ns += scratch->total;
		ember_profile_free(scratch);
	}
	r->pending_stacks = r->pending->n_stacks;
}

int ember_offcpu_recorder_flush(struct ember_offcpu_recorder *r, struct ember_store *store,
				int64_t now_ns, char *err, size_t errlen)
{
	int rc;

	if (!r->pending || r->pending->total == 0)
		return 0;
	r->pending->duration_ns = now_ns - r->pending->start_ns;
	rc = ember_store_ingest(store, r->pending, now_ns, err, errlen);
	if (rc) {
		r->flush_errors++;
		return rc;
	}
	r->flushes++;
	r->flushed_ns += r->pending->total;
	ember_profile_free(r->pending);
	r->pending = NULL;
	r->pending_stacks = 0;
	new_pending(r); /* on failure the next drain tries again */
	return 0;
}

void ember_offcpu_recorder_stats_json(struct ember_offcpu_recorder *r, struct strbuf *sb)
{
	struct ember_offcpu_stats st;

	ember_offcpu_stats(r->tracer, &st);
	sb_puts(sb, "\"offcpu\":{");
	for (int i = 0; i < EMBER_OFFCPU__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%" PRIu64, i ? "," : "", ember_offcpu_stat_names[i],
			  st.counters[i]);
	sb_printf(sb,
		  ",\"stack_gone\":%" PRIu64 ",\"run_cnt\":%" PRIu64 ",\"run_ns\":%" PRIu64
		  ",\"flushes\":%" PRIu64 ",\"flush_errors\":%" PRIu64 ",\"flushed_ns\":%" PRIu64
		  ",\"dropped_ns\":%" PRIu64 ",\"pending_stacks\":%zu}",
		  st.stack_gone, st.run_cnt, st.run_ns, r->flushes, r->flush_errors, r->flushed_ns,
		  r->dropped_ns, r->pending_stacks);
}
