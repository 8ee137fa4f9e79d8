/*
 * main.c - `ember`: one binary, several subcommands.
 *
 * -v (--verbose) may come before or after the command (`ember -v record`
 * and `ember record -v` are the same): it is taken out of the command's
 * arguments here.  Once: debug messages; twice (-v -v or -vv): libbpf's
 * own log too.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "core/log.h"

#define EMBER_VERSION_STRING "0.1.0"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{"run", cmd_run, "profile the whole host continuously, store, serve the UI"},
	{"record", cmd_record, "one-shot profile of some processes (or all) to a file"},
	{"report", cmd_report, "daily regression report: what got slower, with the evidence"},
	{"symbolize", cmd_symbolize, "print the frames (inline chain included) of addresses"},
	{"ehframe", cmd_ehframe, "print the unwind rows compiled from a file's CFI"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ember [-v] COMMAND [OPTIONS]\n\n"
		   "Ember is a continuous profiler for C++ and Go services.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'ember COMMAND --help' for the options of a command.\n"
		   "  -v, --verbose   more messages (twice, or -vv: libbpf's log too); before or after COMMAND\n"
		   "  --version       print the version\n");
}

/* How much -v this argument asks for: 1 for -v/--verbose, 2 for -vv, else 0. */
static int verbosity(const char *arg)
{
	if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose"))
		return 1;
	return !strcmp(arg, "-vv") ? 2 : 0;
}

static void set_verbosity(int v)
{
	if (v >= 1)
		ember_log_set_level(EMBER_LOG_DEBUG);
	if (v >= 2)
		ember_log_set_libbpf(true);
}

/* Take -v out of a command's arguments (up to "--"); returns the new argc. */
static int strip_verbose(int argc, char **argv, int *v)
{
	int out = 1, i = 1;

	for (; i < argc && strcmp(argv[i], "--"); i++) {
		int k = verbosity(argv[i]);
		if (k)
			*v += k;
		else
			argv[out++] = argv[i];
	}
	while (i < argc)
		argv[out++] = argv[i++];
	argv[out] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	int i = 1, v = 0;

	while (i < argc && argv[i][0] == '-') {
		if (verbosity(argv[i])) {
			v += verbosity(argv[i]);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("ember %s\n", EMBER_VERSION_STRING);
			return 0;
		} else {
			fprintf(stderr, "ember: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
		i++;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (!strcmp(argv[i], commands[c].name)) {
			int n = strip_verbose(argc - i, argv + i, &v);
			set_verbosity(v);
			return commands[c].fn(n, argv + i);
		}
	}
	if (!strcmp(argv[i], "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "ember: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
