/*
 * memory.h - allocator settings for a process that answers large queries.
 *
 * A 24 h flame graph allocates some 50 MiB of hash tables, arrays and JSON
 * and frees it all.  With glibc's defaults the large blocks come from mmap
 * and go back on free, so every query pays again for page faults and
 * copies into fresh pages (~30% of its time in tests/bench/query.sh).
 * ember run keeps freed memory for the next query instead, and hands it
 * back once the API has been idle a while (ember_server_release_idle).
 */
#ifndef EMBER_CORE_MEMORY_H
#define EMBER_CORE_MEMORY_H

/* Serve blocks up to 64 MiB from the heap and keep up to 512 MiB of freed memory. */
void ember_memory_keep_freed(void);

/* Return the freed memory kept by the allocator to the kernel. */
void ember_memory_release(void);

#endif
