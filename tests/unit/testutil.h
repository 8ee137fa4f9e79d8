/*
 * testutil.h - what every cmocka unit test includes.
 *
 * cmocka needs these system headers before its own.  Test programs built by
 * tests/programs/build.sh live in $EMBER_PROGS (default build/progs);
 * unit tests run from the repository root.
 */
#ifndef EMBER_TESTUTIL_H
#define EMBER_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static inline const char *test_prog(const char *name)
{
	static char path[4096];
	const char *dir = getenv("EMBER_PROGS");

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "build/progs", name);
	return path;
}

/* Run a shell command (printf-style); prints it when it fails.  Returns system()'s status. */
static inline int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int test_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

#endif
