/*
 * goruntime.c - where a Go binary's runtime keeps g, m and the saved
 * registers, so the BPF unwinder can cross the runtime's stack switches.
 *
 * Go runs runtime work (GC, allocation slow paths, scheduling, cgo calls)
 * on a thread's system stack, g0, entered through runtime.systemstack,
 * mcall, morestack or asmcgocall.  A walk that reaches one of them on g0
 * must continue on the goroutine that was running, as Go's own traceback
 * does: g from thread-local storage (fs_base + tls_g), then g.m, m.curg,
 * and the registers saved in curg.sched.  vDSO calls (runtime.nanotime1,
 * time.now) move to g0 too and leave the caller in m.vdsoPC/vdsoSP.  The
 * offsets of those fields change between Go versions, so they are read
 * from the binary itself (struct ember_go_runtime):
 *
 *   1. DWARF, when the binary has it: the members of runtime.g, runtime.m
 *      and runtime.gobuf (libdw).
 *   2. Otherwise (stripped binaries) the runtime's own instructions, which
 *      name every offset we need, located through .gopclntab:
 *        runtime.systemstack   mov %fs:TLS_G,%rax      -> tls_g
 *                              mov G_M(%rax),%rbx      -> g.m
 *                              cmp ..(%rbx),%rax       (m.gsignal)
 *                              mov M_G0(%rbx),%rdx     -> m.g0
 *                              cmp M_CURG(%rbx),%rax   -> m.curg
 *                              mov SCHED_SP(%rdx),%rbx -> g.sched.sp
 *        runtime.nanotime1     lea ..(%rsp),%rA ; mov -8(%rA),%rB
 *                              mov %rB,VDSO_PC(%rM) ; mov %rA,VDSO_SP(%rM)
 *      That is a version table the binary carries itself: it covers every
 *      Go release whose assembly keeps these shapes (1.17 to 1.22 at least:
 *      ABIInternal, g in R14), and a binary where a shape is missing gets no
 *      offsets (its stack switches stay [truncated], counted), never guesses.
 *      The gobuf layout {sp, pc, g, ctxt, ret, lr, bp} has not changed since
 *      Go 1.9: pc = sp + 8, bp = sp + 48.
 * tls_g always comes from the code (DWARF does not say it); -8, the
 * linux/amd64 value for executables, when the instruction is not found.
 *
 * Tests compare the two sources on unstripped builds
 * (tests/unit/test_goruntime.c).
 */
#include "symbolizer/gopclntab_int.h"

#include <elfutils/libdw.h>
#include <dwarf.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember_unwind.h"

#define CODE_WINDOW 160 /* bytes of a function's start we decode */

/* ---- a tiny decoder for the x86-64 moves and compares the runtime uses ---- */

struct insn {
	uint8_t len;
	uint8_t op;     /* 0x8b mov r<-m, 0x89 mov m<-r, 0x3b cmp r,m, 0x39 cmp m,r, 0x8d lea */
	uint8_t reg;    /* ModRM.reg with REX.R */
	int8_t base;    /* memory base register with REX.B, -1 for an absolute disp32 */
	bool mem;       /* the r/m operand is memory */
	bool fs;        /* %fs segment prefix */
	int32_t disp;
};

#define REG_RSP 4
#define REG_RBP 5

/*
 * Decode one instruction at p (n bytes available) if it is a 64-bit
 * mov/cmp/lea between a register and memory or two registers; returns its
 * length, or 0 for anything else (the caller skips instructions it does not
 * know with insn_skip).
 */
static int insn_decode(const uint8_t *p, size_t n, struct insn *in)
{
	size_t i = 0;

	memset(in, 0, sizeof(*in));
	if (i < n && p[i] == 0x64) {
		in->fs = true;
		i++;
	}
	if (i >= n || (p[i] & 0xf8) != 0x48) /* REX.W */
		return 0;
	uint8_t rex = p[i++];
	if (i + 1 >= n)
		return 0;
	uint8_t op = p[i++];
	if (op != 0x8b && op != 0x89 && op != 0x3b && op != 0x39 && op != 0x8d)
		return 0;
	uint8_t modrm = p[i++];
	uint8_t mod = modrm >> 6, rm = modrm & 7;
	in->op = op;
	in->reg = (uint8_t)(((modrm >> 3) & 7) | ((rex & 4) << 1));
	if (mod == 3) {
		in->base = (int8_t)(rm | ((rex & 1) << 3));
		in->len = (uint8_t)i;
		return (int)i;
	}
	in->mem = true;
	in->base = (int8_t)(rm | ((rex & 1) << 3));
	if (rm == 4) { /* SIB */
		if (i >= n)
			return 0;
		uint8_t sib = p[i++];
		if (((sib >> 3) & 7) != 4) /* an index register: not a form we use */
			return 0;
		in->base = (int8_t)((sib & 7) | ((rex & 1) << 3));
		if ((sib & 7) == 5 && mod == 0)
			in->base = -1; /* disp32 absolute */
	} else if (rm == 5 && mod == 0) {
		return 0; /* rip-relative */
	}
	size_t dlen = mod == 1 ? 1 : (mod == 2 || in->base == -1) ? 4 : 0;
	if (i + dlen > n)
		return 0;
	if (dlen == 1)
		in->disp = (int8_t)p[i];
	else if (dlen == 4)
		in->disp = (int32_t)((uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
				     (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24);
	i += dlen;
	in->len = (uint8_t)i;
	return (int)i;
}

/* Length of the other instructions that occur in the runtime functions we read. */
static int insn_skip(const uint8_t *p, size_t n)
{
	if (n >= 2 && (p[0] == 0x74 || p[0] == 0x75 || p[0] == 0xeb))
		return 2; /* jcc/jmp rel8 */
	if (n >= 6 && p[0] == 0x0f && (p[1] & 0xf0) == 0x80)
		return 6; /* jcc rel32 */
	if (n >= 5 && (p[0] == 0xe8 || p[0] == 0xe9))
		return 5; /* call/jmp rel32 */
	if (n >= 3 && (p[0] & 0xf8) == 0x48 && (p[1] == 0x89 || p[1] == 0x39 || p[1] == 0x31) &&
	    (p[2] >> 6) == 3)
		return 3; /* register moves, compares, xors */
	if (n >= 4 && (p[0] & 0xf8) == 0x48 && (p[1] == 0x83) && (p[2] >> 6) == 3)
		return 4; /* add/sub/and $imm8, reg */
	if (n >= 3 && p[0] == 0xff && (p[1] & 0xf8) == 0xd0)
		return 2; /* call *reg */
	if (n >= 3 && p[0] == 0x41 && p[1] == 0xff && (p[2] & 0xf8) == 0xd0)
		return 3;
	return 0;
}

/* Walk the instructions of code[0..n), calling fn on each decoded one until it returns non-zero. */
static bool insn_walk(const uint8_t *code, size_t n, bool (*fn)(const struct insn *, void *),
		      void *arg)
{
	size_t i = 0;

	while (i < n) {
		struct insn in;
		int len = insn_decode(code + i, n - i, &in);
		if (len > 0) {
			if (fn(&in, arg))
				return true;
			i += (size_t)len;
			continue;
		}
		len = insn_skip(code + i, n - i);
		if (len <= 0)
			return false; /* an instruction we cannot size: stop here */
		i += (size_t)len;
	}
	return false;
}

/* ---- runtime.systemstack ---- */

struct systemstack_walk {
	int step;
	int g_reg, m_reg, g0_reg;
	struct ember_go_runtime *rt;
};

static bool systemstack_insn(const struct insn *in, void *arg)
{
	struct systemstack_walk *w = arg;

	switch (w->step) {
	case 0: /* mov %fs:TLS_G, %g */
		if (in->op == 0x8b && in->fs && in->mem && in->base == -1) {
			w->rt->tls_g = in->disp;
			w->g_reg = in->reg;
			w->step++;
		}
		break;
	case 1: /* mov G_M(%g), %m */
		if (in->op == 0x8b && in->mem && in->base == w->g_reg && in->disp >= 0) {
			w->rt->g_m = (uint16_t)in->disp;
			w->m_reg = in->reg;
			w->step++;
		}
		break;
	case 2: /* cmp M_GSIGNAL(%m), %g: skipped */
		if (in->op == 0x3b && in->mem && in->base == w->m_reg && in->reg == w->g_reg)
			w->step++;
		break;
	case 3: /* mov M_G0(%m), %g0 */
		if (in->op == 0x8b && in->mem && in->base == w->m_reg && in->disp >= 0) {
			w->rt->m_g0 = (uint16_t)in->disp;
			w->g0_reg = in->reg;
			w->step++;
		}
		break;
	case 4: /* cmp M_CURG(%m), %g */
		if (in->op == 0x3b && in->mem && in->base == w->m_reg && in->reg == w->g_reg &&
		    in->disp >= 0) {
			w->rt->m_curg = (uint16_t)in->disp;
			w->step++;
		}
		break;
	case 5: /* mov SCHED_SP(%g0), %sp-holder */
		if (in->op == 0x8b && in->mem && in->base == w->g0_reg && in->disp >= 0) {
			w->rt->g_sched_sp = (uint16_t)in->disp;
			w->step++;
			return true;
		}
		break;
	}
	return false;
}

/* ---- runtime.nanotime1 ---- */

struct vdso_walk {
	int step;
	int lea_reg, sp_reg, pc_reg;
	struct ember_go_runtime *rt;
	bool have_pc, have_sp;
};

static bool vdso_insn(const struct insn *in, void *arg)
{
	struct vdso_walk *w = arg;

	if (w->step == 0 && in->op == 0x8d && in->mem && in->base == REG_RSP) {
		w->lea_reg = in->reg; /* lea ret+0(FP), %a: the caller's sp (if read below) */
	} else if (w->step == 0 && in->op == 0x8b && in->mem && in->base == w->lea_reg &&
		   in->disp == -8) {
		w->sp_reg = w->lea_reg;
		w->pc_reg = in->reg; /* mov -8(%a), %b: the caller's pc */
		w->step = 2;
	} else if (w->step == 2 && in->op == 0x89 && in->mem && in->disp > 0 &&
		   in->base != REG_RSP) {
		if (in->reg == w->pc_reg && !w->have_pc) {
			w->rt->m_vdso_pc = (uint16_t)in->disp;
			w->have_pc = true;
		} else if (in->reg == w->sp_reg && !w->have_sp) {
			w->rt->m_vdso_sp = (uint16_t)in->disp;
			w->have_sp = true;
		}
		return w->have_pc && w->have_sp;
	}
	return false;
}

/* Entry of the function called name, 0 if absent. */
static uint64_t func_entry(const struct ember_gopclntab *g, const char *name)
{
	for (uint64_t i = 0; i < g->nfunc; i++) {
		const char *fn;
		uint64_t entry, end;
		if (ember_gopclntab_func(g, i, &fn, &entry, &end) == 0 && strcmp(fn, name) == 0)
			return entry;
	}
	return 0;
}

static int read_start(const struct ember_gopclntab *g, const char *name, uint8_t *buf,
		      size_t *len)
{
	uint64_t entry = func_entry(g, name);

	if (!entry)
		return -ENOENT;
	/* the window may run past the text's end: read less then */
	for (size_t n = CODE_WINDOW; n >= 32; n /= 2) {
		if (gotab_read_code(g, entry, buf, n) == 0) {
			*len = n;
			return 0;
		}
	}
	return -EIO;
}

static int from_code(const struct ember_gopclntab *g, struct ember_go_runtime *rt)
{
	uint8_t code[CODE_WINDOW];
	size_t len;
	struct ember_go_runtime got = {0};

	if (read_start(g, "runtime.systemstack", code, &len))
		return -ENOENT;
	struct systemstack_walk sw = {.rt = &got, .g_reg = -1, .m_reg = -1, .g0_reg = -1};
	if (!insn_walk(code, len, systemstack_insn, &sw))
		return -EINVAL;
	if (read_start(g, "runtime.nanotime1", code, &len))
		return -ENOENT;
	struct vdso_walk vw = {.rt = &got, .lea_reg = -1, .sp_reg = -1, .pc_reg = -1};
	if (!insn_walk(code, len, vdso_insn, &vw))
		return -EINVAL;
	got.g_sched_pc = (uint16_t)(got.g_sched_sp + 8);
	got.g_sched_bp = (uint16_t)(got.g_sched_sp + 48);
	*rt = got;
	return 0;
}

/* The thread-local g slot alone (DWARF does not give it). */
static int32_t tls_g_from_code(const struct ember_gopclntab *g)
{
	uint8_t code[CODE_WINDOW];
	size_t len;
	struct ember_go_runtime got = {.tls_g = -8};
	struct systemstack_walk sw = {.rt = &got, .g_reg = -1, .m_reg = -1, .g0_reg = -1};

	if (read_start(g, "runtime.systemstack", code, &len) == 0)
		insn_walk(code, len, systemstack_insn, &sw);
	return sw.step > 0 ? got.tls_g : -8;
}

/* ---- DWARF ---- */

/* Offset of member `name` of the structure DIE, -1 if absent. */
static long member_offset(Dwarf_Die *type, const char *name)
{
	Dwarf_Die child;

	if (dwarf_child(type, &child) != 0)
		return -1;
	do {
		if (dwarf_tag(&child) != DW_TAG_member)
			continue;
		const char *n = dwarf_diename(&child);
		Dwarf_Attribute at;
		Dwarf_Word off;
		if (n && strcmp(n, name) == 0 &&
		    dwarf_attr(&child, DW_AT_data_member_location, &at) &&
		    dwarf_formudata(&at, &off) == 0)
			return off <= UINT16_MAX ? (long)off : -1;
	} while (dwarf_siblingof(&child, &child) == 0);
	return -1;
}

static int from_dwarf(const char *path, struct ember_go_runtime *rt)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long off[9];
	int found = 0;

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < 9; i++)
		off[i] = -1;
	Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
	if (!dw) {
		close(fd);
		return -ENOENT;
	}
	Dwarf_Off cu = 0, next;
	size_t hsize;
	while (found < 3 && dwarf_nextcu(dw, cu, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cudie, die;
		if (dwarf_offdie(dw, cu + hsize, &cudie) && dwarf_child(&cudie, &die) == 0) {
			do {
				if (dwarf_tag(&die) != DW_TAG_structure_type)
					continue;
				const char *n = dwarf_diename(&die);
				if (!n)
					continue;
				if (strcmp(n, "runtime.g") == 0 && off[0] < 0) {
					off[0] = member_offset(&die, "m");
					off[1] = member_offset(&die, "sched");
					found++;
				} else if (strcmp(n, "runtime.m") == 0 && off[2] < 0) {
					off[2] = member_offset(&die, "g0");
					off[3] = member_offset(&die, "curg");
					off[4] = member_offset(&die, "vdsoSP");
					off[5] = member_offset(&die, "vdsoPC");
					found++;
				} else if (strcmp(n, "runtime.gobuf") == 0 && off[6] < 0) {
					off[6] = member_offset(&die, "sp");
					off[7] = member_offset(&die, "pc");
					off[8] = member_offset(&die, "bp");
					found++;
				}
			} while (dwarf_siblingof(&die, &die) == 0);
		}
		cu = next;
	}
	dwarf_end(dw);
	close(fd);
	for (size_t i = 0; i < 9; i++)
		if (off[i] < 0 || off[1] + off[8] > UINT16_MAX)
			return -ENOENT;
	rt->g_m = (uint16_t)off[0];
	rt->g_sched_sp = (uint16_t)(off[1] + off[6]);
	rt->g_sched_pc = (uint16_t)(off[1] + off[7]);
	rt->g_sched_bp = (uint16_t)(off[1] + off[8]);
	rt->m_g0 = (uint16_t)off[2];
	rt->m_curg = (uint16_t)off[3];
	rt->m_vdso_sp = (uint16_t)off[4];
	rt->m_vdso_pc = (uint16_t)off[5];
	return 0;
}

int ember_gopclntab_runtime(const struct ember_gopclntab *g, const char *dwarf_path,
			    struct ember_go_runtime *out, enum ember_go_runtime_source *source)
{
	struct ember_go_runtime rt = {0};

	*source = EMBER_GO_RUNTIME_NONE;
	if (g->machine != EM_X86_64)
		return -ENOTSUP;
	if (dwarf_path && from_dwarf(dwarf_path, &rt) == 0) {
		rt.tls_g = tls_g_from_code(g);
		*source = EMBER_GO_RUNTIME_DWARF;
	} else if (from_code(g, &rt) == 0) {
		*source = EMBER_GO_RUNTIME_CODE;
	} else {
		return -ENOENT;
	}
	*out = rt;
	return 0;
}
