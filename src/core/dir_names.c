/*
 * dir_names.c - a directory's file names, re-read only when its mtime moves.
 *
 * See dir_names.h.  The names are kept in one sorted array of strdup'ed
 * strings; a refresh that finds the directory unchanged costs one stat().
 */
#include "core/dir_names.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/array.h"

#define DIR_NAMES_RACY_NS (50 * 1000000LL) /* several ticks of the file-time clock */

int ember_dir_names_init(struct ember_dir_names *d, const char *path)
{
	memset(d, 0, sizeof(*d));
	d->path = strdup(path);
	return d->path ? 0 : -ENOMEM;
}

static void drop_names(struct ember_dir_names *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->names[i]);
	d->n = 0;
}

void ember_dir_names_free(struct ember_dir_names *d)
{
	drop_names(d);
	free(d->names);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_names(struct ember_dir_names *d)
{
	DIR *dir = opendir(d->path);
	struct dirent *de;
	int rc = 0;

	if (!dir)
		return -errno;
	drop_names(d);
	d->incomplete = false;
	d->reads++;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue; /* ".", "..", and temporaries being written */
		if (d->n >= EMBER_DIR_NAMES_MAX) {
			d->incomplete = true;
			break;
		}
		char *name = strdup(de->d_name);
		if (!name || ember_array_grow(&d->names, &d->cap, d->n + 1, sizeof(*d->names))) {
			free(name);
			rc = -ENOMEM;
			break;
		}
		d->names[d->n++] = name;
	}
	closedir(dir);
	if (d->n > 1)
		qsort(d->names, d->n, sizeof(*d->names), cmp_names);
	return rc;
}

int ember_dir_names_refresh(struct ember_dir_names *d)
{
	struct stat st;

	if (stat(d->path, &st)) {
		int rc = -errno;
		d->valid = false;
		return rc;
	}
	if (d->valid && !d->racy && st.st_ino == d->ino && st.st_mtim.tv_sec == d->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == d->mtime.tv_nsec)
		return 0;
	int rc = read_names(d);
	d->valid = rc == 0;
	d->ino = st.st_ino;
	d->mtime = st.st_mtim;
	/*
	 * File times come from a coarse clock (a jiffy, 10 ms at HZ=100): a
	 * name added later in the same tick would not move mtime.
	 */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t age_ns = (int64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000000000LL +
			 (now.tv_nsec - st.st_mtim.tv_nsec);
	d->racy = age_ns < DIR_NAMES_RACY_NS;
	return rc;
}

size_t ember_dir_names_lower_bound(const struct ember_dir_names *d, const char *prefix)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(d->names[mid], prefix) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
