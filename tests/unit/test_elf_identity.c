/*
 * test_elf_identity.c - build-ids and content hashes (elf_identity.h), and
 * that nothing keyed by them lets one binary pass for another:
 *
 *   alpha, bravo   two different PIE C programs (frame pointers and not)
 *                  linked with one --build-id; bravo's function sits
 *                  where alpha's does
 *   alpha_copy     alpha copied to another path (same content)
 *   alpha_strip    alpha with `strip` (no .symtab, same code)
 *   nobid          a program linked with --build-id=none
 *   gonote         nobid plus a .note.go.buildid note (as Go's linker writes)
 *   gomarker       a program whose text holds Go's build-ID marker only
 *   dbg_a, dbg_b   two -g programs with one build-id; dbg_a's debug file
 *                  sits in EMBER_DEBUG_DIR/.build-id/, dbg_b is stripped
 *
 * Oracles are outside Ember: sha256sum for content and Go ids, nm for
 * function names, objcopy --only-keep-debug for debug files.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/profile.h"
#include "symbolizer/dwarf.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/elf_identity.h"
#include "symbolizer/symbolizer.h"

extern char **environ;

#define SHARED_ID "c0111de0c0111de0c0111de0c0111de0c0111de0"
#define DBG_ID "dbd1dbd1dbd1dbd1dbd1dbd1dbd1dbd1dbd1dbd1"
#define GO_ID "Zx1YRqH3Tt2_k1bXm2aQ/abcDEF123-xyz_0987/ghiJKL456-uvw_6543/mnoPQR789-rst_2109"

static char dir[64];

static const char prog_src[] =
	"#include <stdio.h>\n"
	"#include <unistd.h>\n"
	"#ifdef PAD\n"
	"__attribute__((noinline)) int pad_fn(int x) { return x * 3; }\n"
	"#endif\n"
	"__attribute__((noinline)) int NAME(int n) {\n"
	"  volatile int s = 0; for (int i = 0; i < n; i++) s += i * MUL; return s; }\n"
	"int main(void) {\n"
	"  printf(\"%p\\n\", (void *)&NAME); fflush(stdout);\n"
	"  char c; while (read(0, &c, 1) > 0) {}\n"
	"  return NAME(3) > 100; }\n";

static const char marker_src[] =
	"__attribute__((used, section(\".text\"))) static const char go_marker[] =\n"
	"  \"\\xff Go build ID: \\\"" GO_ID "\\\"\\n \\xff\";\n"
	"int main(void) { return 0; }\n";

static const char dbg_src[] =
	"#ifdef PAD\n"
	"static char pad[1 << 16] __attribute__((used));\n"
	"__attribute__((noinline)) int pad_fn(int x) { return x * 3 + pad[x & 7]; }\n"
	"#endif\n"
	"__attribute__((noinline)) int NAME(int n) { return n * MUL + 1; }\n"
	"int main(int argc, char **argv) { (void)argv; return NAME(argc); }\n";

static char *path_of(const char *name)
{
	static char buf[8][256];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* Go's note as cmd/link writes it: namesz 4 ("Go\0\0"), descsz, type 4, the id padded to 4. */
static int write_go_note(const char *path)
{
	const char *id = GO_ID;
	uint32_t hdr[3] = {4, (uint32_t)strlen(id), 4};
	char pad[4] = {0};
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	fwrite(hdr, sizeof(hdr), 1, f);
	fwrite("Go\0\0", 4, 1, f);
	fwrite(id, strlen(id), 1, f);
	fwrite(pad, (4 - strlen(id) % 4) % 4, 1, f);
	return fclose(f);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/ember-idtest-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	FILE *f = fopen(path_of("prog.c"), "w");
	if (!f || fputs(prog_src, f) < 0 || fclose(f))
		return -1;
	f = fopen(path_of("marker.c"), "w");
	if (!f || fputs(marker_src, f) < 0 || fclose(f))
		return -1;
	f = fopen(path_of("dbg.c"), "w");
	if (!f || fputs(dbg_src, f) < 0 || fclose(f))
		return -1;
	if (write_go_note(path_of("go.note")))
		return -1;
	return test_sh("cd %s && "
		  "gcc -O1 -DNAME=alpha_fn -DMUL=3 -fno-omit-frame-pointer -Wl,--build-id=0x" SHARED_ID
		  " -o alpha prog.c && "
		  "gcc -O1 -DNAME=bravo_fn -DMUL=5 -Wl,--build-id=0x" SHARED_ID
		  " -fomit-frame-pointer -o bravo prog.c && "
		  "cp alpha alpha_copy && cp alpha alpha_strip && strip alpha_strip && "
		  "gcc -O1 -DNAME=nobid_fn -DMUL=7 -Wl,--build-id=none -o nobid prog.c && "
		  "objcopy --add-section .note.go.buildid=go.note "
		  "--set-section-flags .note.go.buildid=alloc,readonly "
		  "--set-section-alignment .note.go.buildid=4 nobid gonote && "
		  "gcc -O1 -Wl,--build-id=none -o gomarker marker.c && "
		  "gcc -O1 -g -DNAME=dbg_alpha -DMUL=3 -Wl,--build-id=0x" DBG_ID " -o dbg_a dbg.c && "
		  "gcc -O1 -g -DNAME=dbg_bravo -DMUL=9 -DPAD -Wl,--build-id=0x" DBG_ID
		  " -o dbg_b.full dbg.c && "
		  "mkdir -p debug/.build-id/%.2s && "
		  "objcopy --only-keep-debug dbg_a debug/.build-id/%.2s/%s.debug && "
		  "objcopy --strip-debug dbg_a dbg_a.stripped && "
		  "objcopy --strip-debug dbg_b.full dbg_b",
		  dir, DBG_ID, DBG_ID, DBG_ID + 2);
}

static int teardown(void **state)
{
	return test_sh("rm -rf %s", dir);
}

/* The first 40 hex digits of sha256sum's answer for a file, or for a string. */
static void sha256_prefix(const char *what, bool is_string, char out[41])
{
	char cmd[512], line[128] = "";

	if (is_string)
		snprintf(cmd, sizeof(cmd), "printf %%s '%s' | sha256sum", what);
	else
		snprintf(cmd, sizeof(cmd), "sha256sum %s", what);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	pclose(p);
	snprintf(out, 41, "%s", line);
}

static struct ember_elf *open_elf(const char *name)
{
	struct ember_elf *e = NULL;
	assert_int_equal(ember_elf_open(path_of(name), &e), 0);
	return e;
}

/* ---- build-ids ---- */

static void test_build_id_kinds(void **state)
{
	char want[41];
	struct ember_elf *e = open_elf("alpha");

	assert_string_equal(e->build_id, SHARED_ID);
	assert_string_equal(e->gnu_build_id, SHARED_ID);
	assert_int_equal(e->build_id_kind, EMBER_BUILD_ID_GNU);
	ember_elf_free(e);

	/* no build-id of any kind: the content, as sha256sum sees it */
	e = open_elf("nobid");
	sha256_prefix(path_of("nobid"), false, want);
	assert_int_equal(e->build_id_kind, EMBER_BUILD_ID_CONTENT);
	assert_string_equal(e->gnu_build_id, "");
	assert_string_equal(e->build_id, want);
	ember_elf_free(e);

	/* Go's note, then Go's marker: SHA-256 of the Go build ID string */
	sha256_prefix(GO_ID, true, want);
	e = open_elf("gonote");
	assert_int_equal(e->build_id_kind, EMBER_BUILD_ID_GO);
	assert_string_equal(e->build_id, want);
	ember_elf_free(e);
	e = open_elf("gomarker");
	assert_int_equal(e->build_id_kind, EMBER_BUILD_ID_GO);
	assert_string_equal(e->build_id, want);
	ember_elf_free(e);
}

static void test_go_marker_scan(void **state)
{
	char out[EMBER_GO_BUILD_ID_MAX + 1];
	const char ok[] = "junk\xff Go build ID: \"abc/DEF_1-2\"\n \xff more";
	const char open_ended[] = "\xff Go build ID: \"abc/def";
	const char bad_char[] = "\xff Go build ID: \"ab\\\"c\"\n \xff";
	const char second[] = "\xff Go build ID: \"\"\n \xff \xff Go build ID: \"x/y\"\n \xff";

	assert_int_equal(ember_go_build_id_scan(ok, sizeof(ok) - 1, out, sizeof(out)), 11);
	assert_string_equal(out, "abc/DEF_1-2");
	assert_int_equal(ember_go_build_id_scan(open_ended, sizeof(open_ended) - 1, out,
						sizeof(out)),
			 -ENOENT);
	assert_int_equal(ember_go_build_id_scan(bad_char, sizeof(bad_char) - 1, out, sizeof(out)),
			 -ENOENT);
	assert_int_equal(ember_go_build_id_scan(second, sizeof(second) - 1, out, sizeof(out)), 3);
	assert_string_equal(out, "x/y");
	/* too small an output buffer is a miss, not an overflow */
	assert_int_equal(ember_go_build_id_scan(ok, sizeof(ok) - 1, out, 5), -ENOENT);
}

/* ---- content and unwind hashes ---- */

static void hashes_of(const char *name, uint8_t content[EMBER_HASH_BYTES],
		      uint8_t unwind[EMBER_HASH_BYTES])
{
	int fd = open(path_of(name), O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(elf);
	assert_int_equal(ember_elf_content_hash(elf, fd, content), 0);
	assert_int_equal(ember_elf_unwind_hash(elf, fd, unwind), 0);
	elf_end(elf);
	close(fd);
}

static void test_hashes(void **state)
{
	uint8_t ca[32], ua[32], cb[32], ub[32], cc[32], uc[32], cs[32], us[32];

	hashes_of("alpha", ca, ua);
	hashes_of("bravo", cb, ub);
	hashes_of("alpha_copy", cc, uc);
	hashes_of("alpha_strip", cs, us);
	/* one build-id, two programs: nothing in common */
	assert_memory_not_equal(ca, cb, 32);
	assert_memory_not_equal(ua, ub, 32);
	/* a copy is the same */
	assert_memory_equal(ca, cc, 32);
	assert_memory_equal(ua, uc, 32);
	/* a stripped copy: other bytes, the same unwind inputs */
	assert_memory_not_equal(ca, cs, 32);
	assert_memory_equal(ua, us, 32);
}

/* ---- the symbolizer ---- */

struct child {
	pid_t pid;
	int in;
	FILE *out;
	uint64_t fn; /* runtime address of its function */
};

static void child_start(const char *name, struct child *c)
{
	posix_spawn_file_actions_t fa;
	int in[2], out[2];
	char line[64] = "", *path = path_of(name);

	/* close-on-exec: a later child must not hold this one's stdin open */
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	char *argv[] = {path, NULL};
	assert_int_equal(posix_spawn(&c->pid, path, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = fdopen(out[0], "r");
	assert_non_null(c->out);
	assert_non_null(fgets(line, sizeof(line), c->out));
	c->fn = strtoull(line, NULL, 16);
	assert_true(c->fn != 0);
}

static void child_stop(struct child *c)
{
	int status;
	close(c->in);
	fclose(c->out);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
}

static const char *function_at(struct ember_symbolizer *s, struct ember_profile *p,
			       const struct child *c)
{
	uint32_t ids[4];
	assert_int_equal(ember_symbolize_user(s, (uint32_t)c->pid, c->fn + 1, p, ids, 4), 1);
	return p->frames[ids[0]].function;
}

/* nm's address of a symbol, the oracle that both functions share a vaddr. */
static uint64_t nm_address(const char *file, const char *sym)
{
	char cmd[512], line[256];
	uint64_t addr = 0;

	snprintf(cmd, sizeof(cmd), "nm %s", path_of(file));
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		char name[128];
		unsigned long long a;
		char type;
		if (sscanf(line, "%llx %c %127s", &a, &type, name) == 3 && !strcmp(name, sym))
			addr = a;
	}
	pclose(p);
	return addr;
}

static void test_symbolizer_keeps_colliding_binaries_apart(void **state)
{
	struct ember_symbolizer *s = ember_symbolizer_new();
	struct ember_profile *p = ember_profile_new();
	struct ember_symbolizer_stats st;
	struct ember_process_info pi;
	struct child a, b, a2;

	assert_non_null(s);
	assert_non_null(p);
	/* the trap: both functions live at one ELF address under one build-id */
	assert_int_equal(nm_address("alpha", "alpha_fn"), nm_address("bravo", "bravo_fn"));

	child_start("alpha", &a);
	child_start("bravo", &b);
	assert_string_equal(function_at(s, p, &a), "alpha_fn");
	assert_string_equal(function_at(s, p, &b), "bravo_fn");
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.build_id_collisions, 1);
	uint64_t files = st.elf_files;

	/* both report the build-id they claim: it is theirs to claim */
	assert_int_equal(ember_symbolizer_process(s, (uint32_t)b.pid, &pi), 0);
	assert_string_equal(pi.build_id, SHARED_ID);

	/* a copy of alpha at another path: shared, not a collision */
	child_start("alpha_copy", &a2);
	assert_string_equal(function_at(s, p, &a2), "alpha_fn");
	ember_symbolizer_stats(s, &st);
	assert_int_equal(st.build_id_collisions, 1);
	assert_int_equal(st.elf_files, files);

	child_stop(&a);
	child_stop(&b);
	child_stop(&a2);
	ember_profile_free(p);
	ember_symbolizer_free(s);
}

/* A debug file found by build-id must also be the binary's (PT_LOAD layout). */
static void test_debug_file_needs_layout(void **state)
{
	struct ember_sym_frame f[8];
	char debug_dir[128];
	struct ember_elf *e;

	snprintf(debug_dir, sizeof(debug_dir), "%s/debug", dir);
	setenv("EMBER_DEBUG_DIR", debug_dir, 1);

	/* its own debug file is used: a file:line */
	e = open_elf("dbg_a.stripped");
	uint64_t fa = nm_address("dbg_a.stripped", "dbg_alpha");
	assert_true(fa != 0);
	int n = ember_elf_symbolize(e, fa, f, 8);
	assert_true(n >= 1);
	assert_string_equal(f[n - 1].function, "dbg_alpha");
	assert_non_null(f[n - 1].file);
	ember_elf_free(e);

	/* another program claiming the build-id: its own symbol table, no file:line */
	e = open_elf("dbg_b");
	uint64_t fb = nm_address("dbg_b", "dbg_bravo");
	assert_true(fb != 0);
	n = ember_elf_symbolize(e, fb, f, 8);
	assert_int_equal(n, 1);
	assert_string_equal(f[0].function, "dbg_bravo");
	assert_null(f[0].file);
	ember_elf_free(e);
	unsetenv("EMBER_DEBUG_DIR");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_id_kinds),
		cmocka_unit_test(test_go_marker_scan),
		cmocka_unit_test(test_hashes),
		cmocka_unit_test(test_symbolizer_keeps_colliding_binaries_apart),
		cmocka_unit_test(test_debug_file_needs_layout),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
