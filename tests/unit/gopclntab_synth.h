/*
 * gopclntab_synth.h - a small hand-built .gopclntab in each layout
 * (Go 1.16, 1.18, 1.20), for test_gopclntab.c and fuzz_gopclntab.c.
 *
 * Only Go 1.19 is installed here, so the 1.16-1.17 and 1.20+ layouts are
 * checked on these tables.  Two functions, "main.f" at text and "main.g"
 * at text+0x20, each 21 bytes long and sharing three pc-value tables:
 *   pcsp   0 on [0,4), 24 on [4,20), 0 on [20,21)
 *   pcfile 0 (the CU's only file, "/src/a.go") on [0,21)
 *   pcln   10 on [0,4), 11 on [4,21)
 * main.g has a start line (Go 1.20 only) of 42.  No FUNCDATA.
 */
#ifndef GOPCLNTAB_SYNTH_H
#define GOPCLNTAB_SYNTH_H

#include <stdint.h>
#include <string.h>

#define SYNTH_TEXT 0x401000ull
#define SYNTH_FUNC_LEN 21

struct synth_buf {
	uint8_t *p;
	size_t len, cap;
};

static void synth_put(struct synth_buf *b, const void *src, size_t n)
{
	if (b->len + n <= b->cap)
		memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void synth_u32(struct synth_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	synth_put(b, x, 4);
}

static void synth_u64(struct synth_buf *b, uint64_t v)
{
	synth_u32(b, (uint32_t)v);
	synth_u32(b, (uint32_t)(v >> 32));
}

static void synth_set64(struct synth_buf *b, size_t at, uint64_t v)
{
	for (int i = 0; i < 8 && at + 8 <= b->cap; i++)
		b->p[at + i] = (uint8_t)(v >> (8 * i));
}

/* Build the table for ver 16, 18 or 20 into buf; returns its length (may exceed cap: then too small). */
static size_t synth_pclntab(uint8_t *buf, size_t cap, int ver)
{
	struct synth_buf b = {buf, 0, cap};
	uint32_t magic = ver == 16 ? 0xfffffffau : ver == 18 ? 0xfffffff0u : 0xfffffff1u;
	size_t hdr = ver == 16 ? 64 : 72, offs_at = ver == 16 ? 24 : 32;
	static const char names[] = "\0main.f\0main.g";           /* offsets 1 and 8 */
	static const char files[] = "/src/a.go";
	/* pctab: a 0 pad byte (offset 0 means "no table"), then pcsp at 1, pcfile at 9, pcln at 13 */
	static const uint8_t pctab[] = {0,
					2, 4, 48, 16, 47, 1, 0, 0, /* pcsp: -1+1=0, +24, -24 */
					2, 21, 0, 0,               /* pcfile: 0 */
					22, 4, 2, 17, 0, 0};       /* pcln: 10, 11 */

	memset(buf, 0, cap);
	synth_u32(&b, magic);
	uint8_t misc[4] = {0, 0, 1, 8};
	synth_put(&b, misc, 4);
	synth_u64(&b, 2); /* nfunc */
	synth_u64(&b, 1); /* nfiles */
	if (ver != 16)
		synth_u64(&b, SYNTH_TEXT);
	while (b.len < hdr)
		synth_u64(&b, 0); /* offsets, patched below */

	size_t funcnames = b.len;
	synth_put(&b, names, sizeof(names));
	size_t cutab = b.len;
	synth_u32(&b, 0); /* file 0 of CU 0 -> filetab offset 0 */
	size_t filetab = b.len;
	synth_put(&b, files, sizeof(files));
	size_t pcoff = b.len;
	synth_put(&b, pctab, sizeof(pctab));
	while (b.len % 8)
		synth_put(&b, "", 1);
	size_t pclnoff = b.len;
	size_t fsize = ver == 18 ? 40 : 44;
	size_t ftab = ver == 16 ? 3 * 16 : 3 * 8;
	uint64_t entries[3] = {SYNTH_TEXT, SYNTH_TEXT + 0x20, SYNTH_TEXT + 0x40};
	uint32_t funcoff[2] = {(uint32_t)ftab, (uint32_t)(ftab + fsize)};
	for (int i = 0; i < 3; i++) {
		if (ver == 16) {
			synth_u64(&b, entries[i]);
			synth_u64(&b, i < 2 ? funcoff[i] : 0);
		} else {
			synth_u32(&b, (uint32_t)(entries[i] - SYNTH_TEXT));
			synth_u32(&b, i < 2 ? funcoff[i] : 0);
		}
	}
	for (int i = 0; i < 2; i++) {
		if (ver == 16)
			synth_u64(&b, entries[i]);
		else
			synth_u32(&b, (uint32_t)(entries[i] - SYNTH_TEXT));
		synth_u32(&b, i == 0 ? 1 : 8); /* nameoff */
		synth_u32(&b, 0);              /* args */
		synth_u32(&b, 0);              /* deferreturn */
		synth_u32(&b, 1);              /* pcsp */
		synth_u32(&b, 9);              /* pcfile */
		synth_u32(&b, 13);             /* pcln */
		synth_u32(&b, 0);              /* npcdata */
		synth_u32(&b, 0);              /* cuOffset */
		if (ver >= 20)
			synth_u32(&b, i == 1 ? 42 : 0); /* startLine */
		synth_u32(&b, 0);              /* funcID, flag, pad, nfuncdata */
	}
	synth_set64(&b, offs_at, funcnames);
	synth_set64(&b, offs_at + 8, cutab);
	synth_set64(&b, offs_at + 16, filetab);
	synth_set64(&b, offs_at + 24, pcoff);
	synth_set64(&b, offs_at + 32, pclnoff);
	return b.len;
}

#endif
