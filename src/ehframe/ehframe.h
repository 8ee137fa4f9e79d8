/*
 * ehframe.h - compile an executable's DWARF CFI into compact unwind rows.
 *
 * The BPF unwinder cannot run DWARF call-frame programs in the kernel, so
 * user space runs them once per executable and keeps, for every pc range,
 * only what an x86_64 unwinder needs: how to compute the CFA and where the
 * caller's rbp was saved (struct ember_unwind_row in bpf/include/ember_unwind.h).
 *
 * Sources: .eh_frame (cross-checked with .eh_frame_hdr) and .debug_frame,
 * also from a separate debug file, compressed or not.  Rows are sorted by
 * pc, identical neighbours merged, and every function's range ends with an
 * EMBER_CFA_GAP row unless the next function starts right there.  Rules
 * the unwinder cannot follow become EMBER_CFA_UNSUPPORTED or
 * EMBER_RBP_UNSUPPORTED rows: counted in the stats, never guessed.
 * Malformed entries are skipped and counted; the rest still compiles.
 */
#ifndef EMBER_EHFRAME_H
#define EMBER_EHFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember_unwind.h"

/* Where an FDE came from. */
enum ember_cfi_source { EMBER_CFI_EH_FRAME = 0, EMBER_CFI_DEBUG_FRAME = 1 };

struct ember_ehframe_stats {
	uint64_t fdes;            /* FDEs compiled into the table */
	uint64_t cies;            /* CIEs seen */
	uint64_t rows;            /* rows in the table, gaps included */
	uint64_t unsupported_cfa; /* rows with EMBER_CFA_UNSUPPORTED */
	uint64_t unsupported_rbp; /* rows with EMBER_RBP_UNSUPPORTED */
	uint64_t end_of_stack;    /* rows with EMBER_CFA_END_OF_STACK */
	uint64_t plt;             /* rows with EMBER_CFA_PLT1/PLT2 */
	uint64_t gaps;            /* rows with EMBER_CFA_GAP */
	uint64_t errors;          /* malformed CIEs/FDEs skipped */
	uint64_t overlaps;        /* FDEs dropped: they overlap an FDE kept */
	uint64_t out_of_range;    /* FDEs dropped: below the base or 4 GiB above it */
	uint64_t eh_frame_fdes;   /* FDE entries found in .eh_frame */
	uint64_t debug_frame_fdes; /* FDE entries found in .debug_frame */
	int64_t hdr_fdes;         /* FDE count announced by .eh_frame_hdr, -1 if none */
	uint64_t eh_frame_bytes, debug_frame_bytes; /* section sizes (uncompressed) */
};

/* One FDE kept in the table, sorted by pc_begin (for `ember ehframe --pc`). */
struct ember_fde_range {
	uint64_t pc_begin, pc_end; /* ELF vaddrs, end exclusive */
	uint64_t offset;           /* of the FDE in its section */
	uint8_t source;            /* enum ember_cfi_source */
};

struct ember_unwind_table {
	uint64_t base; /* ELF vaddr that row.pc offsets are relative to */
	struct ember_unwind_row *rows;
	size_t n_rows;
	struct ember_fde_range *fdes; /* with EMBER_EHFRAME_KEEP_FDES, else NULL */
	size_t n_fdes;
	struct ember_ehframe_stats stats;
	char build_id[129];    /* lower-case hex GNU build-id, "" if none (compile_file only) */
	char first_error[192]; /* description of the first malformed entry, "" if none */
};

/*
 * Bumped whenever the compiler's output changes for the same input, so
 * tables cached on disk by an older build are recompiled.
 */
#define EMBER_EHFRAME_ROWS_VERSION 4

/* flags: keep the list of FDEs in the table (ember_unwind_find_fde()). */
#define EMBER_EHFRAME_KEEP_FDES 1u

/*
 * Compile the CFI of the ELF file at path (and of debug_path, a separate
 * debug file, when not NULL) into *out.  The table base is the vaddr of the
 * first executable PT_LOAD segment.  Returns 0 (malformed entries are
 * counted in out->stats.errors), or a negative errno with a message naming
 * the file in err: -ENOENT when the file has no CFI at all.
 */
int ember_ehframe_compile_file(const char *path, const char *debug_path, unsigned flags,
			       struct ember_unwind_table *out, char *err, size_t errlen);

/*
 * Compile one section image (.eh_frame, or .debug_frame when
 * is_debug_frame) loaded at section_vaddr.  The base is the lowest pc of
 * any FDE.  pcrel pointers work; textrel, datarel and indirect ones are
 * counted as errors (they need the ELF file).  Used by tests and the fuzzer.
 */
int ember_ehframe_compile_section(const uint8_t *data, size_t len, uint64_t section_vaddr,
				  bool is_debug_frame, unsigned flags,
				  struct ember_unwind_table *out, char *err, size_t errlen);

/* The row covering ELF address vaddr (it may be a GAP row), NULL if none. */
const struct ember_unwind_row *ember_unwind_find(const struct ember_unwind_table *t,
						 uint64_t vaddr);
/* The FDE covering vaddr, NULL if none (or if the FDE list was not kept). */
const struct ember_fde_range *ember_unwind_find_fde(const struct ember_unwind_table *t,
						    uint64_t vaddr);

void ember_unwind_table_free(struct ember_unwind_table *t);

/* "rsp+8", "rbp+16", "plt1", "end-of-stack", "gap", "unsupported"; rbp: "same", "cfa-16", "unsupported". */
void ember_unwind_row_format(const struct ember_unwind_row *row, char *buf, size_t len);

#endif
