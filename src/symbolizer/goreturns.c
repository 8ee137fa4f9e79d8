/*
 * goreturns.c - where to put uprobes on a Go function: its entry and every
 * RET instruction, as file offsets (src/spans/tls_attach.c).
 *
 * A uretprobe replaces the return address on the stack with a trampoline;
 * Go moves goroutine stacks and walks them for tracebacks and the GC, and
 * crashes on the foreign address.  The alternative is a plain uprobe on
 * each RET of the function.  Finding the RETs needs no disassembler: the
 * function's SP-delta table (.gopclntab pcsp) changes value at instruction
 * boundaries, and a RET is where the delta comes back to 0 after the frame
 * was set up (the epilogue "ADDQ $frame, SP" or "POPQ BP" ends just before
 * it).  Each such pc is checked to hold the RET opcode (0xc3); anything
 * else there (the morestack call block, which also runs at delta 0) is
 * skipped.  A function without a frame (delta 0 throughout) gives no RETs
 * and is refused: the caller would never see its returns.
 *
 * Stripped binaries work: only .gopclntab and the code are read.
 */
#include "symbolizer/goreturns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/gopclntab_int.h"

#define MAX_FUNC_BYTES (1u << 20)

/* Function named name: its record and end.  0, or -ENOENT. */
static int func_named(const struct ember_gopclntab *g, const char *name, struct gofunc *f,
		     uint64_t *end)
{
	for (uint64_t i = 0; i < g->nfunc; i++) {
		const char *n;
		uint64_t entry;
		if (ember_gopclntab_func(g, i, &n, &entry, end) || strcmp(n, name) != 0)
			continue;
		return gotab_func(g, i, f) ? -EINVAL : 0;
	}
	return -ENOENT;
}

/* File offset of vaddr through the PT_LOAD segments of path.  0 or -ENOENT. */
static int file_offsets(const char *path, uint64_t *vaddrs, size_t n, char *err, size_t errlen)
{
	struct goelf e;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		goerr(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	int rc = goelf_open_fd(&e, fd, path, err, errlen);
	if (rc) {
		close(fd);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = -ENOENT;
		for (size_t s = 0; s < e.n_segs; s++) {
			const struct goelf_seg *sg = &e.segs[s];
			if (vaddrs[i] >= sg->vaddr && vaddrs[i] - sg->vaddr < sg->filesz) {
				vaddrs[i] = vaddrs[i] - sg->vaddr + sg->offset;
				rc = 0;
				break;
			}
		}
		if (rc)
			goerr(err, errlen, "%s: address %#llx is in no loaded segment", path,
			      (unsigned long long)vaddrs[i]);
	}
	goelf_close(&e);
	close(fd);
	return rc;
}

/*
 * The RETs of function f ([f->entry, end)) whose code is code[0..len): where
 * the SP delta comes back to 0 after a frame and the byte is 0xc3.  Fills
 * out->vaddrs[1..] and n_rets.  0, -E2BIG, or -EINVAL (malformed table, no
 * frame, no RET).
 */
static int rets_in_code(const struct ember_gopclntab *g, const struct gofunc *f, uint64_t end,
			const uint8_t *code, size_t len, struct ember_go_probes *out)
{
	struct gopcvalue it;
	bool bad = false, framed = false;
	int32_t prev = 0;

	out->vaddrs[0] = f->entry;
	out->n_rets = 0;
	if (!gopcvalue_init(g, f->pcsp, f->entry, &it))
		return -EINVAL;
	while (gopcvalue_next(&it, &bad)) {
		if (it.value != 0)
			framed = true;
		if (it.value == 0 && prev != 0 && it.pc > f->entry && it.pc < end &&
		    it.pc - f->entry < len && code[it.pc - f->entry] == 0xc3) {
			if (out->n_rets == EMBER_GO_MAX_RETS)
				return -E2BIG;
			out->vaddrs[1 + out->n_rets++] = it.pc;
		}
		prev = it.value;
	}
	return bad || !framed || !out->n_rets ? -EINVAL : 0;
}

int ember_go_func_returns(const struct ember_gopclntab *g, const char *name,
			  struct ember_go_probes *out, char *err, size_t errlen)
{
	struct gofunc f;
	uint64_t end;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = func_named(g, name, &f, &end);
	if (rc) {
		goerr(err, errlen, "%s: no function %s", g->name, name);
		return rc;
	}
	if (end <= f.entry || end - f.entry > MAX_FUNC_BYTES) {
		goerr(err, errlen, "%s: %s has an implausible size", g->name, name);
		return -EINVAL;
	}
	size_t len = (size_t)(end - f.entry);
	uint8_t *code = malloc(len);
	if (!code)
		return -ENOMEM;
	rc = gotab_read_code(g, f.entry, code, len);
	if (rc) {
		goerr(err, errlen, "%s: cannot read the code of %s", g->name, name);
		free(code);
		return rc;
	}
	rc = rets_in_code(g, &f, end, code, len, out);
	free(code);
	if (rc == -E2BIG)
		goerr(err, errlen, "%s: %s has more than %d returns", g->name, name,
		      EMBER_GO_MAX_RETS);
	else if (rc)
		goerr(err, errlen, "%s: %s: malformed SP-delta table, or no RET after a frame",
		      g->name, name);
	return rc;
}

int ember_go_func_probes(const struct ember_gopclntab *g, const char *path, const char *name,
			 struct ember_go_probes *out, char *err, size_t errlen)
{
	int rc = ember_go_func_returns(g, name, out, err, errlen);

	if (rc)
		return rc;
	memcpy(out->addrs, out->vaddrs, sizeof(out->addrs));
	return file_offsets(path, out->addrs, 1 + out->n_rets, err, errlen);
}
