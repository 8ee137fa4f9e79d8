/*
 * procmaps.c - /proc/PID/maps parser (see procmaps.h for the format).
 *
 * The input is untrusted text: every field is parsed with explicit bounds,
 * numbers may not overflow, and a line that does not parse is counted in
 * m->malformed and skipped.  The whole file is read at once and parsed from
 * memory, because the kernel generates maps text page by page and a
 * consistent snapshot is easiest to get by reading it in one go.
 */
#include "agent/procmaps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

/* A maps file bigger than this is not believable (65530 maps * ~300 bytes). */
#define MAPS_MAX_BYTES (64u << 20)

struct cursor {
	const char *p, *end;
};

static void skip_spaces(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Parse 1..16 hex digits.  Returns 0 or -EINVAL. */
static int parse_hex(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0, d;

	while (c->p < c->end && (d = hexval(*c->p)) >= 0) {
		if (++n > 16)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
		c->p++;
	}
	if (n == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parse 1..20 decimal digits without overflow.  Returns 0 or -EINVAL. */
static int parse_dec(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		uint64_t d = (uint64_t)(*c->p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		n++;
		c->p++;
	}
	if (n == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static int expect(struct cursor *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return -EINVAL;
	c->p++;
	return 0;
}

/* "rwxp": each position is the letter or '-'; the last is 'p' or 's'. */
static int parse_perms(struct cursor *c, uint32_t *perms)
{
	static const char letters[3] = {'r', 'w', 'x'};
	static const uint32_t bits[3] = {EMBER_MAP_READ, EMBER_MAP_WRITE, EMBER_MAP_EXEC};

	if (c->end - c->p < 4)
		return -EINVAL;
	*perms = 0;
	for (int i = 0; i < 3; i++) {
		if (c->p[i] == letters[i])
			*perms |= bits[i];
		else if (c->p[i] != '-')
			return -EINVAL;
	}
	if (c->p[3] == 'p')
		*perms |= EMBER_MAP_PRIVATE;
	else if (c->p[3] != 's')
		return -EINVAL;
	c->p += 4;
	return 0;
}

/* Copy the path, decoding the kernel's "\012" escape for newlines. */
static char *copy_path(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t j = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (len - i >= 4 && memcmp(s + i, "\\012", 4) == 0) {
			out[j++] = '\n';
			i += 3;
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	return out;
}

/* Parse one line (without its '\n') into e.  Returns 0 or -EINVAL; e->path is set on success. */
static int parse_line(const char *line, size_t len, struct ember_map_entry *e)
{
	static const char deleted[] = " (deleted)";
	const size_t deleted_len = sizeof(deleted) - 1;
	struct cursor c = {line, line + len};
	uint64_t major, minor;

	memset(e, 0, sizeof(*e));
	if (parse_hex(&c, &e->start) || expect(&c, '-') || parse_hex(&c, &e->end) ||
	    e->end <= e->start)
		return -EINVAL;
	skip_spaces(&c);
	if (parse_perms(&c, &e->perms))
		return -EINVAL;
	skip_spaces(&c);
	if (parse_hex(&c, &e->pgoff))
		return -EINVAL;
	skip_spaces(&c);
	if (parse_hex(&c, &major) || expect(&c, ':') || parse_hex(&c, &minor) ||
	    major > UINT32_MAX || minor > UINT32_MAX)
		return -EINVAL;
	e->dev_major = (uint32_t)major;
	e->dev_minor = (uint32_t)minor;
	skip_spaces(&c);
	if (parse_dec(&c, &e->inode))
		return -EINVAL;
	/* The inode must be followed by whitespace or the end of the line. */
	if (c.p < c.end && *c.p != ' ' && *c.p != '\t')
		return -EINVAL;
	skip_spaces(&c);

	size_t plen = (size_t)(c.end - c.p);
	if (plen >= deleted_len && memcmp(c.end - deleted_len, deleted, deleted_len) == 0) {
		e->deleted = true;
		plen -= deleted_len;
	}
	e->path = copy_path(c.p, plen);
	return e->path ? 0 : -ENOMEM;
}

static int push_entry(struct ember_maps *m, const struct ember_map_entry *e)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct ember_map_entry *a = realloc(m->entries, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		m->entries = a;
		m->cap = cap;
	}
	m->entries[m->n++] = *e;
	return 0;
}

static int cmp_start(const void *a, const void *b)
{
	const struct ember_map_entry *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

int ember_maps_parse(const char *buf, size_t len, enum ember_maps_filter filter,
		     struct ember_maps *m)
{
	const char *p = buf, *end = buf + len;
	size_t first = m->n;
	bool sorted = true;
	int err = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		struct ember_map_entry e;

		if (line_end > p) {
			int r = parse_line(p, (size_t)(line_end - p), &e);
			if (r == -ENOMEM) {
				err = r;
				break;
			}
			if (r) {
				m->malformed++;
			} else if (filter == EMBER_MAPS_EXEC_ONLY && !(e.perms & EMBER_MAP_EXEC)) {
				free(e.path);
			} else {
				if (m->n > first && e.start < m->entries[m->n - 1].start)
					sorted = false;
				if (push_entry(m, &e)) {
					free(e.path);
					err = -ENOMEM;
					break;
				}
			}
		}
		p = nl ? nl + 1 : end;
	}
	/* The kernel writes ascending addresses; sort anyway so lookups stay correct. */
	if (!sorted || (first > 0 && m->n > first &&
			m->entries[first].start < m->entries[first - 1].start))
		qsort(m->entries, m->n, sizeof(*m->entries), cmp_start);
	return err;
}

/* Read a whole file into a malloc'd buffer. */
static int read_all(const char *path, char **out, size_t *out_len)
{
	size_t cap = 16384, len = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= MAPS_MAX_BYTES) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int err = -errno;
			free(buf);
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	*out = buf;
	*out_len = len;
	return 0;
}

int ember_maps_read_file(const char *path, enum ember_maps_filter filter, struct ember_maps *m)
{
	char *buf = NULL;
	size_t len = 0;
	int err = read_all(path, &buf, &len);

	if (err)
		return err;
	err = ember_maps_parse(buf, len, filter, m);
	free(buf);
	return err;
}

int ember_maps_read_pid(uint32_t pid, enum ember_maps_filter filter, struct ember_maps *m)
{
	char path[64];
	int err;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	err = ember_maps_read_file(path, filter, m);
	/* A vanished process shows up as ENOENT on open or ESRCH on read. */
	return err == -ENOENT ? -ESRCH : err;
}

bool ember_proc_has_mm(uint32_t pid)
{
	char path[40], target[8];

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (readlink(path, target, sizeof(target)) >= 0)
		return true;
	return errno != ENOENT && errno != ESRCH;
}

bool ember_proc_alive(uint32_t pid)
{
	char path[40], buf[512];
	ssize_t n;
	int fd;

	if (ember_proc_has_mm(pid))
		return true;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT && errno != ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "PID (COMM) S ...": the state follows the last ')' (comm may hold one) */
	const char *paren = strrchr(buf, ')');
	if (!paren || paren[1] != ' ')
		return true;
	char state = paren[2];
	return state != 'Z' && state != 'X' && state != 'x';
}

const struct ember_map_entry *ember_maps_find(const struct ember_maps *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ember_map_entry *e = &m->entries[mid];
		if (addr < e->start)
			hi = mid;
		else if (addr >= e->end)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

void ember_maps_free(struct ember_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->entries[i].path);
	free(m->entries);
	memset(m, 0, sizeof(*m));
}

/* ---- the vDSO image ---- */

#define VDSO_MAX_BYTES (16u << 20)

int ember_vdso_memfd(size_t *size)
{
	uint64_t start = getauxval(AT_SYSINFO_EHDR);
	struct ember_maps maps = {0};
	size_t n = 0;
	int fd, err;

	*size = 0;
	if (!start)
		return -ENOENT;
	err = ember_maps_read_pid((uint32_t)getpid(), EMBER_MAPS_ALL, &maps);
	if (err)
		return err;
	for (size_t i = 0; i < maps.n; i++)
		if (maps.entries[i].start == start && !strcmp(maps.entries[i].path, "[vdso]"))
			n = maps.entries[i].end - maps.entries[i].start;
	ember_maps_free(&maps);
	if (!n || n > VDSO_MAX_BYTES)
		return -ENOENT;
	fd = memfd_create("ember-vdso", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, (const void *)(uintptr_t)start, n) != (ssize_t)n) {
		close(fd);
		return -EIO;
	}
	*size = n;
	return fd;
}
