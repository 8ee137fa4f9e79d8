/*
 * pprof.h - encode a profile in the pprof format (gzip'd profile.proto).
 *
 * The output is what `go tool pprof`, Pyroscope, Parca, Speedscope and
 * Google Cloud Profiler read.  Two sample types are written per sample:
 * samples/count and cpu/nanoseconds (count * period), the latter being the
 * default `go tool pprof` shows.  Inline chains become one Location with
 * several Lines (innermost first), so pprof marks them "(inline)".
 */
#ifndef EMBER_PPROF_PPROF_H
#define EMBER_PPROF_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"

struct ember_pprof_options {
	/* Label samples with "process" (target comm) and numeric "pid" (record --all). */
	bool process_labels;
	/* Label samples with "service", "version" and the target's own "k=v" labels. */
	bool target_labels;
	/* Add the process name as the outermost (root) frame of every sample. */
	bool process_root;
	/* Free-form comment stored in the profile (e.g. the command line), or NULL. */
	const char *comment;
};

/*
 * Encode p; opt may be NULL (no labels, no root frames).  On success *out
 * is a malloc'd gzip stream of *out_len bytes, for the caller to free.
 * Returns 0, -ENOMEM, or -EINVAL for a stack naming a frame the
 * profile does not have.
 */
int ember_pprof_encode(const struct ember_profile *p, const struct ember_pprof_options *opt,
		       uint8_t **out, size_t *out_len);

/*
 * Encode p and write it to path (conventionally "*.pb.gz"), through a safe
 * temporary renamed into place, mode 0640 (core/safefile.h).  Returns 0 or -errno.
 */
int ember_pprof_write_file(const struct ember_profile *p, const struct ember_pprof_options *opt,
			   const char *path);

#endif
