/*
 * gopclntab.c - read a Go binary's .gopclntab: function names, file:line
 * and inline chains, with no .symtab or DWARF needed.
 *
 * Layout (what the Go runtime itself reads in runtime/symtab.go):
 *
 *   pcHeader   magic, 0, 0, pc quantum, pointer size, nfunc, nfiles,
 *              [textStart: 1.18+], then the offsets of the sub-tables:
 *   funcnametab  NUL-terminated function names
 *   cutab        per compilation unit, uint32 offsets into filetab
 *   filetab      NUL-terminated file names
 *   pctab        the pc-value tables (varint-encoded runs, see below)
 *   pclntable    functab: nfunc+1 (entry, funcoff) pairs sorted by pc, the
 *                last entry being the end of the text; then the _func
 *                records that funcoff points at.
 *
 * A _func has the entry, name offset, the pctab offsets of its SP-delta
 * (pcsp), file (pcfile) and line (pcln) tables, npcdata more pc-value
 * tables (index 2: the inline-tree index) and nfuncdata FUNCDATA pointers
 * (index 3: the inline tree).  Versions differ in field widths:
 *
 *   magic       Go      functab entry     _func   FUNCDATA              inlinedCall
 *   0xfffffffa  1.16-17 uintptr,uintptr   44 B    uintptr (8-aligned)   20 B
 *   0xfffffff0  1.18-19 u32 off, u32      40 B    u32 off from gofunc   20 B
 *   0xfffffff1  1.20+   u32 off, u32      44 B    u32 off from gofunc   16 B
 *
 * gofunc (the go:func.* symbol) is only recorded in runtime.firstmoduledata,
 * so for 1.18+ we find that struct by scanning the data sections for a
 * pointer to the pcHeader and checking its neighbours (open_funcdata()).
 *
 * Inline chains: PCDATA_InlTreeIndex at pc gives an index into the inline
 * tree, or -1 when pc is in the physical function's own code.  The entry
 * names the inlined function and parentPc, an instruction of its caller at
 * the call site; repeating the lookup there gives the caller, until the
 * index is -1.  Each frame's file:line is the pcfile/pcln value at its pc,
 * exactly as runtime.CallersFrames and the Go traceback do.
 *
 * Hostile input: every offset is checked against the sub-table it points
 * into, varints are at most 5 bytes, pc-value tables end at their sub-table,
 * inline chains stop after MAX_INLINE_DEPTH, and a function whose record
 * disagrees with its functab entry is rejected.
 */
#include "symbolizer/gopclntab_int.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC_12 0xfffffffbu
#define MAGIC_116 0xfffffffau
#define MAGIC_118 0xfffffff0u
#define MAGIC_120 0xfffffff1u

#define PCDATA_INLTREEINDEX 2
#define FUNCDATA_INLTREE 3
#define MAX_INLINE_DEPTH 64
#define MAX_NPCDATA 1024

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* ---- header ---- */

static int go_min_of(uint32_t magic)
{
	switch (magic) {
	case MAGIC_116:
		return 16;
	case MAGIC_118:
		return 18;
	case MAGIC_120:
		return 20;
	default:
		return 0;
	}
}

/* Sub-table [off, next larger offset or end of section). */
static int sub_table(const struct ember_gopclntab *g, uint64_t off, const uint64_t *all, int n,
		     struct gorange *r)
{
	uint64_t end = g->pcln.len;

	if (off > g->pcln.len)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (all[i] > off && all[i] < end)
			end = all[i];
	r->off = (size_t)off;
	r->len = (size_t)(end - off);
	return 0;
}

static int parse_header(struct ember_gopclntab *g, char *err, size_t errlen)
{
	const uint8_t *d = g->pcln.data;
	size_t len = g->pcln.len;

	if (len < 8) {
		goerr(err, errlen, "%s: .gopclntab too short (%zu bytes)", g->name, len);
		return -EINVAL;
	}
	g->magic = rd32(d);
	g->go_min = go_min_of(g->magic);
	if (g->magic == MAGIC_12) {
		goerr(err, errlen, "%s: Go 1.2-1.15 pclntab (magic 0xfffffffb) is not supported",
		      g->name);
		return -ENOTSUP;
	}
	if (!g->go_min || d[4] || d[5]) {
		goerr(err, errlen, "%s: unknown .gopclntab magic 0x%08x", g->name, g->magic);
		return -EINVAL;
	}
	g->quantum = d[6];
	g->ptrsize = d[7];
	if (g->ptrsize != 8) {
		goerr(err, errlen, "%s: %u-byte pointers in .gopclntab: only 64-bit is supported",
		      g->name, g->ptrsize);
		return -ENOTSUP;
	}
	if (g->quantum != 1 && g->quantum != 2 && g->quantum != 4) {
		goerr(err, errlen, "%s: bad pc quantum %u in .gopclntab", g->name, g->quantum);
		return -EINVAL;
	}
	size_t hdr = g->go_min >= 18 ? 72 : 64;
	if (len < hdr) {
		goerr(err, errlen, "%s: .gopclntab header truncated", g->name);
		return -EINVAL;
	}
	g->nfunc = rd64(d + 8);
	g->nfiles = rd64(d + 16);
	const uint8_t *o = d + 24;
	if (g->go_min >= 18) {
		g->text_start = rd64(d + 24);
		o = d + 32;
	}
	uint64_t offs[5];
	for (int i = 0; i < 5; i++)
		offs[i] = rd64(o + 8 * i);
	if (sub_table(g, offs[0], offs, 5, &g->funcnames) ||
	    sub_table(g, offs[1], offs, 5, &g->cutab) ||
	    sub_table(g, offs[2], offs, 5, &g->filetab) ||
	    sub_table(g, offs[3], offs, 5, &g->pctab) ||
	    sub_table(g, offs[4], offs, 5, &g->functab_sec)) {
		goerr(err, errlen, "%s: .gopclntab table offsets out of range", g->name);
		return -EINVAL;
	}
	/* functab + _func records run to the end of the section */
	g->functab_sec.len = len - g->functab_sec.off;
	g->functab_off = g->functab_sec.off;
	g->ftab_entry = g->go_min >= 18 ? 8 : 16;
	g->func_size = g->go_min == 18 ? 40 : 44;
	if (g->nfunc == 0 || g->nfunc >= g->functab_sec.len / g->ftab_entry) {
		goerr(err, errlen, "%s: .gopclntab function count %llu does not fit the table",
		      g->name, (unsigned long long)g->nfunc);
		return -EINVAL;
	}
	return 0;
}

/* ---- functions ---- */

static uint64_t ftab_entry_pc(const struct ember_gopclntab *g, uint64_t i)
{
	const uint8_t *p = g->pcln.data + g->functab_off + i * g->ftab_entry;

	return g->go_min >= 18 ? g->text_start + rd32(p) : rd64(p);
}

static uint64_t ftab_funcoff(const struct ember_gopclntab *g, uint64_t i)
{
	const uint8_t *p = g->pcln.data + g->functab_off + i * g->ftab_entry;

	return g->go_min >= 18 ? rd32(p + 4) : rd64(p + 8);
}

int gotab_func_bounds(const struct ember_gopclntab *g, uint64_t i, uint64_t *entry,
		      uint64_t *next)
{
	if (i >= g->nfunc)
		return -EINVAL;
	*entry = ftab_entry_pc(g, i);
	*next = ftab_entry_pc(g, i + 1);
	return *next > *entry ? 0 : -EINVAL;
}

int gotab_func(const struct ember_gopclntab *g, uint64_t i, struct gofunc *f)
{
	if (i >= g->nfunc)
		return -EINVAL;
	uint64_t funcoff = ftab_funcoff(g, i);
	if (funcoff > g->functab_sec.len || g->func_size > g->functab_sec.len - funcoff)
		return -EINVAL;
	size_t off = g->functab_off + (size_t)funcoff;
	const uint8_t *p = g->pcln.data + off;

	memset(f, 0, sizeof(*f));
	f->off = off;
	f->entry = ftab_entry_pc(g, i);
	if (g->go_min >= 18) {
		if (g->text_start + rd32(p) != f->entry)
			return -EINVAL;
		p += 4;
	} else {
		if (rd64(p) != f->entry)
			return -EINVAL;
		p += 8;
	}
	f->nameoff = (int32_t)rd32(p);
	f->pcsp = rd32(p + 12);
	f->pcfile = rd32(p + 16);
	f->pcln = rd32(p + 20);
	f->npcdata = rd32(p + 24);
	f->cu_offset = rd32(p + 28);
	p += 32;
	if (g->go_min >= 20) {
		f->start_line = (int32_t)rd32(p);
		p += 4;
	}
	f->funcid = p[0];
	f->flag = p[1]; /* 1.17+; padding (0) in 1.16 */
	f->nfuncdata = p[3];
	if (f->npcdata > MAX_NPCDATA ||
	    g->func_size + (uint64_t)f->npcdata * 4 > g->pcln.len - off)
		return -EINVAL;
	return 0;
}

int gotab_read_code(const struct ember_gopclntab *g, uint64_t vaddr, uint8_t *buf, size_t len)
{
	const struct gobytes *c = &g->code;
	struct goelf e;
	struct stat st;
	int rc = -ENOENT;

	if (c->data) {
		if (vaddr < c->vaddr || vaddr - c->vaddr > c->len || len > c->len - (vaddr - c->vaddr))
			return -ERANGE;
		memcpy(buf, c->data + (vaddr - c->vaddr), len);
		return 0;
	}
	if (!g->path)
		return -ENOENT;
	int fd = open(g->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && st.st_dev == g->dev && st.st_ino == g->ino &&
	    st.st_size == g->fsize &&
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == g->mtime_ns &&
	    goelf_open_fd(&e, fd, g->name, NULL, 0) == 0) {
		rc = goelf_read_vaddr(&e, vaddr, buf, len);
		goelf_close(&e);
	}
	close(fd);
	return rc;
}

const char *gotab_name(const struct ember_gopclntab *g, int64_t off)
{
	if (off < 0 || (uint64_t)off >= g->funcnames.len)
		return NULL;
	const char *s = (const char *)g->pcln.data + g->funcnames.off + off;
	if (!memchr(s, '\0', g->funcnames.len - (size_t)off))
		return NULL;
	return s;
}

/* The function covering pc: its index, or -1. */
static int64_t find_func(const struct ember_gopclntab *g, uint64_t pc)
{
	uint64_t lo = 0, hi = g->nfunc; /* invariant: answer in [lo, hi) */

	if (pc < ftab_entry_pc(g, 0) || pc >= ftab_entry_pc(g, g->nfunc))
		return -1;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ftab_entry_pc(g, mid) <= pc)
			lo = mid;
		else
			hi = mid;
	}
	/* an unsorted (hostile) table may land off target: check */
	if (ftab_entry_pc(g, lo) > pc || pc >= ftab_entry_pc(g, lo + 1))
		return -1;
	return (int64_t)lo;
}

/* ---- pc-value tables ---- */

static bool read_uvarint(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
	uint32_t v = 0;

	for (unsigned shift = 0; shift < 35; shift += 7) {
		if (*p >= end)
			return false;
		uint8_t b = *(*p)++;
		v |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

bool gopcvalue_init(const struct ember_gopclntab *g, uint32_t off, uint64_t entry,
		    struct gopcvalue *it)
{
	if (off == 0 || off >= g->pctab.len)
		return false;
	it->p = g->pcln.data + g->pctab.off + off;
	it->end = g->pcln.data + g->pctab.off + g->pctab.len;
	it->pc = it->next_pc = entry;
	it->value = -1;
	it->first = true;
	it->quantum = g->quantum;
	return true;
}

bool gopcvalue_next(struct gopcvalue *it, bool *bad)
{
	uint32_t uv, pcdelta;

	*bad = false;
	if (it->p >= it->end) {
		*bad = true; /* ran off the sub-table without the terminating 0 */
		return false;
	}
	if (*it->p == 0 && !it->first)
		return false;
	if (!read_uvarint(&it->p, it->end, &uv) || !read_uvarint(&it->p, it->end, &pcdelta)) {
		*bad = true;
		return false;
	}
	it->value = (int32_t)((uint32_t)it->value + ((uint32_t)-(uv & 1) ^ (uv >> 1)));
	it->pc = it->next_pc;
	it->next_pc += (uint64_t)pcdelta * it->quantum;
	it->first = false;
	return true;
}

/* Value of table off at pc, -1 when the table has no entry for pc. */
static int32_t pcvalue(const struct ember_gopclntab *g, uint32_t off, uint64_t entry, uint64_t pc)
{
	struct gopcvalue it;
	bool bad;

	if (!gopcvalue_init(g, off, entry, &it))
		return -1;
	while (gopcvalue_next(&it, &bad))
		if (pc >= it.pc && pc < it.next_pc)
			return it.value;
	return -1;
}

static int32_t pcdata_value(const struct ember_gopclntab *g, const struct gofunc *f,
			    uint32_t table, uint64_t pc)
{
	if (table >= f->npcdata)
		return -1;
	return pcvalue(g, rd32(g->pcln.data + f->off + g->func_size + table * 4), f->entry, pc);
}

static const char *file_at(const struct ember_gopclntab *g, const struct gofunc *f, uint64_t pc)
{
	int32_t fno = pcvalue(g, f->pcfile, f->entry, pc);
	uint64_t idx = (uint64_t)f->cu_offset + (uint64_t)fno;

	if (fno < 0 || idx >= g->cutab.len / 4)
		return "?";
	uint32_t off = rd32(g->pcln.data + g->cutab.off + idx * 4);
	if (off >= g->filetab.len)
		return "?";
	const char *s = (const char *)g->pcln.data + g->filetab.off + off;
	return memchr(s, '\0', g->filetab.len - off) ? s : "?";
}

static int32_t line_at(const struct ember_gopclntab *g, const struct gofunc *f, uint64_t pc)
{
	int32_t line = pcvalue(g, f->pcln, f->entry, pc);

	return line < 0 ? 0 : line;
}

/* ---- inline trees ---- */

struct goinline {
	int32_t nameoff, parent_pc, start_line;
};

/* Offset of f's inline tree in g->funcdata, or -1. */
static int64_t inline_tree(const struct ember_gopclntab *g, const struct gofunc *f)
{
	uint64_t addr;

	if (!g->funcdata.data || f->nfuncdata <= FUNCDATA_INLTREE)
		return -1;
	size_t fd = f->off + g->func_size + (size_t)f->npcdata * 4;
	if (g->go_min >= 18) {
		fd += FUNCDATA_INLTREE * 4;
		if (fd + 4 > g->pcln.len)
			return -1;
		uint32_t off = rd32(g->pcln.data + fd);
		if (off == 0xffffffffu || !g->gofunc)
			return -1;
		addr = g->gofunc + off;
	} else {
		if ((g->pcln.vaddr + fd) & 4)
			fd += 4; /* FUNCDATA pointers are 8-byte aligned */
		fd += FUNCDATA_INLTREE * 8;
		if (fd + 8 > g->pcln.len)
			return -1;
		addr = rd64(g->pcln.data + fd);
	}
	if (addr < g->funcdata.vaddr || addr - g->funcdata.vaddr >= g->funcdata.len)
		return -1;
	return (int64_t)(addr - g->funcdata.vaddr);
}

static bool inline_entry(const struct ember_gopclntab *g, int64_t tree, int32_t ix,
			 struct goinline *e)
{
	size_t size = g->go_min >= 20 ? 16 : 20;
	uint64_t at = (uint64_t)tree + (uint64_t)ix * size;

	if (ix < 0 || at > g->funcdata.len || size > g->funcdata.len - at)
		return false;
	const uint8_t *p = g->funcdata.data + at;
	if (g->go_min >= 20) { /* funcID u8, pad[3], nameOff, parentPc, startLine */
		e->nameoff = (int32_t)rd32(p + 4);
		e->parent_pc = (int32_t)rd32(p + 8);
		e->start_line = (int32_t)rd32(p + 12);
	} else { /* parent i16, funcID u8, pad, file, line, func_, parentPc */
		e->nameoff = (int32_t)rd32(p + 12);
		e->parent_pc = (int32_t)rd32(p + 16);
		e->start_line = 0;
	}
	return true;
}

int ember_gopclntab_lookup(const struct ember_gopclntab *g, uint64_t pc,
			   struct ember_go_frame *frames, int max)
{
	struct gofunc f;
	uint64_t entry, next;

	if (!g || max <= 0)
		return 0;
	int64_t i = find_func(g, pc);
	if (i < 0)
		return 0;
	if (gotab_func(g, (uint64_t)i, &f) || gotab_func_bounds(g, (uint64_t)i, &entry, &next))
		return -EINVAL;

	int n = 0;
	uint64_t cur = pc;
	int64_t tree = inline_tree(g, &f);
	for (int depth = 0; tree >= 0 && depth < MAX_INLINE_DEPTH && n < max; depth++) {
		struct goinline in;
		int32_t ix = pcdata_value(g, &f, PCDATA_INLTREEINDEX, cur);
		if (ix < 0 || !inline_entry(g, tree, ix, &in))
			break;
		const char *name = gotab_name(g, in.nameoff);
		frames[n++] = (struct ember_go_frame){
			.name = name ? name : "?",
			.file = file_at(g, &f, cur),
			.line = line_at(g, &f, cur),
			.start_line = in.start_line,
			.entry = f.entry,
			.inlined = true,
		};
		if (in.parent_pc < 0 || (uint64_t)in.parent_pc >= next - entry)
			break; /* corrupt: the call site is not in this function */
		cur = entry + (uint64_t)in.parent_pc;
	}
	if (n == max)
		return n;
	const char *name = gotab_name(g, f.nameoff);
	frames[n++] = (struct ember_go_frame){
		.name = name ? name : "?",
		.file = file_at(g, &f, cur),
		.line = line_at(g, &f, cur),
		.start_line = f.start_line,
		.entry = f.entry,
		.inlined = false,
	};
	return n;
}

int ember_gopclntab_func(const struct ember_gopclntab *g, uint64_t i, const char **name,
			 uint64_t *entry, uint64_t *end)
{
	struct gofunc f;
	struct gopcvalue it;
	uint64_t next;
	bool bad = false;

	if (gotab_func(g, i, &f) || gotab_func_bounds(g, i, entry, &next))
		return -EINVAL;
	*name = gotab_name(g, f.nameoff);
	if (!*name)
		return -EINVAL;
	/* the function ends where its SP-delta table does */
	*end = next;
	if (gopcvalue_init(g, f.pcsp, f.entry, &it)) {
		uint64_t last = f.entry;
		while (gopcvalue_next(&it, &bad))
			last = it.next_pc;
		if (!bad && last > f.entry && last < next)
			*end = last;
	}
	return 0;
}

void ember_gopclntab_info(const struct ember_gopclntab *g, struct ember_gopclntab_info *info)
{
	memset(info, 0, sizeof(*info));
	info->magic = g->magic;
	info->go_min = g->go_min;
	info->nfunc = g->nfunc;
	info->nfiles = g->nfiles;
	info->text_start = ftab_entry_pc(g, 0);
	info->text_end = ftab_entry_pc(g, g->nfunc);
	info->inline_trees = g->funcdata.data != NULL;
	info->has_code = g->code.data != NULL || g->path != NULL;
}

const struct ember_gobuildinfo *ember_gopclntab_buildinfo(const struct ember_gopclntab *g)
{
	return g ? g->bi : NULL;
}

/* ---- opening ---- */

static struct ember_gopclntab *gopclntab_new(const char *name)
{
	struct ember_gopclntab *g = calloc(1, sizeof(*g));

	if (g && !(g->name = strdup(name ? name : "?"))) {
		free(g);
		g = NULL;
	}
	return g;
}

void ember_gopclntab_free(struct ember_gopclntab *g)
{
	if (!g)
		return;
	free(g->pcln.data);
	free(g->funcdata.data);
	free(g->code.data);
	ember_gobuildinfo_free(g->bi);
	free(g->path);
	free(g->name);
	free(g);
}

int ember_gopclntab_parse(const uint8_t *data, size_t len, uint64_t vaddr,
			  struct ember_gopclntab **out, char *err, size_t errlen)
{
	struct ember_gopclntab *g = gopclntab_new(".gopclntab");

	*out = NULL;
	if (!g || !(g->pcln.data = malloc(len ? len : 1))) {
		ember_gopclntab_free(g);
		return -ENOMEM;
	}
	memcpy(g->pcln.data, data, len);
	g->pcln.len = len;
	g->pcln.vaddr = vaddr;
	g->machine = EM_X86_64;
	int rc = parse_header(g, err, errlen);
	if (rc) {
		ember_gopclntab_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

/* A pointer-sized word at vaddr, with the RELATIVE relocation applied if one targets it. */
static bool read_ptr(const struct goelf *e, uint64_t vaddr, uint64_t *v)
{
	uint8_t b[8];

	if (goelf_reloc_at(e, vaddr, v))
		return true;
	if (goelf_read_vaddr(e, vaddr, b, 8))
		return false;
	*v = rd64(b);
	return true;
}

/*
 * Without section headers: look for the pcHeader in the read-only,
 * non-executable segments, at 8-byte alignment.
 */
static int find_pclntab_in_segments(struct ember_gopclntab *g, const struct goelf *e)
{
	for (size_t i = 0; i < e->n_segs; i++) {
		const struct goelf_seg *s = &e->segs[i];
		if ((s->flags & (PF_X | PF_W)) || s->filesz < 72 || s->filesz > GOELF_MAX_READ)
			continue;
		uint8_t *buf = malloc(s->filesz);
		if (!buf)
			return -ENOMEM;
		if (goelf_pread(e, buf, s->filesz, s->offset)) {
			free(buf);
			continue;
		}
		for (uint64_t off = 0; off + 72 <= s->filesz; off += 8) {
			uint32_t m = rd32(buf + off);
			if (!go_min_of(m) || buf[off + 4] || buf[off + 5] || buf[off + 7] != 8)
				continue;
			g->pcln.data = buf + off; /* try it in place */
			g->pcln.len = s->filesz - off;
			g->pcln.vaddr = s->vaddr + off;
			if (parse_header(g, NULL, 0) == 0) {
				uint8_t *copy = malloc(g->pcln.len);
				if (copy)
					memcpy(copy, g->pcln.data, g->pcln.len);
				free(buf);
				g->pcln.data = copy;
				return copy ? 0 : -ENOMEM;
			}
		}
		g->pcln.data = NULL;
		free(buf);
	}
	return -ENOENT;
}

static int load_pclntab(struct ember_gopclntab *g, struct goelf *e, char *err, size_t errlen)
{
	const struct goelf_sec *s = goelf_section(e, ".gopclntab");
	int rc;

	if (!s) /* position-independent builds put it in relro */
		s = goelf_section(e, ".data.rel.ro.gopclntab");

	if (!s && e->n_secs == 0) {
		rc = find_pclntab_in_segments(g, e);
		if (rc == -ENOENT)
			goerr(err, errlen, "%s: no .gopclntab (not a Go binary)", g->name);
		return rc;
	}
	if (!s) {
		goerr(err, errlen, "%s: no .gopclntab section (not a Go binary)", g->name);
		return -ENOENT;
	}
	rc = goelf_read_section(e, s, &g->pcln.data);
	if (rc) {
		goerr(err, errlen, "%s: cannot read .gopclntab (%llu bytes at 0x%llx)", g->name,
		      (unsigned long long)s->size, (unsigned long long)s->offset);
		return rc;
	}
	g->pcln.len = s->size;
	g->pcln.vaddr = s->addr;
	return parse_header(g, err, errlen);
}

/* Copy [vaddr, end of its section) (or of its segment, without sections) into b. */
static int copy_region(const struct goelf *e, uint64_t vaddr, bool whole_section,
		       struct gobytes *b)
{
	uint64_t start = vaddr, end = 0;
	const struct goelf_sec *s = goelf_section_at(e, vaddr);

	if (s) {
		if (whole_section)
			start = s->addr;
		end = s->addr + s->size;
	} else {
		for (size_t i = 0; i < e->n_segs; i++)
			if (vaddr >= e->segs[i].vaddr && vaddr - e->segs[i].vaddr < e->segs[i].filesz)
				end = e->segs[i].vaddr + e->segs[i].filesz;
	}
	if (end <= start || end - start > GOELF_MAX_READ)
		return -ENOENT;
	b->data = malloc(end - start);
	if (!b->data)
		return -ENOMEM;
	if (goelf_read_vaddr(e, start, b->data, end - start)) {
		free(b->data);
		b->data = NULL;
		return -EIO;
	}
	b->len = end - start;
	b->vaddr = start;
	return 0;
}

/*
 * runtime.moduledata, 1.18+: pcHeader pointer at 0, funcnametab slice at 8,
 * text at 176; gofunc at 304 (1.18-1.19) or 320 (1.20+, after covctrs),
 * preceded by types, etypes and rodata.  The candidate must point at our
 * tables and agree on the text start.
 */
static bool moduledata_gofunc(const struct ember_gopclntab *g, const struct goelf *e,
			      uint64_t md, int off, uint64_t *gofunc)
{
	uint64_t v, types, etypes, rodata;

	if (!read_ptr(e, md + 8, &v) || v != g->pcln.vaddr + g->funcnames.off)
		return false;
	if (!read_ptr(e, md + 176, &v) || v != g->text_start)
		return false;
	if (!read_ptr(e, md + off - 24, &types) || !read_ptr(e, md + off - 16, &etypes) ||
	    !read_ptr(e, md + off - 8, &rodata) || !read_ptr(e, md + off, gofunc))
		return false;
	return types <= etypes && rodata <= *gofunc && *gofunc != 0;
}

/* Candidate addresses of runtime.firstmoduledata: words pointing at the pcHeader. */
static size_t moduledata_candidates(const struct ember_gopclntab *g, const struct goelf *e,
				    uint64_t *out, size_t max)
{
	size_t n = 0;

	/* position-independent: the pointer is a relocation with the pcHeader as addend */
	for (size_t i = 0; i < e->n_relocs && n < max; i++)
		if (e->relocs[i].addend == g->pcln.vaddr)
			out[n++] = e->relocs[i].offset;
	/* otherwise scan the data: .noptrdata holds runtime.firstmoduledata */
	for (size_t i = 0; i < e->n_segs && n < max; i++) {
		const struct goelf_seg *s = &e->segs[i];
		if (!(s->flags & PF_W) || s->filesz > GOELF_MAX_READ)
			continue;
		uint64_t lo = s->vaddr, hi = s->vaddr + s->filesz;
		const struct goelf_sec *nd = goelf_section(e, ".noptrdata");
		if (nd && nd->addr >= lo && nd->addr + nd->size <= hi) {
			lo = nd->addr;
			hi = nd->addr + nd->size;
		}
		uint8_t *buf = malloc(hi - lo + 1);
		if (!buf)
			break;
		if (goelf_read_vaddr(e, lo, buf, hi - lo) == 0)
			for (uint64_t off = (8 - lo % 8) % 8; off + 8 <= hi - lo && n < max; off += 8)
				if (rd64(buf + off) == g->pcln.vaddr)
					out[n++] = lo + off;
		free(buf);
	}
	return n;
}

/*
 * Do the inline trees found through g->gofunc make sense?  The first entry
 * of the first few trees must name a function and a call site inside its
 * caller.  Guards against a moduledata layout we do not know.
 */
static bool inline_trees_valid(const struct ember_gopclntab *g)
{
	int checked = 0;

	for (uint64_t i = 0; i < g->nfunc && checked < 16; i++) {
		struct gofunc f;
		struct goinline in;
		uint64_t entry, next;
		if (gotab_func(g, i, &f) || gotab_func_bounds(g, i, &entry, &next) ||
		    f.nfuncdata <= FUNCDATA_INLTREE)
			continue;
		size_t fd = f.off + g->func_size + (size_t)f.npcdata * 4 + FUNCDATA_INLTREE * 4;
		if (fd + 4 > g->pcln.len || rd32(g->pcln.data + fd) == 0xffffffffu)
			continue;
		int64_t tree = inline_tree(g, &f);
		if (tree < 0 || !inline_entry(g, tree, 0, &in) || !gotab_name(g, in.nameoff) ||
		    in.parent_pc < 0 || (uint64_t)in.parent_pc >= next - entry)
			return false;
		checked++;
	}
	return true;
}

static void find_gofunc(struct ember_gopclntab *g, const struct goelf *e)
{
	uint64_t cand[16];
	size_t n = moduledata_candidates(g, e, cand, 16);
	/* the layout of the table's own version first, then the other one */
	int offs[2] = {g->go_min >= 20 ? 320 : 304, g->go_min >= 20 ? 304 : 320};

	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < n; i++) {
			uint64_t gofunc;
			if (!moduledata_gofunc(g, e, cand[i], offs[k], &gofunc))
				continue;
			g->gofunc = gofunc;
			if (copy_region(e, gofunc, false, &g->funcdata) == 0 && inline_trees_valid(g))
				return;
			free(g->funcdata.data);
			memset(&g->funcdata, 0, sizeof(g->funcdata));
			g->gofunc = 0;
		}
	}
}

/* Where the inline trees are: a copy of go:func.* (1.18+) or of the section holding them. */
static void load_funcdata(struct ember_gopclntab *g, const struct goelf *e)
{
	if (g->go_min >= 18) {
		find_gofunc(g, e);
		return;
	}
	/* 1.16-1.17: absolute pointers; find one inline tree and take its section */
	for (uint64_t i = 0; i < g->nfunc; i++) {
		struct gofunc f;
		if (gotab_func(g, i, &f) || f.nfuncdata <= FUNCDATA_INLTREE)
			continue;
		size_t fd = f.off + g->func_size + (size_t)f.npcdata * 4;
		if ((g->pcln.vaddr + fd) & 4)
			fd += 4;
		fd += FUNCDATA_INLTREE * 8;
		if (fd + 8 > g->pcln.len)
			continue;
		uint64_t addr = rd64(g->pcln.data + fd);
		if (addr && copy_region(e, addr, true, &g->funcdata) == 0)
			return;
	}
}

/* Image mode: keep the code of the Go functions for the prologue checks of compile_rows. */
static void load_code(struct ember_gopclntab *g, const struct goelf *e)
{
	uint64_t lo = ftab_entry_pc(g, 0), hi = ftab_entry_pc(g, g->nfunc);

	if (hi <= lo || hi - lo > GOELF_MAX_READ || !(g->code.data = malloc(hi - lo)))
		return;
	if (goelf_read_vaddr(e, lo, g->code.data, hi - lo)) {
		free(g->code.data);
		g->code.data = NULL;
		return;
	}
	g->code.vaddr = lo;
	g->code.len = hi - lo;
}

static int open_elf(struct ember_gopclntab *g, struct goelf *e, char *err, size_t errlen)
{
	int rc = load_pclntab(g, e, err, errlen);

	if (rc)
		return rc;
	if (e->type == ET_DYN && e->machine == EM_X86_64 && goelf_load_relocs(e) == 0 &&
	    g->go_min >= 18 && g->text_start == 0) {
		/* PIE: textStart is filled in by a relocation */
		uint64_t v;
		if (goelf_reloc_at(e, g->pcln.vaddr + 24, &v))
			g->text_start = v;
	}
	g->machine = e->machine;
	g->has_exec_base = goelf_exec_base(e, &g->exec_base);
	load_funcdata(g, e);
	if (gobuildinfo_from_elf(e, &g->bi, NULL, 0))
		g->bi = NULL;
	return 0;
}

int ember_gopclntab_open(const char *path, struct ember_gopclntab **out, char *err,
			 size_t errlen)
{
	struct ember_gopclntab *g;
	struct goelf e;
	struct stat st;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goerr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	g = gopclntab_new(path);
	if (!g || !(g->path = strdup(path))) {
		ember_gopclntab_free(g);
		close(fd);
		return -ENOMEM;
	}
	rc = goelf_open_fd(&e, fd, path, err, errlen);
	if (rc) {
		ember_gopclntab_free(g);
		close(fd);
		return rc;
	}
	rc = open_elf(g, &e, err, errlen);
	if (!rc && fstat(fd, &st) == 0) {
		g->dev = st.st_dev;
		g->ino = st.st_ino;
		g->fsize = st.st_size;
		g->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	}
	goelf_close(&e);
	close(fd);
	if (rc) {
		ember_gopclntab_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

int ember_gopclntab_open_image(const void *image, size_t len, const char *name,
			       struct ember_gopclntab **out, char *err, size_t errlen)
{
	struct ember_gopclntab *g = gopclntab_new(name);
	struct goelf e;
	int rc;

	*out = NULL;
	if (!g)
		return -ENOMEM;
	rc = goelf_open_mem(&e, image, len, g->name, err, errlen);
	if (rc) {
		ember_gopclntab_free(g);
		return rc;
	}
	rc = open_elf(g, &e, err, errlen);
	if (!rc)
		load_code(g, &e);
	goelf_close(&e);
	if (rc) {
		ember_gopclntab_free(g);
		return rc;
	}
	*out = g;
	return 0;
}
