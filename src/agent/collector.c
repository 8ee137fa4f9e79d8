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
 * build-id happens once per process, not once per sample, and the names are
 * kept across profiles, so the samples drained after a process exited still
 * carry its service and version.  The cache is bounded (PID_SLOTS slots,
 * direct-mapped: a pid takes the slot of another, counted as an eviction)
 * and the agent empties a pid's slot when the process has exited and its
 * samples are drained (ember_collector_forget).
 */
#include "agent/collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/target.h"
#include "core/log.h"
#include "spans/endpoint.h"

#define MAX_FRAMES (EMBER_MAX_KERNEL_DEPTH + EMBER_MAX_USER_DEPTH * 4 + 2)
#define PID_SLOTS 8192 /* direct-mapped cache of pid -> target id */

/* What a process was found to be, kept across profiles (strings owned). */
struct known_target {
	struct ember_target t;
	char *strings; /* one block holding every string of t */
};

struct pid_entry {
	uint32_t pid; /* 0 = empty */
	uint32_t target;
	uint64_t generation; /* of the profile target is an index of */
	struct known_target *known;
};

struct ember_collector {
	struct ember_symbolizer *sym;
	const struct ember_service_map *services;
	struct ember_profile *profile;
	uint64_t generation; /* bumped with every new profile; 0 = none yet */
	int64_t time_ns;
	struct pid_entry pids[PID_SLOTS];
	uint32_t frames[MAX_FRAMES];
	struct ember_collector_stats stats;
	const char *(*endpoint_name)(uint32_t id, void *arg);
	void *endpoint_arg;
};

struct ember_collector *ember_collector_new(struct ember_symbolizer *sym)
{
	struct ember_collector *c = calloc(1, sizeof(*c));

	if (c)
		c->sym = sym;
	return c;
}

static void known_free(struct known_target *k)
{
	if (k)
		free(k->strings);
	free(k);
}

void ember_collector_free(struct ember_collector *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < PID_SLOTS; i++)
		known_free(c->pids[i].known);
	free(c);
}

void ember_collector_set_service_map(struct ember_collector *c,
				     const struct ember_service_map *map)
{
	c->services = map;
}

void ember_collector_set_profile(struct ember_collector *c, struct ember_profile *p,
				 int64_t time_ns)
{
	c->profile = p;
	c->generation++;
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

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *put_str(char **cur, const char *s)
{
	if (!s)
		return NULL;
	char *d = *cur;
	size_t n = strlen(s) + 1;
	memcpy(d, s, n);
	*cur += n;
	return d;
}

/* A copy of t that outlives the profile (NULL on OOM). */
static struct known_target *known_new(const struct ember_target *t)
{
	struct known_target *k = calloc(1, sizeof(*k));
	size_t n = str_size(t->comm) + str_size(t->exe) + str_size(t->service) +
		   str_size(t->version) + str_size(t->build_id) + str_size(t->labels);
	char *cur;

	if (!k || !(k->strings = malloc(n ? n : 1))) {
		free(k);
		return NULL;
	}
	cur = k->strings;
	k->t.pid = t->pid;
	k->t.comm = put_str(&cur, t->comm);
	k->t.exe = put_str(&cur, t->exe);
	k->t.service = put_str(&cur, t->service);
	k->t.version = put_str(&cur, t->version);
	k->t.build_id = put_str(&cur, t->build_id);
	k->t.labels = put_str(&cur, t->labels);
	return k;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * Who pid is.  Its names are worked out once (environment, Go build info,
 * cgroup, ...) and kept: a later profile re-uses them, also after the
 * process exited (its last samples are drained after it is gone), unless
 * the pid now runs another executable.
 */
/*
 * The names of a live process, read fresh (environment, Go build info,
 * cgroup, ...): into *t, whose strings point into info, names and exe_buf.
 */
static void fresh_target(struct ember_collector *c, uint32_t pid, const char *comm,
			 const struct ember_process_info *info, const char *exe,
			 struct ember_target_names *names, struct ember_target *t)
{
	comm = info->comm && info->comm[0] ? info->comm : comm;
	ember_target_names(pid, comm, exe, info->build_id, c->services, names);
	*t = (struct ember_target){
		.pid = pid,
		.comm = comm,
		.exe = exe,
		.service = names->service,
		.version = names->version,
		.build_id = info->build_id,
		.labels = names->labels[0] ? names->labels : NULL,
	};
}

static uint32_t target_of(struct ember_collector *c, const struct ember_raw_sample *s)
{
	struct pid_entry *e = &c->pids[s->pid % PID_SLOTS];
	struct ember_process_info info = {0};
	struct ember_target_names names;
	char exe_buf[4096];
	bool alive;

	if (e->pid == s->pid && e->generation == c->generation)
		return e->target;

	alive = ember_symbolizer_process(c->sym, s->pid, &info) == 0;
	const char *exe = strip_deleted(info.exe, exe_buf, sizeof(exe_buf));
	struct known_target *k = e->pid == s->pid ? e->known : NULL;
	if (k && alive && !(same_str(exe, k->t.exe) && same_str(info.build_id, k->t.build_id)))
		k = NULL; /* the pid was reused or exec'd another program */

	struct ember_target fresh;
	if (!k)
		fresh_target(c, s->pid, s->comm, &info, exe, &names, &fresh);
	const struct ember_target *t = k ? &k->t : &fresh;
	uint32_t id = ember_profile_target(c->profile, t);
	if (id == UINT32_MAX)
		return id;
	if (e->pid != s->pid) {
		c->stats.processes++;
		if (e->known)
			c->stats.evictions++;
	}
	if (!k) {
		/* remember only what was read from a live process */
		struct known_target *nk = alive ? known_new(t) : NULL;
		known_free(e->known);
		e->known = nk;
	}
	e->pid = s->pid;
	e->target = id;
	e->generation = c->generation;
	return id;
}

void ember_collector_set_endpoint_namer(struct ember_collector *c,
					const char *(*fn)(uint32_t id, void *arg), void *arg)
{
	c->endpoint_name = fn;
	c->endpoint_arg = arg;
}

/* The target of a sample taken while its thread served an endpoint: + "endpoint=NAME". */
static uint32_t endpoint_target(struct ember_collector *c, uint32_t target, uint32_t endpoint)
{
	const char *name = c->endpoint_name ? c->endpoint_name(endpoint, c->endpoint_arg) : NULL;
	char label[1024], labels[1400];

	if (!name)
		return target;
	struct ember_target t = c->profile->targets[target];
	snprintf(labels, sizeof(labels), "%s%s%s", t.labels ? t.labels : "",
		 t.labels && *t.labels ? "," : "", ember_endpoint_label(name, label, sizeof(label)));
	t.labels = labels;
	uint32_t id = ember_profile_target(c->profile, &t);
	return id == UINT32_MAX ? target : id;
}

bool ember_collector_describe(struct ember_collector *c, uint32_t pid, const char *comm,
			      struct ember_target *t)
{
	struct pid_entry *e = &c->pids[pid % PID_SLOTS];
	struct ember_process_info info = {0};
	struct ember_target_names names;
	char exe_buf[4096];

	if (e->pid == pid && e->known) {
		*t = e->known->t;
		return true;
	}
	if (ember_symbolizer_process(c->sym, pid, &info) != 0)
		return false;
	const char *exe = strip_deleted(info.exe, exe_buf, sizeof(exe_buf));
	struct ember_target fresh;
	fresh_target(c, pid, comm, &info, exe, &names, &fresh);
	struct known_target *k = known_new(&fresh);
	if (!k)
		return false;
	known_free(e->known);
	e->known = k;
	e->pid = pid;
	e->generation = 0; /* the slot's profile target id belonged to another pid */
	*t = k->t;
	return true;
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
	if (s->endpoint)
		target = endpoint_target(c, target, s->endpoint);

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

void ember_collector_forget(struct ember_collector *c, uint32_t pid)
{
	struct pid_entry *e = &c->pids[pid % PID_SLOTS];

	if (e->pid != pid)
		return;
	known_free(e->known);
	memset(e, 0, sizeof(*e));
	c->stats.forgotten++;
}

void ember_collector_stats(const struct ember_collector *c, struct ember_collector_stats *st)
{
	*st = c->stats;
}
