/*
 * validate_unwind.c - check Ember's in-kernel unwinding against libunwind, frame by frame.
 *
 *   validate_unwind --pid PID [--duration S] [--frequency HZ] [--every N]
 *                   [--min-agreement PCT] [--verbose]
 *
 * Loads the real profiler in validation mode: for 1 in N samples the BPF
 * program also sends the user registers, a copy of the top of the user
 * stack and the pcs it unwound (struct ember_stack_snapshot).  Each
 * snapshot is unwound again by libunwind over the same bytes and the
 * process's mapped files (tests/oracle/), and the two stacks are compared.
 * Snapshots where the copy was too short for libunwind to decide are
 * reported apart.  Exits 1 when the agreement over decidable snapshots is
 * below --min-agreement (default 99.9), 2 on errors.
 *
 * A test tool: it links libunwind, which build/ember never does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../oracle/unwind_oracle.c"
#include "agent/procmaps.h"
#include "agent/profiler.h"
#include "core/log.h"

#define MAX_SNAPSHOTS 20000

static struct ember_stack_snapshot *snaps;
static size_t n_snaps, dropped;

static void on_snapshot(const struct ember_stack_snapshot *s, void *arg)
{
	if (n_snaps >= MAX_SNAPSHOTS) {
		dropped++;
		return;
	}
	snaps[n_snaps++] = *s;
}

static void ignore_sample(const struct ember_raw_sample *s, void *arg) {}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void print_pcs(const char *who, const uint64_t *pcs, size_t n)
{
	printf("    %-8s", who);
	for (size_t i = 0; i < n && i < 24; i++)
		printf(" %llx", (unsigned long long)pcs[i]);
	printf("%s\n", n > 24 ? " ..." : "");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, 0, 'p'},      {"duration", required_argument, 0, 'd'},
		{"frequency", required_argument, 0, 'F'}, {"every", required_argument, 0, 'e'},
		{"min-agreement", required_argument, 0, 'm'}, {"verbose", no_argument, 0, 'v'},
		{0, 0, 0, 0},
	};
	uint32_t pid = 0;
	int duration = 4, frequency = 99, every = 1, verbose = 0, c;
	double min_agreement = 99.9;

	while ((c = getopt_long(argc, argv, "p:d:F:e:m:v", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pid = (uint32_t)atoi(optarg); break;
		case 'd': duration = atoi(optarg); break;
		case 'F': frequency = atoi(optarg); break;
		case 'e': every = atoi(optarg); break;
		case 'm': min_agreement = atof(optarg); break;
		case 'v':
			verbose = 1;
			ember_log_set_level(EMBER_LOG_DEBUG);
			break;
		default: return 2;
		}
	}
	if (!pid || duration <= 0 || frequency <= 0 || every <= 0) {
		fprintf(stderr, "usage: validate_unwind --pid PID [--duration S] [--frequency HZ] "
				"[--every N] [--min-agreement PCT] [--verbose]\n");
		return 2;
	}
	snaps = malloc(sizeof(*snaps) * MAX_SNAPSHOTS);
	if (!snaps)
		return 2;

	struct ember_profiler_opts popts = {.frequency = (unsigned)frequency, .pids = &pid,
					    .n_pids = 1, .snapshot_every = (unsigned)every,
					    .snapshot_fn = on_snapshot};
	struct ember_profiler *pr;
	char err[512];
	if (ember_profiler_open(&popts, &pr, err, sizeof(err)) ||
	    ember_profiler_start(pr, err, sizeof(err))) {
		fprintf(stderr, "validate_unwind: %s\n", err);
		return 2;
	}
	long long end = now_ms() + duration * 1000LL;
	while (now_ms() < end) {
		ember_profiler_poll(pr, 100);
		ember_profiler_drain(pr, ignore_sample, NULL);
	}
	ember_profiler_poll(pr, 0);

	/* the process still runs: its mappings are the ones the samples saw */
	struct ember_maps maps = {0};
	if (ember_maps_read_pid(pid, EMBER_MAPS_EXEC_ONLY, &maps)) {
		fprintf(stderr, "validate_unwind: pid %u exited before the comparison\n", pid);
		return 2;
	}
	struct oracle_mapping *om = calloc(maps.n + 1, sizeof(*om));
	char (*paths)[4200] = calloc(maps.n + 1, sizeof(*paths));
	size_t n_om = 0;
	for (size_t i = 0; i < maps.n; i++) {
		const struct ember_map_entry *e = &maps.entries[i];
		if (!e->path[0])
			continue;
		if (e->path[0] == '[')
			snprintf(paths[n_om], sizeof(paths[n_om]), "%s", e->path);
		else
			snprintf(paths[n_om], sizeof(paths[n_om]), "/proc/%u/root%s", pid, e->path);
		om[n_om] = (struct oracle_mapping){e->start, e->end, e->pgoff, paths[n_om]};
		n_om++;
	}

	size_t agree = 0, disagree = 0, undecidable = 0, shown = 0;
	uint64_t *opcs = malloc(sizeof(uint64_t) * 1024);
	for (size_t i = 0; i < n_snaps; i++) {
		const struct ember_stack_snapshot *s = &snaps[i];
		size_t n_oracle = 0, frame = 0;
		int status = ORACLE_ERROR;
		enum oracle_verdict v;
		size_t depth = s->depth < EMBER_MAX_USER_DEPTH ? s->depth : EMBER_MAX_USER_DEPTH;

		oracle_unwind(s, om, n_om, opcs, 1024, &n_oracle, &status);
		oracle_compare((const uint64_t *)s->pcs, depth, s->flags, opcs, n_oracle, status, &v, &frame);
		if (v == ORACLE_AGREE) {
			agree++;
		} else if (v == ORACLE_UNDECIDABLE) {
			undecidable++;
		} else {
			disagree++;
			if (shown++ < 10 || verbose) {
				printf("  disagreement at frame %zu (tid %u, flags 0x%x, oracle %s):\n",
				       frame, s->tid, s->flags, oracle_status_name(status));
				print_pcs("ember", (const uint64_t *)s->pcs, depth);
				print_pcs("libunwind", opcs, n_oracle);
			}
		}
	}
	size_t decidable = agree + disagree;
	double pct = decidable ? 100.0 * (double)agree / (double)decidable : 0;
	printf("snapshots %zu (dropped %zu), decidable %zu, agree %zu, disagree %zu, "
	       "undecidable (stack copy too short) %zu: agreement %.2f%%\n",
	       n_snaps, dropped, decidable, agree, disagree, undecidable, pct);
	ember_profiler_close(pr);
	ember_maps_free(&maps);
	if (decidable == 0) {
		fprintf(stderr, "validate_unwind: no decidable snapshot\n");
		return 1;
	}
	return pct >= min_agreement ? 0 : 1;
}
