/*
 * memory.c - allocator settings for a process that answers large queries
 * (see memory.h for why).
 */
#include "core/memory.h"

#include <malloc.h>

#define HEAP_BLOCK_MAX (64 << 20) /* larger blocks still come from mmap */
#define KEEP_FREED_MAX (512 << 20)

void ember_memory_keep_freed(void)
{
	mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_MAX);
	mallopt(M_TRIM_THRESHOLD, KEEP_FREED_MAX);
}

void ember_memory_release(void)
{
	malloc_trim(0);
}
