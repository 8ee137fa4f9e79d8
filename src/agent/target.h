/*
 * target.h - who a process is: service and version, found without labelling.
 *
 * In order, the first source that has a value wins, separately for the
 * service and the version:
 *   1. the process environment: EMBER_SERVICE / EMBER_VERSION, then
 *      OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES service.name /
 *      service.version;
 *   2. the services file given to `ember run --services` (service only):
 *      "PATTERN = SERVICE" lines, the first pattern matching the executable
 *      wins (fnmatch; a pattern with a '/' is matched against the whole
 *      path, otherwise against the basename);
 *   3. Go build info: the last element of the main module path (a major
 *      version suffix such as /v2 skipped) and the module version, or the
 *      first 12 digits of vcs.revision for "(devel)" builds ("-dirty" when
 *      vcs.modified);
 *   4. the cgroup (service only): a systemd service unit ("nginx.service"
 *      -> "nginx", "getty@tty1.service" -> "getty").  A container scope
 *      (docker, containerd, CRI-O, podman, kubepods) gives the label
 *      "container=<first 12 digits of its id>" instead: an id changes with
 *      every restart, so it would split a service's history;
 *   5. the executable's basename (else comm) and the first 12 hex digits of
 *      its build-id: the GNU one, else derived from Go's build ID, else from
 *      the file's content (symbolizer/elf_identity.h), so two builds are two
 *      versions even without a GNU build-id or VCS information.
 */
#ifndef EMBER_AGENT_TARGET_H
#define EMBER_AGENT_TARGET_H

#include <stddef.h>
#include <stdint.h>

struct ember_gobuildinfo;

struct ember_target_names {
	char service[128];
	char version[128];
	char labels[128]; /* "k=v,k=v", "" for none */
};

/*
 * Fill names from an environment block (NUL-separated "K=V" strings, as in
 * /proc/PID/environ).  Fields with no value in the environment are left
 * untouched.  Bounds-checked: a block without a final NUL is fine.
 */
void ember_target_from_environ(const char *env, size_t len, struct ember_target_names *out);

/* Fill the empty service and version fields from Go build info. */
void ember_target_from_gobuildinfo(const struct ember_gobuildinfo *bi,
				   struct ember_target_names *out);

enum ember_cgroup_kind {
	EMBER_CGROUP_NONE,      /* nothing recognisable (a session, the root, ...) */
	EMBER_CGROUP_SERVICE,   /* a systemd service: name is the unit without ".service" */
	EMBER_CGROUP_CONTAINER, /* a container: name is the first 12 digits of its id */
};

/*
 * Parse /proc/PID/cgroup contents ("ID:CONTROLLERS:PATH" lines).  The
 * unified hierarchy's path is used, else the name=systemd one, else the
 * first other; its innermost recognisable component decides.
 */
enum ember_cgroup_kind ember_target_from_cgroup(const char *text, size_t len, char *name,
						size_t size);

/* ---- the services file ---- */

struct ember_service_map;

#define EMBER_SERVICE_MAP_MAX_BYTES (64 * 1024)
#define EMBER_SERVICE_MAP_MAX_RULES 1024

/*
 * Parse "PATTERN = SERVICE" lines ('#' starts a comment; blank lines are
 * fine).  origin names the input in error messages ("FILE:LINE: ...").
 * Returns 0 or -EINVAL / -ENOMEM; *out is freed with ember_service_map_free.
 */
int ember_service_map_parse(const char *text, size_t len, const char *origin,
			    struct ember_service_map **out, char *err, size_t errlen);
int ember_service_map_load(const char *path, struct ember_service_map **out, char *err,
			   size_t errlen);
/* The service of the first rule matching exe, or NULL. */
const char *ember_service_map_lookup(const struct ember_service_map *m, const char *exe);
void ember_service_map_free(struct ember_service_map *m);

/*
 * Names for a live process, from all the sources above.  map may be NULL.
 * Reads /proc/PID/environ, /proc/PID/exe (Go build info) and
 * /proc/PID/cgroup; a source that cannot be read is skipped.
 */
void ember_target_names(uint32_t pid, const char *comm, const char *exe, const char *build_id,
			const struct ember_service_map *map, struct ember_target_names *out);

#endif
