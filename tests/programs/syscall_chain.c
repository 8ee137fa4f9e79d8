/*
 * syscall_chain.c - spends its time in the kernel, called from a known user chain.
 *
 *   syscall_chain [SECONDS]   (default 10)
 *
 * main -> syscall_outer -> syscall_inner -> getppid() in a loop, built
 * without frame pointers: most samples land in kernel mode, where the
 * unwinder must find the user registers the kernel saved at entry
 * (bpf_task_pt_regs, or on kernels before 5.15 the top of the task's
 * kernel stack) and unwind from there by the DWARF tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static long syscall_inner(long rounds)
{
	long sum = 0;

	for (long i = 0; i < rounds; i++)
		sum += syscall(SYS_getppid);
	return sum;
}

__attribute__((noinline)) static long syscall_outer(double seconds)
{
	double end = now() + seconds;
	long sum = 0;

	while (now() < end)
		sum += syscall_inner(10000);
	return sum;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10;

	printf("%ld\n", syscall_outer(seconds));
	return 0;
}
