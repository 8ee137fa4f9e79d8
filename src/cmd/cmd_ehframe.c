/*
 * cmd_ehframe.c - `ember ehframe`: show the unwind rows compiled from a file's CFI.
 *
 *   ember ehframe FILE [--debug-file PATH] [--pc ADDR] [--stats]
 *
 * The tool to reach for when a stack looks wrong: it prints what the BPF
 * unwinder will be given for FILE (rows keyed by ELF address), or only the
 * row covering one address and the FDE it comes from.  Exit status: 0 on
 * success, 1 when the file cannot be compiled or no row covers --pc, 2 on
 * usage errors.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "ehframe/ehframe.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ember ehframe FILE [--debug-file PATH] [--pc ADDR] [--stats]\n\n"
		   "Compile FILE's .eh_frame/.debug_frame into Ember's unwind rows and print them.\n\n"
		   "  -d, --debug-file PATH  separate debug file with .debug_frame\n"
		   "  -p, --pc ADDR          print only the row covering ELF address ADDR (hex)\n"
		   "  -s, --stats            print only the summary\n"
		   "  -r, --repeat N         compile N times in this process; print the first and the best time\n");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void print_summary(const char *path, const struct ember_unwind_table *t, double ms)
{
	const struct ember_ehframe_stats *s = &t->stats;

	printf("file: %s\n", path);
	printf("build-id: %s\n", t->build_id[0] ? t->build_id : "(none)");
	printf("sources: .eh_frame %" PRIu64 " bytes, %" PRIu64 " FDEs", s->eh_frame_bytes,
	       s->eh_frame_fdes);
	if (s->hdr_fdes >= 0)
		printf(" (.eh_frame_hdr: %" PRId64 ")", s->hdr_fdes);
	printf("; .debug_frame %" PRIu64 " bytes, %" PRIu64 " FDEs\n", s->debug_frame_bytes,
	       s->debug_frame_fdes);
	printf("fdes: %" PRIu64 "  cies: %" PRIu64 "  rows: %" PRIu64 "  gaps: %" PRIu64
	       "  plt: %" PRIu64 "  end-of-stack: %" PRIu64 "\n",
	       s->fdes, s->cies, s->rows, s->gaps, s->plt, s->end_of_stack);
	printf("unsupported: %" PRIu64 " cfa, %" PRIu64 " rbp  errors: %" PRIu64
	       "  overlapping: %" PRIu64 "  out of range: %" PRIu64 "\n",
	       s->unsupported_cfa, s->unsupported_rbp, s->errors, s->overlaps, s->out_of_range);
	if (t->first_error[0])
		printf("first error: %s\n", t->first_error);
	printf("table base: 0x%" PRIx64 "  bytes: %zu (%zu per row)  compile: %.3f ms\n", t->base,
	       t->n_rows * sizeof(t->rows[0]), sizeof(t->rows[0]), ms);
}

static void print_row(const struct ember_unwind_table *t, const struct ember_unwind_row *r)
{
	char buf[64];

	ember_unwind_row_format(r, buf, sizeof(buf));
	printf("0x%" PRIx64 " %s\n", t->base + r->pc, buf);
}

static int print_pc(const char *path, const struct ember_unwind_table *t, uint64_t pc)
{
	const struct ember_unwind_row *r = ember_unwind_find(t, pc);
	const struct ember_fde_range *f = ember_unwind_find_fde(t, pc);

	if (!r || EMBER_ROW_CFA(r) == EMBER_CFA_GAP) {
		printf("0x%" PRIx64 ": no FDE covers this address in %s\n", pc, path);
		return 1;
	}
	print_row(t, r);
	if (r + 1 < t->rows + t->n_rows)
		printf("  row covers 0x%" PRIx64 "..0x%" PRIx64 "\n", t->base + r->pc,
		       t->base + r[1].pc);
	if (f)
		printf("  fde: 0x%" PRIx64 "..0x%" PRIx64 " (%s+0x%" PRIx64 ")\n", f->pc_begin,
		       f->pc_end, f->source == EMBER_CFI_DEBUG_FRAME ? ".debug_frame" : ".eh_frame",
		       f->offset);
	return 0;
}

int cmd_ehframe(int argc, char **argv)
{
	static const struct option opts[] = {
		{"debug-file", required_argument, NULL, 'd'},
		{"pc", required_argument, NULL, 'p'},
		{"stats", no_argument, NULL, 's'},
		{"repeat", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *debug_path = NULL;
	bool want_pc = false, stats_only = false;
	unsigned long repeat = 1;
	uint64_t pc = 0;
	struct ember_unwind_table t;
	char err[512];
	double t0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "d:p:sh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			debug_path = optarg;
			break;
		case 'p': {
			char *end;
			pc = strtoull(optarg, &end, 16);
			if (!*optarg || *end) {
				fprintf(stderr, "ember: --pc: '%s' is not a hex address\n", optarg);
				return 2;
			}
			want_pc = true;
			break;
		}
		case 's':
			stats_only = true;
			break;
		case 'r':
			if (cmd_parse_uint("--repeat", optarg, 1, 1000, &repeat))
				return 2;
			stats_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	t0 = now_ms();
	rc = ember_ehframe_compile_file(argv[optind], debug_path,
					want_pc ? EMBER_EHFRAME_KEEP_FDES : 0, &t, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ember: %s\n", err);
		return 1;
	}
	double ms = now_ms() - t0, best = ms;
	/* --repeat: compile again in this process, report the first and the best */
	for (unsigned long i = 1; i < repeat; i++) {
		struct ember_unwind_table again;
		double t1 = now_ms();
		if (ember_ehframe_compile_file(argv[optind], debug_path, 0, &again, err, sizeof(err)))
			break;
		double d = now_ms() - t1;
		best = d < best ? d : best;
		ember_unwind_table_free(&again);
	}
	if (repeat > 1)
		printf("compile: first %.3f ms, best of %lu %.3f ms\n", ms, repeat, best);
	if (want_pc) {
		rc = print_pc(argv[optind], &t, pc);
	} else {
		print_summary(argv[optind], &t, ms);
		if (!stats_only)
			for (size_t i = 0; i < t.n_rows; i++)
				print_row(&t, &t.rows[i]);
	}
	ember_unwind_table_free(&t);
	return rc;
}
