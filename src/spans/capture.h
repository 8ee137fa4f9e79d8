/*
 * capture.h - the user half of bpf/spans/spans.bpf.c: load, attach, consume.
 *
 * Opening chooses, from what the kernel offers, and reports:
 *   hooks      "tracepoint": syscalls:sys_exit_* and sys_enter_close
 *              (tracefs is mounted at /sys/kernel/tracing first if it is
 *              not), the arguments read back from the task's registers;
 *              sys_enter_* too where bpf_task_pt_regs is missing; else
 *              "raw_tracepoint": sys_exit for every syscall, filtered by
 *              number in the program;
 *   transport  "ringbuf" (5.8+), else "perfbuf" (per-CPU perf buffers; the
 *              events of one poll are sorted by time before they are
 *              handed on, since each CPU's buffer is read in turn).
 * Either can be forced (EMBER_SPAN_HOOKS_RAW, force_perfbuf) to exercise
 * the fallbacks.
 *
 * ember_span_capture_poll() waits for events and hands them to the
 * callbacks, control events before data events of the same poll.
 */
#ifndef EMBER_SPANS_CAPTURE_H
#define EMBER_SPANS_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember_spans.h"

enum ember_span_hooks {
	EMBER_SPAN_HOOKS_AUTO,
	EMBER_SPAN_HOOKS_TRACEPOINT,
	EMBER_SPAN_HOOKS_RAW,
};

struct ember_kernel;

struct ember_span_capture_opts {
	/*
	 * BTF (the archive's on kernels without their own), features and the
	 * notes of hooks and fallbacks (agent/kernel.h); NULL: the running
	 * kernel's own BTF and features, nothing noted.
	 */
	struct ember_kernel *kernel;
	unsigned payload_head;  /* bytes of each payload (default 1024, at most 4096) */
	enum ember_span_hooks hooks;
	bool force_perfbuf;
	bool tls;               /* load the TLS uprobe programs (attached by tls_attach.c) */
	size_t data_buffer;     /* bytes of the data ring buffer (default 8 MiB) */
	void (*on_ctl)(const struct ember_span_ctl *ev, void *arg);
	void (*on_data)(const struct ember_span_data *ev, const uint8_t *payload, void *arg);
	void *arg;
};

struct ember_span_capture;

/* Load and attach.  On failure a negative errno and a message saying what is missing. */
int ember_span_capture_open(const struct ember_span_capture_opts *opts,
			    struct ember_span_capture **out, char *err, size_t errlen);
void ember_span_capture_close(struct ember_span_capture *cap);

/* Wait up to timeout_ms for events and deliver them.  Returns events delivered or -errno. */
int ember_span_capture_poll(struct ember_span_capture *cap, int timeout_ms);

/* End a poll in progress (or the next one) at once; from any thread. */
void ember_span_capture_wake(struct ember_span_capture *cap);
/* Whether the last poll was ended by ember_span_capture_wake(). */
bool ember_span_capture_woken(const struct ember_span_capture *cap);

const char *ember_span_capture_hooks(const struct ember_span_capture *cap);
const char *ember_span_capture_transport(const struct ember_span_capture *cap);

/* Sum of the per-CPU kernel counters, indexed by enum ember_span_stat. */
void ember_span_capture_stats(const struct ember_span_capture *cap,
			      uint64_t out[EMBER_SPAN_STAT__COUNT]);
/* Run count and time of the attached programs (run time needs kernel.bpf_stats_enabled=1). */
int ember_span_capture_prog_stats(const struct ember_span_capture *cap, uint64_t *run_cnt,
				  uint64_t *run_ns);
/* Events the perf buffers reported lost in user space (perfbuf only). */
uint64_t ember_span_capture_perf_lost(const struct ember_span_capture *cap);

/*
 * Tag a request with its endpoint for the CPU profiler (span_req_endpoint):
 * queued, and written at the end of the current (or next) poll, all in one
 * batch.  Tags the kernel refused are counted (tag_errors).
 */
void ember_span_capture_tag(struct ember_span_capture *cap, uint64_t req_id, uint32_t endpoint);
uint64_t ember_span_capture_tag_errors(const struct ember_span_capture *cap);

/* The loaded BPF object (for tls_attach.c to attach its uprobe programs). */
struct bpf_object *ember_span_capture_object(const struct ember_span_capture *cap);

/* File descriptors of span_threads and span_req_endpoint, for the profiler to share. */
void ember_span_capture_thread_maps(const struct ember_span_capture *cap, int *threads_fd,
				    int *req_endpoint_fd);

#endif
