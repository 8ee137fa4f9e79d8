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
static int find_func(const struct ember_gopclntab *g, const char *name, struct gofunc *f,
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

int ember_go_func_probes(const struct ember_gopclntab *g, const char *path, const char *name,
			 struct ember_go_probes *out, char *err, size_t errlen)
{
	struct gofunc f;
	struct gopcvalue it;
	uint64_t end;
	bool bad = false;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = find_func(g, name, &f, &end);
	if (rc) {
		goerr(err, errlen, "%s: no function %s", path, name);
		return rc;
	}
	if (end <= f.entry || end - f.entry > MAX_FUNC_BYTES) {
		goerr(err, errlen, "%s: %s has an implausible size", path, name);
		return -EINVAL;
	}
	size_t len = (size_t)(end - f.entry);
	uint8_t *code = malloc(len);
	if (!code)
		return -ENOMEM;
	rc = gotab_read_code(g, f.entry, code, len);
	if (rc) {
		goerr(err, errlen, "%s: cannot read the code of %s", path, name);
		free(code);
		return rc;
	}
	if (!gopcvalue_init(g, f.pcsp, f.entry, &it)) {
		free(code);
		goerr(err, errlen, "%s: %s has no SP-delta table", path, name);
		return -EINVAL;
	}
	int32_t prev = 0;
	bool framed = false;
	out->addrs[0] = f.entry;
	out->n_rets = 0;
	while (gopcvalue_next(&it, &bad)) {
		if (it.value != 0)
			framed = true;
		if (it.value == 0 && prev != 0 && it.pc > f.entry && it.pc < end &&
		    code[it.pc - f.entry] == 0xc3) {
			if (out->n_rets == EMBER_GO_MAX_RETS) {
				rc = -E2BIG;
				break;
			}
			out->addrs[1 + out->n_rets++] = it.pc;
		}
		prev = it.value;
	}
	free(code);
	if (rc == -E2BIG) {
		goerr(err, errlen, "%s: %s has more than %d returns", path, name, EMBER_GO_MAX_RETS);
		return rc;
	}
	if (bad || !framed || !out->n_rets) {
		goerr(err, errlen, "%s: %s: %s", path, name,
		      bad ? "malformed SP-delta table" : "no RET found after a frame");
		return -EINVAL;
	}
	memcpy(out->vaddrs, out->addrs, sizeof(out->vaddrs));
	return file_offsets(path, out->addrs, 1 + out->n_rets, err, errlen);
}
