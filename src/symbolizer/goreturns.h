/*
 * goreturns.h - the entry and RET instructions of a Go function, for uprobes.
 *
 * Go programs cannot take uretprobes (the runtime moves and walks goroutine
 * stacks), so a return is caught with a uprobe on each RET instead; see
 * goreturns.c for how they are found from .gopclntab alone.
 */
#ifndef EMBER_SYMBOLIZER_GORETURNS_H
#define EMBER_SYMBOLIZER_GORETURNS_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer/gopclntab.h"

#define EMBER_GO_MAX_RETS 64

struct ember_go_probes {
	/* file offsets: [0] the entry, [1 .. n_rets] the RET instructions */
	uint64_t addrs[1 + EMBER_GO_MAX_RETS];
	uint64_t vaddrs[1 + EMBER_GO_MAX_RETS]; /* the same as ELF virtual addresses */
	size_t n_rets;
};

/*
 * The entry and RETs of the function named name as ELF virtual addresses
 * (out->vaddrs; out->addrs is left zero).  Errors as below.
 */
int ember_go_func_returns(const struct ember_gopclntab *g, const char *name,
			  struct ember_go_probes *out, char *err, size_t errlen);

/*
 * Probe points of the function named name ("crypto/tls.(*Conn).Write") in
 * the Go binary at path, whose tables g were opened from path.  Returns 0,
 * -ENOENT (no such function), -EINVAL (no frame, no RET, malformed table),
 * -E2BIG (more than EMBER_GO_MAX_RETS returns), or -errno; err says which.
 */
int ember_go_func_probes(const struct ember_gopclntab *g, const char *path, const char *name,
			 struct ember_go_probes *out, char *err, size_t errlen);

#endif
