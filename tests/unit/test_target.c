/*
 * test_target.c - service and version of a process: environment (with
 * OTEL_RESOURCE_ATTRIBUTES), Go build info (on the Go test program and on
 * hand-made build info), cgroup paths of systemd, docker, containerd,
 * kubepods and CRI-O, the services file, and the whole chain on this
 * test's own process.
 */
#include "testutil.h"

#include <errno.h>
#include <unistd.h>

#include "agent/target.h"
#include "symbolizer/gopclntab.h"

#define ENV(s) s, sizeof(s) - 1 /* a block with its NULs, without the literal's last one */

static void test_environ(void **state)
{
	struct ember_target_names n = {""};

	ember_target_from_environ(ENV("PATH=/bin\0EMBER_SERVICE=api\0EMBER_VERSION=1.2\0"), &n);
	assert_string_equal(n.service, "api");
	assert_string_equal(n.version, "1.2");

	/* OTEL: the service name variable beats the attribute; spaces around items */
	memset(&n, 0, sizeof(n));
	ember_target_from_environ(
		ENV("OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod, service.name=attr,"
		    "service.version=3.4.5\0OTEL_SERVICE_NAME=checkout\0"),
		&n);
	assert_string_equal(n.service, "checkout");
	assert_string_equal(n.version, "3.4.5");

	/* EMBER_* beats OTEL; a block without a final NUL; no '=' is skipped */
	memset(&n, 0, sizeof(n));
	ember_target_from_environ(ENV("OTEL_SERVICE_NAME=otel\0JUNK\0EMBER_SERVICE=mine"), &n);
	assert_string_equal(n.service, "mine");
	assert_string_equal(n.version, "");

	/* nothing there: fields untouched; an over-long value is cut, not overflowed */
	strcpy(n.version, "kept");
	char big[400];
	memset(big, 'x', sizeof(big));
	memcpy(big, "EMBER_SERVICE=", 14);
	ember_target_from_environ(big, sizeof(big), &n);
	assert_int_equal(strlen(n.service), sizeof(n.service) - 1);
	assert_string_equal(n.version, "kept");
}

static enum ember_cgroup_kind cgroup(const char *text, char *name)
{
	return ember_target_from_cgroup(text, strlen(text), name, 64);
}

static void test_cgroup(void **state)
{
	char name[64];
	const char *id = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
	char text[512];

	assert_int_equal(cgroup("0::/system.slice/nginx.service\n", name), EMBER_CGROUP_SERVICE);
	assert_string_equal(name, "nginx");
	assert_int_equal(cgroup("0::/system.slice/system-getty.slice/getty@tty1.service\n", name),
			 EMBER_CGROUP_SERVICE);
	assert_string_equal(name, "getty");
	/* a user service inside the user manager, but not the manager itself */
	assert_int_equal(cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
				"syncthing.service",
				name),
			 EMBER_CGROUP_SERVICE);
	assert_string_equal(name, "syncthing");
	assert_int_equal(cgroup("0::/user.slice/user-1000.slice/user@1000.service/init.scope\n",
				name),
			 EMBER_CGROUP_NONE);
	assert_int_equal(cgroup("0::/user.slice/user-0.slice/session-3.scope\n", name),
			 EMBER_CGROUP_NONE);
	assert_int_equal(cgroup("0::/\n", name), EMBER_CGROUP_NONE);

	/* containers: systemd driver scopes and cgroupfs paths */
	snprintf(text, sizeof(text), "0::/system.slice/docker-%s.scope\n", id);
	assert_int_equal(cgroup(text, name), EMBER_CGROUP_CONTAINER);
	assert_string_equal(name, "3f4e1c2b9a8d");
	snprintf(text, sizeof(text),
		 "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/"
		 "cri-containerd-%s.scope", id);
	assert_int_equal(cgroup(text, name), EMBER_CGROUP_CONTAINER);
	assert_string_equal(name, "3f4e1c2b9a8d");
	snprintf(text, sizeof(text), "0::/kubepods/besteffort/pod1234-5678/%s\n", id);
	assert_int_equal(cgroup(text, name), EMBER_CGROUP_CONTAINER);
	snprintf(text, sizeof(text), "0::/machine.slice/libpod-%s.scope/container\n", id);
	assert_int_equal(cgroup(text, name), EMBER_CGROUP_CONTAINER);
	snprintf(text, sizeof(text), "0::/crio-%s.scope", id);
	assert_int_equal(cgroup(text, name), EMBER_CGROUP_CONTAINER);
	/* not hex, too short: no container */
	assert_int_equal(cgroup("0::/system.slice/docker-zzzz.scope\n", name), EMBER_CGROUP_NONE);
	assert_int_equal(cgroup("0::/docker/abc123\n", name), EMBER_CGROUP_NONE);

	/* cgroup v1 (hybrid): name=systemd is used when there is no unified line */
	snprintf(text, sizeof(text),
		 "12:memory:/process_api/601d066820339bab4ac145fd2958fb4f\n"
		 "1:name=systemd:/system.slice/postgresql@15-main.service\n");
	assert_int_equal(cgroup(text, name), EMBER_CGROUP_SERVICE);
	assert_string_equal(name, "postgresql");
	snprintf(text, sizeof(text), "4:cpu,cpuacct:/docker/%s\n", id);
	assert_int_equal(cgroup(text, name), EMBER_CGROUP_CONTAINER);

	/* malformed input: no crash, nothing found */
	const char *bad[] = {"", "\n\n", "garbage", "0:", "0::", ":::::", "0::////", "0::/.service",
			     "0::/@x.service"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cgroup(bad[i], name), EMBER_CGROUP_NONE);
	/* a long unit name is cut to the buffer */
	char small[8];
	assert_int_equal(ember_target_from_cgroup("0::/averyveryverylongname.service", 33, small,
						  sizeof(small)),
			 EMBER_CGROUP_SERVICE);
	assert_string_equal(small, "averyve");
}

static void test_service_map(void **state)
{
	static const char text[] = "# services of this host\n"
				   "\n"
				   "/opt/shop/bin/* = shop   # everything installed there\n"
				   "api-server*=api\n"
				   "  worker  =  jobs  \n"
				   "*.py = python-app";
	struct ember_service_map *m;
	char err[256];

	assert_int_equal(ember_service_map_parse(text, sizeof(text) - 1, "svc.conf", &m, err,
						 sizeof(err)),
			 0);
	assert_string_equal(ember_service_map_lookup(m, "/opt/shop/bin/frontend"), "shop");
	assert_string_equal(ember_service_map_lookup(m, "/usr/bin/api-server-2"), "api");
	assert_string_equal(ember_service_map_lookup(m, "/opt/shop/bin/api-server"), "shop");
	assert_string_equal(ember_service_map_lookup(m, "/srv/worker"), "jobs");
	assert_string_equal(ember_service_map_lookup(m, "worker"), "jobs");
	assert_string_equal(ember_service_map_lookup(m, "/x/tool.py"), "python-app");
	assert_null(ember_service_map_lookup(m, "/usr/bin/workers"));
	assert_null(ember_service_map_lookup(m, "/opt/shop/frontend"));
	assert_null(ember_service_map_lookup(m, NULL));
	assert_null(ember_service_map_lookup(NULL, "/srv/worker"));
	ember_service_map_free(m);

	/* errors name the file and line */
	const char *bad[][2] = {{"a = b\nno equals sign\n", "svc.conf:2:"},
				{" = svc\n", "svc.conf:1: empty pattern"},
				{"x =   # nothing\n", "svc.conf:1: empty service name"}};
	for (size_t i = 0; i < 3; i++) {
		err[0] = '\0';
		assert_int_equal(ember_service_map_parse(bad[i][0], strlen(bad[i][0]), "svc.conf",
							 &m, err, sizeof(err)),
				 -EINVAL);
		assert_null(m);
		if (!strstr(err, bad[i][1]))
			fail_msg("'%s': error '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
	}
	char nul[] = "a = b\nc\0d = e\n";
	assert_int_equal(ember_service_map_parse(nul, sizeof(nul) - 1, "n", &m, err, sizeof(err)),
			 -EINVAL);
	char *huge = malloc(EMBER_SERVICE_MAP_MAX_BYTES + 2);
	assert_non_null(huge);
	memset(huge, '\n', EMBER_SERVICE_MAP_MAX_BYTES + 2);
	assert_int_equal(ember_service_map_parse(huge, EMBER_SERVICE_MAP_MAX_BYTES + 2, "h", &m, err,
						 sizeof(err)),
			 -EINVAL);
	free(huge);

	/* loading: a missing file names itself */
	assert_int_equal(ember_service_map_load("/nonexistent/svc.conf", &m, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/svc.conf"));
	char path[] = "/tmp/ember-test-svc-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(ember_service_map_load(path, &m, err, sizeof(err)), 0);
	assert_string_equal(ember_service_map_lookup(m, "/srv/worker"), "jobs");
	ember_service_map_free(m);
	unlink(path);
}

static void test_gobuildinfo_fields(void **state)
{
	struct ember_gobuild_setting settings[] = {{"vcs.revision", "0123456789abcdef0123"},
						   {"vcs.modified", "true"}};
	struct ember_gobuildinfo bi = {.main_path = "github.com/acme/shop/v2",
				       .main_version = "v2.3.1", .settings = settings,
				       .n_settings = 2};
	struct ember_target_names n = {""};

	ember_target_from_gobuildinfo(&bi, &n);
	assert_string_equal(n.service, "shop");
	assert_string_equal(n.version, "v2.3.1");

	/* (devel) builds: the revision, marked dirty when modified */
	memset(&n, 0, sizeof(n));
	bi.main_version = "(devel)";
	bi.main_path = "example.com/tool";
	ember_target_from_gobuildinfo(&bi, &n);
	assert_string_equal(n.service, "tool");
	assert_string_equal(n.version, "0123456789ab-dirty");

	/* given names are kept; no revision, no version */
	strcpy(n.service, "from-env");
	n.version[0] = '\0';
	bi.n_settings = 0;
	bi.main_path = "v3";
	ember_target_from_gobuildinfo(&bi, &n);
	assert_string_equal(n.service, "from-env");
	assert_string_equal(n.version, "");
	n.service[0] = '\0';
	ember_target_from_gobuildinfo(&bi, &n);
	assert_string_equal(n.service, "v3");
	ember_target_from_gobuildinfo(NULL, &n);
}

/* The Go test program (tests/programs/goprog, module example.com/goprog). */
static void test_go_program(void **state)
{
	const char *prog = test_prog("goprog");
	struct ember_gobuildinfo *bi = NULL;
	struct ember_target_names n;
	char err[256];

	if (access(prog, X_OK) != 0)
		fail_msg("%s not built (make test-programs)", prog);
	assert_int_equal(ember_gobuildinfo_read(prog, &bi, err, sizeof(err)), 0);
	/* pid 0 has no /proc entry: the names come from the file at exe */
	ember_target_names(0, "goprog", prog, "feedfacecafebeef0000", NULL, &n);
	assert_string_equal(n.service, "goprog");
	const char *rev = ember_gobuildinfo_setting(bi, "vcs.revision");
	if (rev)
		assert_memory_equal(n.version, rev, 12); /* built inside a git checkout */
	else
		assert_string_equal(n.version, "feedfacecafe"); /* (devel), no VCS: build-id */
	ember_gobuildinfo_free(bi);

	/* a services file entry beats Go build info */
	struct ember_service_map *m;
	assert_int_equal(ember_service_map_parse("goprog = gosvc", 14, "t", &m, err, sizeof(err)),
			 0);
	ember_target_names(0, "goprog", prog, NULL, m, &n);
	assert_string_equal(n.service, "gosvc");
	ember_service_map_free(m);
}

/* The whole chain on this process (a C program: no Go info). */
static void test_live_process(void **state)
{
	struct ember_target_names n;
	char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (getenv("EMBER_SERVICE") || getenv("OTEL_SERVICE_NAME") ||
	    getenv("OTEL_RESOURCE_ATTRIBUTES"))
		skip(); /* the environment decides, not what this test checks */
	assert_true(len > 0);
	exe[len] = '\0';
	ember_target_names((uint32_t)getpid(), "comm", exe, "00112233445566778899", NULL,
			   &n);
	/* unless this runs inside a systemd service, the executable names it */
	FILE *f = fopen("/proc/self/cgroup", "r");
	char cg[4096] = "", unit[64];
	size_t got = f ? fread(cg, 1, sizeof(cg) - 1, f) : 0;
	if (f)
		fclose(f);
	if (ember_target_from_cgroup(cg, got, unit, sizeof(unit)) == EMBER_CGROUP_SERVICE)
		assert_string_equal(n.service, unit);
	else
		assert_string_equal(n.service, strrchr(exe, '/') + 1);
	if (!getenv("EMBER_VERSION"))
		assert_string_equal(n.version, "001122334455");

	/* a process that does not exist: exe name and build-id */
	ember_target_names(0, "gone", NULL, NULL, NULL, &n);
	assert_string_equal(n.service, "gone");
	assert_string_equal(n.version, "unknown");

	/* an executable run from a memfd is named by its argv[0], else "memfd" */
	ember_target_names(0, "memfd:sealed-91", "/memfd:sealed-runc-7f", NULL, NULL, &n);
	assert_string_equal(n.service, "memfd");
	ember_target_names((uint32_t)getpid(), "memfd:sealed-91", "/memfd:sealed-runc-7f", NULL,
			   NULL, &n);
	if (!getenv("EMBER_SERVICE") && !getenv("OTEL_SERVICE_NAME") && !getenv("OTEL_RESOURCE_ATTRIBUTES") &&
	    ember_target_from_cgroup(cg, got, unit, sizeof(unit)) != EMBER_CGROUP_SERVICE)
		assert_string_equal(n.service, "test_target"); /* this program's argv[0] */
}

/* Kernel threads (PF_KTHREAD in /proc/PID/stat) are one service, "kernel". */
static void test_kernel_threads(void **state)
{
	struct ember_target_names n;
	char stat[512] = "";
	FILE *f = fopen("/proc/2/stat", "r");
	unsigned long flags = 0;

	/* the oracle: kthreadd's own flags, read here independently */
	if (!f || !fgets(stat, sizeof(stat), f) || !strstr(stat, "(kthreadd)"))
		skip(); /* a pid namespace without kthreadd */
	fclose(f);
	assert_int_equal(sscanf(strrchr(stat, ')') + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags), 1);
	assert_true(flags & 0x00200000);
	ember_target_names(2, "kthreadd", NULL, NULL, NULL, &n);
	assert_string_equal(n.service, EMBER_KERNEL_SERVICE);
	/* a user process without an executable path keeps its name */
	ember_target_names((uint32_t)getpid(), "myproc", NULL, NULL, NULL, &n);
	if (!getenv("EMBER_SERVICE") && !getenv("OTEL_SERVICE_NAME"))
		assert_string_not_equal(n.service, EMBER_KERNEL_SERVICE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_environ),
		cmocka_unit_test(test_kernel_threads),
		cmocka_unit_test(test_cgroup),
		cmocka_unit_test(test_service_map),
		cmocka_unit_test(test_gobuildinfo_fields),
		cmocka_unit_test(test_go_program),
		cmocka_unit_test(test_live_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
