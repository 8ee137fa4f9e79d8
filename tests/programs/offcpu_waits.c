/*
 * offcpu_waits.c - threads that wait in known ways, timing their own waits.
 *
 *   offcpu_waits SECONDS [SLEEPERS]
 *
 * Waits for SIGUSR1 (so a recording can start first; main wakes every 50 ms
 * meanwhile, so its waits show once a profiler is ready), then for SECONDS runs:
 *   sleeper      nanosleep(10 ms) in a loop                 (sleep_waits;
 *                SLEEPERS threads of it, default 1: their sum is printed)
 *   lock holder  takes a mutex, holds it 30 ms asleep, then
 *                sleeps 5 ms without it                     (hold_lock)
 *   lock waiter  blocks on that mutex (futex), then sleeps
 *                3 ms to hand it back                       (lock_waits)
 *   feeder       writes a byte into a pipe every 25 ms      (feed_pipe)
 *   reader       blocks reading the pipe                    (pipe_waits)
 *   spinner      burns CPU                                  (spin)
 * Every blocking call is timed with CLOCK_MONOTONIC around it, into the
 * tally of the function that makes it (all waits >= 3 ms, over the
 * default minimum block time of 1 ms); at the
 * end the program prints, per function, "NAME waits=N ns=TOTAL", and the
 * spinner's CPU time as "spin cpu_ns=T": the ground truth the off-CPU and
 * CPU profiles are checked against (tests/e2e/offcpu_waits.sh); and main's
 * own waits, from "ready" to the end, as "main waits=N ns=T" (the whole
 * process's waiting time is the sum of the lines: tests/e2e/report_offcpu.sh).
 * Built with frame pointers off: the DWARF tables unwind it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int pipefd[2];

struct tally {
	const char *name;
	long long waits, ns;
};

static long long now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A wait of the thread's own, timed into its tally. */
static void timed_nap(struct tally *t, long ms)
{
	long long t0 = now_ns(CLOCK_MONOTONIC);

	nap(ms);
	t->ns += now_ns(CLOCK_MONOTONIC) - t0;
	t->waits++;
}

__attribute__((noinline)) static void sleep_waits(struct tally *t)
{
	while (!stop)
		timed_nap(t, 10);
}

__attribute__((noinline)) static void hold_lock(struct tally *t)
{
	while (!stop) {
		pthread_mutex_lock(&lock); /* taken: the waiter is asleep or napping */
		timed_nap(t, 30);
		pthread_mutex_unlock(&lock);
		timed_nap(t, 5); /* the waiter's turn */
	}
}

__attribute__((noinline)) static void lock_waits(struct tally *t)
{
	while (!stop) {
		long long t0 = now_ns(CLOCK_MONOTONIC);
		pthread_mutex_lock(&lock);
		t->ns += now_ns(CLOCK_MONOTONIC) - t0;
		t->waits++;
		pthread_mutex_unlock(&lock);
		timed_nap(t, 3); /* hand the lock back to the holder */
	}
}

__attribute__((noinline)) static void feed_pipe(struct tally *t)
{
	while (!stop) {
		timed_nap(t, 25);
		if (write(pipefd[1], "x", 1) != 1)
			break;
	}
	close(pipefd[1]);
}

__attribute__((noinline)) static void pipe_waits(struct tally *t)
{
	char c;

	for (;;) {
		long long t0 = now_ns(CLOCK_MONOTONIC);
		ssize_t n = read(pipefd[0], &c, 1);
		t->ns += now_ns(CLOCK_MONOTONIC) - t0;
		t->waits++;
		if (n <= 0)
			break; /* the feeder closed it */
	}
}

static volatile unsigned long long sink;

__attribute__((noinline)) static void spin(struct tally *t)
{
	long long c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);

	while (!stop)
		for (int i = 0; i < 100000; i++)
			sink += (unsigned long long)i * i;
	t->ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
}

struct worker {
	void (*fn)(struct tally *);
	struct tally t;
	pthread_t th;
};

static void *run(void *arg)
{
	struct worker *w = arg;

	w->fn(&w->t);
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker w[] = {
		{sleep_waits, {"sleep_waits", 0, 0}, 0}, {hold_lock, {"hold_lock", 0, 0}, 0},
		{lock_waits, {"lock_waits", 0, 0}, 0},   {feed_pipe, {"feed_pipe", 0, 0}, 0},
		{pipe_waits, {"pipe_waits", 0, 0}, 0},   {spin, {"spin", 0, 0}, 0},
	};
	int n = (int)(sizeof(w) / sizeof(w[0]));
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	int sleepers = argc > 2 ? atoi(argv[2]) : 1;
	struct worker more[15];
	if (sleepers < 1 || sleepers > 16) {
		fprintf(stderr, "offcpu_waits: SLEEPERS must be 1..16\n");
		return 2;
	}
	for (int i = 0; i < sleepers - 1; i++)
		more[i] = (struct worker){sleep_waits, {"sleep_waits", 0, 0}, 0};
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (pipe(pipefd)) {
		perror("pipe");
		return 1;
	}
	printf("ready %d\n", getpid());
	fflush(stdout);
	/* 50 ms waits until the signal: a profiler shows main's stack once it is ready */
	struct timespec tick = {0, 50 * 1000000L};
	long long main_t0 = now_ns(CLOCK_MONOTONIC), main_waits = 1;
	while ((sig = sigtimedwait(&set, NULL, &tick)) != SIGUSR1)
		main_waits++;

	for (int i = 0; i < n; i++)
		pthread_create(&w[i].th, NULL, run, &w[i]);
	for (int i = 0; i < sleepers - 1; i++)
		pthread_create(&more[i].th, NULL, run, &more[i]);
	nap((long)(seconds * 1000));
	long long main_ns = now_ns(CLOCK_MONOTONIC) - main_t0;
	stop = 1;
	for (int i = 0; i < n; i++)
		pthread_join(w[i].th, NULL);
	for (int i = 0; i < sleepers - 1; i++) {
		pthread_join(more[i].th, NULL);
		w[0].t.waits += more[i].t.waits;
		w[0].t.ns += more[i].t.ns;
	}
	for (int i = 0; i < n; i++) {
		if (w[i].fn == spin)
			printf("%s cpu_ns=%lld\n", w[i].t.name, w[i].t.ns);
		else
			printf("%s waits=%lld ns=%lld\n", w[i].t.name, w[i].t.waits, w[i].t.ns);
	}
	printf("main waits=%lld ns=%lld\n", main_waits + 1, main_ns);
	return 0;
}
