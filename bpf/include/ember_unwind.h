/*
 * ember_unwind.h - the compact unwind row, shared by the CFI compiler and the BPF unwinder.
 *
 * src/ehframe/ compiles an executable's CFI (.eh_frame, .debug_frame, Go's
 * .gopclntab) into rows sorted by pc; the BPF unwinder binary-searches them.
 * One row says, for every pc from its own up to the next row's:
 *   - how to compute the CFA (canonical frame address: the caller's sp):
 *     rsp + off, rbp + off, one of the two PLT expressions, or "none";
 *   - where the caller's rbp was saved: nowhere (unchanged), or at CFA + off;
 *   - the return address is always at CFA - 8 on x86_64.
 *
 * Packed into 8 bytes: a 32-bit pc offset from the executable's first
 * executable byte (ELF vaddr of the table base, see struct
 * ember_unwind_table), a 16-bit CFA offset, the rule kinds, and the rbp
 * offset in 8-byte units.  Anything that does not fit these fields becomes
 * an EMBER_CFA_UNSUPPORTED row: counted by the unwinder, never guessed.
 */
#ifndef EMBER_UNWIND_H
#define EMBER_UNWIND_H

#include <linux/types.h>

/* How to find the CFA (low 4 bits of kind). */
enum ember_cfa_rule {
	EMBER_CFA_END_OF_STACK = 0, /* return address undefined: outermost frame (_start, clone) */
	EMBER_CFA_RSP = 1,          /* CFA = rsp + cfa_offset */
	EMBER_CFA_RBP = 2,          /* CFA = rbp + cfa_offset */
	EMBER_CFA_PLT1 = 3,         /* CFA = rsp + 8 + ((rip & 15) >= 11 ? 8 : 0)  (.plt) */
	EMBER_CFA_PLT2 = 4,         /* CFA = rsp + 8 + ((rip & 15) >= 10 ? 8 : 0)  (.plt.sec etc.) */
	EMBER_CFA_UNSUPPORTED = 5,  /* an expression or register the unwinder cannot follow */
	EMBER_CFA_GAP = 6,          /* no FDE covers this pc (between functions) */
};

/* Where the caller's rbp is (high 4 bits of kind). */
enum ember_rbp_rule {
	EMBER_RBP_SAME = 0,        /* unchanged (same value or never saved) */
	EMBER_RBP_AT_CFA = 1,      /* saved at CFA + rbp_offset * 8 */
	EMBER_RBP_UNSUPPORTED = 2, /* saved in a way the unwinder cannot follow */
};

struct ember_unwind_row {
	__u32 pc;         /* offset from the table base */
	__u16 cfa_offset; /* for EMBER_CFA_RSP / EMBER_CFA_RBP */
	__u8 kind;        /* enum ember_cfa_rule | enum ember_rbp_rule << 4 */
	__s8 rbp_offset;  /* in units of 8 bytes, for EMBER_RBP_AT_CFA */
};

#define EMBER_ROW_CFA(row) ((row)->kind & 0x0f)
#define EMBER_ROW_RBP(row) ((row)->kind >> 4)
#define EMBER_ROW_KIND(cfa, rbp) ((__u8)((cfa) | ((rbp) << 4)))

#endif
