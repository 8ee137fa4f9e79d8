/*
 * bpf_sync.h - waiting until no BPF program still runs with an old value.
 *
 * The double-buffered maps (the profiler's stacks, the TCP counters) are
 * drained by flipping a generation number the programs read, then waiting
 * until every program that may have read the old number has returned: BPF
 * programs run inside RCU read-side sections (with preemption or migration
 * disabled), so one RCU grace period is enough, and
 * membarrier(MEMBARRIER_CMD_GLOBAL) waits for exactly that.  Where the
 * call is unavailable a 10 ms sleep stands in (programs run for
 * microseconds).
 */
#ifndef EMBER_CORE_BPF_SYNC_H
#define EMBER_CORE_BPF_SYNC_H

void ember_bpf_wait_for_programs(void);

#endif
