/*
 * uprobe_loop.c - calls an empty function N times and prints the time per
 * call in ns, for tests/bench/tls.sh to measure what a bare uprobe (a
 * tracefs uprobe_events probe, no BPF) adds to each call on this machine:
 * the floor under any uprobe-based capture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) int ember_bench_target(int x)
{
	__asm__ volatile("");
	return x + 1;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	struct timespec a, b;
	int s = 0;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		s = ember_bench_target(s);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n + 0 * s);
	return 0;
}
