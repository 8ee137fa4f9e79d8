/*
 * unwind_oracle.c - unwind an ember_stack_snapshot with libunwind (tests only).
 *
 * The approach is libunwind's "remote" unwinding: libunwind never touches
 * the sampled process, it asks our accessors (unw_accessors_t) for every
 * byte and register it needs:
 *
 *  - access_reg: ip, sp and bp come from the snapshot.  Any other register
 *    is unknown (the BPF program does not capture it); asking for one marks
 *    the unwind ORACLE_NO_REGISTER.
 *  - access_mem: an address in [sp, sp + stack_len) is read from the stack
 *    copy; an address inside a read-only PT_LOAD segment of one of the
 *    mapped ELF files (code, .rodata, .eh_frame, .eh_frame_hdr) is read
 *    from the file itself, which is identical to memory there.  A stack
 *    address above the copy marks the unwind ORACLE_SHORT_COPY
 *    (undecidable); anything else is an error.  Writable segments are never
 *    read from the file: their contents in the process may differ.
 *  - find_proc_info: the mapping holding ip gives the ELF file and its load
 *    bias; the file's PT_GNU_EH_FRAME segment (.eh_frame_hdr) holds a
 *    sorted table of (initial location, FDE) pairs.  We describe that
 *    table as a unw_dyn_info_t of format UNW_INFO_FORMAT_REMOTE_TABLE (its
 *    run-time address, length, and .eh_frame_hdr's address as the base of
 *    its data-relative offsets) and let libunwind's own
 *    dwarf_search_unwind_table() binary-search it through access_mem and
 *    decode the FDE and CIE.
 *
 * ELF files are mapped read-only once and cached per path (revalidated
 * with stat) until oracle_release().  "[vdso]" is served from this
 * process's own vDSO, the same image on the same kernel.  Not thread-safe: tests call it from
 * one thread.  Caching inside libunwind is off, as the same addresses mean
 * different code in different processes.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libunwind.h>

#include "unwind_oracle.h"

/* libunwind exports this (as _Ux86_64_dwarf_search_unwind_table) but its
 * public headers do not declare it. */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
					      unw_dyn_info_t *di, unw_proc_info_t *pi,
					      int need_unwind_info, void *arg);

/* Reads this far above the copy still count as "stack beyond the copy". */
#define ORACLE_STACK_SLACK (64ull << 20)
#define ORACLE_PAGE 4096ull
#define DW_EH_PE_omit 0xff
#define DW_EH_PE_datarel_sdata4 0x3b

/* One ELF file, mapped read-only, with what find_proc_info needs. */
struct oracle_elf {
	struct oracle_elf *next;
	const char *path;
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	const uint8_t *data; /* the whole file */
	size_t len;
	const Elf64_Phdr *phdr;
	size_t phnum;
	bool has_table;       /* .eh_frame_hdr with a binary-search table */
	uint64_t hdr_vaddr;   /* .eh_frame_hdr, as an ELF virtual address */
	uint64_t table_vaddr; /* its search table */
	uint64_t fde_count;
};

static struct oracle_elf *elf_cache;

/* A mapping of the process, resolved to its file and load bias. */
struct oracle_module {
	const struct oracle_elf *elf;
	uint64_t start, end, bias; /* run-time address = ELF vaddr + bias */
};

/* Run-time addresses [start, end) whose bytes are file bytes from data on. */
struct oracle_region {
	uint64_t start, end;
	const uint8_t *data;
	size_t avail; /* bytes readable from data (to the end of the file) */
};

/* Everything one oracle_unwind() call needs; the accessors' "arg". */
struct oracle_ctx {
	const struct ember_stack_snapshot *snap;
	struct oracle_module *mods;
	size_t n_mods;
	struct oracle_region *regions;
	size_t n_regions;
	bool short_copy;  /* wanted stack bytes above the copy */
	bool no_register; /* wanted a register other than ip/sp/bp */
};

/* ---- ELF files ---- */

/* Size in bytes of a DW_EH_PE-encoded value, or 0 when unsupported. */
static size_t eh_pe_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case 0x00: return 8; /* absptr */
	case 0x02: case 0x0a: return 2;
	case 0x03: case 0x0b: return 4;
	case 0x04: case 0x0c: return 8;
	default: return 0;   /* uleb128/sleb128: never used in .eh_frame_hdr */
	}
}

static uint64_t read_le(const uint8_t *p, size_t size)
{
	uint64_t v = 0;

	for (size_t i = size; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* Find the binary-search table in PT_GNU_EH_FRAME; leaves has_table false if absent or odd. */
static void parse_eh_frame_hdr(struct oracle_elf *elf)
{
	for (size_t i = 0; i < elf->phnum; i++) {
		const Elf64_Phdr *ph = &elf->phdr[i];

		if (ph->p_type != PT_GNU_EH_FRAME)
			continue;
		if (ph->p_offset > elf->len || ph->p_filesz > elf->len - ph->p_offset ||
		    ph->p_filesz < 4)
			return;
		const uint8_t *hdr = elf->data + ph->p_offset;
		size_t ptr_size = hdr[1] == DW_EH_PE_omit ? 0 : eh_pe_size(hdr[1]);
		size_t count_size = eh_pe_size(hdr[2]);

		if (hdr[0] != 1 || hdr[2] == DW_EH_PE_omit || hdr[3] != DW_EH_PE_datarel_sdata4 ||
		    (hdr[1] != DW_EH_PE_omit && ptr_size == 0) || count_size == 0)
			return;
		size_t pos = 4 + ptr_size;
		if (pos + count_size > ph->p_filesz)
			return;
		uint64_t count = read_le(hdr + pos, count_size);
		pos += count_size;
		if (count > (ph->p_filesz - pos) / 8)
			return;
		elf->has_table = true;
		elf->hdr_vaddr = ph->p_vaddr;
		elf->table_vaddr = ph->p_vaddr + pos;
		elf->fde_count = count;
		return;
	}
}

/* Check the ELF header and locate the program headers.  Returns 0 or -ENOEXEC. */
static int parse_elf(struct oracle_elf *elf)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf->data;

	if (elf->len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff % 8 != 0 || eh->e_phoff > elf->len ||
	    eh->e_phnum > (elf->len - eh->e_phoff) / sizeof(Elf64_Phdr))
		return -ENOEXEC;
	elf->phdr = (const Elf64_Phdr *)(elf->data + eh->e_phoff);
	elf->phnum = eh->e_phnum;
	parse_eh_frame_hdr(elf);
	return 0;
}

static void elf_unmap(struct oracle_elf *elf)
{
	if (elf->data)
		munmap((void *)elf->data, elf->len);
	elf->data = NULL;
	elf->len = 0;
	elf->phdr = NULL;
	elf->phnum = 0;
	elf->has_table = false;
}

/* Map the file at elf->path into elf.  Returns 0 or -errno. */
static int elf_map(struct oracle_elf *elf)
{
	int fd = open(elf->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	void *p;
	int err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		return -ENOEXEC;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	err = errno;
	close(fd);
	if (p == MAP_FAILED)
		return -err;
	elf->data = p;
	elf->len = (size_t)st.st_size;
	elf->dev = st.st_dev;
	elf->ino = st.st_ino;
	elf->mtime = st.st_mtim;
	err = parse_elf(elf);
	if (err)
		elf_unmap(elf);
	return err;
}

/*
 * "[vdso]" has no file, but the kernel maps the same vDSO image into every
 * 64-bit process, so this process's copy stands in for the sampled one's.
 */
static const struct oracle_elf *vdso_get(void)
{
	static struct oracle_elf vdso;
	static bool tried;
	const uint8_t *image = (const uint8_t *)getauxval(AT_SYSINFO_EHDR);

	if (tried || !image)
		return vdso.phdr ? &vdso : NULL;
	tried = true;
	vdso.path = "[vdso]";
	vdso.data = image;
	vdso.len = ORACLE_PAGE; /* the headers fit in the first page; then the real size */
	if (parse_elf(&vdso) < 0)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < vdso.phnum; i++)
		if (vdso.phdr[i].p_type == PT_LOAD && vdso.phdr[i].p_offset + vdso.phdr[i].p_filesz > len)
			len = vdso.phdr[i].p_offset + vdso.phdr[i].p_filesz;
	vdso.len = len;
	vdso.has_table = false;
	if (len == 0 || parse_elf(&vdso) < 0)
		vdso.phdr = NULL;
	return vdso.phdr ? &vdso : NULL;
}

/* The cached ELF file at path (re-read if the file changed), or NULL. */
static const struct oracle_elf *elf_get(const char *path)
{
	struct oracle_elf *elf;
	struct stat st;

	if (path && strcmp(path, "[vdso]") == 0)
		return vdso_get();
	if (!path || stat(path, &st) < 0)
		return NULL;
	for (elf = elf_cache; elf; elf = elf->next)
		if (strcmp(elf->path, path) == 0)
			break;
	if (elf && elf->data && elf->dev == st.st_dev && elf->ino == st.st_ino &&
	    (size_t)st.st_size == elf->len && elf->mtime.tv_sec == st.st_mtim.tv_sec &&
	    elf->mtime.tv_nsec == st.st_mtim.tv_nsec)
		return elf;
	if (!elf) {
		elf = calloc(1, sizeof(*elf));
		if (!elf || !(elf->path = strdup(path))) {
			free(elf);
			return NULL;
		}
		elf->next = elf_cache;
		elf_cache = elf;
	}
	elf_unmap(elf);
	return elf_map(elf) == 0 ? elf : NULL;
}

void oracle_release(void)
{
	while (elf_cache) {
		struct oracle_elf *next = elf_cache->next;

		elf_unmap(elf_cache);
		free((char *)elf_cache->path);
		free(elf_cache);
		elf_cache = next;
	}
}

/* ---- the process's address space, as seen through the snapshot ---- */

/*
 * Load bias of the file mapped by m: the PT_LOAD segment holding file
 * offset m->pgoff (an executable one when two share the page) was mapped
 * with its file offset o at m->start + (o - m->pgoff).
 */
static int mapping_bias(const struct oracle_elf *elf, const struct oracle_mapping *m,
			uint64_t *bias)
{
	const Elf64_Phdr *seg = NULL;

	for (size_t i = 0; i < elf->phnum; i++) {
		const Elf64_Phdr *ph = &elf->phdr[i];

		if (ph->p_type != PT_LOAD || ph->p_offset > elf->len ||
		    ph->p_filesz > elf->len - ph->p_offset ||
		    m->pgoff < (ph->p_offset & ~(ORACLE_PAGE - 1)) ||
		    m->pgoff >= ph->p_offset + ph->p_filesz)
			continue;
		if (!seg || (ph->p_flags & PF_X))
			seg = ph;
		if (ph->p_flags & PF_X)
			break;
	}
	if (!seg)
		return -ENOENT;
	*bias = m->start - m->pgoff + seg->p_offset - seg->p_vaddr;
	return 0;
}

static bool region_known(const struct oracle_ctx *ctx, const struct oracle_module *mod)
{
	for (const struct oracle_module *o = ctx->mods; o < mod; o++)
		if (o->elf == mod->elf && o->bias == mod->bias)
			return true;
	return false;
}

/* Resolve every mapping to (file, bias) and list the read-only segments. */
static int build_ctx(struct oracle_ctx *ctx, const struct oracle_mapping *maps, size_t n_maps)
{
	size_t n_regions = 0;

	ctx->mods = calloc(n_maps ? n_maps : 1, sizeof(*ctx->mods));
	if (!ctx->mods)
		return -ENOMEM;
	for (size_t i = 0; i < n_maps; i++) {
		struct oracle_module *mod = &ctx->mods[ctx->n_mods];

		if (maps[i].end <= maps[i].start || !(mod->elf = elf_get(maps[i].path)) ||
		    mapping_bias(mod->elf, &maps[i], &mod->bias) < 0)
			continue; /* unreadable or foreign: frames there end the unwind */
		mod->start = maps[i].start;
		mod->end = maps[i].end;
		ctx->n_mods++;
		n_regions += mod->elf->phnum;
	}
	ctx->regions = calloc(n_regions ? n_regions : 1, sizeof(*ctx->regions));
	if (!ctx->regions)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->n_mods; i++) {
		const struct oracle_module *mod = &ctx->mods[i];
		const struct oracle_elf *elf = mod->elf;

		if (region_known(ctx, mod))
			continue;
		for (size_t j = 0; j < elf->phnum; j++) {
			const Elf64_Phdr *ph = &elf->phdr[j];
			struct oracle_region *r = &ctx->regions[ctx->n_regions];

			/*
			 * Writable segments too: libunwind parses a CIE's personality
			 * pointer (often indirect, through a GOT slot) even though it
			 * never uses it to unwind.  The file's bytes there differ from
			 * the relocated ones in memory, which only that pointer sees.
			 */
			if (ph->p_type != PT_LOAD || ph->p_filesz == 0 || ph->p_offset >= elf->len)
				continue;
			r->start = ph->p_vaddr + mod->bias;
			r->avail = elf->len - ph->p_offset;
			r->end = r->start + (ph->p_filesz < r->avail ? ph->p_filesz : r->avail);
			r->data = elf->data + ph->p_offset;
			ctx->n_regions++;
		}
	}
	return 0;
}

static const struct oracle_module *find_module(const struct oracle_ctx *ctx, uint64_t addr)
{
	for (size_t i = 0; i < ctx->n_mods; i++)
		if (addr >= ctx->mods[i].start && addr < ctx->mods[i].end)
			return &ctx->mods[i];
	return NULL;
}

static bool read_stack(const struct oracle_ctx *ctx, uint64_t addr, unw_word_t *val)
{
	uint64_t sp = ctx->snap->sp, len = ctx->snap->stack_len;

	if (addr < sp || addr - sp > len || len - (addr - sp) < sizeof(*val))
		return false;
	memcpy(val, ctx->snap->stack + (addr - sp), sizeof(*val));
	return true;
}

static bool read_file(const struct oracle_ctx *ctx, uint64_t addr, unw_word_t *val)
{
	for (size_t i = 0; i < ctx->n_regions; i++) {
		const struct oracle_region *r = &ctx->regions[i];

		if (addr < r->start || addr >= r->end)
			continue;
		if (r->avail - (addr - r->start) < sizeof(*val))
			return false;
		memcpy(val, r->data + (addr - r->start), sizeof(*val));
		return true;
	}
	return false;
}

/* ---- libunwind accessors ---- */

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
			  void *arg)
{
	struct oracle_ctx *ctx = arg;
	uint64_t sp = ctx->snap->sp;

	if (write)
		return -UNW_EINVAL;
	if (read_stack(ctx, addr, val) || read_file(ctx, addr, val))
		return 0;
	if (addr >= sp && addr - sp < (uint64_t)ctx->snap->stack_len + ORACLE_STACK_SLACK)
		ctx->short_copy = true;
	return -UNW_EINVAL;
}

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
			  void *arg)
{
	struct oracle_ctx *ctx = arg;

	if (write)
		return -UNW_EREADONLYREG;
	switch (reg) {
	case UNW_X86_64_RIP: *val = ctx->snap->ip; return 0;
	case UNW_X86_64_RSP: *val = ctx->snap->sp; return 0;
	case UNW_X86_64_RBP: *val = ctx->snap->bp; return 0;
	default:
		ctx->no_register = true;
		return -UNW_EBADREG;
	}
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
			    void *arg)
{
	return -UNW_EBADREG;
}

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
			      int need_unwind_info, void *arg)
{
	struct oracle_ctx *ctx = arg;
	const struct oracle_module *mod = find_module(ctx, ip);
	unw_dyn_info_t di;

	if (!mod)
		return -UNW_EINVAL; /* not code we know: a bogus frame, not "no CFI here" */
	if (!mod->elf->has_table)
		return -UNW_ENOINFO;
	memset(&di, 0, sizeof(di));
	di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
	di.start_ip = mod->start;
	di.end_ip = mod->end;
	di.u.rti.segbase = mod->elf->hdr_vaddr + mod->bias;
	di.u.rti.table_data = mod->elf->table_vaddr + mod->bias;
	di.u.rti.table_len = mod->elf->fde_count * 8 / sizeof(unw_word_t);
	return UNW_OBJ(dwarf_search_unwind_table)(as, ip, &di, pi, need_unwind_info, arg);
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
	/* libunwind frees what dwarf_search_unwind_table allocated */
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
	return -UNW_ENOINFO; /* no JIT-registered unwind info */
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *cursor, void *arg)
{
	return -UNW_EINVAL;
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
			     unw_word_t *off, void *arg)
{
	return -UNW_EINVAL;
}

static unw_accessors_t oracle_accessors = {
	.find_proc_info = acc_find_proc_info,
	.put_unwind_info = acc_put_unwind_info,
	.get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
	.access_mem = acc_access_mem,
	.access_reg = acc_access_reg,
	.access_fpreg = acc_access_fpreg,
	.resume = acc_resume,
	.get_proc_name = acc_get_proc_name,
};

/* ---- unwinding and comparing ---- */

static int failure_status(const struct oracle_ctx *ctx)
{
	if (ctx->short_copy)
		return ORACLE_SHORT_COPY;
	if (ctx->no_register)
		return ORACLE_NO_REGISTER;
	return ORACLE_ERROR;
}

/* Step the cursor to the end, recording pcs.  Returns the oracle_status. */
static int walk(unw_cursor_t *cursor, struct oracle_ctx *ctx, uint64_t *pcs, size_t max,
		size_t *n)
{
	for (;;) {
		unw_word_t pc;

		if (unw_get_reg(cursor, UNW_REG_IP, &pc) < 0)
			return ORACLE_ERROR;
		if (*n == max)
			return ORACLE_MAX_DEPTH;
		pcs[(*n)++] = pc;
		ctx->short_copy = ctx->no_register = false;
		int ret = unw_step(cursor);
		if (ret == 0)
			return ORACLE_ROOT;
		if (ret < 0)
			return failure_status(ctx);
	}
}

int oracle_unwind(const struct ember_stack_snapshot *snap, const struct oracle_mapping *maps,
		  size_t n_maps, uint64_t *pcs_out, size_t max, size_t *n_out, int *status_out)
{
	struct oracle_ctx ctx = { .snap = snap };
	unw_addr_space_t as = NULL;
	unw_cursor_t cursor;
	int err;

	if (!snap || (!maps && n_maps) || !pcs_out || !max || !n_out || !status_out ||
	    snap->stack_len > EMBER_SNAPSHOT_STACK)
		return -EINVAL;
	*n_out = 0;
	*status_out = ORACLE_ERROR;
	err = build_ctx(&ctx, maps, n_maps);
	if (err)
		goto out;
	as = unw_create_addr_space(&oracle_accessors, 0);
	if (!as) {
		err = -ENOMEM;
		goto out;
	}
	unw_set_caching_policy(as, UNW_CACHE_NONE);
	if (unw_init_remote(&cursor, as, &ctx) < 0)
		*status_out = failure_status(&ctx);
	else
		*status_out = walk(&cursor, &ctx, pcs_out, max, n_out);
out:
	if (as)
		unw_destroy_addr_space(as);
	free(ctx.mods);
	free(ctx.regions);
	return err;
}

static bool oracle_lacked_data(int status)
{
	return status == ORACLE_SHORT_COPY || status == ORACLE_NO_REGISTER;
}

int oracle_compare(const uint64_t *ember, size_t n_ember, uint32_t ember_flags,
		   const uint64_t *oracle, size_t n_oracle, int oracle_status,
		   enum oracle_verdict *verdict, size_t *frame)
{
	size_t common = n_ember < n_oracle ? n_ember : n_oracle;

	if ((!ember && n_ember) || (!oracle && n_oracle) || !verdict || !frame)
		return -EINVAL;
	for (size_t i = 0; i < common; i++) {
		if (ember[i] != oracle[i]) {
			*verdict = ORACLE_DISAGREE;
			*frame = i;
			return 0;
		}
	}
	*frame = common;
	if (n_ember == n_oracle) {
		bool ember_whole = !(ember_flags & (EMBER_STACK_TRUNCATED | EMBER_STACK_READ_FAULT));

		*verdict = oracle_lacked_data(oracle_status) && !ember_whole ? ORACLE_UNDECIDABLE
									   : ORACLE_AGREE;
	} else if (n_ember < n_oracle) {
		*verdict = (ember_flags & EMBER_STACK_TRUNCATED) ? ORACLE_AGREE : ORACLE_DISAGREE;
	} else {
		*verdict = oracle_lacked_data(oracle_status) || oracle_status == ORACLE_MAX_DEPTH
				   ? ORACLE_UNDECIDABLE
				   : ORACLE_DISAGREE;
	}
	return 0;
}

const char *oracle_status_name(int status)
{
	switch (status) {
	case ORACLE_ROOT: return "root";
	case ORACLE_SHORT_COPY: return "short-copy";
	case ORACLE_NO_REGISTER: return "no-register";
	case ORACLE_MAX_DEPTH: return "max-depth";
	case ORACLE_ERROR: return "error";
	default: return "?";
	}
}

const char *oracle_verdict_name(enum oracle_verdict verdict)
{
	switch (verdict) {
	case ORACLE_AGREE: return "agree";
	case ORACLE_DISAGREE: return "disagree";
	case ORACLE_UNDECIDABLE: return "undecidable";
	default: return "?";
	}
}
