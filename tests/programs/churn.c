/*
 * churn.c - process churn: start short-lived processes at a given rate.
 *
 *   churn RATE SECONDS [DYNAMIC_EVERY]
 *
 * Starts RATE processes a second for SECONDS.  Most are execs of
 * churn_child (next to this program: static, no libc, exits at once: the
 * cheapest exec there is, so the rate is reachable on a small machine);
 * one in DYNAMIC_EVERY (default 10, 0 = none) is an exec of this program
 * itself in child mode, dynamically linked (the loader and libc are mapped,
 * as in any real short-lived process), burning ~2 ms of CPU first so that
 * samples land in short-lived processes too.
 *
 * One spawning worker per online CPU shares the rate; each paces itself in
 * 1 ms slices against the clock and reaps its children as they exit.  When
 * the machine cannot keep up, the rate is whatever it manages.  At the end
 * prints "churn: N execs in S s (R/s), F failed" on stdout: the achieved
 * rate is what the tests check and report.  SIGTERM or SIGINT stops the
 * workers too.
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Child mode: burn ~ms of CPU, then exit. */
static int child(const char *spin_ms)
{
	double ms = atof(spin_ms), end = now_s() + ms / 1000.0;
	volatile unsigned long x = 1;

	while (ms > 0 && now_s() < end)
		for (int i = 0; i < 1000; i++)
			x = x * 6364136223846793005UL + 1;
	return 0;
}

struct totals {
	long started, failed;
};

#define MAX_WORKERS 64
static pid_t workers[MAX_WORKERS];
static long n_workers;

static void stop_workers(int sig)
{
	for (long i = 0; i < n_workers; i++)
		kill(workers[i], SIGTERM);
	_exit(128 + sig);
}

static void reap(long *live)
{
	while (*live > 0 && waitpid(-1, NULL, WNOHANG) > 0)
		(*live)--;
}

/* One worker: `rate` execs a second until `end`. */
static void worker(double rate, double t0, double end, long dynamic_every, char *self,
		   char *tiny, struct totals *tot)
{
	long started = 0, failed = 0, live = 0;

	for (double now = t0; now < end; now = now_s()) {
		long due = (long)((now - t0) * rate) + 1;
		for (int batch = 0; started < due && live < 1024 && batch < 64; batch++) {
			bool dynamic = !tiny || (dynamic_every && started % dynamic_every == 0);
			char *dyn_args[] = {self, "--child", "2", NULL};
			char *tiny_args[] = {tiny, NULL};
			char **args = dynamic ? dyn_args : tiny_args;
			pid_t pid;
			started++;
			if (posix_spawn(&pid, args[0], NULL, NULL, args, environ)) {
				failed++;
				continue;
			}
			live++;
		}
		reap(&live);
		if (started >= due) {
			struct timespec ts = {0, 1000000}; /* 1 ms */
			nanosleep(&ts, NULL);
		}
	}
	while (live > 0 && waitpid(-1, NULL, 0) > 0)
		live--;
	__atomic_add_fetch(&tot->started, started, __ATOMIC_RELAXED);
	__atomic_add_fetch(&tot->failed, failed, __ATOMIC_RELAXED);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return child(argv[2]);
	if (argc < 3) {
		fprintf(stderr, "usage: churn RATE SECONDS [DYNAMIC_EVERY]\n");
		return 2;
	}
	double rate = atof(argv[1]), seconds = atof(argv[2]);
	long dynamic_every = argc > 3 ? atol(argv[3]) : 10;
	if (rate <= 0 || seconds <= 0 || dynamic_every < 0) {
		fprintf(stderr, "churn: RATE and SECONDS must be positive\n");
		return 2;
	}
	static char self[4096], dir[4096], tiny[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		perror("churn: /proc/self/exe");
		return 1;
	}
	self[n] = '\0';
	memcpy(dir, self, (size_t)n + 1);
	snprintf(tiny, sizeof(tiny), "%s/churn_child", dirname(dir));
	bool have_tiny = access(tiny, X_OK) == 0;
	if (!have_tiny)
		fprintf(stderr, "churn: %s missing: every child is dynamic\n", tiny);

	struct totals *tot = mmap(NULL, sizeof(*tot), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tot == MAP_FAILED) {
		perror("churn: mmap");
		return 1;
	}
	long nw = sysconf(_SC_NPROCESSORS_ONLN);
	if (nw < 1)
		nw = 1;
	if (nw > MAX_WORKERS)
		nw = MAX_WORKERS;
	struct sigaction sa = {.sa_handler = stop_workers};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	double t0 = now_s(), end = t0 + seconds;
	for (long w = 0; w < nw; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			worker(rate / (double)nw, t0, end, dynamic_every, self,
			       have_tiny ? tiny : NULL, tot);
			_exit(0);
		}
		if (pid < 0) {
			perror("churn: fork");
			stop_workers(SIGTERM);
		}
		workers[n_workers++] = pid;
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	double took = now_s() - t0;
	long ok = tot->started - tot->failed;
	printf("churn: %ld execs in %.1f s (%.0f/s), %ld failed\n", ok, took, (double)ok / took,
	       tot->failed);
	return tot->failed > tot->started / 100 ? 1 : 0;
}
