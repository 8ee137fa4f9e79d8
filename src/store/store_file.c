/*
 * store_file.c - the database file itself: created safely, watched while
 * the agent writes, reopened when it comes back after damage.
 *
 * Creation.  The file is created by us, O_EXCL|O_NOFOLLOW, 0640 with the
 * `ember` group (core/safefile.h), before SQLite opens it; SQLite then
 * gives the WAL and SHM it creates the same mode and owner.  An existing
 * database, WAL or SHM that is a symlink, a hard link or another user's
 * file is refused; one of ours that is world-readable (made by an older
 * Ember) is tightened.
 *
 * Watching.  Someone may truncate, remove or replace the file while the
 * agent runs.  SQLite does not notice a truncation by itself: pages it has
 * cached keep being used, a checkpoint writes the WAL's pages back and
 * extends the file again, and the holes read as zeros: a corrupt file,
 * silently.  So before and after each write the writer checks that the
 * path still names the file it opened (device, inode) and that the file
 * is not shorter than it can legitimately be.  The file only changes size
 * at checkpoints: backfilling grows it, a complete checkpoint truncates it
 * to the database's page count.  After each write the writer runs a
 * passive checkpoint itself and records min(file size, page count x page
 * size); nobody but Ember's own retention (store_retention.c) lowers the
 * page count, so a later size below that is a truncation.  SQLite's own
 * verdicts (SQLITE_CORRUPT, SQLITE_NOTADB, a short read) count as damage
 * too.
 *
 * Damage.  The connection is closed without a checkpoint (nothing more is
 * written into the damaged file; the WAL stays for whoever investigates)
 * and the handle remembers the file's state.  ember_store_recover(), called
 * by the agent before each flush, does nothing while the file is unchanged
 * (unless it is empty: a zero-byte file is a valid empty database, and
 * nothing is lost by starting over in it); once it was removed, replaced,
 * restored or emptied, the stale WAL and
 * SHM are deleted -- only if they are still the very files the closed
 * connection used, so a restored database's own WAL is never touched,
 * and because SQLite would otherwise replay our WAL over the restored
 * file -- and the store reconnects (creating a new database when the path
 * is gone or empty).  A file that still fails to open stays damaged until
 * it changes again.
 *
 * Readers (the HTTP server's handles) never delete anything: at the start
 * of each read they check that the database and its SHM are still the
 * files they connected to, and reconnect when not (the agent recreated
 * the database, or the WAL index was renewed).
 *
 * Residual risk: a truncation in the microseconds between the post-write
 * check and the checkpoint is not seen, and truncating the SHM (which
 * SQLite always maps) can still raise SIGBUS; both files live in a 0750
 * directory only root writes to.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/safefile.h"

/* Page cache of a handle that serves queries: without mmap, reads copy
 * pages, and a warm 16 MiB cache keeps a day's flame graph as fast as the
 * mapped reads were (BENCHMARKS.md).  The agent's writer keeps SQLite's
 * default 2 MiB. */
#define READER_CACHE_KIB 16384

static const char *const side_suffix[] = {"-wal", "-shm"};

static void side_path(const struct ember_store *s, int i, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", s->path, side_suffix[i]);
}

static void file_id(const char *path, struct store_file_id *id)
{
	struct stat st;

	id->valid = stat(path, &st) == 0;
	id->dev = id->valid ? st.st_dev : 0;
	id->ino = id->valid ? st.st_ino : 0;
}

static bool same_id(const struct store_file_id *id, const struct stat *st)
{
	return id->valid && id->dev == st->st_dev && id->ino == st->st_ino;
}

static const char *check_error(int neg_errno)
{
	switch (neg_errno) {
	case -ELOOP: return "is a symbolic link";
	case -EMLINK: return "has other hard links";
	case -EPERM: return "belongs to another user";
	case -EINVAL: return "is not a regular file";
	default: return strerror(-neg_errno);
	}
}

int store_file_prepare(struct ember_store *s, bool create, char *err, size_t errlen)
{
	char side[PATH_MAX];
	int ret = create ? ember_safefile_create_excl(s->path, EMBER_FILE_MODE) : 0;

	if (ret && ret != -EEXIST)
		return store_error(s, err, errlen, ret, "cannot create the database: %s",
				   strerror(-ret));
	ret = ember_safefile_check(s->path, EMBER_FILE_MODE);
	if (ret && !(ret == -ENOENT && !create))
		return store_error(s, err, errlen, ret == -ENOENT ? ret : -EACCES,
				   "refusing to open the database: it %s", check_error(ret));
	for (int i = 0; i < 2; i++) {
		side_path(s, i, side, sizeof(side));
		ret = ember_safefile_check(side, EMBER_FILE_MODE);
		if (ret && ret != -ENOENT)
			return store_error(s, err, errlen, -EACCES,
					   "refusing to open the database: %s %s", side,
					   check_error(ret));
	}
	return 0;
}

static int64_t page_bytes(struct ember_store *s)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The smallest size the file can legitimately have from now on. */
static void note_min_size(struct ember_store *s)
{
	struct stat st;
	int64_t pages = page_bytes(s);

	if (stat(s->path, &st))
		return;
	s->min_size = st.st_size;
	if (pages >= 0 && pages < s->min_size)
		s->min_size = pages;
}

void store_file_identify(struct ember_store *s)
{
	char side[PATH_MAX];

	file_id(s->path, &s->db_id);
	side_path(s, 0, side, sizeof(side));
	file_id(side, &s->wal_id);
	side_path(s, 1, side, sizeof(side));
	file_id(side, &s->shm_id);
	note_min_size(s);
}

bool store_rc_is_damage(int rc)
{
	return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ||
	       rc == SQLITE_IOERR_SHORT_READ;
}

/*
 * The closed connection's WAL and SHM, if they are still at their paths:
 * the WAL is kept as PATH-wal.damaged (one, the latest: for whoever
 * investigates), the SHM deleted.  Neither may meet the file that comes
 * next at PATH: SQLite would replay the WAL over it.
 */
static void set_aside_sides(struct ember_store *s)
{
	char side[PATH_MAX], kept[PATH_MAX + 16];
	struct stat st;

	side_path(s, 0, side, sizeof(side));
	snprintf(kept, sizeof(kept), "%s.damaged", side);
	if (lstat(side, &st) == 0 && same_id(&s->wal_id, &st))
		rename(side, kept);
	side_path(s, 1, side, sizeof(side));
	if (lstat(side, &st) == 0 && same_id(&s->shm_id, &st))
		unlink(side);
}

int store_file_damaged(struct ember_store *s, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->damage, sizeof(s->damage), fmt, ap);
	va_end(ap);
	/* our own file, damaged: wait for it to change; another file or none: go on */
	if (stat(s->path, &s->damaged_st) || !same_id(&s->db_id, &s->damaged_st))
		memset(&s->damaged_st, 0, sizeof(s->damaged_st));
	store_disconnect(s, false);
	set_aside_sides(s);
	s->damaged = true;
	s->file_stats.damaged++;
	s->file_stats.is_damaged = true;
	return store_error(s, err, errlen, -EIO,
			   "the database file %s; nothing more is written to it until it is "
			   "removed, replaced or restored",
			   s->damage);
}

int store_file_check(struct ember_store *s, char *err, size_t errlen)
{
	struct stat st;

	if (s->damaged || !s->db)
		return store_error(s, err, errlen, -EIO, "the database file %s",
				   s->damaged ? s->damage : "is not open");
	if (stat(s->path, &st))
		return store_file_damaged(s, err, errlen, "was removed (%s)", strerror(errno));
	if (!same_id(&s->db_id, &st))
		return store_file_damaged(s, err, errlen, "was replaced by another file");
	if (st.st_size < s->min_size)
		return store_file_damaged(s, err, errlen,
					  "was truncated from at least %" PRId64 " to %lld bytes",
					  s->min_size, (long long)st.st_size);
	return 0;
}

void store_file_written(struct ember_store *s)
{
	if (!s->db)
		return;
	if (!s->own_checkpoints) {
		/* this handle checkpoints itself, right after its checks */
		sqlite3_wal_autocheckpoint(s->db, 0);
		s->own_checkpoints = true;
	}
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	note_min_size(s);
}

int store_file_write(struct ember_store *s, const char *what,
		     int (*fn)(struct ember_store *s, void *arg, char *err, size_t errlen),
		     void *arg, char *err, size_t errlen)
{
	int rc, ret;

	s->last_rc = SQLITE_OK; /* what failed below, if anything */
	/* the file must still be the one opened, and whole */
	ret = store_file_check(s, err, errlen);
	if (ret)
		return ret;
	rc = store_step_done(s, STMT_BEGIN_WRITE);
	if (rc != SQLITE_OK) {
		ret = store_sqlite_error(s, err, errlen, rc, "%s: begin", what);
		goto failed;
	}
	ret = fn(s, arg, err, errlen);
	if (!ret) {
		rc = store_step_done(s, STMT_COMMIT);
		if (rc != SQLITE_OK)
			ret = store_sqlite_error(s, err, errlen, rc, "%s: commit", what);
	}
	if (ret) {
		store_step_done(s, STMT_ROLLBACK);
		store_caches_clear(s); /* ids of the rolled-back rows */
		goto failed;
	}
	/* committed: unless the file went bad meanwhile, checkpoint it */
	ret = store_file_check(s, err, errlen);
	if (!ret)
		store_file_written(s);
	return ret;
failed:
	if (store_rc_is_damage(s->last_rc))
		return store_file_damaged(s, err, errlen, "is damaged (%s)",
					  sqlite3_errstr(s->last_rc));
	store_file_failed(s); /* a full disk: let the WAL start over, or give it back */
	return ret;
}

void store_file_failed(struct ember_store *s)
{
	bool full = (s->last_rc & 0xff) == SQLITE_FULL;

	if (!s->db || s->damaged)
		return;
	if (full)
		sqlite3_busy_timeout(s->db, 0); /* never wait for readers here */
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
				  NULL, NULL);
	if (full)
		sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	note_min_size(s);
}

void store_file_noted(struct ember_store *s)
{
	if (s->db)
		note_min_size(s);
}

bool ember_store_damaged(const struct ember_store *s)
{
	return s->damaged;
}

void ember_store_get_file_stats(const struct ember_store *s, struct ember_store_file_stats *st)
{
	*st = s->file_stats;
}

int ember_store_recover(struct ember_store *s, char *err, size_t errlen)
{
	const char *what;
	struct stat st;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!s->damaged)
		return 0;
	if (stat(s->path, &st) == 0) {
		const struct stat *d = &s->damaged_st;
		/* a zero-byte file is an empty database: nothing to wait for */
		if (d->st_ino && st.st_size > 0 && st.st_dev == d->st_dev && st.st_ino == d->st_ino &&
		    st.st_size == d->st_size && st.st_mtim.tv_sec == d->st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == d->st_mtim.tv_nsec &&
		    st.st_ctim.tv_sec == d->st_ctim.tv_sec && st.st_ctim.tv_nsec == d->st_ctim.tv_nsec)
			return store_error(s, err, errlen, -EAGAIN, "the database file %s; unchanged since",
					   s->damage);
		if (!same_id(&s->db_id, &st)) {
			what = "was replaced: reopened it";
		} else {
			/*
			 * The same inode, emptied or rewritten in place.  Other
			 * connections of this process (the HTTP server's) may
			 * still hold it, and SQLite shares one WAL index per
			 * inode within a process: theirs describes the old
			 * WAL.  A copy on a new inode shares nothing.
			 */
			what = st.st_size == 0 ? "was emptied: started a new database"
					       : "was changed in place: reopened it";
			ret = ember_safefile_recreate(s->path, EMBER_FILE_MODE);
			if (ret)
				return store_error(s, err, errlen, ret,
						   "the database file %s, and cannot be copied to "
						   "reopen it: %s", s->damage, strerror(-ret));
		}
	} else if (errno == ENOENT) {
		what = "was removed: created a new database";
	} else {
		return store_error(s, err, errlen, -errno, "the database file %s; cannot check it now: %s",
				   s->damage, strerror(errno));
	}
	ret = store_connect(s, s->open_flags | SQLITE_OPEN_CREATE, err, errlen);
	if (ret) {
		/* still unusable: wait until it changes again; the failed
		 * connection's WAL and SHM go too */
		char side[PATH_MAX];
		if (stat(s->path, &s->damaged_st))
			memset(&s->damaged_st, 0, sizeof(s->damaged_st));
		side_path(s, 0, side, sizeof(side));
		file_id(side, &s->wal_id);
		side_path(s, 1, side, sizeof(side));
		file_id(side, &s->shm_id);
		set_aside_sides(s);
		return ret == -EAGAIN ? -EIO : ret;
	}
	s->damaged = false;
	s->file_stats.recovered++;
	s->file_stats.is_damaged = false;
	if (err && errlen)
		snprintf(err, errlen, "store %s: the damaged database file %s", s->path, what);
	return 0;
}

int store_refresh(struct ember_store *s, char *err, size_t errlen)
{
	char side[PATH_MAX];
	struct stat st, shm;
	int ret;

	if (s->damaged)
		return store_error(s, err, errlen, -EIO, "the database file %s", s->damage);
	if (stat(s->path, &st) == 0) {
		side_path(s, 1, side, sizeof(side));
		bool shm_same = stat(side, &shm) == 0 && same_id(&s->shm_id, &shm);
		if (s->db && same_id(&s->db_id, &st) && shm_same)
			goto ready;
	} else if (errno == ENOENT) {
		store_disconnect(s, false); /* do not keep a removed file open */
		return store_error(s, err, errlen, -ENOENT, "the database file does not exist");
	}
	/* replaced, recreated, or its WAL index renewed: connect afresh (never create) */
	store_disconnect(s, false);
	ret = store_connect(s, s->open_flags & ~SQLITE_OPEN_CREATE, err, errlen);
	if (ret)
		return ret;
	s->file_stats.reopened++;
ready:
	if (!s->reader_cache) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%d", READER_CACHE_KIB);
		store_exec(s, sql);
		s->reader_cache = true;
	}
	return 0;
}
