/*
 * safefile.c - creating the files and directories Ember writes, safely.
 *
 * See safefile.h for the rules.  The temporary's name is the final name
 * with a leading dot and a random suffix (".report.html.3f9a1c07e2b4.tmp"):
 * a dot-file, so cron and report pruning ignore it, and unpredictable, so
 * it cannot be planted in advance; O_EXCL|O_NOFOLLOW makes the open fail
 * rather than follow or reuse anything that is there anyway.  rename(2)
 * then replaces the final path's directory entry, never following a
 * symlink found there.
 */
#include "core/safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEMP_TRIES 64

static gid_t group_id = (gid_t)-1;
static pthread_once_t group_once = PTHREAD_ONCE_INIT;

static void find_group(void)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (getgrnam_r(EMBER_GROUP, &gr, buf, sizeof(buf), &res) == 0 && res)
		group_id = res->gr_gid;
}

gid_t ember_group_id(void)
{
	pthread_once(&group_once, find_group);
	return group_id;
}

/* Give fd the ember group when mode lets the group in and the group exists. */
static void set_group(int fd, mode_t mode)
{
	gid_t gid = ember_group_id();

	if ((mode & 070) && gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) != 0) {
		/* not root and not a member: the file keeps our own group */
	}
}

static uint64_t random_u64(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid() << 32 ^
		     (uint64_t)(uintptr_t)&r;
	}
	return r;
}

/* Directory part and file name of path ("." when path has no slash). */
static int split(const char *path, char *dir, size_t dirlen, const char **name)
{
	const char *slash = strrchr(path, '/');

	if (!path[0] || (slash && !slash[1]))
		return -EISDIR; /* "" or "dir/" names no file */
	if (!slash) {
		snprintf(dir, dirlen, ".");
		*name = path;
		return 0;
	}
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= dirlen)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	*name = slash + 1;
	return 0;
}

int ember_safefile_begin(struct ember_safefile *f, const char *path, mode_t mode)
{
	char dir[PATH_MAX];
	const char *name;
	int ret;

	f->fd = -1;
	f->fp = NULL;
	f->tmp[0] = '\0';
	if (strlen(path) >= sizeof(f->path))
		return -ENAMETOOLONG;
	ret = split(path, dir, sizeof(dir), &name);
	if (ret)
		return ret;
	snprintf(f->path, sizeof(f->path), "%s", path);
	for (int i = 0; i < TEMP_TRIES; i++) {
		if ((size_t)snprintf(f->tmp, sizeof(f->tmp), "%s/.%s.%012llx.tmp", dir, name,
				     (unsigned long long)(random_u64() & 0xffffffffffffULL)) >=
		    sizeof(f->tmp))
			return -ENAMETOOLONG;
		f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (f->fd >= 0) {
			set_group(f->fd, mode);
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	ret = -errno;
	f->tmp[0] = '\0';
	return ret;
}

FILE *ember_safefile_stream(struct ember_safefile *f)
{
	if (!f->fp && f->fd >= 0)
		f->fp = fdopen(f->fd, "w");
	return f->fp;
}

void ember_safefile_abort(struct ember_safefile *f)
{
	if (f->fp)
		fclose(f->fp);
	else if (f->fd >= 0)
		close(f->fd);
	f->fp = NULL;
	f->fd = -1;
	if (f->tmp[0])
		unlink(f->tmp);
	f->tmp[0] = '\0';
}

int ember_safefile_commit(struct ember_safefile *f, bool sync)
{
	int ret = 0;

	if (f->fd < 0)
		return -EBADF;
	if (f->fp && fflush(f->fp))
		ret = errno ? -errno : -EIO;
	if (!ret && sync && fsync(f->fd))
		ret = -errno;
	if (f->fp) {
		if (fclose(f->fp) && !ret)
			ret = errno ? -errno : -EIO;
	} else if (close(f->fd) && !ret) {
		ret = -errno;
	}
	f->fp = NULL;
	f->fd = -1;
	if (!ret && rename(f->tmp, f->path))
		ret = -errno;
	if (ret)
		unlink(f->tmp);
	f->tmp[0] = '\0';
	return ret;
}

int ember_safefile_write(const char *path, const void *data, size_t len, mode_t mode, bool sync)
{
	struct ember_safefile f;
	const char *p = data;
	int ret = ember_safefile_begin(&f, path, mode);

	if (ret)
		return ret;
	while (len) {
		ssize_t n = write(f.fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			ember_safefile_abort(&f);
			return ret;
		}
		p += n;
		len -= (size_t)n;
	}
	return ember_safefile_commit(&f, sync);
}

int ember_safefile_create_excl(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0)
		return -errno;
	set_group(fd, mode);
	close(fd);
	return 0;
}

/*
 * O_PATH, not a real open: closing any other descriptor of a file drops
 * every POSIX lock this process holds on it, and SQLite's locks on the
 * database, WAL and SHM of a connection in this process must survive the
 * check (without them another process takes the SHM for abandoned and
 * rebuilds it, and checkpoints over our writes).  Closing an O_PATH
 * descriptor leaves locks alone.
 */
int ember_safefile_check(const char *path, mode_t mode)
{
	char self[64];
	struct stat st;
	int ret = 0;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
	} else if (S_ISLNK(st.st_mode)) {
		ret = -ELOOP;
	} else if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
	} else if (st.st_nlink > 1) {
		ret = -EMLINK; /* a hard link to someone else's file */
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		ret = -EPERM; /* planted by another user */
	} else if (st.st_uid == geteuid()) {
		gid_t gid = ember_group_id();
		/* the very file checked, through its descriptor; never a symlink */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if ((st.st_mode & 07777 & ~mode) && chmod(self, st.st_mode & mode))
			ret = -errno;
		if (!ret && (mode & 070) && gid != (gid_t)-1 && st.st_gid != gid &&
		    fchownat(fd, "", (uid_t)-1, gid, AT_EMPTY_PATH)) {
			/* not root and not a member: it keeps its group */
		}
	}
	close(fd);
	return ret;
}

/* Copy all of in to out: copy_file_range (in the kernel), else read/write. */
static int copy_all(int in, int out)
{
	char buf[65536];
	ssize_t n;

	while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
		;
	if (n == 0)
		return 0;
	if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
		return -errno;
	/* nothing was copied yet when copy_file_range is refused outright */
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return w < 0 ? -errno : -EIO;
			off += w;
		}
	}
	return n < 0 ? -errno : 0;
}

int ember_safefile_recreate(const char *path, mode_t mode)
{
	struct ember_safefile f;
	struct stat st;
	int in = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), ret;

	if (in < 0)
		return -errno;
	ret = fstat(in, &st) ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
	if (ret) {
		close(in);
		return ret;
	}
	ret = ember_safefile_begin(&f, path, mode);
	if (!ret) {
		ret = copy_all(in, f.fd);
		if (ret)
			ember_safefile_abort(&f);
		else
			ret = ember_safefile_commit(&f, true);
	}
	close(in);
	return ret;
}

/* A directory we may use: a real directory, or a symlink owned by root or us. */
static int check_dir(const char *path)
{
	struct stat st;

	if (lstat(path, &st))
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		if (st.st_uid != 0 && st.st_uid != geteuid())
			return -ELOOP; /* someone else's symlink: do not follow */
		if (stat(path, &st))
			return -errno;
	}
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int make_one(const char *dir, mode_t mode)
{
	if (mkdir(dir, mode) == 0) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			set_group(fd, mode);
			close(fd);
		}
		return 0;
	}
	return errno == EEXIST ? 0 : -errno;
}

int ember_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	int ret;

	if (!len)
		return -ENOENT;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ret = make_one(buf, mode);
		*p = '/';
		if (ret)
			return ret;
	}
	ret = make_one(buf, mode);
	return ret ? ret : check_dir(buf);
}

int ember_mkdirs_parent(const char *path, mode_t mode)
{
	char dir[PATH_MAX];
	const char *name;
	int ret = split(path, dir, sizeof(dir), &name);

	if (ret)
		return ret;
	return strcmp(dir, ".") && strcmp(dir, "/") ? ember_mkdirs(dir, mode) : 0;
}
