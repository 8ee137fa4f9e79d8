/*
 * procmaps.h - parse /proc/PID/maps into an array of mappings.
 *
 * The symbolizer needs, for every executable mapping of a process, where
 * it lives in memory, which file it maps and from which file offset; the
 * agent needs the same to find the binaries whose unwind tables it loads.
 * Lines are parsed from a text buffer (so tests and fuzzers can feed any
 * bytes) and malformed lines are skipped and counted, never fatal.
 *
 * Line format (see proc(5)):
 *   start-end perms offset major:minor inode   path
 *   7f3a1c000000-7f3a1c021000 r-xp 00002000 08:01 131 /usr/lib/libz.so.1
 * The path runs to the end of the line and may contain spaces; the kernel
 * writes a newline inside a path as "\012" (we decode it) and appends
 * " (deleted)" when the file was unlinked (we strip it and set .deleted).
 */
#ifndef EMBER_AGENT_PROCMAPS_H
#define EMBER_AGENT_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ember_map_perms {
	EMBER_MAP_READ = 1u << 0,
	EMBER_MAP_WRITE = 1u << 1,
	EMBER_MAP_EXEC = 1u << 2,
	EMBER_MAP_PRIVATE = 1u << 3, /* 'p' (copy-on-write); 's' when clear */
};

struct ember_map_entry {
	uint64_t start, end; /* [start, end) virtual addresses */
	uint64_t pgoff;      /* file offset of start */
	uint64_t inode;      /* 0 for anonymous and special mappings */
	uint32_t dev_major, dev_minor;
	uint32_t perms;      /* enum ember_map_perms */
	bool deleted;        /* path ended in " (deleted)" (stripped from path) */
	char *path;          /* "" when anonymous; "[heap]", "[vdso]", ... as written */
};

struct ember_maps {
	struct ember_map_entry *entries; /* in file order (ascending start) */
	size_t n, cap;
	size_t malformed; /* lines skipped because they did not parse */
};

/* Filters for ember_maps_parse(): keep every mapping, or only executable ones. */
enum ember_maps_filter { EMBER_MAPS_ALL, EMBER_MAPS_EXEC_ONLY };

/*
 * Parse maps text buf[0..len) (need not be NUL-terminated) and append the
 * mappings to m, which must be zeroed or previously used.  Returns 0, or
 * -ENOMEM (m then holds what was parsed so far).
 */
int ember_maps_parse(const char *buf, size_t len, enum ember_maps_filter filter,
		     struct ember_maps *m);

/* Read and parse /proc/PID/maps.  Returns 0, -ESRCH when pid is gone, or -errno. */
int ember_maps_read_pid(uint32_t pid, enum ember_maps_filter filter, struct ember_maps *m);

/* Read and parse any maps-format file (tests, saved snapshots). */
int ember_maps_read_file(const char *path, enum ember_maps_filter filter, struct ember_maps *m);

/*
 * Has pid an address space (a user process that has not yet exited)?
 * False for a gone pid, a zombie, a kernel thread, and a process past the
 * point in exit where its memory is released, which the kernel does before
 * sched_process_exit: so a process found with memory after some moment
 * exits after it.  One readlink of /proc/PID/exe; errors other than
 * "no such file" (EACCES...) count as yes.
 */
bool ember_proc_has_mm(uint32_t pid);

/*
 * Is pid still running: a process with memory, or a kernel thread?  False
 * when it is gone or a zombie.  Reads /proc/PID/stat only when
 * ember_proc_has_mm says no.
 */
bool ember_proc_alive(uint32_t pid);

/* The mapping containing addr (binary search; entries must be sorted), or NULL. */
const struct ember_map_entry *ember_maps_find(const struct ember_maps *m, uint64_t addr);

/* Free the entries and reset m to empty. */
/*
 * The vDSO has no file.  Every process on this kernel (of the same ABI)
 * maps the same image as this one, so its copy of the image is written to
 * a memfd for the ELF readers.  Returns the fd (*size = the image's size)
 * or -errno.
 */
int ember_vdso_memfd(size_t *size);

void ember_maps_free(struct ember_maps *m);

/* True for kernel-provided pseudo mappings: "[vdso]", "[vsyscall]", "[heap]", ... */
static inline bool ember_map_is_special(const struct ember_map_entry *e)
{
	return e->path[0] == '[';
}

#endif
