/*
 * target.h - who a process is: service and version, found without labelling.
 *
 * In order: the process environment (EMBER_SERVICE / EMBER_VERSION,
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES service.name / service.version),
 * then the executable name and short build-id.  (Go build info and cgroup
 * names join this list with the symbolizer's Go support.)
 */
#ifndef EMBER_AGENT_TARGET_H
#define EMBER_AGENT_TARGET_H

#include <stddef.h>
#include <stdint.h>

struct ember_target_names {
	char service[128];
	char version[128];
};

/*
 * Fill names from an environment block (NUL-separated "K=V" strings, as in
 * /proc/PID/environ).  Fields with no value in the environment are left
 * untouched.  Bounds-checked: a block without a final NUL is fine.
 */
void ember_target_from_environ(const char *env, size_t len, struct ember_target_names *out);

/*
 * Names for a live process: environment first, then exe basename (or comm)
 * and the first 12 hex digits of the build-id.
 */
void ember_target_names(uint32_t pid, const char *comm, const char *exe, const char *build_id,
			struct ember_target_names *out);

#endif
