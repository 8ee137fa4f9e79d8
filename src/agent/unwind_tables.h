/*
 * unwind_tables.h - the user half of in-kernel DWARF unwinding: tables in BPF maps.
 *
 * For every process the BPF unwinder meets, the agent loads the process's
 * executable mappings into the `procs` map.  Each mapped file's CFI is
 * compiled once (src/ehframe/) and its rows are written into shard arrays,
 * with index entries pointing at them (see bpf/include/ember_unwind.h).
 * Files are shared by identity (device, inode, size, mtime), so libc's rows
 * exist once however many processes map it; when no process maps a file any
 * more its shard space is reclaimed.  Shards are created on demand within a
 * memory budget; when the budget is spent, new files are unwound by frame
 * pointer and the shortfall is counted.
 *
 * Bounds: at most procs_max processes (the procs map's capacity); when
 * full, the one least recently sampled or loaded is evicted (counted).  A
 * process is never entered once it has exited (see unwind_tables.c), and a
 * file that could not be read is retried with backoff, never given up on.
 */
#ifndef EMBER_AGENT_UNWIND_TABLES_H
#define EMBER_AGENT_UNWIND_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ember_unwind_tables;

struct ember_unwind_maps {
	int procs_fd, index_fd, shards_fd, rules_fd; /* BPF map fds */
	int shard0_fd;                     /* the shard declared in the object (slot 0) */
	int go_runtimes_fd;                /* exe_id -> struct ember_go_runtime */
	int file_tables_fd;                /* (dev, inode) -> struct ember_file_table */
	size_t procs_max;                  /* capacity of the procs map (0: 2048) */
};

struct ember_unwind_tables_opts {
	size_t budget_bytes;   /* shard memory budget (default 64 MiB) */
	const char *cache_dir; /* compiled tables cached here (zstd); NULL = no cache */
	bool no_mmap;          /* kernel cannot mmap maps (< 5.5): write rows by map updates */
};

struct ember_unwind_tables_stats {
	uint64_t processes;       /* processes loaded into the procs map */
	uint64_t max_processes;   /* the bound: procs map capacity */
	uint64_t evictions;       /* processes evicted because the table was full */
	uint64_t refused_dead;    /* loads refused: the process had no memory (exited) */
	uint64_t raced_exits;     /* entries removed because the process exited while loading */
	uint64_t stale_entries;   /* map entries of untracked pids deleted (should stay 0) */
	uint64_t files;           /* files with rows in the shards */
	uint64_t rows;            /* rows in the shards (4 bytes each) */
	uint64_t rules;           /* distinct rules in the shared rules table */
	uint64_t table_bytes;     /* map bytes the rows take: elements, index, rules */
	uint64_t shards;          /* shards created */
	uint64_t shard_bytes;     /* bytes of shard memory in use by shards */
	uint64_t compiles;        /* tables compiled from CFI */
	uint64_t cache_hits;      /* tables read from the disk cache */
	uint64_t compile_ns;      /* time spent compiling */
	uint64_t failures;        /* file reads that failed with the process alive (FP used) */
	uint64_t vanished;        /* file opens that failed because the process exited (a race) */
	uint64_t retries;         /* failed files read again */
	uint64_t budget_exhausted;/* files left to FP because the budget was spent */
	uint64_t reclaimed;       /* files whose rows were freed */
	uint64_t build_id_collisions; /* files whose build-id has a cached table of other inputs */
	uint64_t cache_dir_reads; /* walks of the cache directory (only when it changed) */
	uint64_t go_runtimes;     /* Go binaries whose stack switches can be crossed */
	uint64_t go_runtime_missing; /* Go binaries without usable runtime offsets */
	uint64_t idle_files;      /* files no process maps, kept IDLE_KEEP_NS for the next one */
	uint64_t idle_expired;    /* idle files whose tables were freed */
	uint64_t file_map_full;   /* files not published by inode (file_tables full) */
};

int ember_unwind_tables_new(const struct ember_unwind_maps *maps,
			    const struct ember_unwind_tables_opts *opts,
			    struct ember_unwind_tables **out);
void ember_unwind_tables_free(struct ember_unwind_tables *t);

/*
 * (Re)load pid's executable mappings, compiling tables for files not seen
 * before.  Returns 0, or -ESRCH when the process is gone.
 */
int ember_unwind_tables_load(struct ember_unwind_tables *t, uint32_t pid);

/*
 * The same from executable mappings already read (EMBER_MAPS_EXEC_ONLY);
 * the files are still opened through pid.  Returns 0, or -ESRCH when pid
 * has no mappings or exited meanwhile (nothing is left in the map then).
 */
struct ember_maps;
int ember_unwind_tables_load_maps(struct ember_unwind_tables *t, uint32_t pid,
				  const struct ember_maps *maps);

/* Forget pid: its procs entry goes, files no one maps any more are reclaimed. */
void ember_unwind_tables_unload(struct ember_unwind_tables *t, uint32_t pid);

/* pid was sampled at now_ns (monotonic): the eviction order. */
void ember_unwind_tables_touch(struct ember_unwind_tables *t, uint32_t pid, int64_t now_ns);

/* Periodic work: reload processes whose failed files are due for a retry. */
void ember_unwind_tables_maintain(struct ember_unwind_tables *t, int64_t now_ns);

/* Entries in the kernel's procs map now, counted there (safe from any thread). */
size_t ember_unwind_tables_map_entries(const struct ember_unwind_tables *t);

void ember_unwind_tables_stats(const struct ember_unwind_tables *t,
			       struct ember_unwind_tables_stats *st);

#endif
