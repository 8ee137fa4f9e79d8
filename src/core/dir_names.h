/*
 * dir_names.h - the file names of one directory, read again only when it changes.
 *
 * The unwind-table cache asks "is there another table for this build-id?"
 * every time it loads a file.  Reading the directory each time costs a
 * getdents walk of every cached table (thousands on a busy host); this
 * keeps the names sorted in memory and re-reads them only when the
 * directory's mtime (or inode) moved.  A listing taken within a few ticks
 * of the file-time clock after the directory's last change may miss a name
 * created in that tick, so it is read again at the next refresh ("racy",
 * as in git's index).
 *
 * Bounded: at most EMBER_DIR_NAMES_MAX names are kept; past that the
 * listing is marked incomplete and counted.
 */
#ifndef EMBER_CORE_DIR_NAMES_H
#define EMBER_CORE_DIR_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define EMBER_DIR_NAMES_MAX 65536

struct ember_dir_names {
	char *path;
	char **names; /* sorted (strcmp) */
	size_t n, cap;
	struct timespec mtime;
	uint64_t ino;
	bool valid;      /* names reflect the directory at mtime */
	bool racy;       /* read just after a change: read again next time */
	bool incomplete; /* more than EMBER_DIR_NAMES_MAX names */
	uint64_t reads;  /* directory walks done (the cost this saves) */
};

/* 0 or -ENOMEM.  Nothing is read until the first refresh. */
int ember_dir_names_init(struct ember_dir_names *d, const char *path);
void ember_dir_names_free(struct ember_dir_names *d);

/* Bring the names up to date: a stat(), and a directory walk if it changed. 0 or -errno. */
int ember_dir_names_refresh(struct ember_dir_names *d);

/* Index of the first name >= prefix (d->n if none); callers walk while the prefix matches. */
size_t ember_dir_names_lower_bound(const struct ember_dir_names *d, const char *prefix);

#endif
