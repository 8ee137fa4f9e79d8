/*
 * cfi_read.c - bounds-checked reads from CFI sections, and DW_EH_PE pointer decoding.
 *
 * Every byte of .eh_frame/.debug_frame is untrusted: each read goes through
 * a cursor that stops at its end, returns 0 and sets an error flag, so a
 * parser can read a whole record and check once.  Values are little-endian
 * (x86_64 only).
 *
 * Pointer encodings (LSB Core, "DWARF Extensions"): the low nibble is the
 * number format, bits 4-6 what it is relative to, bit 7 "indirect" (the
 * value is the address of the real pointer).  0xff means omitted.
 */
#include <string.h>

#include "ehframe/cfi.h"

uint16_t cfi_u16(struct cfi_cursor *c)
{
	uint16_t v;

	if (!cfi_have(c, 2))
		return 0;
	memcpy(&v, c->p, 2);
	c->p += 2;
	return v;
}

uint32_t cfi_u32(struct cfi_cursor *c)
{
	uint32_t v;

	if (!cfi_have(c, 4))
		return 0;
	memcpy(&v, c->p, 4);
	c->p += 4;
	return v;
}

uint64_t cfi_u64(struct cfi_cursor *c)
{
	uint64_t v;

	if (!cfi_have(c, 8))
		return 0;
	memcpy(&v, c->p, 8);
	c->p += 8;
	return v;
}

/* Bits beyond 64 of an over-long LEB128 are dropped, not an error. */
uint64_t cfi_uleb_slow(struct cfi_cursor *c)
{
	uint64_t v = 0;
	unsigned shift = 0;

	for (;;) {
		if (!cfi_have(c, 1))
			return 0;
		uint8_t b = *c->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return v;
	}
}

int64_t cfi_sleb(struct cfi_cursor *c)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (!cfi_have(c, 1))
			return 0;
		b = *c->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~(uint64_t)0 << shift;
	return (int64_t)v;
}

void cfi_skip(struct cfi_cursor *c, uint64_t n)
{
	if (!cfi_have(c, n))
		return;
	c->p += n;
}

/* The number itself, per the low nibble of the encoding. */
static int read_format(struct cfi_cursor *c, uint8_t fmt, uint8_t addr_size, uint64_t *out)
{
	switch (fmt) {
	case 0x00: /* absptr */
	case 0x08: /* signed absptr */
		if (addr_size == 4)
			*out = fmt == 0x08 ? (uint64_t)(int64_t)(int32_t)cfi_u32(c) : cfi_u32(c);
		else if (addr_size == 8)
			*out = cfi_u64(c);
		else
			return -1;
		return 0;
	case 0x01: *out = cfi_uleb(c); return 0;
	case 0x02: *out = cfi_u16(c); return 0;
	case 0x03: *out = cfi_u32(c); return 0;
	case 0x04: *out = cfi_u64(c); return 0;
	case 0x09: *out = (uint64_t)cfi_sleb(c); return 0;
	case 0x0a: *out = (uint64_t)(int64_t)(int16_t)cfi_u16(c); return 0;
	case 0x0b: *out = (uint64_t)(int64_t)(int32_t)cfi_u32(c); return 0;
	case 0x0c: *out = cfi_u64(c); return 0;
	default: return -1;
	}
}

int cfi_read_pointer(struct cfi_cursor *c, const struct cfi_section *s, uint8_t enc,
		     uint8_t addr_size, enum cfi_ptr_mode mode, uint64_t *out, const char **why)
{
	uint64_t field = s->vaddr + cfi_off(c); /* run-time address of the field */
	uint64_t v = 0;

	*out = 0;
	if (enc == DW_EH_PE_omit) {
		if (mode == CFI_PTR_SKIP)
			return 0;
		*why = "pointer encoding 'omit' where a value is required";
		return -1;
	}
	if (mode == CFI_PTR_FORMAT)
		enc &= 0x0f;
	if ((enc & 0x70) == 0x50) { /* aligned: to the address size, at run time */
		uint64_t pad = (addr_size - (field & (addr_size - 1))) & (addr_size - 1);
		cfi_skip(c, pad);
		field += pad;
		if ((enc & 0x0f) != 0x00) {
			*why = "aligned pointer with a non-absptr format";
			return -1;
		}
	}
	if (read_format(c, enc & 0x0f, addr_size, &v)) {
		*why = "unknown pointer encoding";
		return -1;
	}
	if (c->err) {
		*why = "pointer runs past the end of its entry";
		return -1;
	}
	if (mode == CFI_PTR_SKIP)
		return 0;
	switch (enc & 0x70) {
	case 0x00: /* absptr */
	case 0x50: /* aligned */
		break;
	case 0x10: /* pcrel */
		v += field;
		break;
	case 0x20: /* textrel */
		if (!s->text_base) {
			*why = "textrel pointer without a known .text address";
			return -1;
		}
		v += s->text_base;
		break;
	case 0x30: /* datarel */
		if (!s->data_base) {
			*why = "datarel pointer without a known data base";
			return -1;
		}
		v += s->data_base;
		break;
	default: /* funcrel makes no sense for an FDE address; the rest is undefined */
		*why = "unsupported pointer application (funcrel or unknown)";
		return -1;
	}
	if (enc & DW_EH_PE_indirect) {
		if (!s->read_word || s->read_word(s->read_ctx, v, &v)) {
			*why = "indirect pointer that cannot be read";
			return -1;
		}
	}
	*out = v;
	return 0;
}
