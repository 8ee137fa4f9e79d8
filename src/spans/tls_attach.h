/*
 * tls_attach.h - attaching the TLS uprobes (bpf/spans/tls.bpf.h) to the
 * libraries and Go binaries processes run, as processes come and go.
 *
 * A uprobe is set on a file (inode), not a process: once attached to
 * /usr/lib/x86_64-linux-gnu/libssl.so.3, every process that maps that file,
 * now or later, is traced.  So the attacher only has to find each distinct
 * file once: a thread scans /proc every EMBER_TLS_SCAN_MS for processes not
 * seen before, and for each, its executable (a Go binary with
 * crypto/tls.(*Conn).Write/Read) and its executable mappings (libssl.so*).
 * A Go program started after the agent is traced from the scan that finds
 * it (up to EMBER_TLS_SCAN_MS later); libssl users from their first call
 * when their libssl file was seen before.
 *
 * Bounded: EMBER_TLS_MAX_FILES files remembered (classified, attached or
 * not), EMBER_TLS_MAX_LINKS uprobes; past either, files are not attached,
 * counted.  Failures are counted by reason and never touch the target.
 */
#ifndef EMBER_SPANS_TLS_ATTACH_H
#define EMBER_SPANS_TLS_ATTACH_H

#include <stdint.h>

#include "core/strbuf.h"

#define EMBER_TLS_SCAN_MS 500
#define EMBER_TLS_MAX_FILES 4096
#define EMBER_TLS_MAX_LINKS 4096

struct bpf_object;
struct ember_tls_attach;

/* Start the attacher over the TLS programs of the loaded span object. */
int ember_tls_attach_start(struct bpf_object *obj, struct ember_tls_attach **out, char *err,
			   size_t errlen);
/* Stop the thread and detach everything. */
void ember_tls_attach_stop(struct ember_tls_attach *ta);
/* Scan /proc now (tests; the thread does it every EMBER_TLS_SCAN_MS). */
void ember_tls_attach_scan(struct ember_tls_attach *ta);
/* Counters as one JSON object (any thread). */
void ember_tls_attach_stats_json(struct ember_tls_attach *ta, struct strbuf *sb);

#endif
