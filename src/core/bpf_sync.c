/*
 * bpf_sync.c - one RCU grace period, through membarrier (see bpf_sync.h).
 */
#include "core/bpf_sync.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void ember_bpf_wait_for_programs(void)
{
	static int membarrier_ok = -1;

	if (__atomic_load_n(&membarrier_ok, __ATOMIC_RELAXED) != 0) {
		if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) {
			__atomic_store_n(&membarrier_ok, 1, __ATOMIC_RELAXED);
			return;
		}
		__atomic_store_n(&membarrier_ok, 0, __ATOMIC_RELAXED);
	}
	struct timespec ts = {0, 10 * 1000 * 1000};
	nanosleep(&ts, NULL);
}
