/*
 * net_collector.h - from the kernel's per-socket counters to per-peer rows and totals.
 *
 * Once a second, ember_net_collector_drain() reads the kernel maps
 * (net_bpf.h) and turns (socket, process) counters into rows of
 * (10 s bucket, target, peer) in the pending batch (net_batch.h), and adds
 * the same amounts to the Prometheus totals (net_prom.h).  It keeps a
 * mirror of the kernel's socket table to know, for every socket, its
 * owner, its peer and which of its events were already counted, and names
 * local peers: the other end of a connection that is also a socket on
 * this host is that socket's process, named by its service.
 *
 * Processes are named by the caller (name_fn: `ember run` asks the
 * profiler's collector, so the net rows land on the samples' targets);
 * forget_fn is called once for every process the collector named that
 * has exited, so its caches can go.
 */
#ifndef EMBER_NET_COLLECTOR_H
#define EMBER_NET_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/profile.h"
#include "net/net_batch.h"
#include "net/net_bpf.h"
#include "net/net_prom.h"

struct ember_net_collector;

struct ember_net_collector_opts {
	/* Name process pid (comm is the kernel's thread name); false = unknown. */
	bool (*name_fn)(uint32_t pid, const char *comm, struct ember_target *t, void *arg);
	void (*forget_fn)(uint32_t pid, void *arg);
	void *name_arg;
	size_t max_rows;        /* rows in the pending batch (0 = 100000) */
	unsigned top_peers;     /* peers per service with their own Prometheus label (0 = 20) */
	int64_t bucket_ns;      /* 0 = 10 s */
};

struct ember_net_collector *ember_net_collector_new(struct ember_net_bpf *nb,
						    const struct ember_net_collector_opts *opts);
void ember_net_collector_free(struct ember_net_collector *c);

/* Drain the kernel once; now_ns is the wall clock (unix ns) stamping the rows. */
int ember_net_collector_drain(struct ember_net_collector *c, int64_t now_ns);

/* The rows gathered since the last ember_net_collector_flushed(). */
const struct ember_net_batch *ember_net_collector_pending(struct ember_net_collector *c);
/* The pending rows are stored: start a new batch. */
void ember_net_collector_flushed(struct ember_net_collector *c);

/* The Prometheus totals (owned by the collector; thread-safe). */
struct ember_net_prom *ember_net_collector_prom(struct ember_net_collector *c);

struct ember_net_collector_stats {
	uint64_t drains, rows, drops;    /* kernel rows and drop rows read */
	uint64_t socks_last, sockets_max;/* kernel socket table: entries at the last drain, size */
	uint64_t sockets, conns_max;     /* connections user space remembers, and the bound */
	uint64_t conns_full;             /* connections not remembered (bound reached) */
	uint64_t counts_last, counts_max;/* rows in the last drain / per generation */
	uint64_t listeners, local_peers; /* listening sockets; rows naming a local peer */
	uint64_t unattributed;           /* rows whose process could not be found */
	uint64_t batch_overflow;         /* rows refused by the pending batch (bound) */
	uint64_t forgotten;              /* exited processes handed to forget_fn */
	uint64_t drain_ns;               /* time spent in the last drain */
};
void ember_net_collector_stats(struct ember_net_collector *c, struct ember_net_collector_stats *st);

#endif
