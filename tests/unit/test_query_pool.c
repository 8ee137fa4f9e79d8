/*
 * test_query_pool.c - the query threads: every job answered exactly once,
 * one context per thread, fair share between clients (a client with many
 * queued jobs does not take every thread while another waits; round robin
 * between clients with backlogs), jobs that waited too long refused, a full
 * queue refused at submission, and stop refusing what is queued while what
 * runs finishes.
 *
 * Jobs block on a per-job gate so the test decides when each one ends.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include "server/query_pool.h"

#define MS 1000000LL
#define MAX_JOBS 32

struct tjob {
	struct query_job job; /* first */
	char name[8];
	bool gated;
	bool open;      /* the gate */
	int ran, refused;
	enum query_refusal why;
	void *ctx;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static char order[MAX_JOBS * 8]; /* names in the order they started running */
static int running;
static int ctx_made, ctx_freed;

static void *ctx_new(void *arg)
{
	pthread_mutex_lock(&lock);
	int *id = malloc(sizeof(int));
	*id = ++ctx_made;
	pthread_mutex_unlock(&lock);
	return id;
}

static void ctx_free(void *ctx, void *arg)
{
	pthread_mutex_lock(&lock);
	ctx_freed++;
	pthread_mutex_unlock(&lock);
	free(ctx);
}

static void run(struct query_job *job, void *ctx, void *arg)
{
	struct tjob *j = (struct tjob *)job;

	pthread_mutex_lock(&lock);
	strcat(order, j->name);
	strcat(order, " ");
	j->ctx = ctx;
	running++;
	pthread_cond_broadcast(&cond);
	while (j->gated && !j->open)
		pthread_cond_wait(&cond, &lock);
	running--;
	j->ran++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void refuse(struct query_job *job, enum query_refusal why, void *arg)
{
	struct tjob *j = (struct tjob *)job;

	pthread_mutex_lock(&lock);
	j->refused++;
	j->why = why;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static const struct query_pool_ops ops = {.thread_ctx_new = ctx_new,
					  .thread_ctx_free = ctx_free,
					  .run = run,
					  .refuse = refuse};

static void reset(void)
{
	order[0] = '\0';
	running = 0;
	ctx_made = ctx_freed = 0;
}

static void make(struct tjob *j, const char *name, const char *client, bool gated)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};

	memset(j, 0, sizeof(*j));
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->gated = gated;
	inet_pton(AF_INET, client, &sa.sin_addr);
	conn_client_from_sockaddr((struct sockaddr *)&sa, sizeof(sa), &j->job.client);
}

static void wait_running(int n)
{
	pthread_mutex_lock(&lock);
	while (running != n)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void open_gate(struct tjob *j)
{
	pthread_mutex_lock(&lock);
	j->open = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void wait_done(struct tjob *j)
{
	pthread_mutex_lock(&lock);
	while (!j->ran && !j->refused)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void test_bad_limits(void **state)
{
	struct query_pool *p;
	struct query_pool_limits lim = {.threads = 0, .max_queued = 1, .max_wait_ns = MS};

	assert_int_equal(query_pool_start(&lim, &ops, &p), -EINVAL);
	lim.threads = QUERY_POOL_MAX_THREADS + 1;
	assert_int_equal(query_pool_start(&lim, &ops, &p), -EINVAL);
	lim.threads = 1;
	lim.max_wait_ns = 0;
	assert_int_equal(query_pool_start(&lim, &ops, &p), -EINVAL);
}

static void test_all_run_once(void **state)
{
	struct query_pool_limits lim = {.threads = 3, .max_queued = MAX_JOBS, .max_wait_ns = 10000 * MS};
	struct query_pool *p;
	struct tjob j[20];
	struct query_pool_stats st;

	reset();
	assert_int_equal(query_pool_start(&lim, &ops, &p), 0);
	assert_int_equal(ctx_made, 3);
	for (int i = 0; i < 20; i++) {
		char name[8];
		snprintf(name, sizeof(name), "j%d", i);
		make(&j[i], name, i % 2 ? "10.0.0.1" : "10.0.0.2", false);
		assert_int_equal(query_pool_submit(p, &j[i].job), 0);
	}
	for (int i = 0; i < 20; i++)
		wait_done(&j[i]);
	query_pool_stop(p); /* joins: the counters are final */
	query_pool_stats(p, &st);
	assert_int_equal(st.done, 20);
	assert_int_equal(st.queued, 0);
	query_pool_free(p);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(j[i].ran, 1);
		assert_int_equal(j[i].refused, 0);
		assert_non_null(j[i].ctx); /* a thread's own context */
	}
	assert_int_equal(ctx_freed, 3);
}

/*
 * Two threads, both busy with client A's jobs; A queues two more, then B
 * one.  The first thread to free up takes B's job, though it is the newest:
 * A already has a job running and B none.
 */
static void test_fair_share(void **state)
{
	struct query_pool_limits lim = {.threads = 2, .max_queued = MAX_JOBS, .max_wait_ns = 10000 * MS};
	struct query_pool *p;
	struct tjob a1, a2, a3, a4, b1;

	reset();
	assert_int_equal(query_pool_start(&lim, &ops, &p), 0);
	make(&a1, "a1", "10.0.0.1", true);
	make(&a2, "a2", "10.0.0.1", true);
	make(&a3, "a3", "10.0.0.1", false);
	make(&a4, "a4", "10.0.0.1", false);
	make(&b1, "b1", "10.0.0.2", true);
	assert_int_equal(query_pool_submit(p, &a1.job), 0);
	assert_int_equal(query_pool_submit(p, &a2.job), 0);
	wait_running(2);
	assert_int_equal(query_pool_submit(p, &a3.job), 0);
	assert_int_equal(query_pool_submit(p, &a4.job), 0);
	assert_int_equal(query_pool_submit(p, &b1.job), 0);
	open_gate(&a1);
	wait_done(&a1);
	wait_running(2); /* a2 and the next */
	char seen[sizeof(order)];
	pthread_mutex_lock(&lock);
	memcpy(seen, order, sizeof(seen));
	pthread_mutex_unlock(&lock);
	assert_string_equal(seen, "a1 a2 b1 ");
	open_gate(&a2);
	open_gate(&b1);
	wait_done(&a3);
	wait_done(&a4);
	query_pool_free(p);
	assert_string_equal(order, "a1 a2 b1 a3 a4 ");
}

/*
 * One thread, busy.  Client 1 queues three jobs, client 2 two, then a third
 * client one: every client's first job runs before anyone's second, so the
 * latecomer waits for two jobs, not five.
 */
static void test_round_robin(void **state)
{
	struct query_pool_limits lim = {.threads = 1, .max_queued = MAX_JOBS, .max_wait_ns = 10000 * MS};
	struct query_pool *p;
	struct tjob x, j[6];
	const char *names[6] = {"1a", "1b", "1c", "2a", "2b", "3a"};
	const char *clients[6] = {"10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2",
				  "10.0.0.3"};

	reset();
	assert_int_equal(query_pool_start(&lim, &ops, &p), 0);
	make(&x, "x", "10.0.0.9", true);
	assert_int_equal(query_pool_submit(p, &x.job), 0);
	wait_running(1);
	for (int i = 0; i < 6; i++) {
		make(&j[i], names[i], clients[i], false);
		assert_int_equal(query_pool_submit(p, &j[i].job), 0);
	}
	open_gate(&x);
	for (int i = 0; i < 6; i++)
		wait_done(&j[i]);
	query_pool_free(p);
	assert_string_equal(order, "x 1a 2a 3a 1b 2b 1c ");
}

static void test_expired(void **state)
{
	struct query_pool_limits lim = {.threads = 1, .max_queued = MAX_JOBS, .max_wait_ns = 50 * MS};
	struct query_pool *p;
	struct query_pool_stats st;
	struct tjob blocker, late;

	reset();
	assert_int_equal(query_pool_start(&lim, &ops, &p), 0);
	make(&blocker, "x", "10.0.0.1", true);
	make(&late, "late", "10.0.0.2", false);
	assert_int_equal(query_pool_submit(p, &blocker.job), 0);
	wait_running(1);
	assert_int_equal(query_pool_submit(p, &late.job), 0);
	usleep(120 * 1000);
	open_gate(&blocker);
	wait_done(&late);
	query_pool_stop(p);
	query_pool_stats(p, &st);
	query_pool_free(p);
	assert_int_equal(late.ran, 0);
	assert_int_equal(late.refused, 1);
	assert_int_equal(late.why, QUERY_EXPIRED);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.done, 1);
}

static void *stop_main(void *p)
{
	query_pool_stop(p);
	return NULL;
}

static void test_full_queue_and_stop(void **state)
{
	struct query_pool_limits lim = {.threads = 1, .max_queued = 2, .max_wait_ns = 10000 * MS};
	struct query_pool *p;
	struct query_pool_stats st;
	struct tjob blocker, q1, q2, q3, after;

	reset();
	assert_int_equal(query_pool_start(&lim, &ops, &p), 0);
	make(&blocker, "x", "10.0.0.1", true);
	make(&q1, "q1", "10.0.0.1", false);
	make(&q2, "q2", "10.0.0.2", false);
	make(&q3, "q3", "10.0.0.3", false);
	make(&after, "after", "10.0.0.3", false);
	assert_int_equal(query_pool_submit(p, &blocker.job), 0);
	wait_running(1);
	assert_int_equal(query_pool_submit(p, &q1.job), 0);
	assert_int_equal(query_pool_submit(p, &q2.job), 0);
	assert_int_equal(query_pool_submit(p, &q3.job), -EAGAIN);
	query_pool_stats(p, &st);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.queued, 2);
	assert_int_equal(st.peak_queued, 2);
	assert_int_equal(st.running, 1);

	/* stop while one runs and two wait: they are refused, it finishes */
	pthread_t stopper;
	assert_int_equal(pthread_create(&stopper, NULL, stop_main, p), 0);
	wait_done(&q1);
	wait_done(&q2);
	assert_int_equal(blocker.ran, 0); /* still running: stop waits for it */
	open_gate(&blocker);
	pthread_join(stopper, NULL);
	assert_int_equal(blocker.ran, 1);
	assert_int_equal(q1.refused, 1);
	assert_int_equal(q1.why, QUERY_STOPPING);
	assert_int_equal(q2.refused, 1);
	assert_int_equal(q1.ran + q2.ran, 0);
	assert_int_equal(query_pool_submit(p, &after.job), -ESHUTDOWN);
	query_pool_free(p);
	assert_int_equal(q3.ran + q3.refused, 0); /* refused at submission: the caller's */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_limits),
		cmocka_unit_test(test_all_run_once),
		cmocka_unit_test(test_fair_share),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_full_queue_and_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
