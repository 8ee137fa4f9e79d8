/*
 * test_oracle.c - the libunwind oracle (tests/oracle/) works, without BPF.
 *
 * The group setup writes a small C++ program to a temporary directory,
 * builds it the way production C++ is built (g++ -O2 -fomit-frame-pointer
 * -fasynchronous-unwind-tables) and runs it.  The program recurses 21 deep
 * through two noinline functions (one with a variable-sized frame, so its
 * CFA is rbp-based), sorts with qsort, and in the comparator's callee
 * captures ip/sp/bp and a copy of its stack: exactly what the BPF program
 * sends in validation mode.  Run a second time with an argument, it raises
 * a signal instead of sorting and captures in the handler's callee.  It also records, independently of libunwind,
 * glibc's backtrace() (libgcc's unwinder) at the same point and the
 * __builtin_return_address of each of its own functions, then writes all
 * that and its /proc/self/maps to a file.  The tests build an
 * ember_stack_snapshot from it and check oracle_unwind() against those
 * records and addr2line, then exercise short copies, garbage registers and
 * the comparison rules.
 *
 * Needs g++ and addr2line (binutils).  Link: -lunwind-generic -lunwind.
 */
#include "testutil.h"

#include <errno.h>
#include <unistd.h>

#include "agent/procmaps.h"
#include "../oracle/unwind_oracle.c"

static const char child_source[] =
	"#include <alloca.h>\n"
	"#include <execinfo.h>\n"
	"#include <signal.h>\n"
	"#include <stdint.h>\n"
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"#include <string.h>\n"
	"static unsigned char stack_copy[16384];\n"
	"static uint64_t regs[3], stack_len, stack_top;\n"
	"static void *bt[256];\n"
	"static int n_bt, n_ra, done;\n"
	"static uint64_t ras[64];\n"
	"static volatile int sink;\n"
	"#define RECORD_RA() (ras[n_ra++] = (uint64_t)__builtin_return_address(0))\n"
	"extern \"C\" __attribute__((noinline)) void capture(void) {\n"
	"	uint64_t ip, sp, bp;\n"
	"	RECORD_RA();\n"
	"	asm volatile(\"lea 0(%%rip), %0\\n\\tmov %%rsp, %1\\n\\tmov %%rbp, %2\"\n"
	"		     : \"=r\"(ip), \"=r\"(sp), \"=r\"(bp) : : \"memory\");\n"
	"	stack_len = stack_top - sp < sizeof(stack_copy) ? stack_top - sp : sizeof(stack_copy);\n"
	"	memcpy(stack_copy, (void *)sp, stack_len);\n"
	"	regs[0] = ip; regs[1] = sp; regs[2] = bp;\n"
	"	n_bt = backtrace(bt, 256);\n"
	"}\n"
	"extern \"C\" __attribute__((noinline)) void leaf(int n) {\n"
	"	RECORD_RA();\n"
	"	capture();\n"
	"	sink += n;\n"
	"}\n"
	"static int cmp(const void *a, const void *b) {\n"
	"	if (!done) { done = 1; RECORD_RA(); leaf(*(const int *)a); }\n"
	"	return *(const int *)a - *(const int *)b;\n"
	"}\n"
	"static void on_signal(int sig) {\n"
	"	RECORD_RA();\n"
	"	leaf(sig);\n"
	"	sink++;\n"
	"}\n"
	"static int use_signal;\n"
	"extern \"C\" int rec_b(int n);\n"
	"extern \"C\" __attribute__((noinline)) int rec_a(int n) {\n"
	"	RECORD_RA();\n"
	"	if (n == 0) {\n"
	"		int arr[8] = {5, 3, 8, 1, 9, 2, 7, 4};\n"
	"		if (use_signal)\n"
	"			raise(SIGUSR1);\n"
	"		else\n"
	"			qsort(arr, 8, sizeof(int), cmp);\n"
	"		return arr[0];\n"
	"	}\n"
	"	return rec_b(n - 1) + 1;\n"
	"}\n"
	"extern \"C\" __attribute__((noinline)) int rec_b(int n) {\n"
	"	volatile char *buf = (volatile char *)alloca(16 * n + 8);\n"
	"	buf[0] = (char)n;\n"
	"	RECORD_RA();\n"
	"	return rec_a(n - 1) + buf[0];\n"
	"}\n"
	"int main(int argc, char **argv) {\n"
	"	char line[4096];\n"
	"	RECORD_RA();\n"
	"	FILE *maps = fopen(\"/proc/self/maps\", \"r\");\n"
	"	while (maps && fgets(line, sizeof(line), maps)) {\n"
	"		unsigned long lo, hi;\n"
	"		if (strstr(line, \"[stack]\") && sscanf(line, \"%lx-%lx\", &lo, &hi) == 2)\n"
	"			stack_top = hi;\n"
	"	}\n"
	"	if (maps) fclose(maps);\n"
	"	backtrace(bt, 1); /* loads libgcc_s now, not at the capture */\n"
	"	use_signal = argc > 2;\n"
	"	signal(SIGUSR1, on_signal);\n"
	"	sink = rec_a(20);\n"
	"	FILE *out = fopen(argv[1], \"wb\");\n"
	"	uint64_t hdr[6] = {regs[0], regs[1], regs[2], stack_len, (uint64_t)n_bt, (uint64_t)n_ra};\n"
	"	if (!out || !stack_top) return 1;\n"
	"	fwrite(hdr, sizeof(hdr), 1, out);\n"
	"	fwrite(stack_copy, 1, stack_len, out);\n"
	"	for (int i = 0; i < n_bt; i++) { uint64_t v = (uint64_t)bt[i]; fwrite(&v, 8, 1, out); }\n"
	"	fwrite(ras, 8, n_ra, out);\n"
	"	maps = fopen(\"/proc/self/maps\", \"r\");\n"
	"	size_t n;\n"
	"	while (maps && (n = fread(line, 1, sizeof(line), maps)) > 0) fwrite(line, 1, n, out);\n"
	"	return fclose(out) != 0;\n"
	"}\n";

#define MAX_FRAMES 256

/* What one run of the child recorded, and the snapshot and mappings made from it. */
struct fixture {
	struct ember_stack_snapshot *snap;
	uint64_t bt[MAX_FRAMES]; /* glibc backtrace() at the capture point, leaf first */
	size_t n_bt;
	uint64_t ras[64];        /* __builtin_return_address(0), outermost (main) first */
	size_t n_ra;
	struct ember_maps maps;
	struct oracle_mapping omaps[64];
	size_t n_omaps;
};

static char tmpdir[64], exe[96];
static struct fixture fx;     /* the capture under qsort's callback */
static struct fixture fx_sig; /* the capture in a signal handler */

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* Parse the child's output file into f.  Returns 0 or -1. */
static int load_child_output(const char *path, struct fixture *f)
{
	size_t len, pos = 6 * 8;
	char *buf = read_all(path, &len);
	uint64_t hdr[6];

	if (!buf || len < pos)
		goto fail;
	memcpy(hdr, buf, sizeof(hdr));
	if (hdr[3] > EMBER_SNAPSHOT_STACK || hdr[4] > MAX_FRAMES || hdr[5] > 64 ||
	    len - pos < hdr[3] + 8 * (hdr[4] + hdr[5]))
		goto fail;
	f->snap = calloc(1, sizeof(*f->snap));
	if (!f->snap)
		goto fail;
	f->snap->ip = hdr[0];
	f->snap->sp = hdr[1];
	f->snap->bp = hdr[2];
	f->snap->stack_len = (uint32_t)hdr[3];
	memcpy(f->snap->stack, buf + pos, hdr[3]);
	pos += hdr[3];
	f->n_bt = hdr[4];
	memcpy(f->bt, buf + pos, 8 * f->n_bt);
	pos += 8 * f->n_bt;
	f->n_ra = hdr[5];
	memcpy(f->ras, buf + pos, 8 * f->n_ra);
	pos += 8 * f->n_ra;
	if (ember_maps_parse(buf + pos, len - pos, EMBER_MAPS_EXEC_ONLY, &f->maps) < 0)
		goto fail;
	for (size_t i = 0; i < f->maps.n && f->n_omaps < 64; i++) {
		const struct ember_map_entry *e = &f->maps.entries[i];

		if (e->path[0] != '/' && strcmp(e->path, "[vdso]") != 0)
			continue;
		f->omaps[f->n_omaps++] = (struct oracle_mapping){ e->start, e->end, e->pgoff, e->path };
	}
	free(buf);
	return 0;
fail:
	free(buf);
	return -1;
}

/* Run the child (with extra_arg, if any) and load what it wrote. */
static int run_child(const char *extra_arg, struct fixture *f)
{
	char out[128], cmd[512];
	int err;

	snprintf(out, sizeof(out), "%s/out.bin", tmpdir);
	snprintf(cmd, sizeof(cmd), "%s %s %s", exe, out, extra_arg);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_oracle: '%s' failed\n", cmd);
		return -1;
	}
	err = load_child_output(out, f);
	unlink(out);
	return err;
}

static int group_setup(void **state)
{
	char src[128], cmd[512];
	FILE *f;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ember-oracle-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(src, sizeof(src), "%s/child.cpp", tmpdir);
	snprintf(exe, sizeof(exe), "%s/child", tmpdir);
	f = fopen(src, "w");
	if (!f || fputs(child_source, f) < 0 || fclose(f) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "g++ -O2 -g -fomit-frame-pointer -fasynchronous-unwind-tables -o %s %s",
		 exe, src);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_oracle: '%s' failed\n", cmd);
		return -1;
	}
	return run_child("", &fx) || run_child("signal", &fx_sig) ? -1 : 0;
}

static void fixture_free(struct fixture *f)
{
	ember_maps_free(&f->maps);
	free(f->snap);
}

static int group_teardown(void **state)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/child.cpp", tmpdir);
	unlink(path);
	unlink(exe);
	rmdir(tmpdir);
	fixture_free(&fx);
	fixture_free(&fx_sig);
	oracle_release();
	return 0;
}

/* f's mapping holding pc, or NULL. */
static const struct oracle_mapping *mapping_of(const struct fixture *f, uint64_t pc)
{
	for (size_t i = 0; i < f->n_omaps; i++)
		if (pc >= f->omaps[i].start && pc < f->omaps[i].end)
			return &f->omaps[i];
	return NULL;
}

static bool in_libc(const struct fixture *f, uint64_t pc)
{
	const struct oracle_mapping *m = mapping_of(f, pc);

	return m && strstr(m->path, "/libc.so");
}

/* Function (demangled, no parameters) addr2line gives for the child's return address pc. */
static void exe_function(const struct fixture *f, uint64_t pc, char *name, size_t size)
{
	const struct oracle_mapping *m = mapping_of(f, pc);
	const struct oracle_elf *elf = elf_get(exe);
	uint64_t bias;
	char cmd[256];
	FILE *p;

	assert_non_null(m);
	assert_string_equal(m->path, exe);
	assert_non_null(elf);
	assert_int_equal(mapping_bias(elf, m, &bias), 0);
	snprintf(cmd, sizeof(cmd), "addr2line -f -C -e %s 0x%llx", exe,
		 (unsigned long long)(pc - 1 - bias));
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(name, (int)size, p));
	pclose(p);
	name[strcspn(name, "(\n")] = '\0'; /* "cmp(void const*, void const*)" -> "cmp" */
}

/* Unwind snap with f's mappings; returns the status. */
static int unwind(const struct fixture *f, const struct ember_stack_snapshot *snap, uint64_t *pcs,
		  size_t max, size_t *n)
{
	int status = -1;

	assert_int_equal(oracle_unwind(snap, f->omaps, f->n_omaps, pcs, max, n, &status), 0);
	assert_true(*n <= max);
	return status;
}

/*
 * The oracle's frames are those of libgcc's unwinder (backtrace()'s first
 * entry is its own return address into capture, ours the captured ip), and
 * every return address the program recorded itself appears, innermost
 * first, in order.  Returns the number of frames.
 */
static size_t check_against_records(const struct fixture *f, uint64_t *pcs)
{
	size_t n, k = 0;

	assert_int_equal(unwind(f, f->snap, pcs, MAX_FRAMES, &n), ORACLE_ROOT);
	assert_true(f->n_bt >= 28);
	assert_int_equal(n, f->n_bt);
	assert_true(pcs[0] == f->snap->ip);
	for (size_t i = 1; i < n; i++)
		assert_true(pcs[i] == f->bt[i]);
	for (size_t r = f->n_ra; r-- > 0;) {
		while (k < n && pcs[k] != f->ras[r])
			k++;
		assert_true(k < n);
	}
	return n;
}

static void test_whole_stack_matches_independent_unwinders(void **state)
{
	uint64_t pcs[MAX_FRAMES];
	size_t n = check_against_records(&fx, pcs), k;
	char name[256];

	assert_int_equal(fx.n_ra, 1 + 21 + 3); /* main, rec_a/rec_b x21, cmp, leaf, capture */

	/* Frames 1-2 are in leaf and cmp, then libc's qsort, then the recursion. */
	exe_function(&fx, pcs[1], name, sizeof(name));
	assert_string_equal(name, "leaf");
	exe_function(&fx, pcs[2], name, sizeof(name));
	assert_string_equal(name, "cmp");
	for (k = 3; k < n && in_libc(&fx, pcs[k]); k++)
		;
	assert_true(k > 3);
	exe_function(&fx, pcs[k], name, sizeof(name));
	assert_string_equal(name, "rec_a");
	exe_function(&fx, fx.ras[1], name, sizeof(name)); /* rec_a(20) returns into main */
	assert_string_equal(name, "main");

	/* ... down to the root: libc's start code, then _start. */
	assert_true(in_libc(&fx, pcs[n - 2]));
	exe_function(&fx, pcs[n - 1], name, sizeof(name));
	assert_string_equal(name, "_start");
}

/* Through a signal frame: handler, libc's __restore_rt, the interrupted raise(). */
static void test_signal_frame(void **state)
{
	uint64_t pcs[MAX_FRAMES];
	size_t n = check_against_records(&fx_sig, pcs), k;
	char name[256];

	assert_int_equal(fx_sig.n_ra, 1 + 21 + 3); /* main, rec_a/rec_b x21, on_signal, leaf, capture */
	exe_function(&fx_sig, pcs[2], name, sizeof(name));
	assert_string_equal(name, "on_signal");
	for (k = 3; k < n && in_libc(&fx_sig, pcs[k]); k++)
		;
	assert_true(k >= 5); /* __restore_rt, the pc in the kill syscall's caller, raise */
	exe_function(&fx_sig, pcs[k], name, sizeof(name));
	assert_string_equal(name, "rec_a");
	exe_function(&fx_sig, pcs[n - 1], name, sizeof(name));
	assert_string_equal(name, "_start");
}

/*
 * A sample at the first instruction of a vDSO function called from
 * capture(): the snapshot is the real one with that call's return address
 * pushed, and the oracle must read the vDSO's CFI to get back into it.
 */
static void test_vdso_frame(void **state)
{
	const struct oracle_elf *vdso = elf_get("[vdso]");
	const struct oracle_mapping *m = NULL;
	struct ember_stack_snapshot *snap = malloc(sizeof(*snap));
	uint64_t pcs[MAX_FRAMES], full[MAX_FRAMES], bias;
	size_t n, n_full;
	int32_t first_fde_start;

	assert_non_null(snap);
	assert_non_null(vdso);
	assert_true(vdso->has_table && vdso->fde_count > 0);
	for (size_t i = 0; i < fx.n_omaps; i++)
		if (strcmp(fx.omaps[i].path, "[vdso]") == 0)
			m = &fx.omaps[i];
	assert_non_null(m);
	assert_int_equal(mapping_bias(vdso, m, &bias), 0);
	assert_true(vdso->phdr[0].p_type == PT_LOAD && vdso->phdr[0].p_vaddr == vdso->phdr[0].p_offset);
	memcpy(&first_fde_start, vdso->data + vdso->table_vaddr, 4); /* table[0].initial_loc */

	memcpy(snap, fx.snap, sizeof(*snap));
	snap->ip = vdso->hdr_vaddr + first_fde_start + bias;
	snap->sp = fx.snap->sp - 8;
	memcpy(snap->stack, &fx.snap->ip, 8);
	memcpy(snap->stack + 8, fx.snap->stack, EMBER_SNAPSHOT_STACK - 8);
	snap->stack_len = fx.snap->stack_len;
	assert_true(snap->ip >= m->start && snap->ip < m->end);

	assert_int_equal(unwind(&fx, fx.snap, full, MAX_FRAMES, &n_full), ORACLE_ROOT);
	assert_int_equal(unwind(&fx, snap, pcs, MAX_FRAMES, &n), ORACLE_ROOT);
	assert_int_equal(n, n_full + 1);
	assert_true(pcs[0] == snap->ip);
	assert_memory_equal(pcs + 1, full, n_full * sizeof(*full));
	free(snap);
}

static void test_compare_with_real_stack(void **state)
{
	uint64_t pcs[MAX_FRAMES], ember[MAX_FRAMES];
	enum oracle_verdict v;
	size_t n, frame;
	int status = unwind(&fx, fx.snap, pcs, MAX_FRAMES, &n);

	memcpy(ember, pcs, n * sizeof(*pcs));
	assert_int_equal(oracle_compare(ember, n, 0, pcs, n, status, &v, &frame), 0);
	assert_int_equal(v, ORACLE_AGREE);
	assert_int_equal(frame, n);

	ember[7] += 4; /* one wrong return address */
	assert_int_equal(oracle_compare(ember, n, 0, pcs, n, status, &v, &frame), 0);
	assert_int_equal(v, ORACLE_DISAGREE);
	assert_int_equal(frame, 7);
	ember[7] -= 4;

	/* Ember stopped at frame 10: lost frames, unless it said it was truncated. */
	assert_int_equal(oracle_compare(ember, 10, 0, pcs, n, status, &v, &frame), 0);
	assert_int_equal(v, ORACLE_DISAGREE);
	assert_int_equal(frame, 10);
	assert_int_equal(oracle_compare(ember, 10, EMBER_STACK_TRUNCATED, pcs, n, status, &v, &frame), 0);
	assert_int_equal(v, ORACLE_AGREE);

	/* Ember went past the root: an invented frame. */
	ember[n] = 0x401000;
	assert_int_equal(oracle_compare(ember, n + 1, 0, pcs, n, status, &v, &frame), 0);
	assert_int_equal(v, ORACLE_DISAGREE);
	assert_int_equal(frame, n);
}

static void test_short_copy_is_undecidable(void **state)
{
	uint64_t full[MAX_FRAMES], pcs[MAX_FRAMES];
	size_t n_full, n, frame;
	enum oracle_verdict v;
	int status;

	unwind(&fx, fx.snap, full, MAX_FRAMES, &n_full);
	uint32_t saved = fx.snap->stack_len;
	fx.snap->stack_len = 256;
	status = unwind(&fx, fx.snap, pcs, MAX_FRAMES, &n);
	fx.snap->stack_len = saved;

	assert_int_equal(status, ORACLE_SHORT_COPY);
	assert_true(n >= 1 && n < n_full);
	assert_memory_equal(pcs, full, n * sizeof(*pcs));

	/* Ember's whole (correct) stack cannot be judged past the copy... */
	assert_int_equal(oracle_compare(full, n_full, 0, pcs, n, status, &v, &frame), 0);
	assert_int_equal(v, ORACLE_UNDECIDABLE);
	/* ...but a wrong frame inside it still is a disagreement. */
	full[0] ^= 1;
	assert_int_equal(oracle_compare(full, n_full, 0, pcs, n, status, &v, &frame), 0);
	assert_int_equal(v, ORACLE_DISAGREE);
	assert_int_equal(frame, 0);

	/* No stack at all: the leaf's return address is already out of reach. */
	fx.snap->stack_len = 0;
	status = unwind(&fx, fx.snap, pcs, MAX_FRAMES, &n);
	fx.snap->stack_len = saved;
	assert_int_equal(status, ORACLE_SHORT_COPY);
	assert_int_equal(n, 1);
}

static void test_max_depth(void **state)
{
	uint64_t pcs[5];
	size_t n;

	assert_int_equal(unwind(&fx, fx.snap, pcs, 5, &n), ORACLE_MAX_DEPTH);
	assert_int_equal(n, 5);
	assert_true(pcs[0] == fx.snap->ip && pcs[4] == fx.bt[4]);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_garbage_does_not_crash(void **state)
{
	struct ember_stack_snapshot *snap = malloc(sizeof(*snap));
	const struct oracle_mapping *text = mapping_of(&fx, fx.snap->ip);
	uint64_t pcs[64], seed = 0x9e3779b97f4a7c15ull;
	size_t n;
	int status;

	assert_non_null(snap);
	assert_non_null(text);

	/* An ip in no mapping: one frame, then an error. */
	memcpy(snap, fx.snap, sizeof(*snap));
	snap->ip = 0x1234;
	status = unwind(&fx, snap, pcs, 64, &n);
	assert_int_equal(status, ORACLE_ERROR);
	assert_int_equal(n, 1);

	/* Random stack words (some of them code addresses) and random sp/bp. */
	for (int iter = 0; iter < 300; iter++) {
		memcpy(snap, fx.snap, sizeof(*snap));
		for (size_t i = 0; i + 8 <= snap->stack_len; i += 8) {
			uint64_t w = xorshift(&seed);

			if (w % 3 == 0)
				w = text->start + w % (text->end - text->start);
			else if (w % 3 == 1)
				w = snap->sp + w % (2 * EMBER_SNAPSHOT_STACK);
			memcpy(snap->stack + i, &w, 8);
		}
		if (iter % 2)
			snap->bp = xorshift(&seed);
		if (iter % 5 == 0)
			snap->sp = xorshift(&seed);
		if (iter % 7 == 0)
			snap->ip = text->start + xorshift(&seed) % (text->end - text->start);
		status = unwind(&fx, snap, pcs, 64, &n);
		assert_true(status >= ORACLE_ROOT && status <= ORACLE_ERROR);
		assert_true(n >= 1);
	}
	free(snap);
}

static void test_bad_inputs(void **state)
{
	struct oracle_mapping missing = { fx.omaps[0].start, fx.omaps[0].end, fx.omaps[0].pgoff,
					  "/nonexistent/ember-oracle" };
	uint64_t pcs[8];
	size_t n;
	int status;

	assert_int_equal(oracle_unwind(NULL, fx.omaps, fx.n_omaps, pcs, 8, &n, &status), -EINVAL);
	assert_int_equal(oracle_unwind(fx.snap, fx.omaps, fx.n_omaps, pcs, 0, &n, &status), -EINVAL);
	uint32_t saved = fx.snap->stack_len;
	fx.snap->stack_len = EMBER_SNAPSHOT_STACK + 1;
	assert_int_equal(oracle_unwind(fx.snap, fx.omaps, fx.n_omaps, pcs, 8, &n, &status), -EINVAL);
	fx.snap->stack_len = saved;

	/* Unreadable files and no mappings at all end the unwind after the leaf. */
	assert_int_equal(oracle_unwind(fx.snap, &missing, 1, pcs, 8, &n, &status), 0);
	assert_int_equal(status, ORACLE_ERROR);
	assert_int_equal(n, 1);
	assert_int_equal(oracle_unwind(fx.snap, NULL, 0, pcs, 8, &n, &status), 0);
	assert_int_equal(status, ORACLE_ERROR);
	assert_int_equal(n, 1);
}

static void expect(const uint64_t *e, size_t ne, uint32_t flags, const uint64_t *o, size_t no,
		   int status, enum oracle_verdict want, size_t want_frame)
{
	enum oracle_verdict v;
	size_t frame;

	assert_int_equal(oracle_compare(e, ne, flags, o, no, status, &v, &frame), 0);
	assert_string_equal(oracle_verdict_name(v), oracle_verdict_name(want));
	assert_int_equal(frame, want_frame);
}

static void test_compare_rules(void **state)
{
	const uint64_t a[] = { 10, 20, 30, 40 }, b[] = { 10, 20, 31, 40 };
	enum oracle_verdict v;
	size_t frame;

	/* 1: the first mismatch decides, whatever the oracle's status. */
	expect(a, 4, 0, b, 4, ORACLE_ROOT, ORACLE_DISAGREE, 2);
	expect(a, 4, 0, b, 3, ORACLE_SHORT_COPY, ORACLE_DISAGREE, 2);
	/* 2: same depth. */
	expect(a, 4, 0, a, 4, ORACLE_ROOT, ORACLE_AGREE, 4);
	expect(a, 4, 0, a, 4, ORACLE_ERROR, ORACLE_AGREE, 4);
	expect(a, 4, 0, a, 4, ORACLE_SHORT_COPY, ORACLE_AGREE, 4);
	expect(a, 4, EMBER_STACK_READ_FAULT, a, 4, ORACLE_SHORT_COPY, ORACLE_UNDECIDABLE, 4);
	expect(a, 4, EMBER_STACK_TRUNCATED, a, 4, ORACLE_NO_REGISTER, ORACLE_UNDECIDABLE, 4);
	/* 3: Ember shorter. */
	expect(a, 2, 0, a, 4, ORACLE_ROOT, ORACLE_DISAGREE, 2);
	expect(a, 2, EMBER_STACK_READ_FAULT, a, 4, ORACLE_ROOT, ORACLE_DISAGREE, 2);
	expect(a, 2, EMBER_STACK_TRUNCATED, a, 4, ORACLE_MAX_DEPTH, ORACLE_AGREE, 2);
	/* 4: oracle shorter. */
	expect(a, 4, 0, a, 2, ORACLE_SHORT_COPY, ORACLE_UNDECIDABLE, 2);
	expect(a, 4, 0, a, 2, ORACLE_NO_REGISTER, ORACLE_UNDECIDABLE, 2);
	expect(a, 4, 0, a, 2, ORACLE_MAX_DEPTH, ORACLE_UNDECIDABLE, 2);
	expect(a, 4, 0, a, 2, ORACLE_ROOT, ORACLE_DISAGREE, 2);
	expect(a, 4, 0, a, 2, ORACLE_ERROR, ORACLE_DISAGREE, 2);
	/* Empty lists and bad arguments. */
	expect(NULL, 0, 0, NULL, 0, ORACLE_ERROR, ORACLE_AGREE, 0);
	assert_int_equal(oracle_compare(NULL, 1, 0, a, 4, ORACLE_ROOT, &v, &frame), -EINVAL);
	assert_int_equal(oracle_compare(a, 4, 0, a, 4, ORACLE_ROOT, NULL, &frame), -EINVAL);
	assert_string_equal(oracle_status_name(ORACLE_SHORT_COPY), "short-copy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_stack_matches_independent_unwinders),
		cmocka_unit_test(test_signal_frame),
		cmocka_unit_test(test_vdso_frame),
		cmocka_unit_test(test_compare_with_real_stack),
		cmocka_unit_test(test_short_copy_is_undecidable),
		cmocka_unit_test(test_max_depth),
		cmocka_unit_test(test_garbage_does_not_crash),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_compare_rules),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
