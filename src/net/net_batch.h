/*
 * net_batch.h - TCP aggregates per (time bucket, process target, peer): what the store takes.
 *
 * The collector adds to a batch every second; `ember run` hands it to the
 * store (store_net.h) every flush and starts a new one.  Targets are the
 * same ember_target the profiler records (service, version, pid, ...), so
 * the store gives the net rows the same target ids as the samples.
 *
 * A peer is what the process talks to:
 *   out  the process connected: the remote address and port
 *        ("10.0.0.7:5432", the database it calls);
 *   in   someone connected to the process: the client's address and the
 *        local port it connected to (":6379 from 10.0.0.9"), every
 *        ephemeral client port folded into one peer.
 * A peer that is a local process (the other end of the same connection
 * was seen on this host) also carries its service: those are the
 * who-calls-whom edges.
 *
 * Bounded: at most max_rows rows and as many peers; what does not fit is
 * counted in `overflow` and dropped.
 */
#ifndef EMBER_NET_BATCH_H
#define EMBER_NET_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "core/hist.h"

enum ember_net_direction {
	EMBER_NET_OUT = 0, /* the process connected */
	EMBER_NET_IN = 1,  /* the process accepted */
};

#define EMBER_NET_ADDR_LEN 46  /* INET6_ADDRSTRLEN */
#define EMBER_NET_NAME_LEN 128
#define EMBER_NET_REASON_LEN 48

struct ember_net_peer {
	uint8_t direction;                 /* enum ember_net_direction */
	uint16_t port;                     /* out: remote port; in: local port */
	char addr[EMBER_NET_ADDR_LEN];     /* remote address, text ("10.0.0.1", "::1") */
	char service[EMBER_NET_NAME_LEN];  /* the peer's service when local, "" otherwise */
};

/* Additive values of one row. */
struct ember_net_values {
	uint64_t bytes_sent, bytes_recv;
	uint64_t sends, recvs;          /* calls that moved bytes */
	uint64_t connects;              /* active opens started (SYN sent) */
	uint64_t accepts;               /* passive opens */
	uint64_t closes;                /* established connections closed */
	uint64_t failures;              /* connects that never established */
	uint64_t resets_sent, resets_recv;
	uint64_t retransmits;           /* segments */
	uint64_t drops;                 /* packets the kernel dropped, all reasons */
	struct ember_hist rtt;          /* smoothed RTT, one sample per active socket per second */
	struct ember_hist connect;      /* SYN sent to ESTABLISHED */
};

struct ember_net_batch_row {
	int64_t bucket_ns;
	uint32_t target; /* index into targets->targets */
	uint32_t peer;   /* index into peers */
	struct ember_net_values v;
};

struct ember_net_batch_drop {
	uint32_t row; /* index into rows */
	char reason[EMBER_NET_REASON_LEN];
	uint64_t count;
};

struct ember_net_batch {
	struct ember_profile *targets; /* targets only (no stacks) */
	struct ember_net_peer *peers;
	size_t n_peers, cap_peers;
	struct ember_net_batch_row *rows;
	size_t n_rows, cap_rows;
	struct ember_net_batch_drop *drops;
	size_t n_drops, cap_drops;
	size_t max_rows;
	uint64_t overflow; /* rows, peers or drops refused (bound reached) */
	/* private: (bucket, target, peer) -> row and peer -> index */
	struct ember_net_batch_index *index;
};

struct ember_net_batch *ember_net_batch_new(size_t max_rows);
void ember_net_batch_free(struct ember_net_batch *b);
bool ember_net_batch_empty(const struct ember_net_batch *b);

/* Intern a peer; UINT32_MAX when full or out of memory (counted). */
uint32_t ember_net_batch_peer(struct ember_net_batch *b, const struct ember_net_peer *p);

/* The row of (bucket, target, peer), created empty; NULL when full (counted). */
struct ember_net_batch_row *ember_net_batch_row(struct ember_net_batch *b, int64_t bucket_ns,
						uint32_t target, uint32_t peer);

/* Add count drops with a reason to row; -ENOMEM / -E2BIG when it cannot. */
int ember_net_batch_drop(struct ember_net_batch *b, uint32_t row, const char *reason,
			 uint64_t count);

/* dst += src (histograms merged).  Returns 0 or -ENOMEM. */
int ember_net_values_add(struct ember_net_values *dst, const struct ember_net_values *src);
void ember_net_values_free(struct ember_net_values *v);
/* Whether every counter and histogram is zero. */
bool ember_net_values_zero(const struct ember_net_values *v);

#endif
