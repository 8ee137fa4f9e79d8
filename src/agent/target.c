/*
 * target.c - service and version of a process, from what it already says
 * about itself: environment, Go build info, cgroup, executable.
 *
 * Everything read here is untrusted input: /proc/PID/environ (a block of
 * NUL-terminated "KEY=VALUE" strings any process can fill), /proc/PID/cgroup
 * (paths that container runtimes and users name), the executable, and the
 * services file.  Each is read with a size cap and parsed with explicit
 * bounds.  The order of the sources is described in target.h.
 */
#include "agent/target.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/profile.h"
#include "symbolizer/gopclntab.h"

#define ENVIRON_MAX (256 * 1024)
#define CGROUP_MAX (64 * 1024)
#define SHORT_ID 12

static void copy_value(char *dst, size_t size, const char *v, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

/* Find key=value inside a comma-separated OTEL attribute list. */
static void otel_attribute(const char *list, size_t len, const char *key, char *dst, size_t size)
{
	size_t klen = strlen(key);
	size_t i = 0;

	while (i < len) {
		size_t end = i;
		while (end < len && list[end] != ',')
			end++;
		/* skip spaces */
		size_t s = i;
		while (s < end && list[s] == ' ')
			s++;
		if (end - s > klen && memcmp(list + s, key, klen) == 0 && list[s + klen] == '=')
			copy_value(dst, size, list + s + klen + 1, end - s - klen - 1);
		i = end + 1;
	}
}

void ember_target_from_environ(const char *env, size_t len, struct ember_target_names *out)
{
	char otel_service[128] = "", otel_attr_service[128] = "", otel_attr_version[128] = "";
	char service[128] = "", version[128] = "";
	size_t i = 0;

	while (i < len) {
		const char *var = env + i;
		size_t vlen = strnlen(var, len - i);
		const char *eq = memchr(var, '=', vlen);
		i += vlen + 1;
		if (!eq)
			continue;
		size_t klen = (size_t)(eq - var);
		const char *val = eq + 1;
		size_t val_len = vlen - klen - 1;
#define IS(k) (klen == sizeof(k) - 1 && memcmp(var, k, klen) == 0)
		if (IS("EMBER_SERVICE"))
			copy_value(service, sizeof(service), val, val_len);
		else if (IS("EMBER_VERSION"))
			copy_value(version, sizeof(version), val, val_len);
		else if (IS("OTEL_SERVICE_NAME"))
			copy_value(otel_service, sizeof(otel_service), val, val_len);
		else if (IS("OTEL_RESOURCE_ATTRIBUTES")) {
			otel_attribute(val, val_len, "service.name", otel_attr_service,
				       sizeof(otel_attr_service));
			otel_attribute(val, val_len, "service.version", otel_attr_version,
				       sizeof(otel_attr_version));
		}
#undef IS
	}
	const char *svc = service[0] ? service : otel_service[0] ? otel_service : otel_attr_service;
	const char *ver = version[0] ? version : otel_attr_version;
	if (svc[0])
		snprintf(out->service, sizeof(out->service), "%s", svc);
	if (ver[0])
		snprintf(out->version, sizeof(out->version), "%s", ver);
}

/* ---- Go build info ---- */

/* "github.com/acme/shop/v2" -> "shop": the last element that is not a major version. */
static void module_service(const char *path, char *dst, size_t size)
{
	const char *end = path + strlen(path);

	while (end > path) {
		const char *start = end;
		while (start > path && start[-1] != '/')
			start--;
		size_t len = (size_t)(end - start);
		bool major = len >= 2 && start[0] == 'v' && strspn(start + 1, "0123456789") == len - 1;
		if (len && (!major || start == path)) {
			copy_value(dst, size, start, len);
			return;
		}
		end = start > path ? start - 1 : path;
	}
}

void ember_target_from_gobuildinfo(const struct ember_gobuildinfo *bi,
				   struct ember_target_names *out)
{
	if (!bi)
		return;
	if (!out->service[0] && bi->main_path && bi->main_path[0])
		module_service(bi->main_path, out->service, sizeof(out->service));
	if (out->version[0])
		return;
	if (bi->main_version && bi->main_version[0] && strcmp(bi->main_version, "(devel)") != 0) {
		snprintf(out->version, sizeof(out->version), "%s", bi->main_version);
		return;
	}
	const char *rev = ember_gobuildinfo_setting(bi, "vcs.revision");
	const char *modified = ember_gobuildinfo_setting(bi, "vcs.modified");
	if (rev && rev[0])
		snprintf(out->version, sizeof(out->version), "%.*s%s", SHORT_ID, rev,
			 modified && strcmp(modified, "true") == 0 ? "-dirty" : "");
}

/* ---- cgroup ---- */

static bool all_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return len > 0;
}

/* A container id in one path component: "<64 hex>" or "<runtime>-<hex>.scope". */
static bool container_component(const char *c, size_t len, char *name, size_t size)
{
	static const char *const prefixes[] = {"docker-", "cri-containerd-", "crio-", "libpod-",
					       "containerd-", NULL};
	static const char scope[] = ".scope";

	if (len == 64 && all_hex(c, len)) {
		copy_value(name, size, c, SHORT_ID);
		return true;
	}
	if (len <= sizeof(scope) - 1 || memcmp(c + len - (sizeof(scope) - 1), scope,
					       sizeof(scope) - 1) != 0)
		return false;
	len -= sizeof(scope) - 1;
	for (const char *const *p = prefixes; *p; p++) {
		size_t plen = strlen(*p);
		if (len > plen + SHORT_ID && memcmp(c, *p, plen) == 0 &&
		    all_hex(c + plen, len - plen)) {
			copy_value(name, size, c + plen, SHORT_ID);
			return true;
		}
	}
	return false;
}

/* A systemd service unit: "nginx.service" -> "nginx"; not user@UID.service. */
static bool service_component(const char *c, size_t len, char *name, size_t size)
{
	static const char suffix[] = ".service";
	size_t slen = sizeof(suffix) - 1;

	if (len <= slen || memcmp(c + len - slen, suffix, slen) != 0)
		return false;
	len -= slen;
	const char *at = memchr(c, '@', len);
	if (at) {
		if ((size_t)(at - c) == 4 && memcmp(c, "user", 4) == 0)
			return false; /* the per-user manager: its children are a session */
		len = (size_t)(at - c);
	}
	if (!len)
		return false;
	copy_value(name, size, c, len);
	return true;
}

/* The cgroup path of the preferred line: unified (0::), else name=systemd, else the first. */
static bool pick_cgroup_path(const char *text, size_t len, const char **path, size_t *plen)
{
	int best = 0; /* 3 unified, 2 systemd, 1 other */
	size_t i = 0;

	while (i < len) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t llen = nl ? (size_t)(nl - line) : len - i;
		i += llen + 1;
		const char *c1 = memchr(line, ':', llen);
		const char *c2 = c1 ? memchr(c1 + 1, ':', llen - (size_t)(c1 + 1 - line)) : NULL;
		if (!c2)
			continue;
		const char *ctl = c1 + 1;
		size_t ctl_len = (size_t)(c2 - ctl);
		int rank = ctl_len == 0 ? 3
			 : ctl_len == 12 && memcmp(ctl, "name=systemd", 12) == 0 ? 2 : 1;
		if (rank > best) {
			best = rank;
			*path = c2 + 1;
			*plen = llen - (size_t)(c2 + 1 - line);
		}
	}
	return best > 0;
}

enum ember_cgroup_kind ember_target_from_cgroup(const char *text, size_t len, char *name,
						size_t size)
{
	const char *path = NULL;
	size_t plen = 0;

	if (!size)
		return EMBER_CGROUP_NONE;
	name[0] = '\0';
	if (!pick_cgroup_path(text, len, &path, &plen))
		return EMBER_CGROUP_NONE;
	/* innermost component first */
	size_t end = plen;
	while (end > 0) {
		size_t start = end;
		while (start > 0 && path[start - 1] != '/')
			start--;
		const char *c = path + start;
		size_t clen = end - start;
		if (container_component(c, clen, name, size))
			return EMBER_CGROUP_CONTAINER;
		if (service_component(c, clen, name, size))
			return EMBER_CGROUP_SERVICE;
		end = start > 0 ? start - 1 : 0;
	}
	return EMBER_CGROUP_NONE;
}

/* ---- the services file ---- */

struct service_rule {
	char *pattern, *service;
	bool path; /* the pattern has a '/': match the whole path */
};

struct ember_service_map {
	struct service_rule *rules;
	size_t n;
};

void ember_service_map_free(struct ember_service_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->rules[i].pattern);
		free(m->rules[i].service);
	}
	free(m->rules);
	free(m);
}

/* [s, e) without surrounding blanks. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

static int parse_rule(struct ember_service_map *m, const char *line, size_t len,
		      const char *origin, unsigned lineno, char *err, size_t errlen)
{
	const char *end = line + len, *hash = memchr(line, '#', len);
	if (hash)
		end = hash;
	const char *s = line;
	trim(&s, &end);
	if (s == end)
		return 0;
	const char *eq = memchr(s, '=', (size_t)(end - s));
	if (!eq) {
		snprintf(err, errlen, "%s:%u: expected \"PATTERN = SERVICE\"", origin, lineno);
		return -EINVAL;
	}
	const char *ps = s, *pe = eq, *vs = eq + 1, *ve = end;
	trim(&ps, &pe);
	trim(&vs, &ve);
	if (ps == pe || vs == ve) {
		snprintf(err, errlen, "%s:%u: empty %s", origin, lineno,
			 ps == pe ? "pattern" : "service name");
		return -EINVAL;
	}
	if ((size_t)(ve - vs) >= sizeof(((struct ember_target_names *)0)->service)) {
		snprintf(err, errlen, "%s:%u: service name longer than %zu bytes", origin, lineno,
			 sizeof(((struct ember_target_names *)0)->service) - 1);
		return -EINVAL;
	}
	if (m->n == EMBER_SERVICE_MAP_MAX_RULES) {
		snprintf(err, errlen, "%s:%u: more than %d rules", origin, lineno,
			 EMBER_SERVICE_MAP_MAX_RULES);
		return -EINVAL;
	}
	struct service_rule *r = &m->rules[m->n];
	r->pattern = strndup(ps, (size_t)(pe - ps));
	r->service = strndup(vs, (size_t)(ve - vs));
	if (!r->pattern || !r->service) {
		free(r->pattern);
		free(r->service);
		snprintf(err, errlen, "%s: out of memory", origin);
		return -ENOMEM;
	}
	r->path = memchr(ps, '/', (size_t)(pe - ps)) != NULL;
	m->n++;
	return 0;
}

int ember_service_map_parse(const char *text, size_t len, const char *origin,
			    struct ember_service_map **out, char *err, size_t errlen)
{
	struct ember_service_map *m = calloc(1, sizeof(*m));
	unsigned lineno = 0;
	size_t i = 0;
	int ret = 0;

	*out = NULL;
	if (m)
		m->rules = calloc(EMBER_SERVICE_MAP_MAX_RULES, sizeof(*m->rules));
	if (!m || !m->rules) {
		free(m);
		snprintf(err, errlen, "%s: out of memory", origin);
		return -ENOMEM;
	}
	if (len > EMBER_SERVICE_MAP_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than %d bytes", origin, EMBER_SERVICE_MAP_MAX_BYTES);
		ret = -EINVAL;
	}
	while (!ret && i < len) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t llen = nl ? (size_t)(nl - line) : len - i;
		i += llen + 1;
		if (memchr(line, '\0', llen)) {
			snprintf(err, errlen, "%s:%u: NUL byte", origin, lineno + 1);
			ret = -EINVAL;
			break;
		}
		ret = parse_rule(m, line, llen, origin, ++lineno, err, errlen);
	}
	if (ret) {
		ember_service_map_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

int ember_service_map_load(const char *path, struct ember_service_map **out, char *err,
			   size_t errlen)
{
	char *buf = malloc(EMBER_SERVICE_MAP_MAX_BYTES + 1);
	size_t n = 0;
	int fd, ret;

	*out = NULL;
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(buf);
		return ret;
	}
	while (n <= EMBER_SERVICE_MAP_MAX_BYTES) {
		ssize_t r = read(fd, buf + n, EMBER_SERVICE_MAP_MAX_BYTES + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			free(buf);
			return ret;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	ret = ember_service_map_parse(buf, n, path, out, err, errlen);
	free(buf);
	return ret;
}

const char *ember_service_map_lookup(const struct ember_service_map *m, const char *exe)
{
	if (!m || !exe || !exe[0])
		return NULL;
	const char *base = ember_basename(exe);
	for (size_t i = 0; i < m->n; i++) {
		const struct service_rule *r = &m->rules[i];
		if (fnmatch(r->pattern, r->path ? exe : base, 0) == 0)
			return r->service;
	}
	return NULL;
}

/* ---- a live process ---- */

/* Read at most max bytes of a /proc file; NULL when it cannot be read. */
static char *read_proc(uint32_t pid, const char *what, size_t max, size_t *len)
{
	char path[64];
	int fd;
	char *buf;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%u/%s", pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(max);
	if (!buf) {
		close(fd);
		return NULL;
	}
	while (n < max) {
		ssize_t r = read(fd, buf + n, max - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

/* Go build info of the process's executable (through /proc, so across mount namespaces). */
static void names_from_go(uint32_t pid, const char *exe, struct ember_target_names *out)
{
	struct ember_gobuildinfo *bi = NULL;
	char path[64], err[256];

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (ember_gobuildinfo_read(path, &bi, err, sizeof(err)) != 0 && exe &&
	    ember_gobuildinfo_read(exe, &bi, err, sizeof(err)) != 0)
		return;
	ember_target_from_gobuildinfo(bi, out);
	ember_gobuildinfo_free(bi);
}

static void names_from_cgroup(uint32_t pid, struct ember_target_names *out)
{
	size_t len = 0;
	char *text = read_proc(pid, "cgroup", CGROUP_MAX, &len);
	char name[64];

	if (!text)
		return;
	switch (ember_target_from_cgroup(text, len, name, sizeof(name))) {
	case EMBER_CGROUP_SERVICE:
		if (!out->service[0])
			snprintf(out->service, sizeof(out->service), "%s", name);
		break;
	case EMBER_CGROUP_CONTAINER:
		snprintf(out->labels, sizeof(out->labels), "container=%s", name);
		break;
	case EMBER_CGROUP_NONE:
		break;
	}
	free(text);
}

#define PF_KTHREAD_FLAG 0x00200000 /* include/linux/sched.h */

/* Is pid a kernel thread (kworker, ksoftirqd, ...)?  From the flags of /proc/PID/stat. */
static bool kernel_thread(uint32_t pid)
{
	size_t len = 0;
	char *stat = read_proc(pid, "stat", 1024, &len);
	unsigned long flags = 0;
	bool yes = false;

	if (!stat)
		return false;
	stat[len ? len - 1 : 0] = '\0';
	/* "PID (COMM) S PPID PGRP SESSION TTY TPGID FLAGS": comm may hold ") " */
	const char *p = strrchr(stat, ')');
	if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1)
		yes = (flags & PF_KTHREAD_FLAG) != 0;
	free(stat);
	return yes;
}

/*
 * The name of a program run from a memfd ("memfd:sealed-..." names no
 * program, and the kernel copies it into comm): the last part of its
 * argv[0], else "memfd".
 */
static void memfd_name(uint32_t pid, char *dst, size_t size)
{
	size_t len = 0;
	char *cmd = read_proc(pid, "cmdline", 4096, &len);
	const char *name = NULL;

	if (cmd && len) {
		cmd[len - 1] = '\0'; /* argv[0] ends at the first NUL */
		name = ember_basename(cmd);
	}
	snprintf(dst, size, "%s", name && name[0] && strncmp(name, "memfd:", 6) ? name : "memfd");
	free(cmd);
}

/*
 * The service a process is named by when it says nothing about itself:
 * its executable's name; "kernel" for every kernel thread (one service, not
 * one per kworker); for an executable run from a memfd, its argv[0].
 */
static void fallback_service(uint32_t pid, const char *comm, const char *exe, char *dst,
			     size_t size)
{
	const char *name = exe && exe[0] ? ember_basename(exe) : NULL;

	if ((name && !strncmp(name, "memfd:", 6)) || (!name && comm && !strncmp(comm, "memfd:", 6))) {
		memfd_name(pid, dst, size);
		return;
	}
	if (!name && kernel_thread(pid))
		name = EMBER_KERNEL_SERVICE;
	else if (!name)
		name = comm;
	snprintf(dst, size, "%s", name && name[0] ? name : "unknown");
}

void ember_target_names(uint32_t pid, const char *comm, const char *exe, const char *build_id,
			const struct ember_service_map *map, struct ember_target_names *out)
{
	size_t len = 0;
	char *env = read_proc(pid, "environ", ENVIRON_MAX, &len);

	out->service[0] = out->version[0] = out->labels[0] = '\0';
	if (env) {
		ember_target_from_environ(env, len, out);
		free(env);
	}
	if (!out->service[0]) {
		const char *mapped = ember_service_map_lookup(map, exe);
		if (mapped)
			snprintf(out->service, sizeof(out->service), "%s", mapped);
	}
	if (!out->service[0] || !out->version[0])
		names_from_go(pid, exe, out);
	names_from_cgroup(pid, out);
	if (!out->service[0])
		fallback_service(pid, comm, exe, out->service, sizeof(out->service));
	if (!out->version[0])
		snprintf(out->version, sizeof(out->version), "%.*s", SHORT_ID,
			 build_id && build_id[0] ? build_id : "unknown");
}
