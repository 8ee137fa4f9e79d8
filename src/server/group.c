/*
 * group.c - put each stack's process on top of it (see group.h).
 *
 * Frames are interned into the new profile once each (a map from the old
 * frame ids, filled on first use), the process frames once per target;
 * each stack is copied with its process frame appended (stacks are leaf
 * first, so the last frame is the outermost).  The copy is as large as the
 * query's answer, which the store bounds (EMBER_STORE_MAX_STACKS).
 */
#include "server/group.h"

#include <errno.h>
#include <stdlib.h>

#include "core/strbuf.h"
#include "pprof/folded.h"

/* The frame naming target t ("comm-PID"), interned into out. */
static uint32_t process_frame(struct ember_profile *out, const struct ember_target *t)
{
	struct ember_frame f = {.module = "[process]"};
	struct strbuf sb;
	uint32_t id;

	sb_init(&sb);
	ember_folded_process(&sb, t, true);
	if (sb.oom) {
		sb_free(&sb);
		return UINT32_MAX;
	}
	f.function = sb.buf;
	id = ember_profile_frame(out, &f);
	sb_free(&sb);
	return id;
}

int ember_profile_by_process(const struct ember_profile *p, struct ember_profile **out)
{
	struct ember_target all = {.pid = 0, .comm = "*", .service = "*", .version = "*"};
	struct ember_profile *g = ember_profile_new();
	uint32_t *frame_map = NULL, *proc = NULL, *buf = NULL, tid;
	size_t buf_cap = 0;
	int err = -ENOMEM;

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->type = p->type;
	g->period_ns = p->period_ns;
	g->start_ns = p->start_ns;
	g->duration_ns = p->duration_ns;
	tid = ember_profile_target(g, &all);
	frame_map = malloc((p->n_frames ? p->n_frames : 1) * sizeof(*frame_map));
	proc = malloc((p->n_targets ? p->n_targets : 1) * sizeof(*proc));
	if (tid == UINT32_MAX || !frame_map || !proc)
		goto out;
	for (size_t i = 0; i < p->n_frames; i++)
		frame_map[i] = UINT32_MAX;
	for (size_t i = 0; i < p->n_targets; i++)
		proc[i] = UINT32_MAX;
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *s = &p->stacks[i];
		uint32_t d = 0;

		if (!s->count || s->target >= p->n_targets)
			continue;
		if (s->depth + 1 > buf_cap) {
			uint32_t *nb = realloc(buf, (s->depth + 1) * sizeof(*buf));
			if (!nb)
				goto out;
			buf = nb;
			buf_cap = s->depth + 1;
		}
		for (uint32_t k = 0; k < s->depth; k++) {
			uint32_t f = s->frames[k];
			if (f >= p->n_frames)
				continue; /* not a frame of p: skipped, as folded text skips it */
			if (frame_map[f] == UINT32_MAX &&
			    (frame_map[f] = ember_profile_frame(g, &p->frames[f])) == UINT32_MAX)
				goto out;
			buf[d++] = frame_map[f];
		}
		if (proc[s->target] == UINT32_MAX &&
		    (proc[s->target] = process_frame(g, &p->targets[s->target])) == UINT32_MAX)
			goto out;
		buf[d++] = proc[s->target];
		if (ember_profile_add(g, tid, buf, d, s->count, 0))
			goto out;
	}
	*out = g;
	g = NULL;
	err = 0;
out:
	free(frame_map);
	free(proc);
	free(buf);
	ember_profile_free(g);
	return err;
}
