/*
 * query_pool.h - the threads that answer API requests, shared fairly
 * between clients.
 *
 * The HTTP server's event thread never runs a query: it hands each API
 * request to this pool as a job and goes on serving other connections.  A
 * few threads (2-4) run the jobs, each with its own context (for the
 * server: an ember_api with its own read-only store connection), so
 * queries run in parallel and a slow one delays nobody but its own client.
 *
 * Fair share: a job is ranked when queued by how many its client already
 * has queued or running, and a free thread takes the oldest job of the
 * lowest rank.  Every client's first request is served before anyone's
 * second, so a client with many queued requests does not make another,
 * asking for one thing, wait behind all of them.  A job that has waited
 * longer than max_wait is not run but refused, as are jobs still queued
 * when the pool stops; submitting to a full queue fails.
 */
#ifndef EMBER_SERVER_QUERY_POOL_H
#define EMBER_SERVER_QUERY_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "server/conn_table.h"

/* A unit of work; embed it in the caller's request and recover that with the offset. */
struct query_job {
	struct conn_client client;
	/* the pool's own */
	int64_t queued_ns;
	unsigned rank; /* 1 + its client's jobs queued or running when it came */
	struct query_job *next;
};

enum query_refusal {
	QUERY_EXPIRED,  /* waited longer than max_wait in the queue */
	QUERY_STOPPING, /* the pool is stopping */
};

struct query_pool_ops {
	/* Make / free one thread's context (called on the starting / stopping thread). */
	void *(*thread_ctx_new)(void *arg);
	void (*thread_ctx_free)(void *ctx, void *arg);
	/* Answer the job on a pool thread with that thread's context.  The
	 * pool does not touch the job afterwards: run may free it. */
	void (*run)(struct query_job *job, void *ctx, void *arg);
	/* Answer a job that will not run (any thread, never under the pool's lock). */
	void (*refuse)(struct query_job *job, enum query_refusal why, void *arg);
	void *arg;
};

struct query_pool_limits {
	unsigned threads;    /* 1..QUERY_POOL_MAX_THREADS */
	unsigned max_queued; /* jobs waiting, not counting running ones */
	int64_t max_wait_ns; /* in the queue, before refusal */
};
#define QUERY_POOL_MAX_THREADS 64

struct query_pool_stats {
	uint64_t queued, running;       /* now */
	uint64_t peak_queued;           /* since start */
	uint64_t done, expired, rejected; /* run; refused after max_wait; queue full */
	uint64_t wait_ns;               /* summed queue wait of the jobs run */
};

struct query_pool;

/* Start the threads.  Returns 0, -EINVAL or -ENOMEM (or a pthread error, negated). */
int query_pool_start(const struct query_pool_limits *lim, const struct query_pool_ops *ops,
		     struct query_pool **out);

/*
 * Queue a job (its client must be set).  Returns 0; -EAGAIN when the queue
 * is full or -ESHUTDOWN when stopping: the job was not taken, answer it
 * yourself.
 */
int query_pool_submit(struct query_pool *p, struct query_job *job);

/*
 * Refuse the queued jobs, let the running ones finish and join the threads.
 * Later submissions fail with -ESHUTDOWN.  NULL is fine.
 */
void query_pool_stop(struct query_pool *p);
/* Stop (if not yet) and free. */
void query_pool_free(struct query_pool *p);

void query_pool_stats(struct query_pool *p, struct query_pool_stats *st);

#endif
