/*
 * capture.c - loading bpf/spans/spans.bpf.c and reading its two channels.
 *
 * Hook choice: the syscall tracepoints need tracefs; libbpf looks for it at
 * /sys/kernel/tracing, then /sys/kernel/debug/tracing.  When neither has
 * the syscall events and we are allowed to, tracefs is mounted at
 * /sys/kernel/tracing (as perf and bpftrace would); if that fails the raw
 * sys_enter/sys_exit tracepoints are used, which need nothing mounted.
 * Only the chosen set of programs is loaded (autoload off for the other).
 * The syscall arguments are read at exit from the task's registers when
 * bpf_task_pt_regs is there (the raw sys_exit tracepoint has them as its
 * argument), so no sys_enter program runs but close's; without it the
 * tracepoints go in two halves, sys_enter keeping the arguments for
 * sys_exit (see bpf/spans/spans.bpf.c).
 *
 * Transport: the object declares two ring buffers.  Without ring buffer
 * support (or with force_perfbuf) they are retyped to perf event arrays
 * before load and the program's use_ringbuf is cleared, so it calls
 * bpf_perf_event_output instead; the verifier never sees the other branch.
 *
 * With a kernel description (agent/kernel.h) its features decide too
 * (--force-perfbuf and --no-feature ringbuf,tracepoints force the
 * fallbacks), the object is opened with its BTF, and the choice and each
 * fallback are noted there for the start-up output and /api/stats.
 */
#include "spans/capture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/kernel.h"
#include "core/array.h"
#include "core/bpf_counters.h"
#include "core/log.h"
#include "spans.skel.h"

#define CTL_RING_BYTES (512 * 1024)
#define DEFAULT_DATA_RING (8u << 20)
#define PERF_CTL_PAGES 16
#define MAX_LINKS 32
#define BATCH_MAX_BYTES (32u << 20) /* perfbuf: events held for sorting per poll */
#define TRACEFS "/sys/kernel/tracing"
#define TAG_BATCH 1024 /* request -> endpoint tags written to the kernel at once */

struct batch_event {
	uint64_t ts;
	uint32_t off, size; /* in batch_buf */
};

struct ember_span_capture {
	struct spans *skel;
	struct bpf_link *links[MAX_LINKS];
	int n_links;
	bool ringbuf, raw;
	bool args_at_exit; /* no sys_enter programs but close's (raw: none) */
	struct ring_buffer *rb;
	struct perf_buffer *pb_ctl, *pb_data;
	int epfd;    /* the buffers' epoll fds and wake_fd */
	int wake_fd; /* eventfd: ember_span_capture_wake() ends a poll early */
	uint64_t perf_lost;
	struct ember_span_capture_opts o;
	int delivered;
	bool woken; /* the last poll was ended by ember_span_capture_wake() */
	/* perfbuf: data events of one poll, sorted by time before delivery */
	uint8_t *batch_buf;
	size_t batch_len, batch_cap;
	struct batch_event *batch;
	size_t n_batch, batch_ev_cap;
	/* tags of one poll, written with one bpf(BPF_MAP_UPDATE_BATCH) after it */
	uint64_t tag_keys[TAG_BATCH];
	uint32_t tag_vals[TAG_BATCH];
	uint32_t n_tags;
	bool tag_one_by_one; /* the kernel has no batch update for the map */
	uint64_t tag_errors;
};

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && ember_log_get_level() >= EMBER_LOG_DEBUG)
		return vfprintf(stderr, fmt, ap);
	if (ember_log_libbpf())
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static bool syscall_events_at(const char *root)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/events/syscalls/sys_enter_read/id", root);
	return access(path, R_OK) == 0;
}

/* Whether libbpf can attach the syscall tracepoints, mounting tracefs if need be. */
static bool tracepoints_usable(void)
{
	if (syscall_events_at(TRACEFS))
		return true;
	if (access(TRACEFS, F_OK) != 0 && syscall_events_at("/sys/kernel/debug/tracing"))
		return true; /* libbpf falls back to the debugfs path only without TRACEFS */
	if (mount("nodev", TRACEFS, "tracefs", 0, NULL) == 0) {
		ember_info("spans: mounted tracefs at " TRACEFS);
		return syscall_events_at(TRACEFS);
	}
	return false;
}

static bool is_raw_prog(const struct bpf_program *p)
{
	return strcmp(bpf_program__name(p), "ember_raw_exit") == 0;
}

/* sys_enter of a data syscall: only the two-halves mode needs it. */
static bool is_data_enter_prog(const struct bpf_program *p)
{
	const char *n = bpf_program__name(p);
	return strncmp(n, "ember_enter_", 12) == 0 && strcmp(n, "ember_enter_close") != 0;
}

/* The TLS uprobes: attached per file by tls_attach.c, not here. */
static bool is_tls_prog(const struct bpf_program *p)
{
	const char *n = bpf_program__name(p);
	return strncmp(n, "ember_ssl_", 10) == 0 || strncmp(n, "ember_go_tls_", 13) == 0;
}

static bool is_tracepoint_prog(const struct bpf_program *p)
{
	const char *n = bpf_program__name(p);
	return strncmp(n, "ember_enter_", 12) == 0 || strncmp(n, "ember_exit_", 11) == 0;
}

/* ---- delivery ---------------------------------------------------------------- */

static bool data_ok(const void *data, size_t size)
{
	const struct ember_span_data *ev = data;

	return size >= sizeof(*ev) && ev->captured <= size - sizeof(*ev) &&
	       ev->captured <= EMBER_SPANS_MAX_HEAD;
}

static void deliver_data(struct ember_span_capture *cap, const void *data)
{
	const struct ember_span_data *ev = data;

	cap->delivered++;
	if (cap->o.on_data)
		cap->o.on_data(ev, (const uint8_t *)data + sizeof(*ev), cap->o.arg);
}

static int on_ring_ctl(void *ctx, void *data, size_t size)
{
	struct ember_span_capture *cap = ctx;

	if (size >= sizeof(struct ember_span_ctl) && cap->o.on_ctl) {
		cap->delivered++;
		cap->o.on_ctl(data, cap->o.arg);
	}
	return 0;
}

static int on_ring_data(void *ctx, void *data, size_t size)
{
	if (data_ok(data, size))
		deliver_data(ctx, data);
	return 0;
}

static void on_perf_ctl(void *ctx, int cpu, void *data, __u32 size)
{
	(void)cpu;
	on_ring_ctl(ctx, data, size);
}

/* Keep a data event of this poll for sorting; deliver at once if the batch is full. */
static void on_perf_data(void *ctx, int cpu, void *data, __u32 size)
{
	struct ember_span_capture *cap = ctx;
	const struct ember_span_data *ev = data;

	(void)cpu;
	if (!data_ok(data, size))
		return;
	size = (uint32_t)(sizeof(*ev) + ev->captured);
	if (cap->batch_len + size > BATCH_MAX_BYTES ||
	    ember_array_grow(&cap->batch_buf, &cap->batch_cap, cap->batch_len + size, 1) ||
	    ember_array_grow(&cap->batch, &cap->batch_ev_cap, cap->n_batch + 1,
			     sizeof(*cap->batch))) {
		deliver_data(cap, data);
		return;
	}
	memcpy(cap->batch_buf + cap->batch_len, data, size);
	cap->batch[cap->n_batch++] =
		(struct batch_event){.ts = ev->ts_ns, .off = (uint32_t)cap->batch_len, .size = size};
	cap->batch_len += size;
}

static void on_perf_lost(void *ctx, int cpu, __u64 count)
{
	struct ember_span_capture *cap = ctx;

	(void)cpu;
	cap->perf_lost += count;
}

static int by_time(const void *a, const void *b)
{
	const struct batch_event *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off; /* stable */
}

static void flush_batch(struct ember_span_capture *cap)
{
	if (cap->n_batch)
		qsort(cap->batch, cap->n_batch, sizeof(*cap->batch), by_time);
	for (size_t i = 0; i < cap->n_batch; i++)
		deliver_data(cap, cap->batch_buf + cap->batch[i].off);
	cap->n_batch = 0;
	cap->batch_len = 0;
}

/* ---- opening ---------------------------------------------------------------- */

static int set_perf_type(struct bpf_map *m)
{
	if (bpf_map__set_type(m, BPF_MAP_TYPE_PERF_EVENT_ARRAY) ||
	    bpf_map__set_key_size(m, sizeof(int)) || bpf_map__set_value_size(m, sizeof(int)) ||
	    bpf_map__set_max_entries(m, 0))
		return -EINVAL;
	return 0;
}

static size_t pow2_at_least(size_t v)
{
	size_t p = 4096;

	while (p < v)
		p *= 2;
	return p;
}

static int attach_all(struct ember_span_capture *cap, char *err, size_t errlen)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, cap->skel->obj) {
		if (!bpf_program__autoload(p) || is_tls_prog(p))
			continue;
		if (cap->n_links == MAX_LINKS)
			return -E2BIG;
		struct bpf_link *l = bpf_program__attach(p);
		if (!l) {
			int e = errno;
			snprintf(err, errlen, "spans: cannot attach %s: %s", bpf_program__name(p),
				 strerror(e));
			return -e;
		}
		cap->links[cap->n_links++] = l;
	}
	return 0;
}

static int open_buffers(struct ember_span_capture *cap, char *err, size_t errlen)
{
	int ctl_fd = bpf_map__fd(cap->skel->maps.ctl_events);
	int data_fd = bpf_map__fd(cap->skel->maps.data_events);
	struct epoll_event e = {.events = EPOLLIN};

	cap->epfd = epoll_create1(EPOLL_CLOEXEC);
	cap->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cap->epfd < 0 || cap->wake_fd < 0) {
		snprintf(err, errlen, "spans: epoll: %s", strerror(errno));
		return -errno;
	}
	e.data.fd = cap->wake_fd;
	if (epoll_ctl(cap->epfd, EPOLL_CTL_ADD, cap->wake_fd, &e)) {
		snprintf(err, errlen, "spans: epoll: %s", strerror(errno));
		return -errno;
	}
	e.data.fd = -1;
	if (cap->ringbuf) {
		cap->rb = ring_buffer__new(ctl_fd, on_ring_ctl, cap, NULL);
		if (!cap->rb || ring_buffer__add(cap->rb, data_fd, on_ring_data, cap)) {
			snprintf(err, errlen, "spans: cannot open the ring buffers: %s", strerror(errno));
			return -errno;
		}
		/* libbpf's epoll fd is itself pollable: one wait covers rings and wake_fd */
		if (epoll_ctl(cap->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(cap->rb), &e)) {
			snprintf(err, errlen, "spans: epoll: %s", strerror(errno));
			return -errno;
		}
		return 0;
	}
	int ncpus = libbpf_num_possible_cpus();
	size_t per_cpu = (cap->o.data_buffer ? cap->o.data_buffer : DEFAULT_DATA_RING) /
			 (size_t)(ncpus > 0 ? ncpus : 1);
	size_t pages = pow2_at_least(per_cpu) / 4096;
	cap->pb_ctl = perf_buffer__new(ctl_fd, PERF_CTL_PAGES, on_perf_ctl, on_perf_lost, cap, NULL);
	cap->pb_data = perf_buffer__new(data_fd, pages, on_perf_data, on_perf_lost, cap, NULL);
	if (!cap->pb_ctl || !cap->pb_data) {
		snprintf(err, errlen, "spans: cannot open the perf buffers: %s", strerror(errno));
		return -errno;
	}
	if (epoll_ctl(cap->epfd, EPOLL_CTL_ADD, perf_buffer__epoll_fd(cap->pb_ctl), &e) ||
	    epoll_ctl(cap->epfd, EPOLL_CTL_ADD, perf_buffer__epoll_fd(cap->pb_data), &e)) {
		snprintf(err, errlen, "spans: epoll: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int ember_span_capture_open(const struct ember_span_capture_opts *opts,
			    struct ember_span_capture **out, char *err, size_t errlen)
{
	struct ember_span_capture *cap = calloc(1, sizeof(*cap));
	struct bpf_program *p;
	int rc;

	*out = NULL;
	if (!cap)
		return -ENOMEM;
	cap->o = *opts;
	cap->epfd = -1;
	cap->wake_fd = -1;
	if (!cap->o.payload_head)
		cap->o.payload_head = EMBER_SPANS_DEFAULT_HEAD;
	if (cap->o.payload_head > EMBER_SPANS_MAX_HEAD) {
		snprintf(err, errlen, "spans: payload head %u is over the maximum %u",
			 cap->o.payload_head, EMBER_SPANS_MAX_HEAD);
		free(cap);
		return -EINVAL;
	}
	libbpf_set_print(libbpf_quiet);
	struct ember_kernel *k = opts->kernel;
	bool ringbuf_ok = k ? ember_kernel_has(k, EMBER_KF_RINGBUF)
			    : libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) > 0;
	bool tp_ok = (!k || ember_kernel_has(k, EMBER_KF_TRACEPOINTS)) && tracepoints_usable();
	cap->ringbuf = !opts->force_perfbuf && ringbuf_ok;
	cap->raw = opts->hooks == EMBER_SPAN_HOOKS_RAW ||
		   (opts->hooks == EMBER_SPAN_HOOKS_AUTO && !tp_ok);
	bool regs_ok = k ? ember_kernel_has(k, EMBER_KF_TASK_PT_REGS)
			 : access("/sys/kernel/btf/vmlinux", R_OK) == 0 &&
				   libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT,
							   BPF_FUNC_task_pt_regs, NULL) > 0;
	cap->args_at_exit = cap->raw || regs_ok;

	cap->skel = k ? spans__open_opts(ember_kernel_open_opts(k)) : spans__open();
	if (!cap->skel) {
		rc = -errno;
		snprintf(err, errlen, "spans: cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	cap->skel->rodata->payload_max = cap->o.payload_head;
	cap->skel->rodata->self_tgid = (uint32_t)getpid();
	cap->skel->rodata->use_ringbuf = cap->ringbuf;
	cap->skel->rodata->tls_on = cap->o.tls;
	cap->skel->rodata->args_at_exit = cap->args_at_exit && !cap->raw;
	cap->skel->rodata->have_task_btf = regs_ok;
	if (k && !ember_kernel_has(k, EMBER_KF_PROBE_READ_USER)) {
		cap->skel->rodata->have_probe_read_user = 0;
		ember_kernel_note_fallback(k, "spans", EMBER_KF_PROBE_READ_USER, "bpf_probe_read");
	}
	bpf_object__for_each_program(p, cap->skel->obj) {
		if (is_tls_prog(p))
			bpf_program__set_autoload(p, cap->o.tls);
		else if (is_raw_prog(p))
			bpf_program__set_autoload(p, cap->raw);
		else if (is_data_enter_prog(p))
			bpf_program__set_autoload(p, !cap->raw && !cap->args_at_exit);
		else if (is_tracepoint_prog(p))
			bpf_program__set_autoload(p, !cap->raw);
	}
	if (cap->ringbuf) {
		size_t data = pow2_at_least(cap->o.data_buffer ? cap->o.data_buffer : DEFAULT_DATA_RING);
		bpf_map__set_max_entries(cap->skel->maps.ctl_events, CTL_RING_BYTES);
		bpf_map__set_max_entries(cap->skel->maps.data_events, (uint32_t)data);
	} else if (set_perf_type(cap->skel->maps.ctl_events) ||
		   set_perf_type(cap->skel->maps.data_events)) {
		rc = -EINVAL;
		snprintf(err, errlen, "spans: cannot turn the ring buffers into perf buffers");
		goto fail;
	}
	rc = spans__load(cap->skel);
	if (rc) {
		snprintf(err, errlen,
			 "spans: cannot load the BPF span programs: %s (root and kernel BTF needed; "
			 "ember -v -v shows libbpf's log)",
			 strerror(-rc));
		goto fail;
	}
	rc = attach_all(cap, err, errlen);
	if (rc)
		goto fail;
	rc = open_buffers(cap, err, errlen);
	if (rc)
		goto fail;
	if (k) {
		char text[128];
		snprintf(text, sizeof(text), "syscalls by %s, events by %s",
			 cap->raw ? "raw tracepoint sys_exit"
			 : cap->args_at_exit ? "syscall exit tracepoints (arguments from pt_regs)"
					     : "syscall enter and exit tracepoints",
			 cap->ringbuf ? "ring buffers" : "perf buffers");
		ember_kernel_note_hooks(k, "spans", text);
		if (!cap->ringbuf)
			ember_kernel_note_fallback(k, "spans", EMBER_KF_RINGBUF, "perf buffers");
		if (cap->raw && opts->hooks == EMBER_SPAN_HOOKS_AUTO)
			ember_kernel_note_fallback(k, "spans", EMBER_KF_TRACEPOINTS,
						   "raw tracepoint sys_exit");
		if (!cap->raw && !cap->args_at_exit)
			ember_kernel_note_fallback(k, "spans", EMBER_KF_TASK_PT_REGS,
						   "syscall enter and exit tracepoints");
	}
	*out = cap;
	return 0;
fail:
	ember_span_capture_close(cap);
	return rc ? rc : -EINVAL;
}

void ember_span_capture_close(struct ember_span_capture *cap)
{
	if (!cap)
		return;
	for (int i = 0; i < cap->n_links; i++)
		bpf_link__destroy(cap->links[i]);
	ring_buffer__free(cap->rb);
	perf_buffer__free(cap->pb_ctl);
	perf_buffer__free(cap->pb_data);
	if (cap->epfd >= 0)
		close(cap->epfd);
	if (cap->wake_fd >= 0)
		close(cap->wake_fd);
	spans__destroy(cap->skel);
	free(cap->batch_buf);
	free(cap->batch);
	free(cap);
}

/*
 * Write the queued tags: one system call for the lot (5.6+), else one per
 * tag.  The profiler reads them a second or more after the samples they
 * name, so the few milliseconds they wait here change nothing.
 */
static void flush_tags(struct ember_span_capture *cap)
{
	int fd = bpf_map__fd(cap->skel->maps.span_req_endpoint);
	uint32_t done = 0;

	if (!cap->n_tags)
		return;
	if (!cap->tag_one_by_one) {
		LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);
		uint32_t n = cap->n_tags;
		if (bpf_map_update_batch(fd, cap->tag_keys, cap->tag_vals, &n, &o) == 0) {
			cap->n_tags = 0;
			return;
		}
		if (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP || errno == ENOSYS) {
			cap->tag_one_by_one = true;
			ember_debug("spans: no batch update of span_req_endpoint (%s): one tag at a time",
				    strerror(errno));
		}
		done = n <= cap->n_tags ? n : 0;
	}
	for (uint32_t i = done; i < cap->n_tags; i++)
		if (bpf_map_update_elem(fd, &cap->tag_keys[i], &cap->tag_vals[i], BPF_ANY))
			cap->tag_errors++;
	cap->n_tags = 0;
}

void ember_span_capture_tag(struct ember_span_capture *cap, uint64_t req_id, uint32_t endpoint)
{
	if (cap->n_tags == TAG_BATCH)
		flush_tags(cap);
	cap->tag_keys[cap->n_tags] = req_id;
	cap->tag_vals[cap->n_tags++] = endpoint;
}

uint64_t ember_span_capture_tag_errors(const struct ember_span_capture *cap)
{
	return cap->tag_errors;
}

int ember_span_capture_poll(struct ember_span_capture *cap, int timeout_ms)
{
	struct epoll_event ev[2];
	int rc;

	cap->delivered = 0;
	cap->woken = false;
	rc = epoll_wait(cap->epfd, ev, 2, timeout_ms);
	if (rc < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < rc; i++) {
		uint64_t n;
		if (ev[i].data.fd == cap->wake_fd && read(cap->wake_fd, &n, sizeof(n)) == sizeof(n))
			cap->woken = true;
	}
	if (cap->ringbuf) {
		/* both rings in the order added: control first */
		rc = ring_buffer__consume(cap->rb);
		flush_tags(cap);
		return rc < 0 ? rc : cap->delivered;
	}
	perf_buffer__consume(cap->pb_ctl);
	perf_buffer__consume(cap->pb_data);
	flush_batch(cap);
	flush_tags(cap);
	return cap->delivered;
}

void ember_span_capture_wake(struct ember_span_capture *cap)
{
	uint64_t one = 1;

	if (cap->wake_fd >= 0 && write(cap->wake_fd, &one, sizeof(one)) != sizeof(one))
		ember_debug("spans: cannot wake the span thread: %s", strerror(errno));
}

bool ember_span_capture_woken(const struct ember_span_capture *cap)
{
	return cap->woken;
}

const char *ember_span_capture_hooks(const struct ember_span_capture *cap)
{
	return cap->raw ? "raw_tracepoint" : "tracepoint";
}

const char *ember_span_capture_transport(const struct ember_span_capture *cap)
{
	return cap->ringbuf ? "ringbuf" : "perfbuf";
}

void ember_span_capture_stats(const struct ember_span_capture *cap,
			      uint64_t out[EMBER_SPAN_STAT__COUNT])
{
	ember_bpf_percpu_sum(bpf_map__fd(cap->skel->maps.span_stats), EMBER_SPAN_STAT__COUNT, out);
}

int ember_span_capture_prog_stats(const struct ember_span_capture *cap, uint64_t *run_cnt,
				  uint64_t *run_ns)
{
	struct bpf_program *p;

	*run_cnt = *run_ns = 0;
	bpf_object__for_each_program(p, cap->skel->obj) {
		if (bpf_program__autoload(p))
			ember_bpf_prog_run_stats(bpf_program__fd(p), run_cnt, run_ns);
	}
	return 0;
}

uint64_t ember_span_capture_perf_lost(const struct ember_span_capture *cap)
{
	return cap->perf_lost;
}

struct bpf_object *ember_span_capture_object(const struct ember_span_capture *cap)
{
	return cap->skel->obj;
}

void ember_span_capture_thread_maps(const struct ember_span_capture *cap, int *threads_fd,
				    int *req_endpoint_fd)
{
	*threads_fd = bpf_map__fd(cap->skel->maps.span_threads);
	*req_endpoint_fd = bpf_map__fd(cap->skel->maps.span_req_endpoint);
}
