/*
 * test_gopclntab.c - the Go .gopclntab reader against Go's own tools.
 *
 * The group setup writes a small Go module (an inlined helper, a frameless
 * leaf, a function with a large frame) into a temporary directory, commits
 * it to git (so the build records vcs.revision) and builds it three ways:
 * plain, with -ldflags='-s -w' (no .symtab, no DWARF) and -buildmode=pie
 * (GOCACHE in build/go-cache, so only the first run pays for the PIE
 * standard library).
 * Oracles: `go tool nm` (addresses), `go tool addr2line` (file:line),
 * `go tool objdump` (prologues), `readelf --debug-dump=frames-interp` on
 * the plain build's .debug_frame (CFA per pc) and `go version -m` (build
 * info).  Go 1.16 and 1.20+ layouts, which the installed Go cannot produce,
 * are checked on hand-built tables (gopclntab_synth.h).  Without a Go
 * toolchain the tests that need it are skipped.
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ehframe/ehframe.h"
#include "gopclntab_synth.h"
#include "symbolizer/gopclntab.h"
#include "ember_unwind.h"

/* Line numbers below are asserted: keep them in sync with the source. */
static const char go_source[] =
	"package main\n"                                 /* 1 */
	"\n"                                             /* 2 */
	"import \"os\"\n"                                /* 3 */
	"\n"                                             /* 4 */
	"var sink int\n"                                 /* 5 */
	"\n"                                             /* 6 */
	"func add3(a, b, c int) int {\n"                 /* 7 */
	"\treturn a*b + c\n"                             /* 8 */
	"}\n"                                            /* 9 */
	"\n"                                             /* 10 */
	"//go:noinline\n"                                /* 11 */
	"func work(n int) int {\n"                       /* 12 */
	"\ts := 0\n"                                     /* 13 */
	"\tfor i := 0; i < n; i++ {\n"                   /* 14 */
	"\t\ts += add3(i, s, n)\n"                       /* 15 */
	"\t}\n"                                          /* 16 */
	"\treturn s\n"                                   /* 17 */
	"}\n"                                            /* 18 */
	"\n"                                             /* 19 */
	"//go:noinline\n"                                /* 20 */
	"func leaf(x int) int { return x*7 + 1 }\n"      /* 21 */
	"\n"                                             /* 22 */
	"//go:noinline\n"                                /* 23 */
	"func big(n int) int {\n"                        /* 24 */
	"\tvar buf [64]int\n"                            /* 25 */
	"\tfor i := range buf {\n"                       /* 26 */
	"\t\tbuf[i] = leaf(i + n)\n"                     /* 27 */
	"\t}\n"                                          /* 28 */
	"\treturn buf[n%64]\n"                           /* 29 */
	"}\n"                                            /* 30 */
	"\n"                                             /* 31 */
	"func main() {\n"                                /* 32 */
	"\tsink = work(len(os.Args) * 1000)\n"           /* 33 */
	"\tsink += big(len(os.Args))\n"                  /* 34 */
	"\tif sink == 42 {\n"                            /* 35 */
	"\t\tos.Exit(3)\n"                               /* 36 */
	"\t}\n"                                          /* 37 */
	"}\n";                                           /* 38 */

#define MODULE "example.com/embergo"

struct fixture {
	char dir[256];
	char prog[300], stripped[300], pie[300];
	char env[8192]; /* "cd DIR && export ... &&": prefix for commands */
	bool have_git;
	struct ember_gopclntab *g, *gs; /* plain and stripped */
};
static struct fixture fx;

/* Run a shell command; its stdout goes to a malloc'd string (NULL on failure). */
static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	if (!f)
		return NULL;
	size_t len = 0, cap = 1 << 16;
	char *out = malloc(cap);
	size_t n;
	while (out && (n = fread(out + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 4096) {
			char *p = realloc(out, cap *= 2);
			if (!p) {
				free(out);
				out = NULL;
			}
			out = p;
		}
	}
	int st = pclose(f);
	if (out)
		out[len] = '\0';
	if (st != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static int group_setup(void **state)
{
	char path[512], *out;

	memset(&fx, 0, sizeof(fx));
	out = run("command -v go");
	if (!out)
		return 0; /* no toolchain: the tests needing it skip */
	free(out);
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/ember-gopclntab-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(path, sizeof(path), "%s/go.mod", fx.dir);
	write_file(path, "module " MODULE "\n\ngo 1.16\n");
	snprintf(path, sizeof(path), "%s/main.go", fx.dir);
	write_file(path, go_source);
	/*
	 * The build cache persists in build/go-cache: the PIE build recompiles
	 * the standard library (about 10 s), once.
	 */
	char cache[PATH_MAX + 16], cwd[PATH_MAX];
	struct stat st;
	if (getcwd(cwd, sizeof(cwd)) && stat("build", &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(cache, sizeof(cache), "%s/build/go-cache", cwd);
	else
		snprintf(cache, sizeof(cache), "%s/cache", fx.dir);
	snprintf(fx.env, sizeof(fx.env),
		 "cd %s && export HOME=%s GOCACHE=%s GOFLAGS=-mod=mod GOPROXY=off "
		 "GO111MODULE=on GIT_CONFIG_NOSYSTEM=1 &&",
		 fx.dir, fx.dir, cache);
	out = run("%s git init -q . && git add go.mod main.go && git -c user.name=t "
		  "-c user.email=t@t commit -qm init && git rev-parse HEAD",
		  fx.env);
	fx.have_git = out != NULL;
	free(out);
	snprintf(fx.prog, sizeof(fx.prog), "%s/prog", fx.dir);
	snprintf(fx.stripped, sizeof(fx.stripped), "%s/prog.stripped", fx.dir);
	snprintf(fx.pie, sizeof(fx.pie), "%s/prog.pie", fx.dir);
	out = run("%s go build -o prog . && go build -ldflags='-s -w' -o prog.stripped . && "
		  "go build -buildmode=pie -o prog.pie . && echo ok",
		  fx.env);
	if (!out) {
		fprintf(stderr, "go build failed in %s\n", fx.dir);
		return -1;
	}
	free(out);
	char err[256];
	if (ember_gopclntab_open(fx.prog, &fx.g, err, sizeof(err)) ||
	    ember_gopclntab_open(fx.stripped, &fx.gs, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	ember_gopclntab_free(fx.g);
	ember_gopclntab_free(fx.gs);
	if (fx.dir[0]) {
		char *out = run("rm -rf %s", fx.dir);
		free(out);
	}
	return 0;
}

#define NEED_GO()                         \
	do {                              \
		if (!fx.g)                \
			skip();           \
	} while (0)

/* Address of a symbol in the plain build, from `go tool nm`. */
static uint64_t nm_addr(const char *sym)
{
	char *out = run("%s go tool nm prog", fx.env);
	uint64_t addr = 0;

	assert_non_null(out);
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long a;
		char type, name[512];
		if (sscanf(line, " %llx %c %511s", &a, &type, name) == 3 && strcmp(name, sym) == 0)
			addr = a;
	}
	free(out);
	return addr;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- symbolization ---- */

static void check_entry(struct ember_gopclntab *g, const char *sym, int line)
{
	struct ember_go_frame fr[8];
	uint64_t addr = nm_addr(sym);

	assert_true(addr != 0);
	int n = ember_gopclntab_lookup(g, addr, fr, 8);
	assert_int_equal(n, 1);
	assert_string_equal(fr[0].name, sym);
	assert_true(ends_with(fr[0].file, "/main.go"));
	assert_int_equal(fr[0].line, line);
	assert_int_equal(fr[0].entry, addr);
	assert_false(fr[0].inlined);
}

static void test_known_functions(void **state)
{
	NEED_GO();
	struct ember_gopclntab *gs[2] = {fx.g, fx.gs};
	for (int i = 0; i < 2; i++) {
		check_entry(gs[i], "main.work", 12);
		check_entry(gs[i], "main.leaf", 21);
		check_entry(gs[i], "main.big", 24);
		check_entry(gs[i], "main.main", 32);
	}
	struct ember_go_frame fr[4];
	assert_int_equal(ember_gopclntab_lookup(fx.g, 0x10, fr, 4), 0); /* not Go code */
}

static void test_inline_chain(void **state)
{
	NEED_GO();
	char *out = run("%s go build -gcflags=-m -o /dev/null . 2>&1", fx.env);
	assert_non_null(out);
	assert_non_null(strstr(out, "inlining call to add3"));
	free(out);

	uint64_t work = nm_addr("main.work");
	struct ember_go_frame fr[8];
	int chains = 0;
	for (uint64_t pc = work; pc < work + 0x200; pc++) {
		int n = ember_gopclntab_lookup(fx.gs, pc, fr, 8);
		if (n < 1 || strcmp(fr[n - 1].name, "main.work") != 0)
			break;
		if (n == 1)
			continue;
		assert_int_equal(n, 2);
		assert_string_equal(fr[0].name, "main.add3");
		assert_true(fr[0].inlined);
		assert_int_equal(fr[0].line, 8);
		assert_string_equal(fr[1].name, "main.work");
		assert_false(fr[1].inlined);
		assert_int_equal(fr[1].line, 15);
		assert_string_equal(fr[0].file, fr[1].file);
		chains++;
	}
	assert_true(chains > 0);
	/* max smaller than the chain: innermost first, truncated */
	for (uint64_t pc = work; pc < work + 0x200; pc++) {
		if (ember_gopclntab_lookup(fx.g, pc, fr, 8) == 2) {
			assert_int_equal(ember_gopclntab_lookup(fx.g, pc, fr, 1), 1);
			assert_string_equal(fr[0].name, "main.add3");
			break;
		}
	}
}

/* A few addresses in every function: entry and spread inside. */
static size_t sample_pcs(struct ember_gopclntab *g, uint64_t *pcs, size_t max, unsigned per_func)
{
	struct ember_gopclntab_info info;
	size_t n = 0;

	ember_gopclntab_info(g, &info);
	for (uint64_t i = 0; i < info.nfunc && n < max; i++) {
		const char *name;
		uint64_t entry, end;
		if (ember_gopclntab_func(g, i, &name, &entry, &end))
			continue;
		for (unsigned k = 0; k < per_func && n < max; k++)
			pcs[n++] = entry + (end - entry) * k / per_func;
	}
	return n;
}

static bool same_frame(const struct ember_go_frame *a, const struct ember_go_frame *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->file, b->file) == 0 &&
	       a->line == b->line && a->inlined == b->inlined && a->entry == b->entry;
}

static void test_stripped_identical(void **state)
{
	NEED_GO();
	struct ember_gopclntab_info a, b;
	ember_gopclntab_info(fx.g, &a);
	ember_gopclntab_info(fx.gs, &b);
	assert_int_equal(a.nfunc, b.nfunc);
	assert_true(a.nfunc > 500);
	assert_int_equal(a.magic, 0xfffffff0u); /* Go 1.18-1.19 */
	assert_true(a.inline_trees && b.inline_trees);

	static uint64_t pcs[20000];
	size_t n = sample_pcs(fx.g, pcs, 20000, 8), inlined = 0;
	for (size_t i = 0; i < n; i++) {
		struct ember_go_frame fa[16], fb[16];
		int na = ember_gopclntab_lookup(fx.g, pcs[i], fa, 16);
		int nb = ember_gopclntab_lookup(fx.gs, pcs[i], fb, 16);
		assert_int_equal(na, nb);
		assert_true(na >= 1);
		for (int k = 0; k < na; k++)
			assert_true(same_frame(&fa[k], &fb[k]));
		inlined += na > 1;
	}
	assert_true(inlined > 10); /* the runtime inlines plenty */
}

static void test_pie(void **state)
{
	NEED_GO();
	struct ember_gopclntab *p;
	char err[256];
	assert_int_equal(ember_gopclntab_open(fx.pie, &p, err, sizeof(err)), 0);
	struct ember_gopclntab_info info;
	ember_gopclntab_info(p, &info);
	assert_true(info.inline_trees);
	const char *name;
	uint64_t entry = 0, end = 0;
	for (uint64_t i = 0; i < info.nfunc; i++)
		if (ember_gopclntab_func(p, i, &name, &entry, &end) == 0 &&
		    strcmp(name, "main.work") == 0)
			break;
	assert_true(end > entry);
	int chains = 0;
	for (uint64_t pc = entry; pc < end; pc++) {
		struct ember_go_frame fr[4];
		int n = ember_gopclntab_lookup(p, pc, fr, 4);
		assert_true(n >= 1);
		if (n == 2 && strcmp(fr[0].name, "main.add3") == 0 && fr[1].line == 15)
			chains++;
	}
	assert_true(chains > 0);
	ember_gopclntab_free(p);
}

/*
 * go tool addr2line prints the physical function and the innermost
 * file:line (it does not expand inlining): compare it with our outermost
 * name and innermost position.
 */
static void test_addr2line_agreement(void **state)
{
	NEED_GO();
	static uint64_t all[20000];
	size_t n_all = sample_pcs(fx.g, all, 20000, 3);
	uint64_t pcs[400];
	size_t n = 0;
	for (size_t i = 0; i < n_all && n < 400; i += n_all / 400 + 1)
		pcs[n++] = all[i];
	assert_true(n >= 300);

	char in[512];
	snprintf(in, sizeof(in), "%s/addrs.txt", fx.dir);
	FILE *f = fopen(in, "w");
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "0x%llx\n", (unsigned long long)pcs[i]);
	fclose(f);
	char *out = run("%s go tool addr2line prog < addrs.txt", fx.env);
	assert_non_null(out);

	size_t agree = 0, total = 0;
	char *save = NULL, *fn = strtok_r(out, "\n", &save);
	for (size_t i = 0; i < n && fn; i++) {
		char *pos = strtok_r(NULL, "\n", &save);
		if (!pos)
			break;
		struct ember_go_frame fr[16];
		char ours[1024] = "?";
		int k = ember_gopclntab_lookup(fx.gs, pcs[i], fr, 16);
		if (k > 0)
			snprintf(ours, sizeof(ours), "%s:%d", fr[0].file, fr[0].line);
		total++;
		if (k > 0 && strcmp(fn, fr[k - 1].name) == 0 && strcmp(pos, ours) == 0)
			agree++;
		else
			fprintf(stderr, "  0x%llx: addr2line %s %s, ember %s %s\n",
				(unsigned long long)pcs[i], fn, pos, k > 0 ? fr[k - 1].name : "-",
				ours);
		fn = strtok_r(NULL, "\n", &save);
	}
	free(out);
	fprintf(stderr, "addr2line agreement: %zu/%zu\n", agree, total);
	assert_int_equal(total, n);
	assert_true(agree * 100 >= total * 99);
}

/* ---- unwind rows ---- */

static const struct ember_unwind_row *row_at(const struct ember_unwind_table *t, uint64_t pc)
{
	size_t lo = 0, hi = t->n_rows;

	if (pc < t->base || pc - t->base > UINT32_MAX)
		return NULL;
	while (lo < hi) { /* first row with pc > target */
		size_t mid = lo + (hi - lo) / 2;
		if (t->rows[mid].pc <= pc - t->base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &t->rows[lo - 1] : NULL;
}

static void check_table_shape(const struct ember_unwind_table *t)
{
	assert_true(t->n_rows > 0);
	for (size_t i = 1; i < t->n_rows; i++) {
		const struct ember_unwind_row *a = &t->rows[i - 1], *b = &t->rows[i];
		assert_true(a->pc < b->pc);
		assert_false(a->kind == b->kind && a->cfa_offset == b->cfa_offset &&
			     a->rbp_offset == b->rbp_offset);
	}
	assert_int_equal(EMBER_ROW_CFA(&t->rows[t->n_rows - 1]), EMBER_CFA_GAP);
}

/* Compare the CFA at every pc covered by .debug_frame (readelf's interpretation). */
static void test_rows_vs_debug_frame(void **state)
{
	NEED_GO();
	struct ember_unwind_table t;
	char err[256];
	assert_int_equal(ember_gopclntab_compile_rows(fx.g, &t, err, sizeof(err)), 0);
	check_table_shape(&t);
	assert_int_equal(t.base, 0x400000); /* first executable PT_LOAD of a Go binary */

	char *out = run("readelf --debug-dump=frames-interp %s", fx.prog);
	assert_non_null(out);
	uint64_t fde_end = 0, row_pc = 0, agree = 0, total = 0, skipped = 0, bad_shown = 0;
	long cfa = -1;
	/* Each FDE: "... FDE cie=... pc=START..END", then rows "ADDR rsp+N c-8". */
	for (char *save = NULL, *line = strtok_r(out, "\n", &save); ; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, b;
		long off;
		char *fde = line ? strstr(line, " FDE ") : NULL;
		bool is_row = line && !fde && sscanf(line, "%llx rsp+%ld", &a, &off) == 2;
		if (!line || fde || is_row) {
			/* close the previous row range */
			uint64_t stop = !line || fde ? fde_end : a;
			for (uint64_t pc = row_pc; cfa >= 0 && pc < stop && pc < fde_end; pc++) {
				const struct ember_unwind_row *r = row_at(&t, pc);
				int kind = r ? EMBER_ROW_CFA(r) : -1;
				if (kind == EMBER_CFA_END_OF_STACK || kind == EMBER_CFA_UNSUPPORTED ||
				    kind == EMBER_CFA_SIGNAL) {
					skipped++;
					continue;
				}
				total++;
				/* stack-switch rows keep the function's own CFA for before the switch */
				long ours = kind == EMBER_CFA_RSP || kind == EMBER_CFA_GO_SIGTRAMP
						    ? r->cfa_offset
					    : kind == EMBER_CFA_GO_SWITCH
						    ? EMBER_GO_SWITCH_CFA(r->cfa_offset)
						    : -1;
				if (ours == cfa)
					agree++;
				else if (bad_shown++ < 20)
					fprintf(stderr, "  0x%llx: debug_frame rsp+%ld, ember kind %d off %d\n",
						(unsigned long long)pc, cfa, kind, r ? r->cfa_offset : -1);
			}
			cfa = -1;
		}
		if (!line)
			break;
		if (fde && sscanf(strstr(fde, "pc="), "pc=%llx..%llx", &a, &b) == 2) {
			fde_end = b;
		} else if (is_row) {
			row_pc = a;
			cfa = off;
		}
	}
	free(out);
	fprintf(stderr, "debug_frame CFA agreement: %llu/%llu pcs (%llu in end-of-stack/unsupported functions)\n",
		(unsigned long long)agree, (unsigned long long)total, (unsigned long long)skipped);
	assert_true(total > 100000);
	assert_true(agree * 100 >= total * 99);
	ember_unwind_table_free(&t);
}

/* One instruction of `go tool objdump`: address and text. */
struct insn {
	uint64_t addr;
	char text[128];
};

static size_t objdump(const char *sym, struct insn *v, size_t max)
{
	char *out = run("%s go tool objdump -s '^%s$' prog", fx.env, sym);
	size_t n = 0;

	assert_non_null(out);
	for (char *save = NULL, *line = strtok_r(out, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a;
		char hex[64];
		int used = 0;
		/* "  main.go:24\t\t0x481039\t\t4889ac2418020000\tMOVQ BP, 0x218(SP)\t" */
		char *p = strstr(line, "0x");
		if (!p || sscanf(p, "%llx %63s %n", &a, hex, &used) < 2 || !used)
			continue;
		v[n].addr = a;
		snprintf(v[n].text, sizeof(v[n].text), "%s", p + used);
		n++;
	}
	free(out);
	return n;
}

static void test_rows_prologue(void **state)
{
	NEED_GO();
	struct ember_unwind_table t;
	char err[256];
	assert_int_equal(ember_gopclntab_compile_rows(fx.gs, &t, err, sizeof(err)), 0);

	/* main.big: entry rsp+8; rbp saved by the MOVQ BP after SUBQ $d, SP */
	static struct insn v[512];
	size_t n = objdump("main.big", v, 512);
	assert_true(n > 10);
	const struct ember_unwind_row *r = row_at(&t, v[0].addr);
	assert_int_equal(EMBER_ROW_CFA(r), EMBER_CFA_RSP);
	assert_int_equal(r->cfa_offset, 8);
	assert_int_equal(EMBER_ROW_RBP(r), EMBER_RBP_SAME);
	bool seen_store = false, seen_ret = false;
	unsigned frame = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (!frame && sscanf(v[i].text, "SUBQ $0x%x, SP", &frame) == 1) {
			r = row_at(&t, v[i + 1].addr); /* after the SUBQ: the frame is there */
			assert_int_equal(r->cfa_offset, frame + 8);
			assert_int_equal(EMBER_ROW_RBP(r), EMBER_RBP_SAME); /* not stored yet */
		}
		if (frame && !seen_store && strncmp(v[i].text, "MOVQ BP, 0x", 11) == 0 &&
		    strstr(v[i].text, "(SP)")) {
			r = row_at(&t, v[i + 1].addr);
			assert_int_equal(r->cfa_offset, frame + 8);
			assert_int_equal(EMBER_ROW_RBP(r), EMBER_RBP_AT_CFA);
			assert_int_equal(r->rbp_offset, -2);
			seen_store = true;
		}
		if (seen_store && strncmp(v[i + 1].text, "RET", 3) == 0) {
			r = row_at(&t, v[i + 1].addr); /* after ADDQ $d, SP */
			assert_int_equal(r->cfa_offset, 8);
			assert_int_equal(EMBER_ROW_RBP(r), EMBER_RBP_SAME);
			seen_ret = true;
		}
	}
	assert_true(frame > 0 && seen_store && seen_ret);

	/* main.leaf: frameless, rsp+8 throughout, then a gap up to the next function */
	n = objdump("main.leaf", v, 512);
	for (size_t i = 0; i < n; i++) {
		r = row_at(&t, v[i].addr);
		assert_int_equal(EMBER_ROW_CFA(r), EMBER_CFA_RSP);
		assert_int_equal(r->cfa_offset, 8);
		assert_int_equal(EMBER_ROW_RBP(r), EMBER_RBP_SAME);
	}
	r = row_at(&t, v[n - 1].addr + 1); /* RET is one byte */
	assert_int_equal(EMBER_ROW_CFA(r), EMBER_CFA_GAP);

	/* the goroutine root ends the stack */
	r = row_at(&t, nm_addr("runtime.goexit.abi0") + 1);
	assert_int_equal(EMBER_ROW_CFA(r), EMBER_CFA_END_OF_STACK);
	assert_true(t.stats.fdes > 500);
	assert_true(t.stats.end_of_stack >= 3);
	ember_unwind_table_free(&t);
}

/* ---- build info ---- */

static void test_buildinfo(void **state)
{
	NEED_GO();
	char *out = run("%s go version -m prog", fx.env), ver[64] = "", path[256] = "",
	     mod[256] = "", modver[64] = "";
	assert_non_null(out);
	for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "prog: ", 6) == 0)
			snprintf(ver, sizeof(ver), "%s", line + 6);
		sscanf(line, "\tpath\t%255s", path);
		sscanf(line, "\tmod\t%255s\t%63s", mod, modver);
	}
	free(out);

	const struct ember_gobuildinfo *bis[2] = {ember_gopclntab_buildinfo(fx.g),
						  ember_gopclntab_buildinfo(fx.gs)};
	for (int i = 0; i < 2; i++) {
		const struct ember_gobuildinfo *bi = bis[i];
		assert_non_null(bi);
		assert_string_equal(bi->go_version, ver);
		assert_string_equal(bi->path, path);
		assert_string_equal(bi->main_path, MODULE);
		assert_string_equal(bi->main_path, mod);
		assert_string_equal(bi->main_version, modver);
		assert_string_equal(ember_gobuildinfo_setting(bi, "GOARCH"), "amd64");
		assert_string_equal(ember_gobuildinfo_setting(bi, "-compiler"), "gc");
		assert_null(ember_gobuildinfo_setting(bi, "no.such.key"));
	}
	assert_non_null(strstr(ember_gobuildinfo_setting(bis[1], "-ldflags"), "-s -w"));
	if (fx.have_git) {
		char *rev = run("%s git rev-parse HEAD", fx.env);
		assert_non_null(rev);
		rev[strcspn(rev, "\n")] = '\0';
		assert_string_equal(ember_gobuildinfo_setting(bis[0], "vcs.revision"), rev);
		assert_string_equal(ember_gobuildinfo_setting(bis[0], "vcs"), "git");
		free(rev);
	}

	struct ember_gobuildinfo *bi;
	char err[256];
	assert_int_equal(ember_gobuildinfo_read(fx.pie, &bi, err, sizeof(err)), 0);
	assert_string_equal(bi->go_version, ver);
	assert_string_equal(bi->main_path, MODULE);
	ember_gobuildinfo_free(bi);
	assert_int_equal(ember_gobuildinfo_read("/bin/sh", &bi, err, sizeof(err)), -ENOENT);
	assert_null(bi);
}

/* ---- other layouts, on hand-built tables ---- */

static void test_synthetic_layouts(void **state)
{
	static const int vers[] = {16, 18, 20};
	uint8_t buf[1024];

	for (int v = 0; v < 3; v++) {
		size_t len = synth_pclntab(buf, sizeof(buf), vers[v]);
		struct ember_gopclntab *g;
		char err[256];
		assert_true(len <= sizeof(buf));
		assert_int_equal(ember_gopclntab_parse(buf, len, 0x4b0000, &g, err, sizeof(err)), 0);

		struct ember_gopclntab_info info;
		ember_gopclntab_info(g, &info);
		assert_int_equal(info.go_min, vers[v]);
		assert_int_equal(info.nfunc, 2);
		assert_int_equal(info.text_start, SYNTH_TEXT);
		assert_int_equal(info.text_end, SYNTH_TEXT + 0x40);

		struct ember_go_frame fr[4];
		assert_int_equal(ember_gopclntab_lookup(g, SYNTH_TEXT + 2, fr, 4), 1);
		assert_string_equal(fr[0].name, "main.f");
		assert_string_equal(fr[0].file, "/src/a.go");
		assert_int_equal(fr[0].line, 10);
		assert_int_equal(ember_gopclntab_lookup(g, SYNTH_TEXT + 0x25, fr, 4), 1);
		assert_string_equal(fr[0].name, "main.g");
		assert_int_equal(fr[0].line, 11);
		assert_int_equal(fr[0].start_line, vers[v] >= 20 ? 42 : 0);
		assert_int_equal(fr[0].entry, SYNTH_TEXT + 0x20);
		assert_int_equal(ember_gopclntab_lookup(g, SYNTH_TEXT + 0x40, fr, 4), 0);
		assert_int_equal(ember_gopclntab_lookup(g, SYNTH_TEXT - 1, fr, 4), 0);

		const char *name;
		uint64_t entry, end;
		assert_int_equal(ember_gopclntab_func(g, 1, &name, &entry, &end), 0);
		assert_string_equal(name, "main.g");
		assert_int_equal(end - entry, SYNTH_FUNC_LEN);

		struct ember_unwind_table t;
		assert_int_equal(ember_gopclntab_compile_rows(g, &t, err, sizeof(err)), 0);
		check_table_shape(&t);
		/* f: rsp+8 [0,4), rsp+32 [4,20), rsp+8 [20,21), gap; g alike; gap */
		static const struct {
			uint64_t off;
			int cfa, cfa_off;
		} want[] = {{0, EMBER_CFA_RSP, 8},   {4, EMBER_CFA_RSP, 32},  {20, EMBER_CFA_RSP, 8},
			    {21, EMBER_CFA_GAP, 0},  {0x20, EMBER_CFA_RSP, 8}, {0x24, EMBER_CFA_RSP, 32},
			    {0x34, EMBER_CFA_RSP, 8}, {0x35, EMBER_CFA_GAP, 0}};
		assert_int_equal(t.n_rows, 8);
		for (size_t i = 0; i < 8; i++) {
			assert_int_equal(t.base + t.rows[i].pc, SYNTH_TEXT + want[i].off);
			assert_int_equal(EMBER_ROW_CFA(&t.rows[i]), want[i].cfa);
			assert_int_equal(t.rows[i].cfa_offset, want[i].cfa_off);
			assert_int_equal(EMBER_ROW_RBP(&t.rows[i]), EMBER_RBP_SAME); /* no code */
		}
		ember_unwind_table_free(&t);
		ember_gopclntab_free(g);
	}
}

/* ---- malformed input ---- */

/* Everything the API does on one table; the sanitizers watch. */
static void exercise(struct ember_gopclntab *g)
{
	struct ember_gopclntab_info info;
	struct ember_go_frame fr[8];
	struct ember_unwind_table t;
	char err[256];

	ember_gopclntab_info(g, &info);
	for (uint64_t pc = info.text_start; pc < info.text_start + 0x60; pc++)
		ember_gopclntab_lookup(g, pc, fr, 8);
	for (uint64_t i = 0; i < info.nfunc && i < 64; i++) {
		const char *name;
		uint64_t a, b;
		ember_gopclntab_func(g, i, &name, &a, &b);
	}
	if (ember_gopclntab_compile_rows(g, &t, err, sizeof(err)) == 0)
		ember_unwind_table_free(&t);
}

static uint32_t prng(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void test_malformed(void **state)
{
	uint8_t buf[1024], bad[1024];
	struct ember_gopclntab *g;
	char err[256];
	size_t len = synth_pclntab(buf, sizeof(buf), 18);

	/* every truncation: an error or a smaller table, never a crash */
	for (size_t n = 0; n < len; n++) {
		if (ember_gopclntab_parse(buf, n, 0x4b0000, &g, err, sizeof(err)) == 0) {
			exercise(g);
			ember_gopclntab_free(g);
		} else {
			assert_null(g);
			assert_true(err[0] != '\0');
		}
	}
	assert_int_equal(ember_gopclntab_parse(buf, 40, 0x4b0000, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "truncated"));

	/* Go 1.2-1.15 and unknown magics */
	memcpy(bad, buf, len);
	bad[0] = 0xfb;
	assert_int_equal(ember_gopclntab_parse(bad, len, 0, &g, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "1.2"));
	bad[0] = 0x12;
	assert_int_equal(ember_gopclntab_parse(bad, len, 0, &g, err, sizeof(err)), -EINVAL);

	/* random corruption of all three layouts */
	uint32_t seed = 12345;
	for (int v = 16; v <= 20; v += 2) {
		len = synth_pclntab(buf, sizeof(buf), v);
		for (int iter = 0; iter < 3000; iter++) {
			memcpy(bad, buf, len);
			int flips = 1 + prng(&seed) % 4;
			for (int k = 0; k < flips; k++)
				bad[8 + prng(&seed) % (len - 8)] = (uint8_t)prng(&seed);
			if (ember_gopclntab_parse(bad, len, 0x4b0000, &g, err, sizeof(err)) == 0) {
				exercise(g);
				ember_gopclntab_free(g);
			}
		}
	}

	/* not Go, not ELF, truncated ELF images */
	assert_int_equal(ember_gopclntab_open("/bin/sh", &g, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/bin/sh"));
	assert_int_equal(ember_gopclntab_open("/nonexistent/x", &g, err, sizeof(err)), -ENOENT);
	assert_int_equal(ember_gopclntab_open_image("garbage", 7, "mem", &g, err, sizeof(err)),
			 -ENOEXEC);
	if (!fx.g)
		return;
	FILE *f = fopen(fx.stripped, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	rewind(f);
	uint8_t *img = malloc((size_t)size);
	assert_int_equal(fread(img, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	assert_int_equal(ember_gopclntab_open_image(img, (size_t)size, "img", &g, err, sizeof(err)), 0);
	exercise(g);
	ember_gopclntab_free(g);
	static const double cuts[] = {0.001, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		if (ember_gopclntab_open_image(img, (size_t)(size * cuts[i]), "img", &g, err,
					       sizeof(err)) == 0) {
			exercise(g);
			ember_gopclntab_free(g);
		}
	}
	/* garbage in the pclntab of a real image */
	for (int iter = 0; iter < 20; iter++) {
		for (int k = 0; k < 200; k++) {
			size_t at = (size_t)size / 2 + prng(&seed) % ((size_t)size / 2);
			img[at] = (uint8_t)prng(&seed);
		}
		if (ember_gopclntab_open_image(img, (size_t)size, "img", &g, err, sizeof(err)) == 0) {
			exercise(g);
			ember_gopclntab_free(g);
		}
	}
	free(img);
}

/*
 * Where the runtime keeps g, m and gobuf: decoded from the runtime's own
 * instructions (what stripped binaries get) must equal what the Go
 * compiler wrote in DWARF, and the stripped build must decode the same.
 */
static void test_runtime_offsets(void **state)
{
	NEED_GO();
	struct ember_go_runtime dw, code, stripped;
	enum ember_go_runtime_source src;

	assert_int_equal(ember_gopclntab_runtime(fx.g, fx.prog, &dw, &src), 0);
	assert_int_equal(src, EMBER_GO_RUNTIME_DWARF);
	assert_int_equal(ember_gopclntab_runtime(fx.g, NULL, &code, &src), 0);
	assert_int_equal(src, EMBER_GO_RUNTIME_CODE);
	assert_int_equal(ember_gopclntab_runtime(fx.gs, fx.stripped, &stripped, &src), 0);
	assert_int_equal(src, EMBER_GO_RUNTIME_CODE); /* -s -w: no DWARF */
	fprintf(stderr, "runtime offsets (DWARF): tls_g %d g.m %u g.sched.sp/pc/bp %u/%u/%u "
			"m.g0 %u m.curg %u m.vdsoSP %u m.vdsoPC %u\n",
		dw.tls_g, dw.g_m, dw.g_sched_sp, dw.g_sched_pc, dw.g_sched_bp, dw.m_g0, dw.m_curg,
		dw.m_vdso_sp, dw.m_vdso_pc);
	assert_int_equal(dw.tls_g, -8);
	assert_memory_equal(&dw, &code, sizeof(dw));
	assert_memory_equal(&dw, &stripped, sizeof(dw));
	assert_true(dw.m_curg > 0 && dw.m_vdso_sp > 0 && dw.m_vdso_pc > 0);
}

/* The row at a function's entry, by name from `go tool nm`. */
static const struct ember_unwind_row *row_of(const struct ember_unwind_table *t, const char *sym)
{
	uint64_t a = nm_addr(sym);
	return a ? row_at(t, a) : NULL;
}

/* The runtime's stack-switching functions get rows saying how to cross them. */
static void test_rows_stack_switches(void **state)
{
	NEED_GO();
	static const struct {
		const char *sym;
		int kind, how;
	} want[] = {
		{"runtime.systemstack.abi0", EMBER_CFA_GO_SWITCH, EMBER_GO_SWITCH_SYSTEMSTACK},
		{"runtime.mcall", EMBER_CFA_GO_SWITCH, EMBER_GO_SWITCH_SCHED},
		{"runtime.morestack.abi0", EMBER_CFA_GO_SWITCH, EMBER_GO_SWITCH_SCHED},
		{"runtime.nanotime1.abi0", EMBER_CFA_GO_SWITCH, EMBER_GO_SWITCH_VDSO},
		{"runtime.gogo.abi0", EMBER_CFA_GO_SWITCH, EMBER_GO_SWITCH_GOGO},
		{"runtime.sigtramp.abi0", EMBER_CFA_GO_SIGTRAMP, -1},
		{"runtime.sigreturn.abi0", EMBER_CFA_SIGNAL, -1},
	};
	struct ember_unwind_table t;
	char err[256];

	assert_int_equal(ember_gopclntab_compile_rows(fx.g, &t, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct ember_unwind_row *r = row_of(&t, want[i].sym);
		if (!r)
			fail_msg("%s: no row", want[i].sym);
		assert_int_equal(EMBER_ROW_CFA(r), want[i].kind);
		if (want[i].how >= 0) {
			assert_int_equal(EMBER_GO_SWITCH_HOW(r->cfa_offset), want[i].how);
			assert_int_equal(EMBER_GO_SWITCH_CFA(r->cfa_offset), 8); /* entry: ra at rsp */
		}
	}
	ember_unwind_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_functions),
		cmocka_unit_test(test_inline_chain),
		cmocka_unit_test(test_stripped_identical),
		cmocka_unit_test(test_pie),
		cmocka_unit_test(test_addr2line_agreement),
		cmocka_unit_test(test_rows_vs_debug_frame),
		cmocka_unit_test(test_rows_prologue),
		cmocka_unit_test(test_runtime_offsets),
		cmocka_unit_test(test_rows_stack_switches),
		cmocka_unit_test(test_buildinfo),
		cmocka_unit_test(test_synthetic_layouts),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
