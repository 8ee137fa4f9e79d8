/*
 * symbolizer.h - turn sampled addresses into named frames.
 *
 * User addresses are resolved per process: the process's executable
 * mappings come from /proc/PID/maps (files opened through /proc/PID/root so
 * containers work), each mapped ELF file is loaded once per content (not
 * per build-id alone, which any binary can copy) and shared by every
 * process that maps it.  Kernel addresses come from
 * /proc/kallsyms.  Results are interned into the caller's ember_profile.
 *
 * Nothing here fails on bad input: an unreadable or malformed ELF file
 * yields "module+0xOFFSET" frames and one warning naming the file; an
 * address outside every mapping yields an "[unknown]" frame.
 */
#ifndef EMBER_SYMBOLIZER_H
#define EMBER_SYMBOLIZER_H

#include <stdint.h>

#include "core/profile.h"

struct ember_symbolizer;

struct ember_symbolizer *ember_symbolizer_new(void);
void ember_symbolizer_free(struct ember_symbolizer *s);

/*
 * Resolve user address `pc` of process `pid`.  Frame ids are written to
 * out[0..n) innermost first (an inline chain gives several) and
 * n (>= 1 unless max_out == 0) is returned.  Callers pass return addresses
 * minus one so the call instruction is looked up.  The process's maps are
 * read on first use and re-read when pc falls outside every known mapping.
 */
int ember_symbolize_user(struct ember_symbolizer *s, uint32_t pid, uint64_t pc,
			 struct ember_profile *p, uint32_t *out, int max_out);

/* Resolve kernel address `pc` via /proc/kallsyms (frames carry EMBER_FRAME_KERNEL). */
int ember_symbolize_kernel(struct ember_symbolizer *s, uint64_t pc, struct ember_profile *p,
			   uint32_t *out, int max_out);

/* Facts about a process, for naming its target.  Strings are owned by s. */
struct ember_process_info {
	const char *comm;     /* /proc/PID/comm */
	const char *exe;      /* readlink /proc/PID/exe, NULL if unreadable */
	const char *build_id; /* hex build-id of the executable (GNU, else derived from
			       * Go's build ID or the content: elf_identity.h), NULL
			       * when it cannot be read */
};
/* Returns 0, or -ESRCH when the process is gone and nothing was cached. */
int ember_symbolizer_process(struct ember_symbolizer *s, uint32_t pid,
			     struct ember_process_info *info);

/* Snapshot pid's maps now (e.g. at exec), so it can be symbolized after it exits. */
int ember_symbolizer_track(struct ember_symbolizer *s, uint32_t pid);

/*
 * Re-read pid's maps now and open the files of new mappings, keeping what
 * is already resolved (a process sampled for the first time, or one that
 * mapped new code), so that it can be symbolized after it exits.
 * Returns 0, or the error reading its maps (it is gone already).
 */
int ember_symbolizer_refresh(struct ember_symbolizer *s, uint32_t pid);

/*
 * A code mapping as the kernel saw it (dev in the kernel's encoding,
 * major << 20 | minor), for a process that exited before its
 * /proc/PID/maps was read: the profiler notes these at exec and mmap.
 */
struct ember_kernel_vma {
	uint64_t start, end, offset, dev, ino; /* offset: in the file, in bytes */
};
#define EMBER_KERNEL_VMAS_MAX 8
/* Up to max mappings of pid into out; returns how many (0: none known). */
typedef int (*ember_kernel_vmas_fn)(uint32_t pid, struct ember_kernel_vma *out, int max,
				    void *arg);
/*
 * Where to ask for a vanished process's mappings.  Their files are named
 * by (device, inode) only, so they are symbolized when a file with that
 * identity was loaded before (by another process) and is still cached.
 */
void ember_symbolizer_set_kernel_vmas(struct ember_symbolizer *s, ember_kernel_vmas_fn fn,
				      void *arg);

/* Drop everything cached for pid (it exited and its samples are flushed). */
void ember_symbolizer_forget(struct ember_symbolizer *s, uint32_t pid);

/*
 * Processes kept at most; beyond, the least recently used is forgotten
 * (stats: proc_evictions).  0 restores the default.
 */
#define EMBER_SYMBOLIZER_MAX_PROCS 16384

/* Periodic work (once a second or so): drop ELF files no process has used for a while. */
void ember_symbolizer_maintain(struct ember_symbolizer *s);
void ember_symbolizer_set_max_processes(struct ember_symbolizer *s, size_t max);

struct ember_symbolizer_stats {
	uint64_t lookups;    /* addresses resolved */
	uint64_t cache_hits; /* of those, answered without loading or resolving anything */
	uint64_t elf_files;  /* ELF files loaded now */
	uint64_t elf_errors; /* files that could not be read (running total) */
	uint64_t elf_dropped;   /* unused files dropped from the cache (running total) */
	uint64_t elf_symbol_bytes; /* heap held by the loaded files' symbol tables */
	uint64_t elf_retries;   /* failed files loaded again after their backoff */
	uint64_t open_vanished; /* files not opened because their process had exited (a race) */
	uint64_t kernel_vma_procs; /* vanished processes mapped from the kernel's notes instead */
	uint64_t processes;  /* processes with cached maps now */
	uint64_t build_id_collisions; /* files sharing a build-id, not their content */
	uint64_t max_processes;  /* the bound on processes */
	uint64_t proc_evictions; /* processes forgotten because the bound was reached */
	/* the (build-id, pc) -> frames cache */
	uint64_t symcache_lookups, symcache_hits, symcache_entries, symcache_bytes;
	uint64_t symcache_max_bytes, symcache_evictions;
};
void ember_symbolizer_stats(const struct ember_symbolizer *s, struct ember_symbolizer_stats *st);

#endif
