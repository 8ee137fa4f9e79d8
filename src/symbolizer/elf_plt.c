/*
 * elf_plt.c - PLT stub names from the stubs' own code (see elf_plt.h).
 *
 * As binutils does (elf_x86_64_get_synthetic_symtab), each stub is
 * decoded rather than its position assumed, so one reader covers every
 * layout GNU ld produces:
 *
 *   .plt      lazy binding, 16-byte entries after PLT0:
 *               jmp *GOT(%rip); push $i; jmp PLT0
 *   .plt.sec  with IBT (-fcf-protection, -z ibtplt), the stubs calls go to:
 *               endbr64; bnd jmp *GOT(%rip); nop
 *             (the lazy .plt entries then only push and jump to PLT0, and
 *             are left unnamed, as objdump leaves them)
 *   .plt.got  functions called and also taken by address (8 bytes:
 *               jmp *GOT(%rip); xchg %ax,%ax, or 16 with endbr64)
 *   .plt.bnd  MPX: bnd jmp *GOT(%rip)
 *
 * -z now changes none of this (the GOT slots are filled at load time).
 * The jump's GOT slot is then looked up among the dynamic relocations:
 * R_X86_64_JUMP_SLOT (.rela.plt) and R_X86_64_GLOB_DAT (.rela.dyn, for
 * .plt.got); the relocation's symbol names the stub.  PLT0 jumps through
 * a slot with no relocation and stays unnamed.
 */
#include "symbolizer/elf_plt.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"

#ifndef R_X86_64_GLOB_DAT
#define R_X86_64_GLOB_DAT 6
#endif
#ifndef R_X86_64_JUMP_SLOT
#define R_X86_64_JUMP_SLOT 7
#endif

#define MAX_RELOCS (1u << 20)
#define MAX_STUBS (1u << 20)
#define MAX_NAME 4096

struct got_reloc {
	uint64_t slot;   /* r_offset: the GOT slot */
	uint32_t sym;    /* index in the symbol table */
	size_t symtab;   /* section index of that table */
};

struct relocs {
	struct got_reloc *r;
	size_t n, cap;
};

static int cmp_reloc(const void *a, const void *b)
{
	const struct got_reloc *x = a, *y = b;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int add_reloc(struct relocs *rs, uint64_t slot, uint32_t sym, size_t symtab)
{
	if (rs->n >= MAX_RELOCS)
		return -E2BIG;
	if (ember_array_grow(&rs->r, &rs->cap, rs->n + 1, sizeof(*rs->r)))
		return -ENOMEM;
	rs->r[rs->n++] = (struct got_reloc){slot, sym, symtab};
	return 0;
}

/* JUMP_SLOT and GLOB_DAT relocations of every dynamic relocation section. */
static int read_relocs(Elf *elf, struct relocs *rs)
{
	Elf_Scn *scn = NULL;
	int err = 0;

	while (!err && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh, link_sh;
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_RELA && sh.sh_type != SHT_REL))
			continue;
		Elf_Scn *link = elf_getscn(elf, sh.sh_link);
		if (!link || !gelf_getshdr(link, &link_sh) || link_sh.sh_type != SHT_DYNSYM)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t ent = gelf_fsize(elf, sh.sh_type == SHT_RELA ? ELF_T_RELA : ELF_T_REL, 1,
					EV_CURRENT);
		if (!d || !ent)
			continue;
		size_t count = d->d_size / ent;
		for (size_t i = 0; i < count && i < MAX_RELOCS && !err; i++) {
			GElf_Rela r;
			GElf_Rel rel;
			if (sh.sh_type == SHT_RELA) {
				if (!gelf_getrela(d, (int)i, &r))
					break;
			} else {
				if (!gelf_getrel(d, (int)i, &rel))
					break;
				r.r_offset = rel.r_offset;
				r.r_info = rel.r_info;
			}
			uint32_t type = (uint32_t)GELF_R_TYPE(r.r_info);
			uint32_t sym = (uint32_t)GELF_R_SYM(r.r_info);
			if ((type == R_X86_64_JUMP_SLOT || type == R_X86_64_GLOB_DAT) && sym != 0)
				err = add_reloc(rs, r.r_offset, sym, sh.sh_link);
		}
	}
	if (!err && rs->n > 1)
		qsort(rs->r, rs->n, sizeof(*rs->r), cmp_reloc);
	return err == -E2BIG ? 0 : err;
}

static const struct got_reloc *find_reloc(const struct relocs *rs, uint64_t slot)
{
	size_t lo = 0, hi = rs->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rs->r[mid].slot < slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < rs->n && rs->r[lo].slot == slot ? &rs->r[lo] : NULL;
}

static int32_t rd32s(const uint8_t *p)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		     (uint32_t)p[3] << 24;
	return (int32_t)v;
}

/*
 * The GOT slot an entry of `len` bytes at `addr` jumps through: an
 * indirect jmp (ff 25 disp32, optionally bnd-prefixed f2) at its start or
 * right after an endbr64 (f3 0f 1e fa).  False when it has none.
 */
static bool stub_slot(const uint8_t *p, size_t len, uint64_t addr, uint64_t *slot)
{
	static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
	size_t at = 0;

	if (len >= 4 && memcmp(p, endbr64, 4) == 0)
		at = 4;
	if (at < len && p[at] == 0xf2) /* bnd prefix */
		at++;
	if (at + 6 > len || p[at] != 0xff || p[at + 1] != 0x25)
		return false;
	*slot = addr + at + 6 + (uint64_t)(int64_t)rd32s(p + at + 2);
	return true;
}

static bool is_plt_section(const char *name)
{
	return name && (!strcmp(name, ".plt") || !strcmp(name, ".plt.sec") ||
			!strcmp(name, ".plt.got") || !strcmp(name, ".plt.bnd"));
}

/* The name of symbol `sym` of symbol table section `symtab`, or NULL. */
static const char *sym_name(Elf *elf, size_t symtab, uint32_t sym)
{
	Elf_Scn *scn = elf_getscn(elf, symtab);
	GElf_Shdr sh;
	GElf_Sym s;

	if (!scn || !gelf_getshdr(scn, &sh))
		return NULL;
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d || sym > INT32_MAX || !gelf_getsym(d, (int)sym, &s) || s.st_name == 0)
		return NULL;
	return elf_strptr(elf, sh.sh_link, s.st_name);
}

static int name_stubs(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const struct relocs *rs,
		      ember_plt_fn fn, void *arg)
{
	char name[MAX_NAME + 8];
	Elf_Data *d = elf_getdata(scn, NULL);
	/* .plt.got without IBT has 8-byte entries; everything else 16 */
	size_t ent = sh->sh_entsize == 8 || sh->sh_entsize == 16 ? sh->sh_entsize : 16;

	if (!d || !d->d_buf || d->d_size < ent)
		return 0;
	for (size_t i = 0; i < d->d_size / ent && i < MAX_STUBS; i++) {
		uint64_t addr = sh->sh_addr + i * ent, slot;
		if (!stub_slot((const uint8_t *)d->d_buf + i * ent, ent, addr, &slot))
			continue;
		const struct got_reloc *r = find_reloc(rs, slot);
		const char *fname = r ? sym_name(elf, r->symtab, r->sym) : NULL;
		size_t len = fname ? strnlen(fname, MAX_NAME + 1) : 0;
		if (len == 0 || len > MAX_NAME)
			continue;
		memcpy(name, fname, len);
		memcpy(name + len, "@plt", 5);
		int rc = fn(arg, addr, ent, name);
		if (rc)
			return rc;
	}
	return 0;
}

int ember_elf_plt_symbols(Elf *elf, ember_plt_fn fn, void *arg)
{
	struct relocs rs = {0};
	GElf_Ehdr eh;
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	int rc;

	if (!gelf_getehdr(elf, &eh) || eh.e_machine != EM_X86_64 ||
	    elf_getshdrstrndx(elf, &shstrndx) != 0)
		return 0;
	rc = read_relocs(elf, &rs);
	while (!rc && rs.n && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR) ||
		    !is_plt_section(elf_strptr(elf, shstrndx, sh.sh_name)))
			continue;
		rc = name_stubs(elf, scn, &sh, &rs, fn, arg);
	}
	free(rs.r);
	return rc;
}
