/*
 * test_dwarf.c - DWARF symbolization (inline chains, file:line), separate
 * debug files, compressed sections and the address cache, checked against
 * llvm-symbolizer on C++ programs this test builds with g++ -O2 -g:
 *
 *   p5      -gdwarf-5                    p4     -gdwarf-4
 *   pz      -gdwarf-5 -gz=zlib           pzstd  p5 with zstd-compressed sections
 *   pd      p5 stripped of DWARF, .gnu_debuglink to pd.debug
 *   pbid    p5 stripped of DWARF, debug file under EMBER_DEBUG_DIR/.build-id/
 *   pbad    p5 stripped, .gnu_debuglink to a debug file with the wrong CRC
 *   pgarb   p5 with its .debug_info overwritten by garbage
 *
 * Addresses: every 7th byte of every function of p5 (several hundred).  For
 * each, Ember's chain (function, file, line, column per frame) must equal
 * `llvm-symbolizer --inlining --demangle`'s on >= 99% of the addresses;
 * disagreements are printed.  Names are compared after smoothing over the
 * two demanglers' spelling differences (LLVM's "(.cold)" for GNU's
 * "[clone .cold]", 'lambda' for {lambda#1}, spaces in "> >"), and a name
 * LLVM cannot demangle is demangled here.  LLVM 14 cannot read zstd
 * sections nor EMBER_DEBUG_DIR, so pzstd and pbid are compared with p5's
 * answers.
 */
#include "testutil.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/profile.h"
#include "symbolizer/dwarf.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"
#include "symbolizer/symcache.h"

extern char **environ;

static char dir[64];
static const char *llvm_symbolizer;
static bool have_zstd;

static const char prog_src[] =
	"#include <algorithm>\n"
	"#include <cstdio>\n"
	"#include <cstdlib>\n"
	"#include <map>\n"
	"#include <string>\n"
	"#include <vector>\n"
	"#include <unistd.h>\n"
	"namespace zoo {\n"
	"template <typename T> struct Acc {\n"
	"	T sum{};\n"
	"	void add(T v) { sum += v * 3 + v / 2; }\n"
	"};\n"
	"static inline int mix(int a, int b) { return (a * 31) ^ (b + 7); }\n"
	"static inline int twice(int a) { return mix(a, a) + mix(a + 1, a - 1); }\n"
	"template <typename T> __attribute__((noinline)) T reduce(const std::vector<T> &v)\n"
	"{\n"
	"	Acc<T> acc;\n"
	"	for (auto x : v)\n"
	"		acc.add(x);\n"
	"	return acc.sum;\n"
	"}\n"
	"class Shape {\n"
	"public:\n"
	"	virtual ~Shape() {}\n"
	"	virtual long area(int k) const = 0;\n"
	"};\n"
	"class Rect : public Shape {\n"
	"	int w, h;\n"
	"public:\n"
	"	Rect(int a, int b) : w(a), h(b) {}\n"
	"	long area(int k) const override { return (long)twice(w) * h + k; }\n"
	"};\n"
	"} // namespace zoo\n"
	"__attribute__((noinline)) static long work(int n)\n"
	"{\n"
	"	std::vector<int> v;\n"
	"	for (int i = 0; i < n; i++)\n"
	"		v.push_back(zoo::twice(i) % 1000);\n"
	"	std::sort(v.begin(), v.end(), [](int a, int b) { return zoo::mix(a, 1) < zoo::mix(b, 1); });\n"
	"	std::map<std::string, long> m;\n"
	"	for (int i = 0; i < 50; i++)\n"
	"		m[std::to_string(i % 13)] += v[i % v.size()];\n"
	"	long s = zoo::reduce(v);\n"
	"	zoo::Rect r(3, n);\n"
	"	const zoo::Shape *sh = &r;\n"
	"	s += sh->area(n);\n"
	"	for (auto &kv : m)\n"
	"		s += kv.second;\n"
	"	return s;\n"
	"}\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"	int n = argc > 1 ? atoi(argv[1]) : 100;\n"
	"	std::vector<double> d(n, 1.5);\n"
	"	printf(\"%ld %f\\n\", work(n), zoo::reduce(d));\n"
	"	fflush(stdout);\n"
	"	char c;\n"
	"	if (argc > 2)\n"
	"		while (read(0, &c, 1) > 0) {}\n"
	"	return 0;\n"
	"}\n";

/* ---- helpers ---- */

static void path_of(char *out, size_t size, const char *name);

/* Point EMBER_DEBUG_DIR at our build-id tree, or at an empty place. */
static void use_build_id_dir(bool on)
{
	char dd[128];

	path_of(dd, sizeof(dd), on ? "debug" : "no-debug-dir");
	setenv("EMBER_DEBUG_DIR", dd, 1);
}

static void path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static struct ember_elf *open_prog(const char *name)
{
	char path[256];
	struct ember_elf *e = NULL;

	path_of(path, sizeof(path), name);
	assert_int_equal(ember_elf_open(path, &e), 0);
	return e;
}

/* Overwrite the contents of section `name` in file path with garbage. */
static int scribble_section(const char *path, const char *name)
{
	int fd = open(path, O_RDWR);
	Elf *elf;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int rc = -1;

	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0) {
		while ((scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh))
				continue;
			const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
			if (!n || strcmp(n, name) != 0)
				continue;
			unsigned seed = 12345;
			for (uint64_t i = 16; i < sh.sh_size; i++) { /* keep the first unit header */
				seed = seed * 1103515245 + 12345;
				unsigned char b = (unsigned char)(seed >> 16);
				if (pwrite(fd, &b, 1, (off_t)(sh.sh_offset + i)) != 1)
					break;
			}
			rc = 0;
			break;
		}
	}
	elf_end(elf);
	close(fd);
	return rc;
}

static int setup(void **state)
{
	char src[128];

	snprintf(dir, sizeof(dir), "/tmp/ember-test-dwarf-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	path_of(src, sizeof(src), "prog.cpp");
	FILE *f = fopen(src, "w");
	if (!f || fputs(prog_src, f) < 0 || fclose(f) != 0)
		return -1;
	/* Three compiles in parallel, then the variants made from p5. */
	if (test_sh("cd %s && (g++ -O2 -g -gdwarf-5 -o p5 prog.cpp & g++ -O2 -g -gdwarf-4 -o p4 prog.cpp & "
	       "g++ -O2 -g -gdwarf-5 -gz=zlib -o pz prog.cpp & wait) && test -x p5 && test -x p4 && "
	       "test -x pz",
	       dir))
		return -1;
	if (test_sh("cd %s && objcopy --only-keep-debug p5 pd.debug && strip -g p5 -o pd.tmp && "
	       "objcopy --add-gnu-debuglink=pd.debug pd.tmp pd && rm pd.tmp && "
	       "cp pd.debug bad.debug && printf x >> bad.debug && "
	       "strip -g p5 -o pbad.tmp && objcopy --add-gnu-debuglink=bad.debug pbad.tmp pbad && "
	       "rm pbad.tmp && printf y >> bad.debug && strip -g p5 -o pbid && "
	       "cp p5 pgarb && strip --strip-all p5 -o pstripped",
	       dir))
		return -1;
	/* bad.debug changed after pbad was linked to it: its CRC no longer matches. */
	have_zstd = test_sh("cd %s && objcopy --compress-debug-sections=zstd p5 pzstd 2>/dev/null", dir) == 0;

	/* pbid's debug file: EMBER_DEBUG_DIR/.build-id/xx/rest.debug */
	struct ember_elf *e = open_prog("p5");
	char bid[2 * EMBER_BUILD_ID_MAX + 1];
	strcpy(bid, e->build_id);
	ember_elf_free(e);
	if (strlen(bid) < 4)
		return -1;
	if (test_sh("mkdir -p %s/debug/.build-id/%.2s && cp %s/pd.debug %s/debug/.build-id/%.2s/%s.debug",
	       dir, bid, dir, dir, bid, bid + 2))
		return -1;
	use_build_id_dir(false);

	char garb[128];
	path_of(garb, sizeof(garb), "pgarb");
	if (scribble_section(garb, ".debug_info"))
		return -1;

	if (system("llvm-symbolizer --version >/dev/null 2>&1") == 0)
		llvm_symbolizer = "llvm-symbolizer";
	else if (system("llvm-symbolizer-14 --version >/dev/null 2>&1") == 0)
		llvm_symbolizer = "llvm-symbolizer-14";
	return 0;
}

static int teardown(void **state)
{
	if (dir[0] && !getenv("EMBER_KEEP_TEST_FILES"))
		test_sh("rm -rf %s", dir);
	return 0;
}

/* ---- addresses and the llvm-symbolizer oracle ---- */

struct addrs {
	uint64_t *a;
	size_t n;
};

/*
 * Every 7th byte of every sized function symbol of p5, PLT stubs left out:
 * llvm-symbolizer 14 names them after the preceding _init (the PLT names
 * are checked against objdump by tests/e2e/plt_names.sh).
 */
static struct addrs sample_addrs(void)
{
	struct ember_elf *e = open_prog("p5");
	struct addrs as = {0};
	size_t cap = 0;

	for (size_t i = 0; i < e->n_syms; i++) {
		const struct ember_elf_symbol *s = &e->syms[i];
		const char *name = ember_elf_sym_name(e, s);
		size_t len = strlen(name);
		if (len > 4 && strcmp(name + len - 4, "@plt") == 0)
			continue;
		for (uint64_t a = s->addr; s->size && a < s->addr + s->size; a += 7) {
			if (as.n == cap) {
				cap = cap ? 2 * cap : 1024;
				as.a = realloc(as.a, cap * sizeof(*as.a));
				assert_non_null(as.a);
			}
			as.a[as.n++] = a;
		}
	}
	ember_elf_free(e);
	return as;
}

struct oframe {
	char *function, *location; /* as llvm-symbolizer prints them */
};

struct ochain {
	struct oframe *f;
	int n;
};

static void free_chains(struct ochain *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++) {
		for (int k = 0; k < c[i].n; k++) {
			free(c[i].f[k].function);
			free(c[i].f[k].location);
		}
		free(c[i].f);
	}
	free(c);
}

/* Run llvm-symbolizer on obj for all addresses; one chain per address. */
static struct ochain *llvm_chains(const char *obj, const struct addrs *as)
{
	char addr_file[128], cmd[512], line[8192];
	struct ochain *out = calloc(as->n, sizeof(*out));
	size_t idx = 0;

	path_of(addr_file, sizeof(addr_file), "addrs.txt");
	FILE *f = fopen(addr_file, "w");
	assert_non_null(f);
	for (size_t i = 0; i < as->n; i++)
		fprintf(f, "0x%" PRIx64 "\n", as->a[i]);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s --inlining --demangle --obj=%s/%s < %s 2>/dev/null",
		 llvm_symbolizer, dir, obj, addr_file);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (idx < as->n && fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0]) {
			if (out[idx].n)
				idx++;
			continue;
		}
		char loc[8192];
		if (!fgets(loc, sizeof(loc), p))
			break;
		loc[strcspn(loc, "\n")] = '\0';
		struct ochain *c = &out[idx];
		c->f = realloc(c->f, (c->n + 1) * sizeof(*c->f));
		assert_non_null(c->f);
		c->f[c->n].function = strdup(line);
		c->f[c->n].location = strdup(loc);
		c->n++;
	}
	pclose(p);
	assert_int_equal(idx, as->n);
	return out;
}

/*
 * Smooth over the demanglers' spelling: drop spaces, "[clone X]" -> "(X)",
 * "{lambda(A)#N}" -> "'lambda'(A)"; demangle what LLVM left mangled.
 */
static void norm_name(const char *in, char *out, size_t size)
{
	char *dm = in[0] == '_' && in[1] == 'Z' ? ember_demangle(in) : NULL;
	const char *s = dm ? dm : in;
	size_t o = 0;

	while (*s && o + 16 < size) {
		if (!strncmp(s, " [clone ", 8)) {
			out[o++] = '(';
			for (s += 8; *s && *s != ']' && o + 16 < size; s++)
				out[o++] = *s;
			out[o++] = ')';
			if (*s)
				s++;
		} else if (!strncmp(s, "{lambda(", 8)) {
			memcpy(out + o, "'lambda'(", 9);
			o += 9;
			for (s += 8; *s && strncmp(s, ")#", 2) && o + 16 < size; s++)
				if (*s != ' ')
					out[o++] = *s;
			out[o++] = ')';
			while (*s && *s != '}')
				s++;
			if (*s)
				s++;
		} else {
			if (*s != ' ')
				out[o++] = *s;
			s++;
		}
	}
	out[o] = '\0';
	free(dm);
}

static bool frame_equal(const struct oframe *o, const struct ember_sym_frame *f)
{
	char a[4096], b[4096], loc[4096];

	norm_name(o->function, a, sizeof(a));
	norm_name(f->function ? f->function : "??", b, sizeof(b));
	snprintf(loc, sizeof(loc), "%s:%u:%u", f->file ? f->file : "??", f->line, f->column);
	return strcmp(a, b) == 0 && strcmp(o->location, loc) == 0;
}

static void print_chains(uint64_t addr, const struct ochain *o, const struct ember_sym_frame *f,
			 int n)
{
	printf("  0x%" PRIx64 ":\n", addr);
	for (int k = 0; k < o->n; k++)
		printf("    llvm  %s  %s\n", o->f[k].function, o->f[k].location);
	for (int k = 0; k < n; k++)
		printf("    ember %s  %s:%u:%u\n", f[k].function ? f[k].function : "??",
		       f[k].file ? f[k].file : "??", f[k].line, f[k].column);
}

/*
 * Compare Ember on `name` with the oracle chains; returns agreement in
 * percent and counts frames of inline chains for the caller.
 */
static double compare(const char *name, const struct addrs *as, const struct ochain *oracle,
		      size_t *inlined_addrs, int *max_depth)
{
	struct ember_elf *e = open_prog(name);
	size_t agree = 0, shown = 0;

	*inlined_addrs = 0;
	*max_depth = 0;
	for (size_t i = 0; i < as->n; i++) {
		struct ember_sym_frame f[EMBER_DWARF_MAX_CHAIN];
		int n = ember_elf_symbolize(e, as->a[i], f, EMBER_DWARF_MAX_CHAIN);
		bool same = n == oracle[i].n || (n == 0 && oracle[i].n == 1);
		for (int k = 0; same && k < n; k++)
			same = frame_equal(&oracle[i].f[k], &f[k]);
		if (n == 0 && same)
			same = strcmp(oracle[i].f[0].function, "??") == 0;
		if (same) {
			agree++;
		} else if (shown++ < 20) {
			if (shown == 1)
				printf("%s: disagreements with llvm-symbolizer:\n", name);
			print_chains(as->a[i], &oracle[i], f, n);
		}
		if (n > 1)
			(*inlined_addrs)++;
		if (n > *max_depth)
			*max_depth = n;
	}
	ember_elf_free(e);
	double pct = as->n ? 100.0 * agree / as->n : 0;
	printf("%s: %zu addresses, %zu agree with llvm-symbolizer (%.2f%%), %zu with inline "
	       "frames, deepest chain %d\n",
	       name, as->n, agree, pct, *inlined_addrs, *max_depth);
	return pct;
}

/* ---- tests ---- */

static void test_agrees_with_llvm_symbolizer(void **state)
{
	if (!llvm_symbolizer)
		skip();
	struct addrs as = sample_addrs();
	assert_true(as.n >= 300);
	struct ochain *ref = llvm_chains("p5", &as);
	const char *own_oracle[] = {"p5", "p4", "pz", "pd"};
	size_t inl;
	int depth;

	for (size_t i = 0; i < sizeof(own_oracle) / sizeof(own_oracle[0]); i++) {
		struct ochain *o = i == 0 ? ref : llvm_chains(own_oracle[i], &as);
		assert_true(compare(own_oracle[i], &as, o, &inl, &depth) >= 99.0);
		assert_true(inl >= 100); /* inline chains were really exercised */
		assert_true(depth >= 5);
		if (o != ref)
			free_chains(o, as.n);
	}
	/* No oracle of their own: llvm-symbolizer 14 reads neither. */
	use_build_id_dir(true);
	assert_true(compare("pbid", &as, ref, &inl, &depth) >= 99.0);
	use_build_id_dir(false);
	if (have_zstd)
		assert_true(compare("pzstd", &as, ref, &inl, &depth) >= 99.0);
	else
		printf("objcopy cannot write zstd sections: pzstd not checked\n");
	free_chains(ref, as.n);
	free(as.a);
}

/* Frames of one inline chain by name, for the checks below. */
static bool chain_has(const struct ember_sym_frame *f, int n, const char *const *names, int k)
{
	if (n != k)
		return false;
	for (int i = 0; i < n; i++)
		if (!f[i].function || strcmp(f[i].function, names[i]) != 0)
			return false;
	return true;
}

/* An address inside the inlined mix() in twice() in work(): found by scanning work(). */
static uint64_t find_mix_in_work(struct ember_elf *e)
{
	for (size_t i = 0; i < e->n_syms; i++) {
		const char *name = ember_elf_sym_name(e, &e->syms[i]);
		if (strcmp(name, "_ZL4worki") != 0)
			continue;
		for (uint64_t a = e->syms[i].addr; a < e->syms[i].end; a++) {
			struct ember_sym_frame f[8];
			static const char *const want[] = {"mix", "twice", "work(int)"};
			if (chain_has(f, ember_elf_symbolize(e, a, f, 8), want, 3))
				return a;
		}
	}
	return 0;
}

static void test_debug_files_and_fallbacks(void **state)
{
	struct ember_elf *e;
	struct ember_sym_frame f[8];
	char want[128];

	/* .gnu_debuglink next to the file */
	e = open_prog("pd");
	assert_non_null(e->dwarf);
	uint64_t a = find_mix_in_work(e);
	assert_true(a != 0);
	path_of(want, sizeof(want), "pd.debug");
	assert_string_equal(ember_dwarf_source(e->dwarf), want);
	ember_elf_free(e);

	/* build-id directory */
	use_build_id_dir(true);
	e = open_prog("pbid");
	assert_int_equal(ember_elf_symbolize(e, a, f, 8), 3);
	assert_non_null(strstr(ember_dwarf_source(e->dwarf), "/.build-id/"));
	ember_elf_free(e);
	use_build_id_dir(false);

	/* wrong CRC: the debug file is refused, .symtab still names the function */
	e = open_prog("pbad");
	assert_int_equal(ember_elf_symbolize(e, a, f, 8), 1);
	assert_string_equal(f[0].function, "work(int)");
	assert_null(f[0].file);
	assert_null(ember_dwarf_source(e->dwarf));
	ember_elf_free(e);

	/* fully stripped: no DWARF, no .symtab; work() is not in .dynsym */
	e = open_prog("pstripped");
	assert_true(e->from_dynsym);
	assert_int_equal(ember_elf_symbolize(e, a, f, 8), 0);
	ember_elf_free(e);

	/* garbage .debug_info: no crash, whatever is left, symtab names the outermost frame */
	e = open_prog("pgarb");
	for (size_t i = 0; i < e->n_syms; i++)
		for (uint64_t x = e->syms[i].addr; x < e->syms[i].addr + e->syms[i].size; x += 3) {
			int n = ember_elf_symbolize(e, x, f, 8);
			if (n < 1 || n > 8)
				printf("pgarb: 0x%" PRIx64 " gives %d frames\n", x, n);
			assert_true(n >= 1 && n <= 8);
			assert_non_null(f[n - 1].function);
		}
	ember_elf_free(e);

	/* a chain longer than the caller's room keeps the innermost and the outermost */
	e = open_prog("p5");
	assert_int_equal(ember_elf_symbolize(e, a, f, 2), 2);
	assert_string_equal(f[0].function, "mix");
	assert_string_equal(f[1].function, "work(int)");
	ember_elf_free(e);
}

static void test_symcache(void **state)
{
	struct ember_symcache *c = ember_symcache_new(0); /* minimum budget: 64 KiB */
	struct ember_symcache_stats st;
	const struct ember_sym_frame *got;
	char fn[64];

	assert_non_null(c);
	assert_int_equal(ember_symcache_get(c, 1, 0x1000, &got), -ENOENT);
	/* strings are copied: the caller's buffer may change afterwards */
	strcpy(fn, "inner");
	struct ember_sym_frame two[2] = {{fn, "/a.cc", 3, 4}, {"outer", "/b.cc", 5, 0}};
	assert_int_equal(ember_symcache_put(c, 1, 0x1000, two, 2), 0);
	strcpy(fn, "XXXXX");
	assert_int_equal(ember_symcache_get(c, 1, 0x1000, &got), 2);
	assert_string_equal(got[0].function, "inner");
	assert_string_equal(got[1].file, "/b.cc");
	assert_int_equal(got[0].line, 3);
	/* same pc, other module: a miss; empty chains are cached */
	assert_int_equal(ember_symcache_get(c, 2, 0x1000, &got), -ENOENT);
	assert_int_equal(ember_symcache_put(c, 2, 0x1000, NULL, 0), 0);
	assert_int_equal(ember_symcache_get(c, 2, 0x1000, &got), 0);

	/* fill far past the budget: bounded, and whatever is kept is intact */
	for (uint64_t pc = 0; pc < 20000; pc++) {
		char name[64];
		snprintf(name, sizeof(name), "function_number_%" PRIu64, pc);
		struct ember_sym_frame f = {name, "/some/source/file.cc", (uint32_t)pc, 1};
		assert_int_equal(ember_symcache_put(c, 7, pc, &f, 1), 0);
		/* keep one entry hot: CLOCK must not evict it */
		assert_int_equal(ember_symcache_get(c, 1, 0x1000, &got), 2);
	}
	ember_symcache_get_stats(c, &st);
	assert_true(st.bytes <= st.max_bytes);
	assert_true(st.evictions > 0);
	assert_true(st.entries > 50);
	size_t found = 0;
	for (uint64_t pc = 0; pc < 20000; pc++) {
		int n = ember_symcache_get(c, 7, pc, &got);
		if (n < 0)
			continue;
		char name[64];
		snprintf(name, sizeof(name), "function_number_%" PRIu64, pc);
		assert_int_equal(n, 1);
		assert_string_equal(got[0].function, name);
		/* one copy of the file name, shared: intact after thousands of evictions */
		assert_string_equal(got[0].file, "/some/source/file.cc");
		assert_int_equal(got[0].line, pc);
		found++;
	}
	found += ember_symcache_get(c, 2, 0x1000, &got) == 0; /* the empty chain, if kept */
	assert_int_equal(found + 1, st.entries);               /* + the hot entry */
	assert_int_equal(ember_symcache_get(c, 1, 0x1000, &got), 2);
	ember_symcache_free(c);
}

/* A live process through the symbolizer: inline frames interned as a chain, then cached. */
static void test_symbolize_live_process(void **state)
{
	char prog[128];
	int in[2];
	pid_t child;
	posix_spawn_file_actions_t fa;

	struct ember_elf *e = open_prog("p5");
	uint64_t a = find_mix_in_work(e);
	ember_elf_free(e);
	assert_true(a != 0);

	path_of(prog, sizeof(prog), "p5");
	char *argv[] = {prog, "10", "wait", NULL};
	assert_int_equal(pipe(in), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	assert_int_equal(posix_spawn(&child, prog, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);

	/* Load base: the mapping of p5 at file offset 0. */
	char maps[64], line[512];
	uint64_t base = 0;
	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)child);
	for (int tries = 0; !base && tries < 200; tries++) {
		FILE *m = fopen(maps, "r");
		while (m && fgets(line, sizeof(line), m)) {
			unsigned long long lo, off;
			if (strstr(line, prog) && sscanf(line, "%llx-%*x %*s %llx", &lo, &off) == 2 &&
			    off == 0) {
				base = lo;
				break;
			}
		}
		if (m)
			fclose(m);
		if (!base)
			usleep(10000);
	}
	assert_true(base != 0);

	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_profile *p = ember_profile_new();
	uint32_t ids[16];
	struct ember_symbolizer_stats st;
	struct ember_symcache_stats cs;

	for (int round = 0; round < 3; round++) {
		int n = ember_symbolize_user(s, (uint32_t)child, base + a, p, ids, 16);
		assert_int_equal(n, 3);
		const char *want[] = {"mix", "twice", "work(int)"};
		for (int k = 0; k < 3; k++) {
			const struct ember_frame *f = &p->frames[ids[k]];
			assert_string_equal(f->function, want[k]);
			assert_int_equal(f->address, a);
			assert_non_null(f->file);
			assert_non_null(strstr(f->file, "prog.cpp"));
			assert_true(f->line > 0);
			assert_int_equal(f->flags & EMBER_FRAME_INLINED, k < 2 ? EMBER_FRAME_INLINED : 0);
			assert_string_equal(f->module, p->frames[ids[0]].module);
		}
	}
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.lookups, 3);
	assert_int_equal(st.cache_hits, 2);
	ember_symbolizer_symcache_stats(s, &cs);
	assert_int_equal(cs.hits, 2);
	assert_int_equal(cs.entries, 1);

	close(in[1]);
	int status;
	waitpid(child, &status, 0);
	ember_symbolizer_free(s);
	ember_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agrees_with_llvm_symbolizer),
		cmocka_unit_test(test_debug_files_and_fallbacks),
		cmocka_unit_test(test_symcache),
		cmocka_unit_test(test_symbolize_live_process),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
