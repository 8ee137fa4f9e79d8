/*
 * spans_dump.c - print the spans Ember sees, one line each (a test tool).
 *
 *   spans_dump [-t SECONDS] [-p PID] [-r] [-P] [-H BYTES]
 *
 * Loads the span capture (bpf/spans/), feeds the connection tracker and
 * prints every span as a tab-separated line:
 *   proto role pid tid status error duration_us req_bytes resp_bytes peer endpoint
 * then the kernel's and the tracker's counters as "stat NAME VALUE" lines.
 * -p keeps only one process's spans, -r forces the raw syscall tracepoints,
 * -P the perf buffers, -H sets the payload head.  Runs until SIGINT/SIGTERM
 * or the time is up.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "spans/capture.h"
#include "spans/endpoints.h"
#include "spans/tracker.h"

static volatile sig_atomic_t stop;
static uint32_t only_pid;
static struct ember_endpoints *eps;
static struct ember_tracker *tr;

static const char *proto_name(int p)
{
	static const char *const n[] = {"unknown", "http", "mysql", "pgsql", "redis"};
	return p >= 0 && p < 5 ? n[p] : "?";
}

static void on_span(const struct ember_span *s, void *arg)
{
	(void)arg;
	if (only_pid && s->pid != only_pid)
		return;
	printf("%s\t%s\t%u\t%u\t%u\t%d\t%.1f\t%llu\t%llu\t%s\t%s\n", proto_name(s->proto),
	       s->role == EMBER_ROLE_CLIENT ? "client" : "server", s->pid, s->tid, s->status,
	       s->error, (s->end_ns - s->start_ns) / 1e3, (unsigned long long)s->req_bytes,
	       (unsigned long long)s->resp_bytes, s->peer[0] ? s->peer : "-",
	       ember_endpoints_name(eps, s->endpoint));
}

static void on_ctl(const struct ember_span_ctl *ev, void *arg)
{
	(void)arg;
	ember_tracker_ctl(tr, ev);
}

static void on_data(const struct ember_span_data *ev, const uint8_t *payload, void *arg)
{
	(void)arg;
	ember_tracker_data(tr, ev, payload);
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct ember_span_capture_opts o = {.on_ctl = on_ctl, .on_data = on_data};
	struct ember_span_capture *cap;
	char err[256];
	double seconds = 10;
	int c;

	while ((c = getopt(argc, argv, "t:p:rPH:")) != -1) {
		switch (c) {
		case 't': seconds = atof(optarg); break;
		case 'p': only_pid = (uint32_t)atoi(optarg); break;
		case 'r': o.hooks = EMBER_SPAN_HOOKS_RAW; break;
		case 'P': o.force_perfbuf = true; break;
		case 'H': o.payload_head = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: spans_dump [-t SECONDS] [-p PID] [-r] [-P] [-H BYTES]\n");
			return 2;
		}
	}
	eps = ember_endpoints_new(EMBER_ENDPOINTS_DEFAULT_MAX);
	struct ember_tracker_opts to = {.endpoints = eps, .on_span = on_span};
	tr = ember_tracker_new(&to);
	if (!eps || !tr)
		return 1;
	if (ember_span_capture_open(&o, &cap, err, sizeof(err))) {
		fprintf(stderr, "spans_dump: %s\n", err);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	fprintf(stderr, "spans_dump: hooks %s, transport %s\n", ember_span_capture_hooks(cap),
		ember_span_capture_transport(cap));
	int64_t end = ember_monotonic_ns() + (int64_t)(seconds * 1e9), next_sweep = ember_monotonic_ns() + 1000000000LL;
	while (!stop && ember_monotonic_ns() < end) {
		ember_span_capture_poll(cap, 100);
		if (ember_monotonic_ns() >= next_sweep) {
			ember_tracker_sweep(tr, ember_monotonic_ns());
			next_sweep += 1000000000LL;
		}
	}
	/* the last events, then two sweeps to finish closed connections */
	ember_span_capture_poll(cap, 0);
	ember_tracker_sweep(tr, ember_monotonic_ns());
	ember_tracker_sweep(tr, ember_monotonic_ns());
	uint64_t ks[EMBER_SPAN_STAT__COUNT], ts[EMBER_TRACKER__COUNT];
	static const char *const tnames[] = EMBER_TRACKER_STAT_NAMES;
	ember_span_capture_stats(cap, ks);
	ember_tracker_stats(tr, ts);
	for (int i = 0; i < EMBER_SPAN_STAT__COUNT; i++)
		printf("stat kernel_%s %llu\n", ember_span_stat_names[i], (unsigned long long)ks[i]);
	for (int i = 0; i < EMBER_TRACKER__COUNT; i++)
		printf("stat tracker_%s %llu\n", tnames[i], (unsigned long long)ts[i]);
	ember_span_capture_close(cap);
	ember_tracker_free(tr);
	ember_endpoints_free(eps);
	return 0;
}
