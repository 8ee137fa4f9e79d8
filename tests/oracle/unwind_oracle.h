/*
 * unwind_oracle.h - libunwind as the reference ("oracle") that Ember's tests
 * hold the in-kernel DWARF unwinder against.  TESTS ONLY: never linked into
 * build/ember or build/libember.a.
 *
 * In validation mode the BPF profiler hands user space a
 * struct ember_stack_snapshot: the user registers ip/sp/bp, a copy of the
 * stack from sp upward and the pcs Ember unwound.  oracle_unwind() unwinds
 * the same snapshot with libunwind's remote API, reading stack words from
 * the copy and code/.eh_frame bytes from the process's ELF files, and
 * oracle_compare() judges Ember's pcs against libunwind's frame by frame.
 *
 * Both lists are leaf first: pcs[0] is the sampled ip, later entries are
 * return addresses exactly as found on the stack (not minus one), which is
 * what unw_get_reg(UNW_REG_IP) reports and what Ember stores.
 *
 * Link with: -lunwind-generic -lunwind  (pkg-config --libs libunwind-generic)
 */
#ifndef EMBER_TESTS_UNWIND_ORACLE_H
#define EMBER_TESTS_UNWIND_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "ember_profiler.h"

/*
 * One file mapping of the sampled process, as in /proc/PID/maps.  Pass the
 * executable (r-xp) mappings; path must be readable on this host (plain
 * path, or "/proc/PID/root" + path for a process in another mount
 * namespace), or "[vdso]" (this process's vDSO stands in: the kernel maps
 * the same image everywhere).  Read-only segments of the same file
 * (.eh_frame, .rodata) need no mapping of their own: they are found from
 * the ELF headers.
 */
struct oracle_mapping {
	uint64_t start, end, pgoff;
	const char *path;
};

/* How oracle_unwind() ended. */
enum oracle_status {
	ORACLE_ROOT,        /* libunwind reached the end of the stack (unw_step returned 0) */
	ORACLE_SHORT_COPY,  /* it needed stack bytes beyond the copy: undecidable */
	ORACLE_NO_REGISTER, /* it needed a register the snapshot lacks: undecidable */
	ORACLE_MAX_DEPTH,   /* pcs_out filled up before the end */
	ORACLE_ERROR,       /* libunwind failed: no unwind info, unreadable memory, bad frame */
};

enum oracle_verdict {
	ORACLE_AGREE,
	ORACLE_DISAGREE,    /* at the frame index reported by oracle_compare() */
	ORACLE_UNDECIDABLE, /* the oracle stopped for lack of data before Ember's depth */
};

/*
 * Unwind snap with libunwind.  Writes up to max pcs (leaf first) to pcs_out,
 * their number to *n_out and an enum oracle_status to *status_out.  Returns
 * 0 (whatever the status), or -EINVAL for bad arguments, -ENOMEM.
 * Files named by maps that cannot be opened or parsed are skipped (their
 * frames then end in ORACLE_ERROR).
 */
int oracle_unwind(const struct ember_stack_snapshot *snap, const struct oracle_mapping *maps,
		  size_t n_maps, uint64_t *pcs_out, size_t max, size_t *n_out, int *status_out);

/*
 * Compare Ember's pcs (with its EMBER_STACK_* flags) against the oracle's
 * (with its status).  Sets *verdict and *frame (the first frame that
 * differs for ORACLE_DISAGREE, else the number of frames compared).
 * Returns 0, or -EINVAL.  Rules:
 *  1. Frames are compared one by one over the common depth; the first
 *     mismatch is a disagreement at that frame.
 *  2. Same depth, all equal: agree.  Exception: when the oracle could not
 *     step past Ember's last frame for lack of data (SHORT_COPY or
 *     NO_REGISTER), that counts as agree only if Ember's stack ended
 *     properly (neither TRUNCATED nor READ_FAULT), else undecidable.
 *  3. Ember shorter: agree if Ember marked its stack TRUNCATED (a prefix
 *     honestly cut short), else a disagreement at frame n_ember (Ember lost
 *     frames the oracle found).
 *  4. Oracle shorter: undecidable if the oracle stopped for lack of data or
 *     ran out of output space; if it ended at the root or failed, Ember
 *     went further than libunwind could: a disagreement at frame n_oracle.
 */
int oracle_compare(const uint64_t *ember, size_t n_ember, uint32_t ember_flags,
		   const uint64_t *oracle, size_t n_oracle, int oracle_status,
		   enum oracle_verdict *verdict, size_t *frame);

const char *oracle_status_name(int status);
const char *oracle_verdict_name(enum oracle_verdict verdict);

/* Unmap and forget every ELF file the oracle opened (they are cached per path). */
void oracle_release(void);

#endif
