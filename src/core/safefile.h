/*
 * safefile.h - creating the files and directories Ember writes, safely.
 *
 * Ember runs as root and writes into directories other users may control
 * (`--output /tmp/x`, a report directory, the cron directory).  Every file
 * it writes goes through here:
 *
 *  - a new file is first a temporary next to its final path, with a random
 *    name, opened O_CREAT|O_EXCL|O_NOFOLLOW: nothing planted there (a
 *    symlink to /etc/shadow, a hard link, an existing file) is ever opened;
 *  - it is then renamed over the final path, which replaces whatever is
 *    there (a symlink included) instead of writing through it, and readers
 *    never see half a file;
 *  - its mode is given by the caller and is never world-readable unless the
 *    caller says so (data files are 0640 or 0600); when a system group named
 *    `ember` exists, group-readable files and directories get that group, so
 *    its members can read profiles without being root.
 *
 * Files that are updated in place (the SQLite database and its WAL/SHM)
 * are created with ember_safefile_create_excl() and checked with
 * ember_safefile_check() instead.
 */
#ifndef EMBER_CORE_SAFEFILE_H
#define EMBER_CORE_SAFEFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define EMBER_FILE_MODE 0640      /* data files: owner rw, group (ember) r */
#define EMBER_DIR_MODE 0750       /* data directories */
#define EMBER_GROUP "ember"

struct ember_safefile {
	int fd;                /* -1 once committed or aborted */
	FILE *fp;              /* set by ember_safefile_stream() */
	char path[PATH_MAX];   /* final path */
	char tmp[PATH_MAX];    /* the temporary, in the same directory */
};

/*
 * Create a temporary for `path` (mode `mode`, less the umask; group
 * `ember` when the mode gives the group access and the group exists).
 * Returns 0 or a negative errno; on failure there is nothing to abort.
 */
int ember_safefile_begin(struct ember_safefile *f, const char *path, mode_t mode);

/* A stdio stream on the temporary (owned by f: commit or abort closes it), NULL on OOM. */
FILE *ember_safefile_stream(struct ember_safefile *f);

/*
 * Flush (fsync when `sync`), close and rename the temporary over the
 * final path.  On failure the temporary is removed.  Returns 0 or -errno.
 */
int ember_safefile_commit(struct ember_safefile *f, bool sync);

/* Close and remove the temporary (no-op after commit or abort). */
void ember_safefile_abort(struct ember_safefile *f);

/* The whole of a file at once: begin, write, commit (fsync'd when `sync`). */
int ember_safefile_write(const char *path, const void *data, size_t len, mode_t mode, bool sync);

/*
 * Create `path` as a new empty regular file, O_EXCL|O_NOFOLLOW, with
 * `mode` and the ember group as above.  -EEXIST when something is there.
 */
int ember_safefile_create_excl(const char *path, mode_t mode);

/*
 * An existing file Ember updates in place: refuse anything but a regular
 * file (a symlink gives -ELOOP); when this process owns it, take away
 * permissions beyond `mode` and give it the ember group.  -ENOENT when
 * there is nothing at path.  Safe on a file this process holds POSIX
 * locks on (an open SQLite database): it never open()s and close()s it.
 */
int ember_safefile_check(const char *path, mode_t mode);

/*
 * Give the regular file at `path` a new inode with the same content: a
 * copy into a temporary, renamed over it (mode as above).  For a file
 * whose old inode some other handle may still hold.  Reading the old one
 * drops this process's POSIX locks on it when done: only for a file
 * being abandoned.  Returns 0 or -errno.
 */
int ember_safefile_recreate(const char *path, mode_t mode);

/*
 * mkdir -p: create the missing directories of `path` with `mode` (and the
 * ember group), leaving existing ones alone.  The last one must end up a
 * directory (not a symlink to one: -ENOTDIR).  Returns 0 or -errno.
 */
int ember_mkdirs(const char *path, mode_t mode);

/* mkdir -p of the directory holding `path`. */
int ember_mkdirs_parent(const char *path, mode_t mode);

/* The ember group's id, or (gid_t)-1 when there is no such group. */
gid_t ember_group_id(void);

#endif
