/*
 * collector.c - raw samples -> frames and targets in an ember_profile.
 *
 * A stack is stored leaf first: kernel frames (innermost) come before user
 * frames.  The user leaf is the exact sampled pc; every caller is a return
 * address, so pc - 1 is symbolized to land inside the call instruction (and
 * on the right line and inline chain).  A stack cut by the depth limit gets
 * a "[truncated]" frame at its root end, and so does one where the unwinder
 * stopped on an error: a stack cut short is never passed off as whole.
 *
 * Targets are cached per pid: reading /proc/PID/environ and the executable's
 * build-id happens once per process, not once per sample.
 */
#include "agent/collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/target.h"
#include "core/log.h"

#define MAX_FRAMES (EMBER_MAX_KERNEL_DEPTH + EMBER_MAX_USER_DEPTH * 4 + 2)
#define PID_SLOTS 8192 /* direct-mapped cache of pid -> target id */

struct pid_entry {
	uint32_t pid; /* 0 = empty */
	uint32_t target;
	struct ember_profile *profile; /* target ids are per profile */
};

struct ember_collector {
	struct ember_symbolizer *sym;
	struct ember_profile *profile;
	int64_t time_ns;
	struct pid_entry pids[PID_SLOTS];
	uint32_t frames[MAX_FRAMES];
	struct ember_collector_stats stats;
};

struct ember_collector *ember_collector_new(struct ember_symbolizer *sym)
{
	struct ember_collector *c = calloc(1, sizeof(*c));

	if (c)
		c->sym = sym;
	return c;
}

void ember_collector_free(struct ember_collector *c) { free(c); }

void ember_collector_set_profile(struct ember_collector *c, struct ember_profile *p,
				 int64_t time_ns)
{
	c->profile = p;
	c->time_ns = time_ns;
}

/* "/usr/bin/foo (deleted)" -> "/usr/bin/foo" in buf. */
static const char *strip_deleted(const char *exe, char *buf, size_t size)
{
	static const char suffix[] = " (deleted)";
	size_t len;

	if (!exe)
		return NULL;
	len = strlen(exe);
	if (len > sizeof(suffix) - 1 && strcmp(exe + len - (sizeof(suffix) - 1), suffix) == 0 &&
	    len - (sizeof(suffix) - 1) < size) {
		memcpy(buf, exe, len - (sizeof(suffix) - 1));
		buf[len - (sizeof(suffix) - 1)] = '\0';
		return buf;
	}
	return exe;
}

static uint32_t target_of(struct ember_collector *c, const struct ember_raw_sample *s)
{
	struct pid_entry *e = &c->pids[s->pid % PID_SLOTS];
	struct ember_process_info info = {0};
	struct ember_target_names names;
	char exe_buf[4096];

	if (e->pid == s->pid && e->profile == c->profile)
		return e->target;

	if (ember_symbolizer_process(c->sym, s->pid, &info) != 0)
		info.comm = s->comm;
	const char *exe = strip_deleted(info.exe, exe_buf, sizeof(exe_buf));
	const char *comm = info.comm && info.comm[0] ? info.comm : s->comm;
	ember_target_names(s->pid, comm, exe, info.build_id, &names);

	struct ember_target t = {
		.pid = s->pid,
		.comm = comm,
		.exe = exe,
		.service = names.service,
		.version = names.version,
		.build_id = info.build_id,
	};
	uint32_t id = ember_profile_target(c->profile, &t);
	if (id != UINT32_MAX) {
		if (e->pid != s->pid)
			c->stats.processes++;
		e->pid = s->pid;
		e->target = id;
		e->profile = c->profile;
	}
	return id;
}

void ember_collector_add(const struct ember_raw_sample *s, void *arg)
{
	struct ember_collector *c = arg;
	uint32_t n = 0;
	bool cut = false;

	if (!c->profile)
		return;
	uint32_t target = target_of(c, s);
	if (target == UINT32_MAX)
		return;

	for (uint32_t i = 0; i < s->kernel_depth && n < MAX_FRAMES; i++) {
		int got = ember_symbolize_kernel(c->sym, s->kernel_pcs[i], c->profile, c->frames + n,
						 (int)(MAX_FRAMES - n));
		if (got > 0)
			n += (uint32_t)got;
	}
	for (uint32_t i = 0; i < s->user_depth && n < MAX_FRAMES; i++) {
		uint64_t pc = s->user_pcs[i];
		if (i > 0 && pc)
			pc -= 1; /* return address -> inside the call */
		int got = ember_symbolize_user(c->sym, s->pid, pc, c->profile, c->frames + n,
					       (int)(MAX_FRAMES - n));
		if (got <= 0)
			break;
		/*
		 * A signal handler "returns" to the first byte of the trampoline
		 * (__restore_rt), so pc - 1 falls before the symbol: try the pc.
		 */
		if (i > 0 && !c->profile->frames[c->frames[n]].function && pc) {
			uint32_t alt[8];
			int g = ember_symbolize_user(c->sym, s->pid, pc + 1, c->profile, alt, 8);
			if (g > 0 && g <= (int)(MAX_FRAMES - n) && c->profile->frames[alt[0]].function) {
				memcpy(c->frames + n, alt, (size_t)g * sizeof(alt[0]));
				got = g;
			}
		}
		/*
		 * A caller outside every mapping means the frame-pointer chain
		 * ran through code that does not keep frame pointers and read
		 * garbage: what follows is noise, so the stack ends here.
		 */
		if (i > 0 && !c->profile->frames[c->frames[n]].module) {
			c->stats.garbage_callers += s->count;
			cut = true;
			break;
		}
		n += (uint32_t)got;
	}
	/* depth limit, an unwind error, or a chain that left the mapped code */
	bool incomplete = (s->user_flags & EMBER_STACK_TRUNCATED) ||
			  ((s->user_flags & EMBER_STACK_ERROR) &&
			   !(s->user_flags & EMBER_STACK_COMPLETE)) ||
			  cut;
	if (incomplete && s->user_depth && n < MAX_FRAMES) {
		struct ember_frame marker = {.function = "[truncated]",
					     .flags = EMBER_FRAME_TRUNCATED};
		uint32_t id = ember_profile_frame(c->profile, &marker);
		if (id != UINT32_MAX)
			c->frames[n++] = id;
		c->stats.truncated += s->count;
	}
	if (n == 0) {
		/* Neither stack readable: keep the sample, attributed to the process. */
		struct ember_frame none = {.function = "[no stack]"};
		uint32_t id = ember_profile_frame(c->profile, &none);
		if (id == UINT32_MAX)
			return;
		c->frames[n++] = id;
	}
	if (ember_profile_add(c->profile, target, c->frames, n, s->count, c->time_ns) == 0) {
		c->stats.samples += s->count;
		c->stats.stacks++;
	}
}

void ember_collector_stats(const struct ember_collector *c, struct ember_collector_stats *st)
{
	*st = c->stats;
}
