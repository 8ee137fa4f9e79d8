/*
 * profile.h - the in-memory profile every part of Ember speaks.
 *
 * A profile is a set of aggregated stacks.  Each stack belongs to a target
 * (a process, later a service/version) and is a list of frame ids, leaf
 * first (index 0 is the innermost frame, as in pprof and in kernel stack
 * traces).  Frames and targets are interned: identical frames share one id,
 * identical (target, frames) stacks share one entry whose count is summed.
 *
 * The agent fills a profile from BPF maps, the symbolizer gives frames their
 * names, and the writers (folded, pprof), the store (ingest and query) and
 * the HTTP server (flame graph JSON) all read the same structure.  Keeping a
 * single model means a query result from the store can be written as pprof
 * or folded text by the very code that writes a live recording.
 *
 * Inline frames: one machine address may expand to several frames, the
 * function the compiler inlined and the functions it was inlined into.  They
 * are stored as consecutive frames with the same module and address; every
 * frame of the chain except the outermost carries EMBER_FRAME_INLINED.
 * pprof writers fold such a run into one Location with several Lines.
 */
#ifndef EMBER_CORE_PROFILE_H
#define EMBER_CORE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ember_frame_flags {
	EMBER_FRAME_KERNEL = 1u << 0,  /* kernel frame (folded: "_[k]" suffix) */
	EMBER_FRAME_INLINED = 1u << 1, /* inlined into the next frame (same address) */
	EMBER_FRAME_TRUNCATED = 1u << 2, /* marker: the unwinder stopped early here */
};

struct ember_frame {
	const char *function; /* demangled function name, NULL when unknown */
	const char *file;     /* source file, NULL when unknown */
	uint32_t line;        /* source line, 0 when unknown */
	uint32_t start_line;  /* line where the function starts (its declaration), 0 when unknown */
	const char *module;   /* path of the mapped file, "[kernel]", "[vdso]", ... */
	const char *build_id; /* lower-case hex GNU build-id, NULL when none */
	uint64_t address;     /* user: module-relative pc (ELF vaddr); kernel: absolute */
	uint32_t flags;       /* enum ember_frame_flags */
};

struct ember_target {
	uint32_t pid;         /* 0 when aggregated over processes */
	const char *comm;     /* process name (task comm or exe basename) */
	const char *exe;      /* executable path, may be NULL */
	const char *service;  /* may be NULL: store derives one */
	const char *version;  /* may be NULL */
	const char *build_id; /* executable build-id hex, may be NULL */
	const char *labels;   /* "k=v,k=v" or NULL */
};

struct ember_stack {
	uint32_t target;  /* index into profile->targets */
	uint32_t depth;   /* number of frames */
	uint32_t *frames; /* frame ids, leaf first */
	uint64_t count;   /* samples */
	int64_t time_ns;  /* optional: bucket start (unix ns), 0 if not tracked */
};

struct ember_profile {
	struct ember_frame *frames;
	size_t n_frames;
	struct ember_target *targets;
	size_t n_targets;
	struct ember_stack *stacks;
	size_t n_stacks;

	uint64_t period_ns;   /* sampling period (1e9 / frequency) */
	int64_t start_ns;     /* unix ns of the first sample window */
	int64_t duration_ns;  /* length of the window */
	uint64_t total;       /* sum of all stack counts */

	struct ember_profile_index *index; /* private: interning tables */
};

struct ember_profile *ember_profile_new(void);
void ember_profile_free(struct ember_profile *p);

/* Intern a frame (strings are copied).  Returns its id, or UINT32_MAX on OOM. */
uint32_t ember_profile_frame(struct ember_profile *p, const struct ember_frame *f);

/*
 * The service and version a target is stored and shown under: service as
 * given, else comm, else the executable's name, else "unknown"; version as
 * given, else the first EMBER_SHORT_BUILD_ID digits of the build-id (written
 * into short_id), else "unknown".
 */
#define EMBER_SHORT_BUILD_ID 12
void ember_target_display_names(const struct ember_target *t, const char **service,
				const char **version, char short_id[EMBER_SHORT_BUILD_ID + 1]);

/* Intern a target (strings are copied).  Returns its id, or UINT32_MAX on OOM. */
uint32_t ember_profile_target(struct ember_profile *p, const struct ember_target *t);

/*
 * Add `count` samples of the stack frames[0..depth) (leaf first) for target.
 * Identical (target, time_ns, frames) stacks are merged.  Returns 0 or -ENOMEM.
 */
int ember_profile_add(struct ember_profile *p, uint32_t target, const uint32_t *frames,
		      uint32_t depth, uint64_t count, int64_t time_ns);

/*
 * Name a frame as users see it: the function, else "module+0xADDR" with the
 * module's basename, else "[unknown]".  Writes into buf, returns buf.
 */
const char *ember_frame_name(const struct ember_frame *f, char *buf, size_t size);

/* Basename of a path ("/usr/lib/libc.so.6" -> "libc.so.6"). */
const char *ember_basename(const char *path);

/* Stable 64-bit hash of bytes (FNV-1a then a final mix). */
uint64_t ember_hash64(const void *data, size_t len, uint64_t seed);

#endif
