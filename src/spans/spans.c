/*
 * spans.c - the span thread, and what the agent's thread does with its output.
 *
 * The span thread reads the capture every POLL_MS (data events do not wake
 * it; control events and a ring past half full do), backing off to
 * POLL_IDLE_MS while the polls find nothing, so an idle host costs a few
 * wakeups a second, not a hundred (ember_spans_sync wakes it at once),
 * feeds the tracker, and once a second sweeps it and re-reads the offset
 * between the kernel's monotonic clock and the wall clock.  Spans go to the
 * aggregator (red.c); requests a server thread starts serving are tagged
 * with their endpoint in the kernel at once (per-endpoint CPU profiles).
 *
 * At a flush, on the agent's thread: take the aggregates, name each pid
 * once (cached, up to PID_CACHE pids; the cache is dropped when full), map
 * endpoints past a service's cap to "other", write the rows and slow spans
 * to the store, and add the rows to the cumulative /metrics series.
 */
#include "spans/spans.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/array.h"
#include "core/clock.h"
#include "core/log.h"
#include "spans/endpoint.h"
#include "spans/endpoints.h"
#include "spans/red.h"
#include "spans/tls_attach.h"
#include "spans/tracker.h"
#include "store/store_spans.h"

#define PID_CACHE 4096
#define MAX_SERVICE_KEYS 1024
#define SWEEP_NS 1000000000LL
#define POLL_MS 10       /* data events wake no one: the ring is read this often... */
#define POLL_IDLE_MS 160 /* ...backing off to this while nothing comes */
#define SPAN_THREAD_NICE (-10)
#define SEP "\x1f"
#define KEY_MAX (EMBER_ENDPOINT_MAX + 256)

struct named_pid {
	uint32_t pid;
	bool used;
	struct ember_target t;
	char *strings[7];
};

struct series {
	uint64_t count, errors, dur_sum_ns;
	uint64_t le[EMBER_LE_N];
};

struct ember_spans {
	struct ember_spans_opts o;
	struct ember_span_capture *cap;
	struct ember_tls_attach *tls; /* NULL with no_tls or when the uprobes cannot load */
	struct ember_endpoints *endpoints;
	struct ember_tracker *tracker;
	struct ember_red *red;
	pthread_t thread;
	bool running;
	int stop;
	int64_t wall_offset_ns; /* wall clock - kernel clock */
	int64_t thread_cpu_ns;  /* the span thread's CPU time */
	uint64_t polls;         /* polls the span thread finished (ember_spans_sync) */
	/* flush side (agent thread) */
	struct named_pid *pids; /* PID_CACHE slots, direct-mapped */
	struct ember_endpoints *admitted;     /* "service SEP proto SEP endpoint" */
	struct ember_endpoints *service_keys; /* "service SEP proto" */
	uint32_t *service_counts;
	uint64_t flushes, flush_errors, stored_rows, stored_slow, capped;
	/* /metrics */
	pthread_mutex_t series_lock;
	struct ember_endpoints *series_keys;
	struct series *series;
	size_t series_cap;
	uint64_t series_dropped;
	/* tracker counters copied by the span thread for other threads */
	pthread_mutex_t stats_lock;
	uint64_t tracker_stats[EMBER_TRACKER__COUNT];
};

static const char *const proto_names[EMBER_PROTO__COUNT] = {"unknown", "http", "mysql",
							     "pgsql", "redis"};

static const char *proto_name(uint8_t p)
{
	return p < EMBER_PROTO__COUNT ? proto_names[p] : "unknown";
}

static int64_t wall_offset(void)
{
	struct timespec rt, mono;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return ((int64_t)rt.tv_sec - mono.tv_sec) * 1000000000LL + (rt.tv_nsec - mono.tv_nsec);
}

/* ---- the span thread ------------------------------------------------------------ */

static void on_span(const struct ember_span *s, void *arg)
{
	struct ember_spans *sp = arg;

	ember_red_add(sp->red, s, __atomic_load_n(&sp->wall_offset_ns, __ATOMIC_RELAXED));
}

static void on_tag(uint64_t req_id, uint32_t endpoint, void *arg)
{
	struct ember_spans *sp = arg;

	if (sp->cap)
		ember_span_capture_tag(sp->cap, req_id, endpoint);
}

static void on_ctl(const struct ember_span_ctl *ev, void *arg)
{
	ember_tracker_ctl(((struct ember_spans *)arg)->tracker, ev);
}

static void on_data(const struct ember_span_data *ev, const uint8_t *payload, void *arg)
{
	ember_tracker_data(((struct ember_spans *)arg)->tracker, ev, payload);
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *span_thread(void *arg)
{
	struct ember_spans *sp = arg;
	int64_t next_sweep = ember_monotonic_ns() + SWEEP_NS;

	/*
	 * Ahead of the workloads it watches: when the CPUs are saturated a
	 * thread at their priority falls behind, the ring fills and events
	 * are lost.  It needs little CPU, so a higher share costs them little.
	 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SPAN_THREAD_NICE))
		ember_debug("spans: cannot raise the span thread's priority: %s", strerror(errno));

	int timeout_ms = POLL_MS;
	while (!__atomic_load_n(&sp->stop, __ATOMIC_ACQUIRE)) {
		int got = ember_span_capture_poll(sp->cap, timeout_ms);
		__atomic_add_fetch(&sp->polls, 1, __ATOMIC_RELEASE);
		if (got != 0 || ember_span_capture_woken(sp->cap))
			timeout_ms = POLL_MS; /* traffic, or a sync waiting for the next poll */
		else if (timeout_ms < POLL_IDLE_MS)
			timeout_ms *= 2;
		int64_t now = ember_monotonic_ns();
		if (now < next_sweep)
			continue;
		next_sweep = now + SWEEP_NS;
		ember_tracker_sweep(sp->tracker, now);
		__atomic_store_n(&sp->wall_offset_ns, wall_offset(), __ATOMIC_RELAXED);
		pthread_mutex_lock(&sp->stats_lock);
		ember_tracker_stats(sp->tracker, sp->tracker_stats);
		pthread_mutex_unlock(&sp->stats_lock);
		__atomic_store_n(&sp->thread_cpu_ns, thread_cpu_ns(), __ATOMIC_RELAXED);
	}
	/* what is still in the buffers, and connections closed by now */
	ember_span_capture_poll(sp->cap, 0);
	ember_tracker_sweep(sp->tracker, ember_monotonic_ns());
	ember_tracker_sweep(sp->tracker, ember_monotonic_ns());
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

/* Everything but the capture and the thread. */
static struct ember_spans *spans_new(const struct ember_spans_opts *opts)
{
	struct ember_spans *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return NULL;
	sp->o = *opts;
	if (!sp->o.slow_ns)
		sp->o.slow_ns = EMBER_SPANS_DEFAULT_SLOW_NS;
	if (!sp->o.max_endpoints)
		sp->o.max_endpoints = EMBER_SPANS_DEFAULT_MAX_ENDPOINTS;
	pthread_mutex_init(&sp->series_lock, NULL);
	pthread_mutex_init(&sp->stats_lock, NULL);
	sp->wall_offset_ns = wall_offset();
	sp->endpoints = ember_endpoints_new(EMBER_ENDPOINTS_DEFAULT_MAX);
	sp->red = ember_red_new(EMBER_RED_DEFAULT_CELLS, sp->o.slow_ns);
	sp->pids = calloc(PID_CACHE, sizeof(*sp->pids));
	sp->admitted = ember_endpoints_new((size_t)sp->o.max_endpoints * 64);
	sp->service_keys = ember_endpoints_new(MAX_SERVICE_KEYS);
	sp->service_counts = calloc(MAX_SERVICE_KEYS, sizeof(*sp->service_counts));
	sp->series_keys = ember_endpoints_new(EMBER_SPANS_MAX_SERIES);
	struct ember_tracker_opts to = {.max_conns = sp->o.max_conns, .endpoints = sp->endpoints,
					.on_span = on_span, .on_tag = on_tag, .arg = sp};
	if (sp->endpoints)
		sp->tracker = ember_tracker_new(&to);
	if (!sp->endpoints || !sp->red || !sp->pids || !sp->admitted || !sp->service_keys ||
	    !sp->service_counts || !sp->series_keys || !sp->tracker) {
		ember_spans_stop(sp);
		return NULL;
	}
	return sp;
}

int ember_spans_open_offline(const struct ember_spans_opts *opts, struct ember_spans **out)
{
	*out = spans_new(opts);
	return *out ? 0 : -ENOMEM;
}

void ember_spans_add(struct ember_spans *sp, const struct ember_span *span)
{
	on_span(span, sp);
}

uint32_t ember_spans_intern_endpoint(struct ember_spans *sp, uint8_t proto, const char *name)
{
	return ember_endpoints_intern(sp->endpoints, proto, name);
}

int ember_spans_start(const struct ember_spans_opts *opts, struct ember_spans **out, char *err,
		      size_t errlen)
{
	struct ember_spans *sp = spans_new(opts);
	int rc;

	*out = NULL;
	if (!sp) {
		snprintf(err, errlen, "spans: out of memory");
		return -ENOMEM;
	}
	struct ember_span_capture_opts co = {.kernel = sp->o.kernel,
					     .payload_head = sp->o.payload_head,
					     .hooks = sp->o.hooks,
					     .force_perfbuf = sp->o.force_perfbuf,
					     .tls = !sp->o.no_tls,
					     .on_ctl = on_ctl,
					     .on_data = on_data,
					     .arg = sp};
	rc = ember_span_capture_open(&co, &sp->cap, err, errlen);
	if (rc && co.tls) {
		/* TLS is an addition: spans without it rather than none */
		ember_warn("%s; retrying without TLS uprobes", err);
		co.tls = false;
		rc = ember_span_capture_open(&co, &sp->cap, err, errlen);
	}
	if (rc) {
		ember_spans_stop(sp);
		return rc;
	}
	if (co.tls) {
		char terr[256];
		struct ember_tls_attach_opts to = {.max_probes = sp->o.tls_max_probes};
		if (ember_tls_attach_start(ember_span_capture_object(sp->cap), &to, &sp->tls, terr,
					   sizeof(terr)))
			ember_warn("TLS plaintext not traced: %s", terr);
	}
	rc = pthread_create(&sp->thread, NULL, span_thread, sp);
	if (rc) {
		snprintf(err, errlen, "spans: cannot start the span thread: %s", strerror(rc));
		ember_spans_stop(sp);
		return -rc;
	}
	sp->running = true;
	*out = sp;
	return 0;
}

static void forget_pid(struct named_pid *n)
{
	for (int i = 0; i < 7; i++)
		free(n->strings[i]);
	memset(n, 0, sizeof(*n));
}

void ember_spans_sync(struct ember_spans *sp, int max_ms)
{
	if (!sp || !sp->running)
		return;
	/* a poll that starts after this call reads everything sent before it */
	uint64_t target = __atomic_load_n(&sp->polls, __ATOMIC_ACQUIRE) + 2;
	int64_t end = ember_monotonic_ns() + (int64_t)max_ms * 1000000;
	struct timespec ts = {0, 1000000};

	ember_span_capture_wake(sp->cap); /* out of an idle back-off */

	while (__atomic_load_n(&sp->polls, __ATOMIC_ACQUIRE) < target && ember_monotonic_ns() < end)
		nanosleep(&ts, NULL);
}

void ember_spans_drain(struct ember_spans *sp)
{
	if (!sp || !sp->running)
		return;
	__atomic_store_n(&sp->stop, 1, __ATOMIC_RELEASE);
	ember_span_capture_wake(sp->cap);
	pthread_join(sp->thread, NULL);
	sp->running = false;
}

bool ember_spans_tls(const struct ember_spans *sp)
{
	return sp->tls != NULL;
}

void ember_spans_process_changed(struct ember_spans *sp, uint32_t pid)
{
	if (sp)
		ember_tls_attach_notify(sp->tls, pid);
}

const char *ember_spans_hooks(const struct ember_spans *sp)
{
	return sp->cap ? ember_span_capture_hooks(sp->cap) : "none";
}

const char *ember_spans_transport(const struct ember_spans *sp)
{
	return sp->cap ? ember_span_capture_transport(sp->cap) : "none";
}

void ember_spans_stop(struct ember_spans *sp)
{
	if (!sp)
		return;
	ember_spans_drain(sp);
	ember_tls_attach_stop(sp->tls);
	ember_span_capture_close(sp->cap);
	ember_tracker_free(sp->tracker);
	ember_red_free(sp->red);
	ember_endpoints_free(sp->endpoints);
	if (sp->pids)
		for (size_t i = 0; i < PID_CACHE; i++)
			forget_pid(&sp->pids[i]);
	free(sp->pids);
	ember_endpoints_free(sp->admitted);
	ember_endpoints_free(sp->service_keys);
	free(sp->service_counts);
	ember_endpoints_free(sp->series_keys);
	free(sp->series);
	pthread_mutex_destroy(&sp->series_lock);
	pthread_mutex_destroy(&sp->stats_lock);
	free(sp);
}

/* ---- flush ----------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The target of pid: named once through opts.name, else after its comm. */
static const struct ember_target *target_of(struct ember_spans *sp, uint32_t pid,
					    const char *comm)
{
	struct named_pid *n = &sp->pids[pid % PID_CACHE];
	struct ember_target t = {0};

	if (n->used && n->pid == pid)
		return &n->t;
	forget_pid(n);
	if (!sp->o.name || !sp->o.name(pid, comm, &t, sp->o.name_arg))
		t = (struct ember_target){.pid = pid, .comm = comm};
	const char *src[7] = {t.comm, t.exe, t.service, t.version, t.build_id, t.labels, NULL};
	for (int i = 0; i < 6; i++)
		n->strings[i] = dup_or_null(src[i]);
	n->t = (struct ember_target){.pid = pid, .comm = n->strings[0], .exe = n->strings[1],
				     .service = n->strings[2], .version = n->strings[3],
				     .build_id = n->strings[4], .labels = n->strings[5]};
	n->pid = pid;
	n->used = true;
	return &n->t;
}

/* The service name the store will give t (store_ingest.c's rule). */
static const char *service_of(const struct ember_target *t)
{
	if (t->service && *t->service)
		return t->service;
	if (t->comm && *t->comm)
		return t->comm;
	return "unknown";
}

/* The endpoint as counted for service: itself while under the cap, else "other". */
static const char *capped_endpoint(struct ember_spans *sp, const char *service, uint8_t proto,
				   uint32_t endpoint)
{
	const char *name = ember_endpoints_name(sp->endpoints, endpoint);
	char key[KEY_MAX], skey[KEY_MAX];

	if (!name || endpoint == EMBER_ENDPOINT_OTHER)
		return "other";
	snprintf(key, sizeof(key), "%s" SEP "%s" SEP "%s", service, proto_name(proto), name);
	if (ember_endpoints_find(sp->admitted, 0, key) != UINT32_MAX)
		return name;
	snprintf(skey, sizeof(skey), "%s" SEP "%s", service, proto_name(proto));
	uint32_t sk = ember_endpoints_intern(sp->service_keys, 0, skey);
	if (sk == EMBER_ENDPOINT_OTHER || sp->service_counts[sk] >= sp->o.max_endpoints ||
	    ember_endpoints_intern(sp->admitted, 0, key) == EMBER_ENDPOINT_OTHER) {
		sp->capped++;
		return "other";
	}
	sp->service_counts[sk]++;
	return name;
}

static void status_text(uint8_t proto, uint16_t status, char *buf, size_t size)
{
	if (proto == EMBER_PROTO_HTTP)
		snprintf(buf, size, "%u", status);
	else
		snprintf(buf, size, "%s", status == EMBER_STATUS_ERROR ? "error" : "ok");
}

static void add_series(struct ember_spans *sp, const char *service, const char *proto,
		       const char *role, const char *endpoint, const char *status,
		       const struct ember_red_cell *c)
{
	char key[KEY_MAX + 64];

	snprintf(key, sizeof(key), "%s" SEP "%s" SEP "%s" SEP "%s" SEP "%s", service, proto, role,
		 endpoint, status);
	pthread_mutex_lock(&sp->series_lock);
	size_t before = ember_endpoints_count(sp->series_keys);
	uint32_t id = ember_endpoints_intern(sp->series_keys, 0, key);
	if (id == EMBER_ENDPOINT_OTHER ||
	    ember_array_grow(&sp->series, &sp->series_cap, id + 1, sizeof(*sp->series))) {
		sp->series_dropped += c->count;
		pthread_mutex_unlock(&sp->series_lock);
		return;
	}
	if (ember_endpoints_count(sp->series_keys) > before)
		memset(&sp->series[id], 0, sizeof(sp->series[id]));
	struct series *s = &sp->series[id];
	s->count += c->count;
	s->errors += c->errors;
	s->dur_sum_ns += c->dur_sum_ns;
	for (int i = 0; i < EMBER_LE_N; i++)
		s->le[i] += c->le[i];
	pthread_mutex_unlock(&sp->series_lock);
}

static const char *comm_of(const struct ember_red_batch *b, uint32_t pid)
{
	for (size_t i = 0; i < b->n_comms; i++)
		if (b->comms[i].pid == pid)
			return b->comms[i].comm;
	return "";
}

/* Strings of the rows of one flush, freed together. */
struct strings {
	char **v;
	size_t n, cap;
};

static const char *keep(struct strings *ss, const char *s)
{
	char *d = strdup(s);

	if (!d || ember_array_grow(&ss->v, &ss->cap, ss->n + 1, sizeof(*ss->v))) {
		free(d);
		return "";
	}
	ss->v[ss->n++] = d;
	return d;
}

int ember_spans_flush(struct ember_spans *sp, struct ember_store *store, char *err,
		      size_t errlen)
{
	struct ember_red_batch b;
	struct ember_store_span *rows = NULL;
	struct ember_store_slow_span *slow = NULL;
	struct strings ss = {0};
	int ret;

	if (ember_red_take(sp->red, &b))
		return -ENOMEM;
	rows = calloc(b.n_cells + 1, sizeof(*rows));
	slow = calloc(b.n_slow + 1, sizeof(*slow));
	if (!rows || !slow) {
		ret = -ENOMEM;
		snprintf(err, errlen, "spans: out of memory");
		goto out;
	}
	for (size_t i = 0; i < b.n_cells; i++) {
		const struct ember_red_cell *c = &b.cells[i];
		const struct ember_target *t = target_of(sp, c->key.pid, comm_of(&b, c->key.pid));
		const char *service = service_of(t);
		char status[16];
		status_text(c->key.proto, c->key.status, status, sizeof(status));
		const char *endpoint = keep(&ss, capped_endpoint(sp, service, c->key.proto, c->key.endpoint));
		const char *role = c->key.role == EMBER_ROLE_SERVER ? "server" : "client";
		rows[i] = (struct ember_store_span){
			.target = t,
			.bucket_ns = c->key.bucket_ns,
			.protocol = proto_name(c->key.proto),
			.role = role,
			.endpoint = endpoint,
			.peer = ember_red_peer(sp->red, c->key.peer),
			.status = keep(&ss, status),
			.count = c->count,
			.errors = c->errors,
			.tls = c->tls,
			.dur_sum_ns = c->dur_sum_ns,
			.dur_max_ns = c->dur_max_ns,
			.req_bytes = c->req_bytes,
			.resp_bytes = c->resp_bytes,
			.hist = &c->hist,
		};
		add_series(sp, service, rows[i].protocol, role, endpoint, status, c);
	}
	for (size_t i = 0; i < b.n_slow; i++) {
		const struct ember_red_slow *s = &b.slow[i];
		const struct ember_target *t = target_of(sp, s->pid, s->comm);
		char status[16];
		status_text(s->proto, s->status, status, sizeof(status));
		slow[i] = (struct ember_store_slow_span){
			.target = t,
			.time_ns = s->time_ns,
			.duration_ns = s->duration_ns,
			.protocol = proto_name(s->proto),
			.role = s->role == EMBER_ROLE_SERVER ? "server" : "client",
			.endpoint = keep(&ss, capped_endpoint(sp, service_of(t), s->proto, s->endpoint)),
			.peer = s->peer,
			.status = keep(&ss, status),
			.text = s->text,
			.err = s->err,
			.error = s->error,
			.tls = s->tls,
			.tid = s->tid,
		};
	}
	ret = store ? ember_store_spans_ingest(store, rows, b.n_cells, slow, b.n_slow, err, errlen)
		    : 0;
	sp->flushes++;
	if (ret) {
		sp->flush_errors++;
	} else {
		sp->stored_rows += b.n_cells;
		sp->stored_slow += b.n_slow;
	}
out:
	for (size_t i = 0; i < ss.n; i++)
		free(ss.v[i]);
	free(ss.v);
	free(rows);
	free(slow);
	ember_red_batch_free(&b);
	return ret;
}

/* ---- reading ---------------------------------------------------------------------- */

void ember_spans_each_series(struct ember_spans *sp,
			     void (*fn)(const struct ember_span_series *s, void *arg), void *arg)
{
	pthread_mutex_lock(&sp->series_lock);
	size_t n = ember_endpoints_count(sp->series_keys);
	for (size_t id = 1; id < n && id < sp->series_cap; id++) {
		const char *key = ember_endpoints_name(sp->series_keys, (uint32_t)id);
		char buf[KEY_MAX + 64];
		const char *f[5] = {0};
		snprintf(buf, sizeof(buf), "%s", key);
		char *p = buf;
		for (int i = 0; i < 5; i++) {
			char *sep = strchr(p, SEP[0]);
			if (sep)
				*sep = '\0';
			f[i] = p;
			if (!sep)
				break;
			p = sep + 1;
		}
		if (!f[4])
			continue;
		const struct series *s = &sp->series[id];
		struct ember_span_series out = {.service = f[0], .protocol = f[1], .role = f[2],
						.endpoint = f[3], .status = f[4], .count = s->count,
						.errors = s->errors, .dur_sum_ns = s->dur_sum_ns};
		memcpy(out.le, s->le, sizeof(out.le));
		fn(&out, arg);
	}
	pthread_mutex_unlock(&sp->series_lock);
}

void ember_spans_stats_json(struct ember_spans *sp, struct strbuf *sb)
{
	uint64_t ks[EMBER_SPAN_STAT__COUNT], ts[EMBER_TRACKER__COUNT], run_cnt = 0, run_ns = 0;
	static const char *const tnames[] = EMBER_TRACKER_STAT_NAMES;
	struct ember_red_stats rs;

	memset(ks, 0, sizeof(ks));
	if (sp->cap) {
		ember_span_capture_stats(sp->cap, ks);
		ember_span_capture_prog_stats(sp->cap, &run_cnt, &run_ns);
	}
	pthread_mutex_lock(&sp->stats_lock);
	memcpy(ts, sp->tracker_stats, sizeof(ts));
	pthread_mutex_unlock(&sp->stats_lock);
	ember_red_stats(sp->red, &rs);
	sb_printf(sb, "{\"hooks\":\"%s\",\"transport\":\"%s\",\"payload_head\":%u,"
		      "\"slow_threshold_ms\":%.3f,\"max_endpoints\":%u,\"kernel\":{",
		  sp->cap ? ember_span_capture_hooks(sp->cap) : "none",
		  sp->cap ? ember_span_capture_transport(sp->cap) : "none",
		  sp->o.payload_head ? sp->o.payload_head : EMBER_SPANS_DEFAULT_HEAD,
		  (double)sp->o.slow_ns / 1e6, sp->o.max_endpoints);
	for (int i = 0; i < EMBER_SPAN_STAT__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%" PRIu64, i ? "," : "", ember_span_stat_names[i], ks[i]);
	sb_printf(sb, ",\"perf_lost\":%" PRIu64 ",\"prog_run_cnt\":%" PRIu64
		      ",\"prog_run_time_ns\":%" PRIu64 "},\"tracker\":{",
		  sp->cap ? ember_span_capture_perf_lost(sp->cap) : 0, run_cnt, run_ns);
	for (int i = 0; i < EMBER_TRACKER__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%" PRIu64, i ? "," : "", tnames[i], ts[i]);
	sb_puts(sb, "},\"tls\":"); /* the attacher's counters; the kernel's are tls_* above */
	if (sp->tls)
		ember_tls_attach_stats_json(sp->tls, sb);
	else
		sb_puts(sb, "null");
	pthread_mutex_lock(&sp->series_lock);
	size_t series = ember_endpoints_count(sp->series_keys) - 1;
	uint64_t series_dropped = sp->series_dropped;
	pthread_mutex_unlock(&sp->series_lock);
	sb_printf(sb,
		  ",\"aggregator\":{\"spans\":%" PRIu64 ",\"cells\":%" PRIu64 ",\"cells_full\":%" PRIu64
		  ",\"dropped\":%" PRIu64 ",\"slow\":%" PRIu64 ",\"slow_dropped\":%" PRIu64
		  ",\"peers_full\":%" PRIu64 ",\"hist_nomem\":%" PRIu64 "},\"endpoints\":%zu,\"endpoints_overflow\":%" PRIu64
		  ",\"endpoints_capped\":%" PRIu64 ",\"series\":%zu,\"series_dropped\":%" PRIu64
		  ",\"tag_errors\":%" PRIu64 ",\"flushes\":%" PRIu64 ",\"flush_errors\":%" PRIu64
		  ",\"stored_rows\":%" PRIu64 ",\"stored_slow\":%" PRIu64
		  ",\"thread_cpu_s\":%.3f,\"cpu_us_per_span\":%.3f}",
		  rs.spans, rs.cells, rs.cells_full, rs.dropped, rs.slow, rs.slow_dropped,
		  rs.peers_full, rs.hist_nomem, ember_endpoints_count(sp->endpoints),
		  ember_endpoints_overflow(sp->endpoints), sp->capped, series, series_dropped,
		  sp->cap ? ember_span_capture_tag_errors(sp->cap) : 0, sp->flushes, sp->flush_errors, sp->stored_rows, sp->stored_slow,
		  (double)__atomic_load_n(&sp->thread_cpu_ns, __ATOMIC_RELAXED) / 1e9,
		  rs.spans ? (double)__atomic_load_n(&sp->thread_cpu_ns, __ATOMIC_RELAXED) / 1e3 /
				     (double)rs.spans
			   : 0.0);
}

void ember_spans_thread_maps(struct ember_spans *sp, int *threads_fd, int *req_endpoint_fd)
{
	*threads_fd = *req_endpoint_fd = -1;
	if (sp->cap)
		ember_span_capture_thread_maps(sp->cap, threads_fd, req_endpoint_fd);
}

const char *ember_spans_endpoint_name(struct ember_spans *sp, uint32_t id)
{
	const char *n = ember_endpoints_name(sp->endpoints, id);
	return n ? n : "other";
}
