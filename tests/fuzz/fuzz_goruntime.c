/*
 * fuzz_goruntime.c - libFuzzer target for the x86-64 decoder that finds the
 * Go runtime's field offsets in a stripped binary's code
 * (src/symbolizer/goruntime.c).
 *
 * The input is cut in two: the first byte says where, the pieces are fed
 * as the code of runtime.systemstack and of runtime.nanotime1 to the two
 * instruction walks.  Besides sanitizer reports the target aborts when a
 * walk claims success without the offsets it needs.  Seeds: the first 160
 * bytes of both functions in the test programs would do; the walks are
 * small enough for the fuzzer to find the shapes on its own.
 *
 * The file includes the Go reader's .c files (goruntime.c needs them to
 * link) rather than linking src/symbolizer/.
 *
 * FUZZ_LIBS: -ldw -lelf
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/gobuildinfo.c"
#include "symbolizer/goelf.c"
#include "symbolizer/gopclntab.c"
#include "symbolizer/goruntime.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cut = (size_t)data[0] * (size - 1) / 255;
	const uint8_t *a = data + 1, *b = data + 1 + cut;
	size_t na = cut, nb = size - 1 - cut;
	struct ember_go_runtime rt = {0};

	struct systemstack_walk sw = {.rt = &rt, .g_reg = -1, .m_reg = -1, .g0_reg = -1};
	if (insn_walk(a, na, systemstack_insn, &sw) && sw.step != 6)
		abort();
	struct vdso_walk vw = {.rt = &rt, .lea_reg = -1, .sp_reg = -1, .pc_reg = -1};
	if (insn_walk(b, nb, vdso_insn, &vw) && !(vw.have_pc && vw.have_sp))
		abort();
	return 0;
}
