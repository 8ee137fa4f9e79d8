/*
 * query_pool.c - a few threads answering queued jobs, fair between clients
 * (see query_pool.h).
 *
 * One mutex guards the queue (a list in arrival order) and the client each
 * thread is serving.  A job's rank is fixed when it is queued: 1 + the jobs
 * its client then had queued or running.  Threads take the oldest job of the
 * lowest rank, so every client's first request goes before anyone's
 * second (round robin between busy clients), and a client asking for one
 * thing waits behind no one's backlog.  Ranking and picking each scan the
 * queue (at most max_queued jobs): microseconds next to the milliseconds a
 * query takes, and no per-client structure to keep in step with the queue.  Callbacks (run, refuse) are always called
 * without the lock held: refuse wakes the HTTP server, which may be
 * submitting at that moment.
 */
#include "server/query_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

struct pool_thread {
	struct query_pool *pool;
	pthread_t tid;
	bool started;
	void *ctx;
	/* under the lock: the client of the running job, copied (the job may
	 * be freed as soon as run() has answered it) */
	bool busy;
	struct conn_client client;
};

struct query_pool {
	struct query_pool_limits lim;
	struct query_pool_ops ops;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct query_job *head, *tail; /* the queue, oldest first */
	size_t n_queued;
	bool stopping, stopped;
	struct query_pool_stats st; /* under the lock */
	struct pool_thread threads[];
};

/* Jobs of client queued or running (under the lock). */
static unsigned outstanding(const struct query_pool *p, const struct conn_client *client)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->lim.threads; i++)
		if (p->threads[i].busy && conn_client_equal(&p->threads[i].client, client))
			n++;
	for (const struct query_job *j = p->head; j; j = j->next)
		if (conn_client_equal(&j->client, client))
			n++;
	return n;
}

static void unlink_job(struct query_pool *p, struct query_job *prev, struct query_job *j)
{
	if (prev)
		prev->next = j->next;
	else
		p->head = j->next;
	if (p->tail == j)
		p->tail = prev;
	j->next = NULL;
	p->n_queued--;
}

/* Move the jobs that waited too long to *expired (under the lock). */
static void take_expired(struct query_pool *p, int64_t now, struct query_job **expired)
{
	struct query_job *prev = NULL, *j = p->head;

	while (j) {
		struct query_job *next = j->next;
		if (now - j->queued_ns > p->lim.max_wait_ns) {
			unlink_job(p, prev, j);
			j->next = *expired;
			*expired = j;
			p->st.expired++;
		} else {
			prev = j;
		}
		j = next;
	}
}

/* The oldest job of the lowest rank (under the lock). */
static struct query_job *pick(struct query_pool *p)
{
	struct query_job *prev = NULL, *best = NULL, *best_prev = NULL;

	for (struct query_job *j = p->head; j; prev = j, j = j->next) {
		if (!best || j->rank < best->rank) {
			best = j;
			best_prev = prev;
			if (j->rank == 1)
				break;
		}
	}
	if (best)
		unlink_job(p, best_prev, best);
	return best;
}

static void refuse_all(struct query_pool *p, struct query_job *list, enum query_refusal why)
{
	while (list) {
		struct query_job *next = list->next;
		list->next = NULL;
		p->ops.refuse(list, why, p->ops.arg);
		list = next;
	}
}

static void *thread_main(void *arg)
{
	struct pool_thread *t = arg;
	struct query_pool *p = t->pool;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct query_job *expired = NULL, *job;
		int64_t now;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stopping)
			break;
		now = ember_monotonic_ns();
		take_expired(p, now, &expired);
		job = pick(p);
		if (job) {
			t->busy = true;
			t->client = job->client;
			p->st.running++;
			p->st.wait_ns += (uint64_t)(now - job->queued_ns);
		}
		pthread_mutex_unlock(&p->lock);

		refuse_all(p, expired, QUERY_EXPIRED);
		if (job)
			p->ops.run(job, t->ctx, p->ops.arg);

		pthread_mutex_lock(&p->lock);
		if (job) {
			t->busy = false;
			p->st.running--;
			p->st.done++;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int query_pool_start(const struct query_pool_limits *lim, const struct query_pool_ops *ops,
		     struct query_pool **out)
{
	struct query_pool *p;
	int ret = 0;

	*out = NULL;
	if (!lim->threads || lim->threads > QUERY_POOL_MAX_THREADS || !lim->max_queued ||
	    lim->max_wait_ns <= 0 || !ops->run || !ops->refuse)
		return -EINVAL;
	p = calloc(1, sizeof(*p) + lim->threads * sizeof(p->threads[0]));
	if (!p)
		return -ENOMEM;
	p->lim = *lim;
	p->ops = *ops;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	for (unsigned i = 0; i < lim->threads; i++) {
		struct pool_thread *t = &p->threads[i];
		t->pool = p;
		if (ops->thread_ctx_new && !(t->ctx = ops->thread_ctx_new(ops->arg))) {
			ret = -ENOMEM;
			break;
		}
	}
	for (unsigned i = 0; !ret && i < lim->threads; i++) {
		int e = pthread_create(&p->threads[i].tid, NULL, thread_main, &p->threads[i]);
		if (e)
			ret = -e;
		else
			p->threads[i].started = true;
	}
	if (ret) {
		query_pool_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

int query_pool_submit(struct query_pool *p, struct query_job *job)
{
	int ret = 0;

	job->next = NULL;
	job->queued_ns = ember_monotonic_ns();
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		ret = -ESHUTDOWN;
	} else if (p->n_queued >= p->lim.max_queued) {
		p->st.rejected++;
		ret = -EAGAIN;
	} else {
		job->rank = 1 + outstanding(p, &job->client);
		if (p->tail)
			p->tail->next = job;
		else
			p->head = job;
		p->tail = job;
		p->n_queued++;
		if (p->n_queued > p->st.peak_queued)
			p->st.peak_queued = p->n_queued;
		pthread_cond_signal(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void query_pool_stop(struct query_pool *p)
{
	struct query_job *queued;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->stopped) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->stopping = true;
	queued = p->head;
	p->head = p->tail = NULL;
	p->n_queued = 0;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);

	refuse_all(p, queued, QUERY_STOPPING);
	for (unsigned i = 0; i < p->lim.threads; i++)
		if (p->threads[i].started)
			pthread_join(p->threads[i].tid, NULL);
	pthread_mutex_lock(&p->lock);
	p->stopped = true;
	pthread_mutex_unlock(&p->lock);
}

void query_pool_free(struct query_pool *p)
{
	if (!p)
		return;
	query_pool_stop(p);
	for (unsigned i = 0; i < p->lim.threads; i++)
		if (p->threads[i].ctx && p->ops.thread_ctx_free)
			p->ops.thread_ctx_free(p->threads[i].ctx, p->ops.arg);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void query_pool_stats(struct query_pool *p, struct query_pool_stats *st)
{
	pthread_mutex_lock(&p->lock);
	*st = p->st;
	st->queued = p->n_queued;
	pthread_mutex_unlock(&p->lock);
}
