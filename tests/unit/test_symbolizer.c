/*
 * test_symbolizer.c - ELF symbols, build-ids, C++ demangling, kallsyms and
 * the per-process symbolizer, on binaries this test builds at run time:
 *   libt.so           C++ shared library (several PT_LOADs, build-id set)
 *   libt_stripped.so  the same, stripped (.dynsym only)
 *   prog              non-PIE C++ program run as a child process
 * plus this test binary itself (PIE) and the C library it maps.
 */
#include "testutil.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/profile.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/kallsyms.h"
#include "symbolizer/symbolizer.h"

extern char **environ;

static char dir[64];
static char lib_path[128], stripped_path[128], prog_path[128];

#define LIB_BUILD_ID "1234abcd5678ef90"
#define STRIPPED_BUILD_ID "feedface01020304"
#define PROG_BUILD_ID "deadbeefcafe0001"

static const char lib_src[] =
	"namespace ember_test {\n"
	"__attribute__((noinline)) int compute(int x, const char *s) { return x + (s ? s[0] : 0); }\n"
	"}\n"
	"static __attribute__((noinline)) int hidden_helper(int x) { return x * 7; }\n"
	"extern \"C\" void *ember_get_helper(void) { return (void *)hidden_helper; }\n"
	"extern \"C\" __attribute__((noinline)) int ember_primary(int x) { return x + 1; }\n"
	"extern \"C\" int ember_alias(int) __attribute__((weak, alias(\"ember_primary\")));\n"
	"asm(\".text\\n.globl ember_zero_size\\n.type ember_zero_size,@function\\n"
	"ember_zero_size:\\n nop\\n nop\\n nop\\n nop\\n ret\\n\");\n";

static const char prog_src[] =
	"#include <cstdio>\n"
	"#include <unistd.h>\n"
	"namespace ember_test { struct Widget { static int spin(int n); };\n"
	"__attribute__((noinline)) int Widget::spin(int n) {\n"
	"  volatile int s = 0; for (int i = 0; i < n; i++) s += i; return s; } }\n"
	"int main() {\n"
	"  printf(\"%p\\n\", (void *)&ember_test::Widget::spin); fflush(stdout);\n"
	"  char c; while (read(0, &c, 1) > 0) {}\n"
	"  return ember_test::Widget::spin(3) > 100; }\n";

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(data, 1, len, f);
	return fclose(f) == 0 && n == len ? 0 : -1;
}

static void *read_whole(const char *path, size_t *len)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	void *buf;

	*len = 0;
	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) != 0 || !(buf = malloc((size_t)st.st_size + 1))) {
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	char cmd[2048], src[128], psrc[128];

	snprintf(dir, sizeof(dir), "/tmp/ember-symtest-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(src, sizeof(src), "%s/lib.cc", dir);
	snprintf(psrc, sizeof(psrc), "%s/prog.cc", dir);
	snprintf(lib_path, sizeof(lib_path), "%s/libt.so", dir);
	snprintf(stripped_path, sizeof(stripped_path), "%s/libt_stripped.so", dir);
	snprintf(prog_path, sizeof(prog_path), "%s/prog", dir);
	if (write_file(src, lib_src, strlen(lib_src)) || write_file(psrc, prog_src, strlen(prog_src)))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "g++ -O0 -fPIC -shared -Wl,--build-id=0x" LIB_BUILD_ID " -o %s %s & a=$!; "
		 "g++ -O0 -fPIC -shared -s -Wl,--build-id=0x" STRIPPED_BUILD_ID " -o %s %s & b=$!; "
		 "g++ -O0 -no-pie -Wl,--build-id=0x" PROG_BUILD_ID " -o %s %s; s=$?; "
		 "wait $a && wait $b && exit $s",
		 lib_path, src, stripped_path, src, prog_path, psrc);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_symbolizer: compiling test binaries failed: %s\n", cmd);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Build-id of a file according to `readelf -n`, "" when it has none. */
static void readelf_build_id(const char *path, char *out, size_t size)
{
	char cmd[512], line[512];
	FILE *f;

	out[0] = '\0';
	snprintf(cmd, sizeof(cmd), "readelf -n %s 2>/dev/null", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "Build ID: ");
		if (p) {
			snprintf(out, size, "%s", p + strlen("Build ID: "));
			out[strcspn(out, "\n")] = '\0';
		}
	}
	pclose(f);
}

static const struct ember_elf_symbol *find_sym(const struct ember_elf *e, const char *name)
{
	for (size_t i = 0; i < e->n_syms; i++)
		if (strcmp(ember_elf_sym_name(e, &e->syms[i]), name) == 0)
			return &e->syms[i];
	return NULL;
}

static const struct ember_frame *frame_of(struct ember_profile *p, uint32_t id)
{
	assert_true(id < p->n_frames);
	return &p->frames[id];
}

/* Symbolize one user pc and return its (single) frame. */
static const struct ember_frame *sym_user(struct ember_symbolizer *s, struct ember_profile *p,
					  uint32_t pid, uint64_t pc)
{
	uint32_t ids[4];
	assert_int_equal(ember_symbolize_user(s, pid, pc, p, ids, 4), 1);
	return frame_of(p, ids[0]);
}

/* ---- demangling and build-ids ---- */

static void test_demangle(void **state)
{
	char *d = ember_demangle("_ZN10ember_test7computeEiPKc");

	assert_non_null(d);
	assert_string_equal(d, "ember_test::compute(int, char const*)");
	free(d);
	d = ember_demangle("_ZN3foo3barEv.cold");
	assert_non_null(d);
	assert_string_equal(d, "foo::bar() [clone .cold]");
	free(d);
	assert_null(ember_demangle("main"));
	assert_null(ember_demangle("_Z"));
	assert_null(ember_demangle("_Zxyz"));
	assert_null(ember_demangle(NULL));
}

static void test_build_ids(void **state)
{
	struct ember_elf *e;
	char expect[256];

	assert_int_equal(ember_elf_open(lib_path, &e), 0);
	assert_string_equal(e->build_id, LIB_BUILD_ID);
	assert_int_equal(e->type, ET_DYN);
	assert_true(e->n_loads >= 2);
	assert_false(e->from_dynsym);
	ember_elf_free(e);

	assert_int_equal(ember_elf_open(prog_path, &e), 0);
	assert_string_equal(e->build_id, PROG_BUILD_ID);
	assert_int_equal(e->type, ET_EXEC);
	ember_elf_free(e);

	/* This test binary: whatever the toolchain wrote, as readelf sees it. */
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	readelf_build_id(exe, expect, sizeof(expect));
	assert_int_equal(ember_elf_open("/proc/self/exe", &e), 0);
	assert_string_equal(e->build_id, expect);
	ember_elf_free(e);
}

/* ---- symbol tables ---- */

static void test_lookup_rules(void **state)
{
	/* Hand-made table: sized, zero-size, gap, nested symbols. */
	struct ember_elf_symbol syms[] = {
		{.addr = 0x1000, .size = 0x100, .end = 0x1100, .name = 0}, /* a */
		{.addr = 0x1200, .size = 0, .end = 0x2000, .name = 2},     /* b: zero-size */
		{.addr = 0x1300, .size = 0x50, .end = 0x1350, .name = 4},  /* c */
		{.addr = 0x1400, .size = 0x400, .end = 0x1800, .name = 6}, /* d */
		{.addr = 0x1500, .size = 0x10, .end = 0x1510, .name = 8},  /* e: inside d */
	};
	uint64_t max_end[] = {0x1100, 0x1100, 0x1350, 0x1800, 0x1800};
	char names[] = "a\0b\0c\0d\0e";
	struct ember_elf e = {.syms = syms, .n_syms = 5, .max_end = max_end, .names = names,
			      .names_len = sizeof(names)};
	const struct ember_elf_symbol *s;
	uint64_t off = 0;

	assert_null(ember_elf_lookup(&e, 0xfff, &off));
	assert_ptr_equal(ember_elf_lookup(&e, 0x1000, &off), &syms[0]);
	assert_int_equal(off, 0);
	assert_ptr_equal(ember_elf_lookup(&e, 0x10ff, &off), &syms[0]);
	assert_int_equal(off, 0xff);
	assert_null(ember_elf_lookup(&e, 0x1100, NULL)); /* past a's size: unknown */
	assert_ptr_equal(ember_elf_lookup(&e, 0x12ff, NULL), &syms[1]); /* zero-size reaches on */
	assert_ptr_equal(ember_elf_lookup(&e, 0x1320, NULL), &syms[2]);
	assert_null(ember_elf_lookup(&e, 0x1360, NULL)); /* past c, b does not extend over c */
	assert_ptr_equal(ember_elf_lookup(&e, 0x1508, NULL), &syms[4]);
	s = ember_elf_lookup(&e, 0x1600, &off); /* past e but inside d */
	assert_ptr_equal(s, &syms[3]);
	assert_int_equal(off, 0x200);
	assert_null(ember_elf_lookup(&e, 0x1800, NULL));
	assert_string_equal(ember_elf_sym_display_name(&e, s), "d");
	free(e.demangled);
}

static void test_real_symbol_tables(void **state)
{
	struct ember_elf *e;
	const struct ember_elf_symbol *s;
	uint64_t off;

	assert_int_equal(ember_elf_open(lib_path, &e), 0);
	s = find_sym(e, "_ZN10ember_test7computeEiPKc");
	assert_non_null(s);
	assert_true(s->size > 0);
	assert_ptr_equal(ember_elf_lookup(e, s->addr + 3, &off), s);
	assert_int_equal(off, 3);
	assert_string_equal(ember_elf_sym_display_name(e, s), "ember_test::compute(int, char const*)");
	assert_true(ember_elf_lookup(e, s->addr + s->size, NULL) != s);
	/* Local symbols are in .symtab. */
	assert_non_null(find_sym(e, "_ZL13hidden_helperi"));
	/* Aliases collapse to the global symbol. */
	s = find_sym(e, "ember_primary");
	assert_non_null(s);
	assert_null(find_sym(e, "ember_alias"));
	assert_ptr_equal(ember_elf_lookup(e, s->addr, NULL), s);
	/* A zero-size symbol covers the bytes after it. */
	s = find_sym(e, "ember_zero_size");
	assert_non_null(s);
	assert_int_equal(s->size, 0);
	assert_ptr_equal(ember_elf_lookup(e, s->addr + 4, NULL), s);
	/* Sorted, one symbol per address. */
	for (size_t i = 1; i < e->n_syms; i++)
		assert_true(e->syms[i - 1].addr < e->syms[i].addr);
	ember_elf_free(e);

	/* The stripped copy falls back to .dynsym: exported names only. */
	assert_int_equal(ember_elf_open(stripped_path, &e), 0);
	assert_true(e->from_dynsym);
	assert_non_null(find_sym(e, "_ZN10ember_test7computeEiPKc"));
	assert_null(find_sym(e, "_ZL13hidden_helperi"));
	ember_elf_free(e);
}

static void test_malformed_elf(void **state)
{
	static const unsigned char garbage[] = "this is not an ELF file at all, not even close";
	char path[160];
	struct ember_elf *e = NULL;
	size_t len = 0;
	unsigned char *img = read_whole(lib_path, &len);

	assert_non_null(img);
	assert_true(len > 4096);
	snprintf(path, sizeof(path), "%s/bad.so", dir);

	assert_int_equal(ember_elf_open("/nonexistent/ember/file", &e), -ENOENT);
	assert_int_equal(ember_elf_open(dir, &e), -ENOEXEC); /* a directory */
	assert_int_equal(write_file(path, "", 0), 0);
	assert_int_equal(ember_elf_open(path, &e), -ENOEXEC);
	assert_int_equal(write_file(path, garbage, sizeof(garbage)), 0);
	assert_int_equal(ember_elf_open(path, &e), -ENOEXEC);
	/* ELF magic, then garbage. */
	unsigned char fake[256];
	memset(fake, 0xff, sizeof(fake));
	memcpy(fake, ELFMAG, SELFMAG);
	assert_int_equal(write_file(path, fake, sizeof(fake)), 0);
	assert_true(ember_elf_open(path, &e) < 0);
	assert_null(e);
	/* Truncated copies: the headers alone are not enough. */
	assert_int_equal(write_file(path, img, 64), 0);
	assert_true(ember_elf_open(path, &e) < 0);
	static const size_t cuts[] = {16, 63, 200, 1000, 3000};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		assert_int_equal(write_file(path, img, cuts[i]), 0);
		if (ember_elf_open(path, &e) == 0)
			ember_elf_free(e);
	}
	/* Random corruption (fixed seed): never a crash, leak or hang. */
	unsigned char *copy = malloc(len);
	assert_non_null(copy);
	srand(12345);
	int ok = 0, failed = 0;
	for (int round = 0; round < 300; round++) {
		memcpy(copy, img, len);
		int flips = 1 + rand() % 16;
		for (int k = 0; k < flips; k++) {
			/* Bias towards the headers, where corruption hurts most. */
			size_t at = round % 2 ? (size_t)rand() % 128 : (size_t)rand() % len;
			if (round % 3 == 0 && len > 64) /* section headers live at the end */
				at = len - 1 - (size_t)rand() % (len < 2048 ? len : 2048);
			copy[at] = (unsigned char)rand();
		}
		size_t cut = round % 5 == 0 ? (size_t)rand() % len : len;
		assert_int_equal(write_file(path, copy, cut), 0);
		if (ember_elf_open(path, &e) == 0) {
			ok++;
			for (int q = 0; q < 64; q++)
				(void)ember_elf_lookup(e, (uint64_t)rand() % 0x10000, NULL);
			if (e->n_syms)
				(void)ember_elf_sym_display_name(e, &e->syms[0]);
			ember_elf_free(e);
		} else {
			failed++;
		}
	}
	assert_true(ok > 0 && failed > 0);
	free(copy);
	free(img);
}

/* ---- the symbolizer on live processes ---- */

__attribute__((noinline)) int ember_symtest_target(int x)
{
	return x * 5 + 2;
}

static void test_symbolize_self_and_libc(void **state)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_profile *p = ember_profile_new();
	int (*volatile target)(int) = ember_symtest_target;
	uint32_t pid = (uint32_t)getpid();
	char exe[4096], build_id[256], name[512];
	const struct ember_frame *f;
	Dl_info info;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	assert_true(n > 0);
	exe[n] = '\0';
	readelf_build_id(exe, build_id, sizeof(build_id));
	assert_int_equal(target(1), 7);

	uint64_t pc = (uint64_t)(uintptr_t)target + 1;
	f = sym_user(s, p, pid, pc);
	assert_non_null(f->function);
	assert_string_equal(f->function, "ember_symtest_target");
	assert_string_equal(f->module, exe);
	if (build_id[0])
		assert_string_equal(f->build_id, build_id);
	assert_int_equal(f->flags, 0);
	/* The address is ELF-relative: pc minus the load bias (0 for non-PIE). */
	assert_true(dladdr((void *)target, &info) != 0);
	struct ember_elf *self;
	assert_int_equal(ember_elf_open("/proc/self/exe", &self), 0);
	uint64_t bias = self->type == ET_DYN ? (uint64_t)(uintptr_t)info.dli_fbase : 0;
	ember_elf_free(self);
	assert_int_equal(f->address, pc - bias);

	/* Same pc again: the same interned frame, served from cache. */
	uint32_t a, b;
	struct ember_symbolizer_stats st;
	ember_symbolizer_stats(s, &st);
	uint64_t hits = st.cache_hits;
	assert_int_equal(ember_symbolize_user(s, pid, pc, p, &a, 1), 1);
	assert_int_equal(ember_symbolize_user(s, pid, pc, p, &b, 1), 1);
	assert_int_equal(a, b);
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.cache_hits, hits + 2);
	assert_int_equal(st.processes, 1);
	assert_true(st.elf_files >= 1);
	assert_int_equal(ember_symbolize_user(s, pid, pc, p, &a, 0), 0);

	/* An address inside libc. */
	void *getpid_fn = dlsym(RTLD_DEFAULT, "getpid");
	assert_non_null(getpid_fn);
	f = sym_user(s, p, pid, (uint64_t)(uintptr_t)getpid_fn);
	assert_non_null(f->function);
	assert_true(strcmp(f->function, "getpid") == 0 || strcmp(f->function, "__getpid") == 0);
	assert_non_null(strstr(f->module, "libc.so"));
	assert_non_null(f->build_id);

	/* Nothing is mapped at 0x10. */
	f = sym_user(s, p, pid, 0x10);
	assert_null(f->function);
	assert_null(f->module);
	assert_string_equal(ember_frame_name(f, name, sizeof(name)), "[unknown]");

	/* The vdso is named but not (yet) symbolized. */
	uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
	if (vdso) {
		f = sym_user(s, p, pid, vdso + 0x10);
		assert_string_equal(f->module, "[vdso]");
		assert_int_equal(f->address, 0x10);
	}

	struct ember_process_info pi;
	char comm[64] = "";
	FILE *cf = fopen("/proc/self/comm", "r");
	assert_non_null(cf);
	assert_non_null(fgets(comm, sizeof(comm), cf));
	fclose(cf);
	comm[strcspn(comm, "\n")] = '\0';
	assert_int_equal(ember_symbolizer_process(s, pid, &pi), 0);
	assert_string_equal(pi.comm, comm);
	assert_string_equal(pi.exe, exe);
	if (build_id[0])
		assert_string_equal(pi.build_id, build_id);
	assert_int_equal(ember_symbolizer_process(s, 99999999u, &pi), -ESRCH);
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.processes, 1); /* the dead pid left nothing behind */

	ember_profile_free(p);
	ember_symbolizer_free(s);
}

static void test_symbolize_dlopened_libraries(void **state)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_profile *p = ember_profile_new();
	uint32_t pid = (uint32_t)getpid();
	const struct ember_frame *f;
	char name[512], expect[512];
	Dl_info info;

	/* Read the maps before the libraries exist: the lookups must re-read them. */
	int (*volatile target)(int) = ember_symtest_target;
	f = sym_user(s, p, pid, (uint64_t)(uintptr_t)target);
	assert_string_equal(f->function, "ember_symtest_target");

	void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
	void *stripped = dlopen(stripped_path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(lib);
	assert_non_null(stripped);

	void *compute = dlsym(lib, "_ZN10ember_test7computeEiPKc");
	assert_non_null(compute);
	assert_true(dladdr(compute, &info) != 0);
	f = sym_user(s, p, pid, (uint64_t)(uintptr_t)compute + 2);
	assert_string_equal(f->function, "ember_test::compute(int, char const*)");
	assert_string_equal(f->module, lib_path);
	assert_string_equal(f->build_id, LIB_BUILD_ID);
	assert_int_equal(f->address, (uint64_t)(uintptr_t)compute + 2 -
					     (uint64_t)(uintptr_t)info.dli_fbase);

	/* Exported names still resolve from .dynsym in the stripped copy ... */
	compute = dlsym(stripped, "_ZN10ember_test7computeEiPKc");
	assert_non_null(compute);
	f = sym_user(s, p, pid, (uint64_t)(uintptr_t)compute);
	assert_string_equal(f->function, "ember_test::compute(int, char const*)");
	assert_string_equal(f->build_id, STRIPPED_BUILD_ID);

	/* ... a static function does not: module+offset. */
	void *(*get_helper)(void) = (void *(*)(void))dlsym(stripped, "ember_get_helper");
	assert_non_null(get_helper);
	void *helper = get_helper();
	assert_true(dladdr(helper, &info) != 0);
	uint64_t rel = (uint64_t)(uintptr_t)helper - (uint64_t)(uintptr_t)info.dli_fbase;
	f = sym_user(s, p, pid, (uint64_t)(uintptr_t)helper);
	assert_null(f->function);
	assert_string_equal(f->module, stripped_path);
	assert_int_equal(f->address, rel);
	snprintf(expect, sizeof(expect), "libt_stripped.so+0x%llx", (unsigned long long)rel);
	assert_string_equal(ember_frame_name(f, name, sizeof(name)), expect);

	/* The unstripped copy names it. */
	get_helper = (void *(*)(void))dlsym(lib, "ember_get_helper");
	f = sym_user(s, p, pid, (uint64_t)(uintptr_t)get_helper() + 1);
	assert_string_equal(f->function, "hidden_helper(int)");

	ember_profile_free(p);
	ember_symbolizer_free(s);
	dlclose(stripped);
	dlclose(lib);
}

static void test_malformed_mapped_file(void **state)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_profile *p = ember_profile_new();
	struct ember_symbolizer_stats st;
	const struct ember_frame *f;
	char path[160];
	unsigned char junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	snprintf(path, sizeof(path), "%s/junk.bin", dir);
	assert_int_equal(write_file(path, junk, sizeof(junk)), 0);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 4096);
	close(fd);
	if (m == MAP_FAILED) {
		skip(); /* e.g. a noexec /tmp */
	}
	uint64_t pc = (uint64_t)(uintptr_t)m + 0x10;
	f = sym_user(s, p, (uint32_t)getpid(), pc);
	assert_null(f->function);
	assert_null(f->build_id);
	assert_string_equal(f->module, path);
	assert_int_equal(f->address, 0x1010); /* file offset: no ELF to translate it */
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.elf_errors, 1);
	f = sym_user(s, p, (uint32_t)getpid(), pc + 1);
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.elf_errors, 1); /* tried once */
	munmap(m, 4096);
	ember_profile_free(p);
	ember_symbolizer_free(s);
}

/*
 * A child snapshotted by ember_symbolizer_track (refresh false) or
 * ember_symbolizer_refresh (true, as the agent does when the kernel first
 * samples it) symbolizes after it exited and was reaped.  Tracked, it is
 * also symbolized while it runs.
 */
static void child_past_exit(bool refresh)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_profile *p = ember_profile_new();
	struct ember_process_info pi;
	struct ember_symbolizer_stats st;
	posix_spawn_file_actions_t fa;
	int in[2], out[2], status;
	char line[64] = "";
	pid_t child;

	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	char *argv[] = {prog_path, NULL};
	assert_int_equal(posix_spawn(&child, prog_path, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	FILE *fo = fdopen(out[0], "r");
	assert_non_null(fo);
	assert_non_null(fgets(line, sizeof(line), fo));
	uint64_t spin = strtoull(line, NULL, 16);
	assert_true(spin != 0);

	const struct ember_frame *f;
	if (refresh) {
		assert_int_equal(ember_symbolizer_refresh(s, (uint32_t)child), 0);
	} else {
		assert_int_equal(ember_symbolizer_track(s, (uint32_t)child), 0);
		assert_int_equal(ember_symbolizer_process(s, (uint32_t)child, &pi), 0);
		assert_string_equal(pi.comm, "prog");
		assert_string_equal(pi.exe, prog_path);
		assert_string_equal(pi.build_id, PROG_BUILD_ID);

		f = sym_user(s, p, (uint32_t)child, spin + 1);
		assert_string_equal(f->function, "ember_test::Widget::spin(int)");
		assert_string_equal(f->module, prog_path);
		assert_string_equal(f->build_id, PROG_BUILD_ID);
		assert_int_equal(f->address, spin + 1); /* non-PIE: vaddr == pc */
	}

	/* Let it exit and reap it: the snapshot still symbolizes. */
	close(in[1]);
	fclose(fo);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	f = sym_user(s, p, (uint32_t)child, spin + 4);
	assert_string_equal(f->function, "ember_test::Widget::spin(int)");
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)child, &pi), 0);
	assert_string_equal(pi.comm, "prog");

	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.processes, 1);
	ember_symbolizer_forget(s, (uint32_t)child);
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.processes, 0);
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)child, &pi), -ESRCH);
	ember_profile_free(p);
	ember_symbolizer_free(s);
}

static void test_child_non_pie_tracked_past_exit(void **state)
{
	child_past_exit(false);
}

static void test_child_refreshed_past_exit(void **state)
{
	child_past_exit(true);
}

/* ---- kallsyms ---- */

static const char kallsyms_fixture[] =
	"ffffffffc0002000 t nf_hook\t[nf_tables]\n"
	"ffffffff81000000 t _text\n"
	"ffffffff81000000 T _stext\n"
	"ffffffff81000100 T do_syscall_64\n"
	"ffffffff81000200 t helper_local\n"
	"ffffffff81000300 D some_data\n"
	"ffffffff81000400 d more_data\n"
	"ffffffff81000500 T after_data\n"
	"ffffffff81000600 W weak_fn\n"
	"this line is malformed\n"
	"ffffffffc0001000 t ext4_fill_super\t[ext4]\n"
	"ffffffffc0001100 T ext4_iget\t[ext4]\n";

static void test_kallsyms(void **state)
{
	struct ember_kallsyms *k;
	const struct ember_ksym *ks;
	char path[160];
	uint64_t off;

	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	assert_int_equal(write_file(path, kallsyms_fixture, strlen(kallsyms_fixture)), 0);
	assert_int_equal(ember_kallsyms_load(path, &k), 0);
	assert_int_equal(k->malformed, 1);
	assert_int_equal(k->n_text, 8);

	ks = ember_kallsyms_lookup(k, 0xffffffff81000000ULL, &off);
	assert_non_null(ks);
	assert_string_equal(ks->name, "_stext"); /* global T wins at one address */
	assert_null(ks->module);
	ks = ember_kallsyms_lookup(k, 0xffffffff81000150ULL, &off);
	assert_string_equal(ks->name, "do_syscall_64");
	assert_int_equal(off, 0x50);
	assert_string_equal(ember_kallsyms_lookup(k, 0xffffffff810002ffULL, NULL)->name,
			    "helper_local");
	assert_null(ember_kallsyms_lookup(k, 0xffffffff81000350ULL, NULL)); /* data */
	assert_null(ember_kallsyms_lookup(k, 0xffffffff81000450ULL, NULL));
	assert_string_equal(ember_kallsyms_lookup(k, 0xffffffff81000510ULL, NULL)->name,
			    "after_data");
	assert_string_equal(ember_kallsyms_lookup(k, 0xffffffff81000610ULL, NULL)->name, "weak_fn");
	ks = ember_kallsyms_lookup(k, 0xffffffffc0001050ULL, NULL);
	assert_string_equal(ks->name, "ext4_fill_super");
	assert_string_equal(ks->module, "ext4");
	ks = ember_kallsyms_lookup(k, 0xffffffffc0002010ULL, NULL);
	assert_string_equal(ks->name, "nf_hook");
	assert_string_equal(ks->module, "nf_tables");
	assert_null(ember_kallsyms_lookup(k, 0xffffffff80000000ULL, NULL));
	assert_null(ember_kallsyms_lookup(k, 0xffffffffc0002000ULL + (4u << 20), NULL));
	ember_kallsyms_free(k);

	/* kptr_restrict: every address reads as zero. */
	static const char zeroed[] = "0000000000000000 T _stext\n0000000000000000 t foo\t[m]\n";
	assert_int_equal(write_file(path, zeroed, strlen(zeroed)), 0);
	assert_int_equal(ember_kallsyms_load(path, &k), -EPERM);
	assert_null(k);
	assert_int_equal(write_file(path, "", 0), 0);
	assert_int_equal(ember_kallsyms_load(path, &k), -ENODATA);
	assert_int_equal(ember_kallsyms_load("/nonexistent/kallsyms", &k), -ENOENT);
}

static void test_symbolize_kernel(void **state)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_profile *p = ember_profile_new();
	char path[160], name[256];
	uint32_t id;

	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	assert_int_equal(write_file(path, kallsyms_fixture, strlen(kallsyms_fixture)), 0);
	setenv("EMBER_KALLSYMS", path, 1);

	assert_int_equal(ember_symbolize_kernel(s, 0xffffffffc0001104ULL, p, &id, 1), 1);
	const struct ember_frame *f = frame_of(p, id);
	assert_string_equal(f->function, "ext4_iget");
	assert_string_equal(f->module, "[ext4]");
	assert_int_equal(f->flags, EMBER_FRAME_KERNEL);
	assert_int_equal(f->address, 0xffffffffc0001104ULL);

	assert_int_equal(ember_symbolize_kernel(s, 0xffffffff81000108ULL, p, &id, 1), 1);
	f = frame_of(p, id);
	assert_string_equal(f->function, "do_syscall_64");
	assert_string_equal(f->module, "[kernel]");

	assert_int_equal(ember_symbolize_kernel(s, 0xffffffff81000350ULL, p, &id, 1), 1);
	f = frame_of(p, id);
	assert_null(f->function);
	assert_string_equal(ember_frame_name(f, name, sizeof(name)), "[kernel]+0xffffffff81000350");
	unsetenv("EMBER_KALLSYMS");
	ember_profile_free(p);
	ember_symbolizer_free(s);
}

/* A child that sleeps until killed. */
static pid_t sleeper(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

/*
 * At most max processes are kept; the least recently used one goes first
 * (it is read again when next needed, as long as it runs).
 */
static void test_process_bound_evicts_least_recently_used(void **state)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_symbolizer_stats st;
	struct ember_process_info pi;
	pid_t a = sleeper(), b = sleeper(), c = sleeper();

	ember_symbolizer_set_max_processes(s, 2);
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)a, &pi), 0);
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)b, &pi), 0);
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)a, &pi), 0); /* a used again */
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)c, &pi), 0); /* b goes */
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.processes, 2);
	assert_int_equal(st.max_processes, 2);
	assert_int_equal(st.proc_evictions, 1);

	/* once they are gone, only what was kept answers */
	pid_t all[] = {a, b, c};
	for (int i = 0; i < 3; i++) {
		kill(all[i], SIGKILL);
		waitpid(all[i], NULL, 0);
	}
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)a, &pi), 0);
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)c, &pi), 0);
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)b, &pi), -ESRCH);
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.processes, 2);
	ember_symbolizer_free(s);
}

/* A snapshot of a process that is already gone leaves nothing behind. */
static void test_snapshot_of_gone_process_leaves_nothing(void **state)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_symbolizer_stats st;
	pid_t pid = sleeper();

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_true(ember_symbolizer_track(s, (uint32_t)pid) < 0);
	assert_true(ember_symbolizer_refresh(s, (uint32_t)pid) < 0);
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.processes, 0);

	/* ... and a process known before is kept when a later snapshot fails */
	pid = sleeper();
	assert_int_equal(ember_symbolizer_refresh(s, (uint32_t)pid), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_true(ember_symbolizer_refresh(s, (uint32_t)pid) < 0);
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.processes, 1);
	ember_symbolizer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demangle),
		cmocka_unit_test(test_build_ids),
		cmocka_unit_test(test_lookup_rules),
		cmocka_unit_test(test_real_symbol_tables),
		cmocka_unit_test(test_malformed_elf),
		cmocka_unit_test(test_symbolize_self_and_libc),
		cmocka_unit_test(test_symbolize_dlopened_libraries),
		cmocka_unit_test(test_malformed_mapped_file),
		cmocka_unit_test(test_child_non_pie_tracked_past_exit),
		cmocka_unit_test(test_child_refreshed_past_exit),
		cmocka_unit_test(test_kallsyms),
		cmocka_unit_test(test_symbolize_kernel),
		cmocka_unit_test(test_process_bound_evicts_least_recently_used),
		cmocka_unit_test(test_snapshot_of_gone_process_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
