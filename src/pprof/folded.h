/*
 * folded.h - write a profile as folded ("collapsed") stack text.
 *
 * The format of Brendan Gregg's stackcollapse scripts, read by
 * flamegraph.pl, speedscope, inferno and most flame graph tools: one line
 * per distinct stack, frames from the root (outermost) to the leaf joined
 * by ';', then a space and the sample count:
 *
 *     main;run;parse;memcpy 42
 *     main;read;entry_SYSCALL_64_[k];ksys_read_[k] 7
 *
 * Kernel frames carry the "_[k]" suffix.  Lines are sorted and stacks that
 * print identically (other process, other address, other time bucket) are
 * merged, so the output is deterministic.
 */
#ifndef EMBER_PPROF_FOLDED_H
#define EMBER_PPROF_FOLDED_H

#include <stdbool.h>
#include <stdio.h>

#include "core/profile.h"
#include "core/strbuf.h"

struct ember_folded_options {
	/* Start each stack with the process name (target comm), as `record --all` wants. */
	bool with_process;
	/* ... followed by "-PID" ("api-4242"), to tell several processes of one program apart. */
	bool with_pid;
};

/*
 * Append the name a process has in folded text: its comm (else its
 * executable's name; ';' and line breaks made safe), then "-PID" when
 * with_pid; "pid PID" when it has no name.
 */
void ember_folded_process(struct strbuf *sb, const struct ember_target *t, bool with_pid);

/* Append the folded text of p to sb.  opt may be NULL.  Returns 0 or -ENOMEM. */
int ember_folded_format(struct strbuf *sb, const struct ember_profile *p,
			const struct ember_folded_options *opt);

/* Write the folded text of p to f.  Returns 0, -ENOMEM or -EIO. */
int ember_folded_write(FILE *f, const struct ember_profile *p,
		       const struct ember_folded_options *opt);

#endif
