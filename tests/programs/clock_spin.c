/*
 * clock_spin.c - reads the clock in a loop for SECONDS (default 10): its
 * samples land in the vDSO (clock_gettime), called from spin_on_clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) static long spin_on_clock(double seconds)
{
	struct timespec start, now;
	long reads = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		clock_gettime(CLOCK_MONOTONIC, &now);
		reads++;
	} while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
	return reads;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10;

	printf("%ld clock reads\n", spin_on_clock(seconds));
	return 0;
}
