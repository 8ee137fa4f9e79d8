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

/* A new directory "<base>/ember-test-<name>-XXXXXX" in dir; 0 or -1. */
static inline int test_mkdtemp(char *dir, size_t size, const char *base, const char *name)
{
	snprintf(dir, size, "%s/ember-test-%s-XXXXXX", base, name);
	return mkdtemp(dir) ? 0 : -1;
}

/* rm -rf dir; 0 or -1. */
static inline int test_rmtree(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* dir/name, in one of 16 rotating buffers (enough for the paths of one test). */
static inline const char *test_path(const char *dir, const char *name)
{
	static char buf[16][512];
	static int i;

	i = (i + 1) % 16;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

#endif
