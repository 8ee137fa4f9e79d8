/*
 * group.h - a profile grouped by process, for the flame graph's "by process".
 *
 * pprof users group by labels (-tagroot pid); Ember's flame graph does it
 * by putting each sample's process on top of its stack, named as folded
 * text names it with `record --all` ("api-4242"), so that the graph has
 * one tower per process and /api/folded?group=process holds the same.
 */
#ifndef EMBER_SERVER_GROUP_H
#define EMBER_SERVER_GROUP_H

#include "core/profile.h"

/*
 * A new profile holding p's stacks, each with one more frame, outermost:
 * its process (target) as a frame named "COMM-PID".  All stacks belong to
 * one target (pid 0); counts, type and times are kept.  *out must be freed
 * with ember_profile_free().  Returns 0 or -ENOMEM.
 */
int ember_profile_by_process(const struct ember_profile *p, struct ember_profile **out);

#endif
