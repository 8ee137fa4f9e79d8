/*
 * dwarf_line.c - .debug_line reader giving libdw's answers (see
 * dwarf_line.h for why and for what it refuses).
 *
 * The reader follows libdw 0.188's read_srclines(): the same header
 * checks, the same state machine (including libdw's 32-bit arithmetic
 * where it has it), a row for every special opcode, DW_LNS_copy and
 * DW_LNE_end_sequence.  Where libdw would truncate a value or stray from
 * the DWARF standard on odd input (an extended opcode length >= 128, a
 * set_address of the wrong length, ...), we refuse instead of guessing.
 *
 * Sorting: libdw sorts all rows by (address, end of sequence first,
 * program order).  A compiler writes each sequence in address order (but
 * for an end of sequence at the address of the row before), so sorting
 * each sequence in place, then the sequences by their first row, and
 * checking that they follow one another gives the same order for a
 * fraction of the cost, without moving them; when the check fails
 * (overlapping sequences), every row is sorted, as libdw does.
 */
#include "symbolizer/dwarf_line.h"

#include <dwarf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"

#define MAX_FILES (EMBER_LINE_END - 1) /* file indexes must fit a row */

/* A bounds-checked little-endian reader; `bad` sticks once set. */
struct cur {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t rd(struct cur *c, int n)
{
	uint64_t v = 0;

	if (c->bad || c->end - c->p < n) {
		c->bad = true;
		return 0;
	}
	for (int i = 0; i < n; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	return v;
}

/* LEB128 of at most 9 bytes (longer ones are refused: libdw reads them differently). */
static uint64_t leb(struct cur *c, bool is_signed)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 63; shift += 7) {
		if (c->bad || c->p >= c->end)
			break;
		uint8_t b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (is_signed && (b & 0x40))
				v |= ~(uint64_t)0 << (shift + 7);
			return v;
		}
	}
	c->bad = true;
	return 0;
}

static uint64_t uleb(struct cur *c)
{
	return leb(c, false);
}

static int64_t sleb(struct cur *c)
{
	return (int64_t)leb(c, true);
}

/* A NUL-terminated string at off in a section, NULL when there is none. */
static const char *sec_string(const uint8_t *sec, size_t size, uint64_t off)
{
	if (!sec || off >= size || !memchr(sec + off, 0, size - off))
		return NULL;
	return (const char *)sec + off;
}

/*
 * One value of a DWARF 5 directory or file entry: *str for string forms,
 * *num for constants (and *is_num).  Refuses (c->bad) forms we do not read.
 */
static void form_value(struct cur *c, uint64_t form, int offsz, const struct ember_line_sections *s,
		       const char **str, uint64_t *num, bool *is_num)
{
	*str = NULL;
	*is_num = false;
	switch (form) {
	case DW_FORM_string: {
		const uint8_t *z = c->p < c->end ? memchr(c->p, 0, c->end - c->p) : NULL;
		if (!z) {
			c->bad = true;
			return;
		}
		*str = (const char *)c->p;
		c->p = z + 1;
		return;
	}
	case DW_FORM_line_strp:
		*str = sec_string(s->line_str, s->line_str_size, rd(c, offsz));
		return;
	case DW_FORM_strp:
		*str = sec_string(s->str, s->str_size, rd(c, offsz));
		return;
	case DW_FORM_udata:
		*num = uleb(c), *is_num = true;
		return;
	case DW_FORM_data1:
		*num = rd(c, 1), *is_num = true;
		return;
	case DW_FORM_data2:
		*num = rd(c, 2), *is_num = true;
		return;
	case DW_FORM_data4:
		*num = rd(c, 4), *is_num = true;
		return;
	case DW_FORM_data8:
		*num = rd(c, 8), *is_num = true;
		return;
	case DW_FORM_data16:
		rd(c, 8), rd(c, 8);
		return;
	case DW_FORM_block: {
		uint64_t n = uleb(c);
		if (c->bad || n > (uint64_t)(c->end - c->p))
			c->bad = true;
		else
			c->p += n;
		return;
	}
	default:
		c->bad = true;
	}
}

/* Names being collected: offsets into a growing buffer, made pointers at the end. */
struct names {
	char *buf;
	size_t len, cap;
	size_t *off; /* SIZE_MAX: the name is `ptr` (not in buf) */
	const char **ptr;
	size_t n, cap_off, cap_ptr;
};

/* Add file name `name` in directory `dir` (may be NULL) as libdw names it. */
static bool add_name(struct names *nm, const char *dir, const char *name)
{
	if (nm->n >= MAX_FILES ||
	    ember_array_grow(&nm->off, &nm->cap_off, nm->n + 1, sizeof(*nm->off)) ||
	    ember_array_grow(&nm->ptr, &nm->cap_ptr, nm->n + 1, sizeof(*nm->ptr)))
		return false;
	if (name[0] == '/' || !dir) {
		nm->off[nm->n] = SIZE_MAX;
		nm->ptr[nm->n++] = name;
		return true;
	}
	size_t dl = strlen(dir), fl = strlen(name);
	if (ember_array_grow(&nm->buf, &nm->cap, nm->len + dl + fl + 2, 1))
		return false;
	nm->off[nm->n] = nm->len;
	nm->ptr[nm->n++] = NULL;
	memcpy(nm->buf + nm->len, dir, dl);
	nm->buf[nm->len + dl] = '/';
	memcpy(nm->buf + nm->len + dl + 1, name, fl + 1);
	nm->len += dl + fl + 2;
	return true;
}

struct header {
	int version, offsz;
	uint8_t min_inst, line_range, opcode_base;
	int8_t line_base;
	bool default_is_stmt;
	const uint8_t *std_len; /* std_len[op] for 1 <= op < opcode_base */
	const uint8_t *program, *end;
};

/* DWARF 2-4 include_directories and file_names; dir 0 is comp_dir. */
static bool read_files_v4(struct cur *c, const char *comp_dir, struct names *nm)
{
	const char **dirs = NULL;
	size_t n_dirs = 1, cap = 0;
	bool ok = false;

	if (ember_array_grow(&dirs, &cap, 1, sizeof(*dirs)))
		return false;
	dirs[0] = comp_dir;
	for (;;) {
		const uint8_t *z = c->p < c->end ? memchr(c->p, 0, c->end - c->p) : NULL;
		if (!z)
			goto out;
		if (z == c->p)
			break;
		if (ember_array_grow(&dirs, &cap, n_dirs + 1, sizeof(*dirs)))
			goto out;
		dirs[n_dirs++] = (const char *)c->p;
		c->p = z + 1;
	}
	c->p++;
	if (!add_name(nm, NULL, "???")) /* file 0 does not exist before DWARF 5 */
		goto out;
	for (;;) {
		if (c->p >= c->end)
			goto out;
		if (*c->p == 0)
			break;
		const uint8_t *z = memchr(c->p, 0, c->end - c->p);
		if (!z)
			goto out;
		const char *name = (const char *)c->p;
		c->p = z + 1;
		uint64_t dir = uleb(c);
		uleb(c); /* mtime */
		uleb(c); /* length */
		if (c->bad || dir >= n_dirs || !add_name(nm, dirs[dir], name))
			goto out;
	}
	c->p++;
	ok = true;
out:
	free(dirs);
	return ok;
}

/* An entry format of DWARF 5: which forms, and which of them are the path and dir index. */
struct entry_format {
	uint64_t forms[256];
	int n, path, dir;
};

static bool read_format(struct cur *c, struct entry_format *f)
{
	f->n = (int)rd(c, 1);
	f->path = f->dir = -1;
	for (int i = 0; i < f->n; i++) {
		uint64_t desc = uleb(c), form = uleb(c);
		if (c->bad || desc > 0xffff || form > 0xffff)
			return false;
		switch (form) { /* what form_value reads */
		case DW_FORM_string: case DW_FORM_line_strp: case DW_FORM_strp:
		case DW_FORM_udata: case DW_FORM_data1: case DW_FORM_data2:
		case DW_FORM_data4: case DW_FORM_data8: case DW_FORM_data16:
		case DW_FORM_block:
			break;
		default:
			return false;
		}
		f->forms[i] = form;
		if (desc == DW_LNCT_path)
			f->path = i;
		else if (desc == DW_LNCT_directory_index)
			f->dir = i;
	}
	return !c->bad;
}

/* DWARF 5 directories and file names (file 0 is the unit's primary file). */
static bool read_files_v5(struct cur *c, const struct header *h,
			  const struct ember_line_sections *s, struct names *nm)
{
	struct entry_format f;
	const char **dirs = NULL;
	bool ok = false;

	if (!read_format(c, &f) || (f.n > 0 && f.path < 0))
		return false;
	uint64_t n_dirs = uleb(c);
	if (c->bad || (f.n == 0 && n_dirs != 0) ||
	    (f.n != 0 && n_dirs > (uint64_t)(c->end - c->p) / f.n))
		return false;
	if (n_dirs && !(dirs = malloc(n_dirs * sizeof(*dirs))))
		return false;
	for (uint64_t i = 0; i < n_dirs; i++) {
		const char *dir = NULL, *str;
		uint64_t num;
		bool is_num;
		for (int m = 0; m < f.n; m++) {
			form_value(c, f.forms[m], h->offsz, s, &str, &num, &is_num);
			if (m == f.path)
				dir = str;
		}
		if (c->bad || !dir)
			goto out;
		dirs[i] = dir;
	}

	if (!read_format(c, &f) || (f.n > 0 && (f.path < 0 || f.dir < 0)))
		goto out;
	uint64_t n_files = uleb(c);
	if (c->bad || (f.n == 0 && n_files != 0) ||
	    (f.n != 0 && n_files > (uint64_t)(c->end - c->p) / f.n))
		goto out;
	if (n_files == 0 && !add_name(nm, NULL, "???"))
		goto out;
	for (uint64_t i = 0; i < n_files; i++) {
		const char *name = NULL, *str;
		uint64_t num, dir = UINT64_MAX;
		bool is_num;
		for (int m = 0; m < f.n; m++) {
			form_value(c, f.forms[m], h->offsz, s, &str, &num, &is_num);
			if (m == f.path)
				name = str;
			else if (m == f.dir)
				dir = is_num ? num : UINT64_MAX;
		}
		if (c->bad || !name || dir >= n_dirs || !add_name(nm, dirs[dir], name))
			goto out;
	}
	ok = true;
out:
	free(dirs);
	return ok;
}

static bool read_header(struct cur *c, unsigned addr_size, struct header *h)
{
	uint64_t unit_length = rd(c, 4);

	h->offsz = 4;
	if (unit_length == 0xffffffff) {
		unit_length = rd(c, 8);
		h->offsz = 8;
	} else if (unit_length >= 0xfffffff0) {
		return false;
	}
	if (c->bad || unit_length > (uint64_t)(c->end - c->p))
		return false;
	c->end = c->p + unit_length;
	h->version = (int)rd(c, 2);
	if (h->version < 2 || h->version > 5)
		return false;
	if (h->version >= 5 && (rd(c, 1) != addr_size || rd(c, 1) != 0))
		return false;
	uint64_t header_length = rd(c, h->offsz);
	if (c->bad || header_length > (uint64_t)(c->end - c->p))
		return false;
	h->program = c->p + header_length;
	h->end = c->end;
	h->min_inst = (uint8_t)rd(c, 1);
	if (h->version >= 4 && rd(c, 1) != 1)
		return false; /* VLIW (max_ops_per_instr > 1), or invalid 0 */
	h->default_is_stmt = rd(c, 1) != 0;
	h->line_base = (int8_t)rd(c, 1);
	h->line_range = (uint8_t)rd(c, 1);
	h->opcode_base = (uint8_t)rd(c, 1);
	if (c->bad || h->opcode_base == 0 || c->end - c->p < h->opcode_base - 1)
		return false;
	h->std_len = c->p - 1;
	c->p += h->opcode_base - 1;
	if (c->p > h->program)
		return false;
	c->end = h->program; /* the file tables lie before the program */
	return true;
}

static int cmp_row_key(const struct ember_line_row *a, const struct ember_line_row *b)
{
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	bool ea = a->file == EMBER_LINE_END, eb = b->file == EMBER_LINE_END;
	return ea == eb ? 0 : ea ? -1 : 1; /* an end of sequence first */
}

/* A row and its place in program order, for the full sort. */
struct indexed_row {
	struct ember_line_row row;
	size_t idx;
};

static int cmp_indexed(const void *a, const void *b)
{
	const struct indexed_row *x = a, *y = b;
	int k = cmp_row_key(&x->row, &y->row);
	if (k)
		return k;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_seq(const void *a, const void *b, void *rows_)
{
	const struct ember_line_seq *x = a, *y = b;
	const struct ember_line_row *rows = rows_;
	int k = cmp_row_key(&rows[x->start], &rows[y->start]);
	if (k)
		return k;
	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Stable insertion sort of one sequence by key: a sequence is in address
 * order but for the odd end of sequence at the address of a row.  Returns
 * false, with every row still there, when it is far from sorted.  Rows
 * only ever move past rows of a greater key, so rows of equal key keep
 * their program order either way.
 */
static bool sort_run(struct ember_line_row *r, size_t n)
{
	size_t moves = 0, budget = n + 64;

	for (size_t i = 1; i < n; i++) {
		if (cmp_row_key(&r[i - 1], &r[i]) <= 0)
			continue;
		struct ember_line_row x = r[i];
		size_t j = i;
		for (; j > 0 && cmp_row_key(&r[j - 1], &x) > 0 && moves < budget; j--, moves++)
			r[j] = r[j - 1];
		r[j] = x;
		if (moves >= budget)
			return false;
	}
	return true;
}

/*
 * Put the rows in libdw's order: each sequence sorted in place, and
 * t->seqs, the sequences in the order in which they follow one another.
 * When they do not simply follow one another (overlapping sequences, or
 * one far from sorted), all rows are sorted into one sequence, ties in
 * their current order (which is program order among rows of equal key).
 * False on OOM.
 */
static bool order_rows(struct ember_line_table *t)
{
	struct ember_line_row *rows = t->rows;
	size_t n = t->n_rows, cap = 0, at = 0;
	bool full = false;

	for (size_t s = 0; s < n; s++) {
		if (rows[s].file != EMBER_LINE_END && s + 1 < n)
			continue;
		if (ember_array_grow(&t->seqs, &cap, t->n_seqs + 1, sizeof(*t->seqs)))
			return false;
		t->seqs[t->n_seqs++] = (struct ember_line_seq){at, s + 1 - at};
		full |= !sort_run(rows + at, s + 1 - at);
		at = s + 1;
	}
	if (!full && t->n_seqs > 1) {
		qsort_r(t->seqs, t->n_seqs, sizeof(*t->seqs), cmp_seq, rows);
		for (size_t s = 1; s < t->n_seqs && !full; s++) {
			const struct ember_line_seq *p = &t->seqs[s - 1], *q = &t->seqs[s];
			int k = cmp_row_key(&rows[p->start + p->n - 1], &rows[q->start]);
			full = k > 0 || (k == 0 && p->start > q->start);
		}
	}
	if (!full)
		return true;

	struct indexed_row *ix = malloc(n * sizeof(*ix));
	if (!ix)
		return false;
	for (size_t k = 0; k < n; k++)
		ix[k] = (struct indexed_row){rows[k], k};
	qsort(ix, n, sizeof(*ix), cmp_indexed);
	for (size_t k = 0; k < n; k++)
		rows[k] = ix[k].row;
	free(ix);
	t->seqs[0] = (struct ember_line_seq){0, n};
	t->n_seqs = 1;
	return true;
}

struct state {
	uint64_t addr;
	int64_t line;
	uint32_t file, column, isa;
};

static void reset(struct state *st)
{
	*st = (struct state){.file = 1, .line = 1};
}

/* Append the state as a row; false when libdw could not store it, or on OOM. */
static bool emit(struct ember_line_table *t, size_t *cap, const struct state *st, bool end)
{
	if (st->file >= MAX_FILES || st->line < INT_MIN || st->line > INT_MAX ||
	    st->column > UINT16_MAX || st->isa > UINT8_MAX)
		return false;
	if (ember_array_grow(&t->rows, cap, t->n_rows + 1, sizeof(*t->rows)))
		return false;
	t->rows[t->n_rows++] = (struct ember_line_row){
		.addr = st->addr,
		.line = (int32_t)st->line,
		.column = (uint16_t)st->column,
		.file = end ? EMBER_LINE_END : (uint16_t)st->file,
	};
	return true;
}

/* The line program proper.  False on anything refused. */
static bool run_program(const struct header *h, unsigned addr_size, struct ember_line_table *t)
{
	struct cur c = {h->program, h->end, false};
	struct state st;
	size_t cap = 0;

	reset(&st);
	while (c.p < c.end) {
		unsigned op = *c.p++;
		uint64_t u;
		if (op >= h->opcode_base) {
			if (h->line_range == 0)
				return false;
			st.line += h->line_base + (int)((op - h->opcode_base) % h->line_range);
			st.addr += (uint32_t)(h->min_inst * ((op - h->opcode_base) / h->line_range));
			if (!emit(t, &cap, &st, false))
				return false;
			continue;
		}
		if (op == 0) { /* extended */
			if (c.end - c.p < 2 || (*c.p & 0x80))
				return false;
			unsigned len = *c.p++;
			if ((size_t)(c.end - c.p) < len || len == 0)
				return false;
			const uint8_t *next = c.p + len;
			switch (*c.p++) {
			case DW_LNE_end_sequence:
				if (!emit(t, &cap, &st, true))
					return false;
				reset(&st);
				break;
			case DW_LNE_set_address:
				if (len != addr_size + 1 || (addr_size != 4 && addr_size != 8))
					return false;
				st.addr = rd(&c, (int)addr_size);
				break;
			case DW_LNE_set_discriminator:
				if (h->opcode_base <= DW_LNE_set_discriminator ||
				    h->std_len[DW_LNE_set_discriminator] != 1)
					return false; /* libdw checks this (odd) length */
				uleb(&c);
				break;
			default: /* DW_LNE_define_file, vendor opcodes */
				return false;
			}
			if (c.bad || c.p != next)
				return false;
			continue;
		}
		/* standard opcodes: libdw checks each one's declared operand count */
		static const uint8_t operands[] = {
			[DW_LNS_copy] = 0, [DW_LNS_advance_pc] = 1, [DW_LNS_advance_line] = 1,
			[DW_LNS_set_file] = 1, [DW_LNS_set_column] = 1, [DW_LNS_negate_stmt] = 0,
			[DW_LNS_set_basic_block] = 0, [DW_LNS_const_add_pc] = 0,
			[DW_LNS_fixed_advance_pc] = 1, [DW_LNS_set_prologue_end] = 0,
			[DW_LNS_set_epilogue_begin] = 0, [DW_LNS_set_isa] = 1,
		};
		if (op > DW_LNS_set_isa) { /* unknown: skip its ULEB128 operands */
			for (int n = h->std_len[op]; n > 0; n--)
				uleb(&c);
			if (c.bad)
				return false;
			continue;
		}
		if (h->std_len[op] != operands[op])
			return false;
		switch (op) {
		case DW_LNS_copy:
			if (!emit(t, &cap, &st, false))
				return false;
			break;
		case DW_LNS_advance_pc:
			u = uleb(&c);
			if (u > UINT32_MAX)
				return false;
			st.addr += (uint32_t)(h->min_inst * (uint32_t)u);
			break;
		case DW_LNS_advance_line: {
			int64_t s = sleb(&c);
			if (s < INT_MIN || s > INT_MAX)
				return false;
			st.line += s;
			break;
		}
		case DW_LNS_set_file:
		case DW_LNS_set_column:
		case DW_LNS_set_isa:
			u = uleb(&c);
			if (u > UINT32_MAX)
				return false;
			if (op == DW_LNS_set_file)
				st.file = (uint32_t)u;
			else if (op == DW_LNS_set_column)
				st.column = (uint32_t)u;
			else
				st.isa = (uint32_t)u;
			break;
		case DW_LNS_const_add_pc:
			if (h->line_range == 0)
				return false;
			st.addr += (uint32_t)(h->min_inst * ((255 - h->opcode_base) / h->line_range));
			break;
		case DW_LNS_fixed_advance_pc:
			st.addr += rd(&c, 2);
			break;
		default: /* negate_stmt, basic_block, prologue_end, epilogue_begin: not kept */
			break;
		}
		if (c.bad)
			return false;
	}
	return true;
}

int ember_line_table_read(const struct ember_line_sections *s, uint64_t off,
			  unsigned addr_size, const char *comp_dir, struct ember_line_table *t)
{
	struct names nm = {0};
	struct header h;

	memset(t, 0, sizeof(*t));
	if (!s->line || off >= s->line_size)
		return -1;
	struct cur c = {s->line + off, s->line + s->line_size, false};
	if (!read_header(&c, addr_size, &h))
		return -1;
	bool ok = h.version < 5 ? read_files_v4(&c, comp_dir, &nm) : read_files_v5(&c, &h, s, &nm);
	ok = ok && !c.bad && c.p == h.program && (nm.n == 0 || (t->files = malloc(nm.n * sizeof(char *))));
	ok = ok && run_program(&h, addr_size, t) && order_rows(t);
	if (!ok) {
		free(nm.buf);
		free(nm.off);
		free(nm.ptr);
		ember_line_table_free(t);
		return -1;
	}
	t->names = nm.buf;
	t->n_files = nm.n;
	for (size_t i = 0; i < nm.n; i++)
		t->files[i] = nm.off[i] == SIZE_MAX ? nm.ptr[i] : nm.buf + nm.off[i];
	free(nm.off);
	free(nm.ptr);
	/* libdw marks the last row an end of sequence, whatever the program says */
	if (t->n_seqs) {
		const struct ember_line_seq *last = &t->seqs[t->n_seqs - 1];
		t->rows[last->start + last->n - 1].file = EMBER_LINE_END;
	}
	return 0;
}

const struct ember_line_row *ember_line_table_find(const struct ember_line_table *t, uint64_t pc)
{
	/*
	 * dwarf_getsrc_die's search: the last row at or below pc in the sorted
	 * rows, here the last such row of the last sequence starting at or
	 * below pc.
	 */
	size_t lo = 0, hi = t->n_seqs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->rows[t->seqs[mid].start].addr <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct ember_line_row *r = t->rows + t->seqs[lo - 1].start;
	size_t l = 0, u = t->seqs[lo - 1].n - 1;
	while (l < u) {
		size_t mid = u - (u - l) / 2;
		if (pc < r[mid].addr)
			u = mid - 1;
		else
			l = mid;
	}
	return r[l].file != EMBER_LINE_END ? &r[l] : NULL;
}

void ember_line_table_free(struct ember_line_table *t)
{
	free(t->rows);
	free(t->seqs);
	free(t->files);
	free(t->names);
	memset(t, 0, sizeof(*t));
}
