/*
 * cfi_parse.c - walk the entries of .eh_frame / .debug_frame: CIEs and FDEs.
 *
 * Both sections are a sequence of length-prefixed entries.  A 32-bit
 * length of 0xffffffff announces a 64-bit length (DWARF64, .debug_frame);
 * a zero length is a terminator (skipped: .eh_frame_hdr may still index
 * FDEs after one).  The id field tells CIEs from FDEs and differs:
 *
 *                 CIE id           FDE's CIE pointer
 *   .eh_frame     0                offset back from the pointer field
 *   .debug_frame  0xffffffff(..)   offset from the section start
 *
 * CIEs are parsed when an FDE first names them and cached by offset, with
 * their initial instructions already run.  Augmentations: z (length of
 * augmentation data, so unknown letters after it can be skipped), R (FDE
 * pointer encoding), P (personality, skipped), L (LSDA encoding), S
 * (signal frame), B/G (no data).
 *
 * A malformed entry is counted and skipped; the walk continues with the
 * next one as long as the entry's length stays inside the section.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ehframe/cfi.h"

/* ---- CIE cache: open addressing keyed by section offset ------------------ */

struct cie_cache {
	struct cfi_cie *cies;
	size_t n, cap;
	uint32_t *slots; /* index + 1 into cies, 0 = empty */
	size_t nslots;   /* power of two */
	size_t last;     /* index + 1 of the last hit: FDEs come in runs */
};

static size_t slot_of(uint64_t off, size_t nslots)
{
	return (size_t)((off * 0x9e3779b97f4a7c15ull) >> 32) & (nslots - 1);
}

static struct cfi_cie *cache_find(struct cie_cache *cc, uint64_t off)
{
	if (cc->last && cc->cies[cc->last - 1].offset == off)
		return &cc->cies[cc->last - 1];
	if (!cc->nslots)
		return NULL;
	for (size_t i = slot_of(off, cc->nslots);; i = (i + 1) & (cc->nslots - 1)) {
		uint32_t s = cc->slots[i];
		if (!s)
			return NULL;
		if (cc->cies[s - 1].offset == off) {
			cc->last = s;
			return &cc->cies[s - 1];
		}
	}
}

static int cache_rehash(struct cie_cache *cc, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t k = 0; k < cc->n; k++) {
		size_t i = slot_of(cc->cies[k].offset, nslots);
		while (slots[i])
			i = (i + 1) & (nslots - 1);
		slots[i] = (uint32_t)(k + 1);
	}
	free(cc->slots);
	cc->slots = slots;
	cc->nslots = nslots;
	return 0;
}

static struct cfi_cie *cache_add(struct cie_cache *cc, const struct cfi_cie *cie)
{
	if (cc->n == cc->cap) {
		size_t cap = cc->cap ? cc->cap * 2 : 16;
		struct cfi_cie *p = realloc(cc->cies, cap * sizeof(*p));
		if (!p)
			return NULL;
		cc->cies = p;
		cc->cap = cap;
	}
	if ((cc->n + 1) * 2 > cc->nslots && cache_rehash(cc, cc->nslots ? cc->nslots * 2 : 64))
		return NULL;
	cc->cies[cc->n++] = *cie;
	size_t i = slot_of(cie->offset, cc->nslots);
	while (cc->slots[i])
		i = (i + 1) & (cc->nslots - 1);
	cc->slots[i] = (uint32_t)cc->n;
	cc->last = cc->n;
	return &cc->cies[cc->n - 1];
}

static void cache_free(struct cie_cache *cc)
{
	free(cc->cies);
	free(cc->slots);
}

/* ---- entries -------------------------------------------------------------- */

/* The frame of one entry: its length, id, and where it ends. */
struct entry {
	size_t off;      /* of the length field */
	size_t id_off;   /* of the id / CIE pointer field */
	size_t end;      /* first byte after the entry */
	uint64_t id;
	bool is_cie;
	bool dwarf64;    /* 64-bit length and id */
};

/*
 * Read the entry header at off.  Returns 0 for an entry, 1 for a zero
 * terminator (4 bytes), 2 for an entry too short to hold its id (e->end is
 * set: it can be skipped), -1 when the length leaves the section (the walk
 * stops: nothing after it can be trusted).
 */
static int read_entry(const struct cfi_section *s, size_t off, struct entry *e, const char **why)
{
	struct cfi_cursor c;
	uint64_t length;
	unsigned id_size = 4;

	cfi_cursor_init(&c, s->data, off, s->len);
	length = cfi_u32(&c);
	if (c.err) {
		*why = "truncated entry length";
		return -1;
	}
	if (length == 0)
		return 1;
	if (length == 0xffffffff) {
		length = cfi_u64(&c);
		id_size = 8;
	}
	if (c.err || length > cfi_left(&c)) {
		*why = "entry length runs past the end of the section";
		return -1;
	}
	e->off = off;
	e->dwarf64 = id_size == 8;
	e->id_off = cfi_off(&c);
	e->end = e->id_off + (size_t)length;
	if (length < id_size) {
		*why = "entry too short for its id";
		return 2;
	}
	e->id = id_size == 4 ? cfi_u32(&c) : cfi_u64(&c);
	if (s->is_debug_frame)
		e->is_cie = e->id == (id_size == 4 ? 0xffffffffull : ~0ull);
	else
		e->is_cie = e->id == 0;
	return 0;
}

/* The augmentation data after 'z': encodings and flags. */
static int parse_augmentation(struct cfi_cursor *c, const struct cfi_section *s,
			      struct cfi_cie *cie, const char *aug, const char **why)
{
	uint64_t len = cfi_uleb(c);
	size_t end;
	bool unknown = false;

	if (c->err || len > cfi_left(c)) {
		*why = "augmentation data runs past the end of the CIE";
		return -1;
	}
	end = cfi_off(c) + (size_t)len;
	for (const char *a = aug + 1; *a && !unknown; a++) {
		uint64_t ignored;
		uint8_t enc;
		switch (*a) {
		case 'R':
			cie->fde_enc = cfi_u8(c);
			break;
		case 'P':
			enc = cfi_u8(c);
			if (cfi_read_pointer(c, s, enc, cie->addr_size, CFI_PTR_SKIP, &ignored, why))
				return -1;
			break;
		case 'L':
			cfi_u8(c); /* LSDA encoding: the LSDA itself is not needed */
			break;
		case 'S': /* signal frame */
		case 'B': /* AArch64 BTI */
		case 'G': /* MTE */
			break;
		default: /* unknown: the rest of the data is skipped thanks to 'z' */
			unknown = true;
			break;
		}
		if (c->err || cfi_off(c) > end) {
			*why = "augmentation data runs past its length";
			return -1;
		}
	}
	c->p = c->base + end;
	return 0;
}

static int parse_cie(const struct cfi_section *s, const struct entry *e, struct cfi_cie *cie,
		     const char **why)
{
	struct cfi_cursor c;
	const char *aug;
	const uint8_t *nul;

	memset(cie, 0, sizeof(*cie));
	cie->offset = e->off;
	cfi_cursor_init(&c, s->data, e->id_off + (e->dwarf64 ? 8 : 4), e->end);
	cie->version = cfi_u8(&c);
	if (!c.err && cie->version != 1 && cie->version != 3 && cie->version != 4) {
		*why = "unsupported CIE version";
		return -1;
	}
	nul = c.err ? NULL : memchr(c.p, 0, cfi_left(&c));
	if (!nul) {
		*why = "CIE augmentation string is not terminated";
		return -1;
	}
	aug = (const char *)c.p;
	c.p = nul + 1;
	cie->addr_size = 8;
	if (cie->version >= 4) {
		cie->addr_size = cfi_u8(&c);
		cie->seg_size = cfi_u8(&c);
		if (!c.err && cie->addr_size != 4 && cie->addr_size != 8) {
			*why = "unsupported CIE address size";
			return -1;
		}
	}
	cie->code_align = cfi_uleb(&c);
	cie->data_align = cfi_sleb(&c);
	cie->ra_reg = cie->version == 1 ? cfi_u8(&c) : cfi_uleb(&c);
	cie->fde_enc = 0; /* absptr */
	if (aug[0] == 'z') {
		cie->has_z = true;
		if (parse_augmentation(&c, s, cie, aug, why))
			return -1;
	} else if (aug[0]) {
		*why = "unsupported CIE augmentation";
		return -1;
	}
	if (c.err) {
		*why = "truncated CIE";
		return -1;
	}
	if (cie->fde_enc == DW_EH_PE_omit) {
		*why = "CIE gives FDE addresses the 'omit' encoding";
		return -1;
	}
	cie->insns = cfi_off(&c);
	cie->insns_end = e->end;
	return cfi_exec_cie(s, cie, why);
}

/* The CIE at offset off, parsed and cached; NULL (with why) if unusable. */
static const struct cfi_cie *get_cie(struct cfi_builder *b, const struct cfi_section *s,
				     struct cie_cache *cc, uint64_t off, const char **why)
{
	struct cfi_cie *cie = cache_find(cc, off), tmp;
	struct entry e;

	if (cie) {
		*why = "FDE uses a malformed CIE";
		return cie->bad ? NULL : cie;
	}
	if (off >= s->len) {
		*why = "CIE pointer out of range";
		return NULL;
	}
	if (read_entry(s, (size_t)off, &e, why) != 0 || !e.is_cie) {
		*why = "CIE pointer does not point to a CIE";
		return NULL;
	}
	if (parse_cie(s, &e, &tmp, why)) {
		cfi_error(b, s, (size_t)off, "CIE: %s", *why);
		tmp.bad = true;
	}
	cie = cache_add(cc, &tmp);
	if (!cie) {
		b->oom = true;
		*why = "out of memory";
		return NULL;
	}
	*why = "FDE uses a malformed CIE";
	return cie->bad ? NULL : cie;
}

/* Decode the FDE header; fills fde and returns its CIE, or NULL with why. */
static const struct cfi_cie *parse_fde(struct cfi_builder *b, const struct cfi_section *s,
				       struct cie_cache *cc, const struct entry *e,
				       struct cfi_fde *fde, const char **why)
{
	struct cfi_cursor c;
	const struct cfi_cie *cie;
	uint64_t cie_off, range;

	if (s->is_debug_frame) {
		cie_off = e->id;
	} else {
		if (e->id > e->id_off) {
			*why = "CIE pointer out of range";
			return NULL;
		}
		cie_off = e->id_off - e->id;
	}
	cie = get_cie(b, s, cc, cie_off, why);
	if (!cie)
		return NULL;
	cfi_cursor_init(&c, s->data, e->id_off + (e->dwarf64 ? 8 : 4), e->end);
	cfi_skip(&c, cie->seg_size);
	if (cfi_read_pointer(&c, s, cie->fde_enc, cie->addr_size, CFI_PTR_VALUE, &fde->pc_begin,
			     why) ||
	    cfi_read_pointer(&c, s, cie->fde_enc, cie->addr_size, CFI_PTR_FORMAT, &range, why))
		return NULL;
	if (cie->has_z)
		cfi_skip(&c, cfi_uleb(&c)); /* augmentation data: the LSDA pointer */
	if (c.err) {
		*why = "truncated FDE header";
		return NULL;
	}
	if (range > UINT32_MAX || __builtin_add_overflow(fde->pc_begin, range, &fde->pc_end)) {
		*why = "FDE address range too large";
		return NULL;
	}
	fde->offset = e->off;
	fde->insns = cfi_off(&c);
	fde->insns_end = e->end;
	return cie;
}

static int grow_to(struct cfi_builder *b, size_t rows, size_t fdes)
{
	if (rows > b->cap_rows) {
		void *p = realloc(b->rows, rows * sizeof(*b->rows));
		if (!p)
			return -ENOMEM;
		b->rows = p;
		b->cap_rows = rows;
	}
	if (fdes > b->cap_fdes) {
		void *p = realloc(b->fdes, fdes * sizeof(*b->fdes));
		if (!p)
			return -ENOMEM;
		b->fdes = p;
		b->cap_fdes = fdes;
	}
	return 0;
}

static void compile_fde(struct cfi_builder *b, const struct cfi_section *s,
			struct cie_cache *cc, const struct entry *e)
{
	struct cfi_fde fde;
	struct cfi_fde_rec rec;
	const struct cfi_cie *cie;
	const char *why = "malformed FDE";
	size_t err_off;

	if (s->is_debug_frame)
		b->stats.debug_frame_fdes++;
	else
		b->stats.eh_frame_fdes++;
	cie = parse_fde(b, s, cc, e, &fde, &why);
	if (!cie) {
		if (!b->oom)
			cfi_error(b, s, e->off, "FDE: %s", why);
		return;
	}
	if (fde.pc_end == fde.pc_begin)
		return; /* covers nothing */
	rec.pc_begin = fde.pc_begin;
	rec.pc_len = (uint32_t)(fde.pc_end - fde.pc_begin);
	rec.offset = (uint32_t)fde.offset;
	rec.source = s->is_debug_frame ? EMBER_CFI_DEBUG_FRAME : EMBER_CFI_EH_FRAME;
	rec.first_row = (uint32_t)b->n_rows;
	if (cfi_exec_fde(b, s, cie, &fde, &why, &err_off)) {
		b->n_rows = rec.first_row; /* roll back this FDE's rows */
		if (!b->oom)
			cfi_error(b, s, e->off, "FDE: %s (instruction 0x%02x at +0x%zx)", why,
				  err_off < s->len ? s->data[err_off] : 0, err_off);
		return;
	}
	rec.n_rows = (uint32_t)(b->n_rows - rec.first_row);
	cfi_builder_add_fde(b, &rec);
}

int cfi_parse_section(struct cfi_builder *b, const struct cfi_section *s)
{
	struct cie_cache cc;
	size_t off = 0;

	memset(&cc, 0, sizeof(cc));
	if (s->len > UINT32_MAX / 2) { /* keeps row and FDE counts in 32 bits */
		cfi_error(b, s, 0, "section too large (%zu bytes)", s->len);
		return 0;
	}
	/* Reserve for the usual density (GCC output: ~5 bytes per row, ~40 per FDE). */
	if (grow_to(b, b->n_rows + s->len / 5, b->n_fdes + s->len / 40))
		return -ENOMEM;
	while (off < s->len && !b->oom) {
		struct entry e;
		const char *why = NULL;
		int rc;

		if (s->len - off < 4) {
			cfi_error(b, s, off, "%zu stray bytes at the end", s->len - off);
			break;
		}
		rc = read_entry(s, off, &e, &why);
		if (rc < 0) {
			cfi_error(b, s, off, "%s", why);
			break;
		}
		if (rc == 1) { /* zero terminator */
			off += 4;
			continue;
		}
		if (rc == 2) {
			cfi_error(b, s, off, "%s", why);
			off = e.end;
			continue;
		}
		if (e.is_cie)
			b->stats.cies++;
		else
			compile_fde(b, s, &cc, &e);
		off = e.end;
	}
	cache_free(&cc);
	return b->oom ? -ENOMEM : 0;
}
