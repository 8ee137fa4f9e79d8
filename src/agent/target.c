/*
 * target.c - service and version of a process from its environment.
 *
 * /proc/PID/environ is the environment the process was started with: a
 * block of NUL-terminated "KEY=VALUE" strings.  It is untrusted input (any
 * process can put anything there), so it is read with a size cap and
 * parsed with explicit bounds.
 */
#include "agent/target.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/profile.h"

#define ENVIRON_MAX (256 * 1024)

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

static char *read_environ(uint32_t pid, size_t *len)
{
	char path[64];
	int fd;
	char *buf;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%u/environ", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(ENVIRON_MAX);
	if (!buf) {
		close(fd);
		return NULL;
	}
	while (n < ENVIRON_MAX) {
		ssize_t r = read(fd, buf + n, ENVIRON_MAX - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

void ember_target_names(uint32_t pid, const char *comm, const char *exe, const char *build_id,
			struct ember_target_names *out)
{
	size_t len = 0;
	char *env = read_environ(pid, &len);

	out->service[0] = out->version[0] = '\0';
	if (env) {
		ember_target_from_environ(env, len, out);
		free(env);
	}
	if (!out->service[0]) {
		const char *name = exe ? ember_basename(exe) : comm;
		snprintf(out->service, sizeof(out->service), "%s", name && name[0] ? name : "unknown");
	}
	if (!out->version[0])
		snprintf(out->version, sizeof(out->version), "%.12s",
			 build_id && build_id[0] ? build_id : "unknown");
}
