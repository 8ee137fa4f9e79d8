/*
 * tls_attach.h - attaching the TLS uprobes (bpf/spans/tls.bpf.h) to the
 * libraries and Go binaries processes run, and detaching them as processes go.
 *
 * A uprobe is set on a file (inode), not a process: once attached to
 * /usr/lib/x86_64-linux-gnu/libssl.so.3, every process that maps that file,
 * now or later, is traced.  So the attacher only has to find each distinct
 * file once: a thread scans /proc every EMBER_TLS_SCAN_MS for processes not
 * seen before, and for each, its executable (a Go binary with
 * crypto/tls.(*Conn).Write/Read) and its executable mappings (libssl.so*).
 * The agent's exec events (ember_tls_attach_notify) make it look at a
 * process's executable at once, and at its maps at the next scan (the
 * dynamic loader maps libssl after exec), so a Go program started after the agent is traced
 * from its first milliseconds rather than from the next scan, and a
 * process that execs another program in place is looked at again.  A
 * libssl a running process loads later (dlopen) is traced only if another
 * process mapped that file before.
 *
 * Detaching: each file counts the processes seen mapping it.  When the last
 * one has exited (or exec'd something else) and none came back for
 * EMBER_TLS_DETACH_GRACE_MS, the file's uprobes are destroyed and its slot
 * freed: a binary replaced by a new build, a copy deleted, a program that
 * ran and ended no longer holds probes or counts toward the limits.
 *
 * Bounded: at most EMBER_TLS_MAX_FILES files remembered (attached, or known
 * to need nothing: those no process uses are evicted first when full),
 * max_probes uprobes (default EMBER_TLS_MAX_LINKS; past it a file is not
 * attached, counted), EMBER_TLS_MAX_PROCS processes followed,
 * EMBER_TLS_QUEUE events waiting.  Failures are counted by reason and never
 * touch the target.
 */
#ifndef EMBER_SPANS_TLS_ATTACH_H
#define EMBER_SPANS_TLS_ATTACH_H

#include <stdint.h>

#include "core/strbuf.h"

#define EMBER_TLS_SCAN_MS 500
#define EMBER_TLS_DETACH_GRACE_MS 1000
#define EMBER_TLS_MAX_FILES 4096
#define EMBER_TLS_MAX_LINKS 4096
#define EMBER_TLS_MAX_PROCS 65536
#define EMBER_TLS_QUEUE 1024

struct bpf_object;
struct ember_tls_attach;

struct ember_tls_attach_opts {
	unsigned max_probes; /* uprobes at once (0 = EMBER_TLS_MAX_LINKS) */
};

/* Start the attacher over the TLS programs of the loaded span object (opts may be NULL). */
int ember_tls_attach_start(struct bpf_object *obj, const struct ember_tls_attach_opts *opts,
			   struct ember_tls_attach **out, char *err, size_t errlen);
/* Stop the thread and detach everything. */
void ember_tls_attach_stop(struct ember_tls_attach *ta);
/* Scan /proc now (tests; the thread does it every EMBER_TLS_SCAN_MS). */
void ember_tls_attach_scan(struct ember_tls_attach *ta);
/*
 * pid exec'd (the agent's kernel events; any thread,
 * never blocks): the attacher looks at it at once.  A full queue is
 * counted; the scan then finds the process as usual.
 */
void ember_tls_attach_notify(struct ember_tls_attach *ta, uint32_t pid);
/* Counters as one JSON object (any thread). */
void ember_tls_attach_stats_json(struct ember_tls_attach *ta, struct strbuf *sb);

#endif
