/*
 * cmd_symbolize.c - `ember symbolize`: print the frames Ember gives addresses.
 *
 *   ember symbolize --exe FILE [--json|--llvm] [ADDR...]
 *   ember symbolize --pid PID  [--json|--llvm] [ADDR...]
 *
 * With --exe, ADDR is an ELF virtual address of FILE (what nm, objdump and
 * `llvm-symbolizer --obj=FILE` take).  With --pid, ADDR is an address in
 * the live process PID, resolved through its /proc/PID/maps as the
 * profiler does.  Addresses are hex, "0x" optional; without ADDR
 * arguments they are read from stdin, one per line.
 *
 * Output: for each address, each frame of its inline chain, innermost
 * first, as two lines (function, then file:line:column) like
 * `llvm-symbolizer --inlining`, inlined frames marked " (inlined)", then an
 * empty line.  --llvm drops the marks and spells clone suffixes and
 * closures as LLVM's demangler does, so the output can be diffed with
 * llvm-symbolizer's;
 * --json prints one JSON object per address.  The tool
 * for users who want to know what a frame will look like, and for tests.
 * Exit status: 0, 1 when FILE/PID cannot be used, 2 on usage errors.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "core/profile.h"
#include "core/strbuf.h"
#include "symbolizer/dwarf.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"

enum out_style { STYLE_PLAIN, STYLE_LLVM, STYLE_JSON };

struct sym_ctx {
	enum out_style style;
	struct ember_elf *elf;      /* --exe */
	struct ember_symbolizer *s; /* --pid */
	struct ember_profile *p;
	uint32_t pid;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ember symbolize (--exe FILE | --pid PID) [--json | --llvm] [ADDR...]\n\n"
		   "Print the function, file:line and inline chain of each address (hex;\n"
		   "read from stdin, one per line, when none is given).\n\n"
		   "  -e, --exe FILE  addresses are ELF virtual addresses of FILE\n"
		   "  -p, --pid PID   addresses are in the live process PID\n"
		   "  -j, --json      one JSON object per address\n"
		   "  -l, --llvm      exactly llvm-symbolizer --inlining's output (no inline marks)\n");
}

static int parse_addr(const char *s, uint64_t *out)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!isxdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 16);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * Rewrite the last "{lambda(ARGS)#N}" or "{unnamed type#N}" in buf the way
 * LLVM's demangler spells it: 'lambda'(ARGS), 'lambda0'(ARGS) for #2, ...;
 * 'unnamed', 'unnamed0', ...  Returns false when there is none left.
 */
static bool llvm_closure(struct strbuf *buf)
{
	static const char *const kinds[] = {"{lambda(", "{unnamed type#"};
	char *best = NULL;
	int kind = 0;

	for (int k = 0; k < 2; k++) {
		for (char *p = strstr(buf->buf, kinds[k]); p; p = strstr(p + 1, kinds[k]))
			if (p > best) {
				best = p;
				kind = k;
			}
	}
	if (!best)
		return false;
	char *args = best + strlen(kinds[kind]), *hash = args, *digits;
	if (kind == 0) /* ARGS end at the first ")#" */
		hash = strstr(args, ")#");
	else
		hash = args - 1;
	if (!hash)
		return false;
	digits = hash + (kind == 0 ? 2 : 1);
	char *close = digits;
	while (*close >= '0' && *close <= '9')
		close++;
	if (close == digits || *close != '}')
		return false;
	unsigned long n = strtoul(digits, NULL, 10);
	char count[24] = "";
	if (n > 1)
		snprintf(count, sizeof(count), "%lu", n - 2);

	struct strbuf out;
	sb_init(&out);
	sb_append(&out, buf->buf, (size_t)(best - buf->buf));
	sb_printf(&out, "'%s%s'", kind == 0 ? "lambda" : "unnamed", count);
	if (kind == 0) {
		sb_putc(&out, '(');
		sb_append(&out, args, (size_t)(hash - args));
		sb_putc(&out, ')');
	}
	sb_puts(&out, close + 1);
	sb_free(buf);
	*buf = out;
	return !out.oom;
}

/*
 * A demangled name as LLVM's demangler spells it.  The C++ runtime writes
 * GCC's clone suffixes as "f() [clone .isra.0] [clone .cold]", LLVM as
 * "f() (.isra.0.cold)"; closures as "{lambda(int)#1}" and "{unnamed
 * type#1}", LLVM as "'lambda'(int)" and "'unnamed'".  The rest is alike.
 */
static void put_llvm_name(struct strbuf *sb, const char *name)
{
	static const char mark[] = " [clone ";
	struct strbuf buf;

	sb_init(&buf);
	sb_puts(&buf, name);
	for (int i = 0; i < 64 && llvm_closure(&buf); i++)
		;
	const char *s = buf.oom ? name : buf.buf, *clone = strstr(s, mark);
	if (!clone) {
		sb_puts(sb, s);
		sb_free(&buf);
		return;
	}
	const char *p = clone;
	sb_append(sb, s, (size_t)(clone - s));
	sb_puts(sb, " (");
	while (!strncmp(p, mark, sizeof(mark) - 1)) {
		const char *q = p + sizeof(mark) - 1, *end = strchr(q, ']');
		if (!end)
			break;
		sb_append(sb, q, (size_t)(end - q));
		p = end + 1;
	}
	sb_putc(sb, ')');
	sb_puts(sb, p); /* whatever follows the suffixes (nothing in practice) */
	sb_free(&buf);
}

static void print_frame(struct sym_ctx *c, struct strbuf *sb, const char *function,
			const char *file, uint32_t line, uint32_t column, bool has_column,
			bool inlined, bool first)
{
	if (c->style == STYLE_JSON) {
		sb_puts(sb, first ? "" : ",");
		sb_puts(sb, "{\"function\":");
		sb_json_str(sb, function);
		sb_puts(sb, ",\"file\":");
		sb_json_str(sb, file);
		sb_printf(sb, ",\"line\":%u", line);
		if (has_column)
			sb_printf(sb, ",\"column\":%u", column);
		sb_printf(sb, ",\"inlined\":%s}", inlined ? "true" : "false");
		return;
	}
	if (c->style == STYLE_LLVM && function)
		put_llvm_name(sb, function);
	else
		sb_puts(sb, function ? function : "??");
	if (inlined && c->style == STYLE_PLAIN)
		sb_puts(sb, " (inlined)");
	sb_printf(sb, "\n%s:%u", file ? file : "??", line);
	if (has_column)
		sb_printf(sb, ":%u", column);
	sb_putc(sb, '\n');
}

/* --exe: frames straight from the ELF file (columns included). */
static void symbolize_exe(struct sym_ctx *c, uint64_t addr, struct strbuf *sb)
{
	struct ember_sym_frame f[EMBER_DWARF_MAX_CHAIN];
	int n = ember_elf_symbolize(c->elf, addr, f, EMBER_DWARF_MAX_CHAIN);

	if (n <= 0) {
		print_frame(c, sb, NULL, NULL, 0, 0, true, false, true);
		return;
	}
	for (int i = 0; i < n; i++)
		print_frame(c, sb, f[i].function, f[i].file, f[i].line, f[i].column, true,
			    i < n - 1, i == 0);
}

/* --pid: frames as the profiler records them (no columns in the profile model). */
static void symbolize_pid(struct sym_ctx *c, uint64_t addr, struct strbuf *sb)
{
	uint32_t ids[EMBER_DWARF_MAX_CHAIN];
	int n = ember_symbolize_user(c->s, c->pid, addr, c->p, ids, EMBER_DWARF_MAX_CHAIN);

	if (n <= 0) {
		print_frame(c, sb, NULL, NULL, 0, 0, false, false, true);
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct ember_frame *f = &c->p->frames[ids[i]];
		print_frame(c, sb, f->function, f->file, f->line, 0, false,
			    (f->flags & EMBER_FRAME_INLINED) != 0, i == 0);
	}
}

static void symbolize_one(struct sym_ctx *c, uint64_t addr)
{
	struct strbuf sb;

	sb_init(&sb);
	if (c->style == STYLE_JSON)
		sb_printf(&sb, "{\"address\":\"0x%" PRIx64 "\",\"frames\":[", addr);
	if (c->elf)
		symbolize_exe(c, addr, &sb);
	else
		symbolize_pid(c, addr, &sb);
	sb_puts(&sb, c->style == STYLE_JSON ? "]}\n" : "\n");
	if (!sb.oom)
		fwrite(sb.buf, 1, sb.len, stdout);
	sb_free(&sb);
}

static int run(struct sym_ctx *c, int argc, char **argv)
{
	int bad = 0;
	uint64_t addr;

	if (argc > 0) {
		for (int i = 0; i < argc; i++) {
			if (parse_addr(argv[i], &addr) != 0) {
				fprintf(stderr, "ember symbolize: bad address '%s'\n", argv[i]);
				bad = 1;
				continue;
			}
			symbolize_one(c, addr);
		}
		return bad;
	}
	char line[256];
	while (fgets(line, sizeof(line), stdin)) {
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (parse_addr(line, &addr) != 0) {
			line[strcspn(line, "\r\n")] = '\0';
			fprintf(stderr, "ember symbolize: bad address '%s'\n", line);
			bad = 1;
			continue;
		}
		symbolize_one(c, addr);
		fflush(stdout);
	}
	return bad;
}

int cmd_symbolize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"exe", required_argument, NULL, 'e'}, {"pid", required_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'j'},      {"llvm", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	struct sym_ctx c = {.style = STYLE_PLAIN};
	const char *exe = NULL;
	unsigned long pid = 0;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "e:p:jlh", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			exe = optarg;
			break;
		case 'p':
			if (cmd_parse_uint("--pid", optarg, 1, UINT32_MAX, &pid))
				return 2;
			break;
		case 'j':
		case 'l':
			/* one output style: asking for two is a mistake, not a choice */
			if (c.style != STYLE_PLAIN && c.style != (opt == 'j' ? STYLE_JSON : STYLE_LLVM)) {
				fprintf(stderr, "ember symbolize: --json and --llvm are two output "
						"styles: give one\n");
				return 2;
			}
			c.style = opt == 'j' ? STYLE_JSON : STYLE_LLVM;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!exe == !pid) {
		fprintf(stderr, "ember symbolize: give exactly one of --exe FILE and --pid PID\n");
		usage(stderr);
		return 2;
	}
	if (exe) {
		int err = ember_elf_open(exe, &c.elf);
		if (err) {
			fprintf(stderr, "ember symbolize: cannot load %s: %s\n", exe,
				err == -ENOEXEC ? "not a usable ELF file" : strerror(-err));
			return 1;
		}
	} else {
		c.pid = (uint32_t)pid;
		c.s = ember_symbolizer_new();
		c.p = ember_profile_new();
		if (!c.s || !c.p || ember_symbolizer_track(c.s, c.pid) != 0) {
			fprintf(stderr, "ember symbolize: cannot read the mappings of pid %lu\n",
				pid);
			ember_symbolizer_free(c.s);
			ember_profile_free(c.p);
			return 1;
		}
	}
	rc = run(&c, argc - optind, argv + optind);
	ember_elf_free(c.elf);
	ember_symbolizer_free(c.s);
	ember_profile_free(c.p);
	return rc;
}
