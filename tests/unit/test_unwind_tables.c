/*
 * test_unwind_tables.c - the process lifetime rules of the unwind tables,
 * against real BPF maps (root or CAP_BPF; skipped otherwise), read back
 * with bpf_map_lookup_elem / get_next_key as the kernel sees them:
 *   - a zombie (exited, not reaped) is never entered;
 *   - a process that exits between the read of its maps and the write of
 *     its entry is removed at once (its exit event would never come), and
 *     the files it could not open are counted as vanished, not failures;
 *   - at the map's capacity the least recently sampled process is evicted;
 *   - a file that failed to read is retried after its backoff, and the
 *     process mapping it is reloaded with the file's table (defect F: a
 *     failed read must never be cached as final).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/procmaps.h"
#include "agent/unwind_tables.h"
#include "core/clock.h"
#include "ember_unwind.h"

struct fixture {
	struct ember_unwind_maps maps;
	struct ember_unwind_tables *t;
};

static int make_maps(struct ember_unwind_maps *m, size_t procs_max)
{
	LIBBPF_OPTS(bpf_map_create_opts, mmapable, .map_flags = BPF_F_MMAPABLE);
	m->procs_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "t_procs", sizeof(uint32_t),
				     sizeof(struct ember_proc), (uint32_t)procs_max, NULL);
	m->index_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "t_index", sizeof(struct ember_index_key),
				     sizeof(struct ember_index_value), 65536, NULL);
	m->rules_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_rules", sizeof(uint32_t),
				     sizeof(struct ember_unwind_rule), EMBER_MAX_RULES, NULL);
	m->shard0_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_shard0", sizeof(uint32_t),
				      sizeof(uint64_t), EMBER_SHARD_ELEMS, &mmapable);
	if (m->procs_fd < 0 || m->index_fd < 0 || m->rules_fd < 0 || m->shard0_fd < 0)
		return -1;
	LIBBPF_OPTS(bpf_map_create_opts, outer, .inner_map_fd = m->shard0_fd);
	m->shards_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "t_shards", sizeof(uint32_t),
				      sizeof(uint32_t), EMBER_MAX_SHARDS, &outer);
	uint32_t zero = 0;
	if (m->shards_fd < 0 ||
	    bpf_map_update_elem(m->shards_fd, &zero, &m->shard0_fd, BPF_ANY))
		return -1;
	m->procs_max = procs_max;
	return 0;
}

static struct fixture *setup(void **state, size_t procs_max)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	if (make_maps(&fx->maps, procs_max)) {
		print_message("no BPF maps here (%s): needs root or CAP_BPF\n", strerror(errno));
		free(fx);
		skip();
	}
	struct ember_unwind_tables_opts o = {.budget_bytes = 16 << 20};
	assert_int_equal(ember_unwind_tables_new(&fx->maps, &o, &fx->t), 0);
	*state = fx;
	return fx;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (!fx)
		return 0;
	ember_unwind_tables_free(fx->t);
	close(fx->maps.procs_fd);
	close(fx->maps.index_fd);
	close(fx->maps.rules_fd);
	close(fx->maps.shards_fd);
	close(fx->maps.shard0_fd);
	free(fx);
	*state = NULL;
	return 0;
}

/* The map's keys, as the kernel holds them, into keys[] (at most max); returns how many. */
static size_t map_keys(const struct fixture *fx, uint32_t *keys, size_t max)
{
	size_t n = 0;
	uint32_t cur;
	int rc = bpf_map_get_next_key(fx->maps.procs_fd, NULL, &cur);

	while (rc == 0) {
		if (n < max)
			keys[n] = cur;
		n++;
		uint32_t prev = cur;
		rc = bpf_map_get_next_key(fx->maps.procs_fd, &prev, &cur);
	}
	return n;
}

static size_t map_entries(const struct fixture *fx)
{
	uint32_t keys[16];
	return map_keys(fx, keys, 16);
}

static bool in_map(const struct fixture *fx, pid_t pid, struct ember_proc *out)
{
	static struct ember_proc scratch;
	uint32_t key = (uint32_t)pid;
	return bpf_map_lookup_elem(fx->maps.procs_fd, &key, out ? out : &scratch) == 0;
}

/* A child that sleeps until killed (an exec of /bin/sleep: few, ordinary mappings). */
static pid_t start_sleeper(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	/* wait for the exec and the loader: the maps show /bin/sleep and libc */
	for (int i = 0; i < 5000; i++) {
		struct ember_maps m = {0};
		bool sleep_mapped = false, libc_mapped = false;
		if (ember_maps_read_pid((uint32_t)pid, EMBER_MAPS_EXEC_ONLY, &m) == 0)
			for (size_t k = 0; k < m.n; k++) {
				sleep_mapped |= strstr(m.entries[k].path, "sleep") != NULL;
				libc_mapped |= strstr(m.entries[k].path, "/libc.so") != NULL;
			}
		ember_maps_free(&m);
		if (sleep_mapped && libc_mapped)
			return pid;
		usleep(2000);
	}
	fail_msg("child %d did not exec /bin/sleep", pid);
	return -1;
}

/* Until pid has exited, without reaping it: a zombie. */
static void wait_zombie(pid_t pid)
{
	siginfo_t info;

	assert_int_equal(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
	assert_false(ember_proc_has_mm((uint32_t)pid));
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_zombie_is_refused(void **state)
{
	struct fixture *fx = setup(state, 8);
	struct ember_unwind_tables_stats st;
	pid_t pid = start_sleeper();

	kill(pid, SIGKILL);
	wait_zombie(pid); /* /proc/PID exists, its maps are empty */
	assert_int_equal(ember_unwind_tables_load(fx->t, (uint32_t)pid), -ESRCH);
	assert_false(in_map(fx, pid, NULL));
	ember_unwind_tables_stats(fx->t, &st);
	assert_int_equal(st.refused_dead, 1);
	assert_int_equal(st.processes, 0);
	assert_int_equal(map_entries(fx), 0);
	waitpid(pid, NULL, 0);
}

static void test_exit_between_read_and_write_is_undone(void **state)
{
	struct fixture *fx = setup(state, 8);
	struct ember_unwind_tables_stats st;
	struct ember_maps maps = {0};
	pid_t pid = start_sleeper();

	/* the agent read its maps while it ran ... */
	assert_int_equal(ember_maps_read_pid((uint32_t)pid, EMBER_MAPS_EXEC_ONLY, &maps), 0);
	assert_true(maps.n > 0);
	/* ... and it exited before the entry was written (its exit event is past) */
	kill(pid, SIGKILL);
	wait_zombie(pid);
	assert_int_equal(ember_unwind_tables_load_maps(fx->t, (uint32_t)pid, &maps), -ESRCH);
	assert_false(in_map(fx, pid, NULL));
	ember_unwind_tables_stats(fx->t, &st);
	assert_int_equal(st.raced_exits, 1);
	/* its files were opened through the agent's own view of the same inode,
	 * or counted as vanished: a race, never a failure */
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.processes, 0);
	assert_int_equal(st.files, 0); /* nothing is kept for it */
	ember_maps_free(&maps);
	waitpid(pid, NULL, 0);

	/* the next process mapping the same files gets their tables */
	pid = start_sleeper();
	struct ember_proc entry;
	assert_int_equal(ember_unwind_tables_load(fx->t, (uint32_t)pid), 0);
	assert_true(in_map(fx, pid, &entry));
	unsigned with_table = 0;
	for (uint32_t i = 0; i < entry.n_mappings; i++)
		with_table += (entry.mappings[i].flags & EMBER_MAPPING_TABLE) != 0;
	assert_true(with_table >= 3); /* sleep, libc, ld.so, the vDSO: all have CFI */
	stop(pid);
}

static void test_full_map_evicts_least_recently_sampled(void **state)
{
	struct fixture *fx = setup(state, 3);
	struct ember_unwind_tables_stats st;
	pid_t p[4];

	for (int i = 0; i < 3; i++) {
		p[i] = start_sleeper();
		assert_int_equal(ember_unwind_tables_load(fx->t, (uint32_t)p[i]), 0);
	}
	/* the first two are sampled later than the third was loaded */
	int64_t now = ember_monotonic_ns();
	ember_unwind_tables_touch(fx->t, (uint32_t)p[0], now + 1);
	ember_unwind_tables_touch(fx->t, (uint32_t)p[1], now + 2);
	p[3] = start_sleeper();
	assert_int_equal(ember_unwind_tables_load(fx->t, (uint32_t)p[3]), 0);
	uint32_t keys[8], want[3] = {(uint32_t)p[0], (uint32_t)p[1], (uint32_t)p[3]};
	assert_int_equal(map_keys(fx, keys, 8), 3);
	for (int i = 0; i < 3; i++) { /* the survivors, in the kernel's map */
		bool found = false;
		for (int k = 0; k < 3; k++)
			found |= keys[k] == want[i];
		assert_true(found);
	}
	ember_unwind_tables_stats(fx->t, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.processes, 3);
	assert_int_equal(st.max_processes, 3);

	/* an evicted process that runs on is loaded again when the kernel asks */
	assert_int_equal(ember_unwind_tables_load(fx->t, (uint32_t)p[2]), 0);
	assert_true(in_map(fx, p[2], NULL));
	assert_int_equal(map_entries(fx), 3);
	for (int i = 0; i < 4; i++) {
		stop(p[i]);
		ember_unwind_tables_unload(fx->t, (uint32_t)p[i]);
	}
	assert_int_equal(map_entries(fx), 0);
	ember_unwind_tables_stats(fx->t, &st);
	assert_int_equal(st.processes, 0);
	assert_int_equal(st.files, 0); /* every file's rows reclaimed */
	assert_int_equal(st.rows, 0);
}

/* The flags of the mapping of pid that starts at addr. */
static uint32_t mapping_flags(const struct fixture *fx, pid_t pid, uint64_t addr)
{
	struct ember_proc entry;

	if (!in_map(fx, pid, &entry))
		return 0;
	for (uint32_t i = 0; i < entry.n_mappings; i++)
		if (entry.mappings[i].start == addr)
			return entry.mappings[i].flags;
	return 0;
}

static void test_failed_file_is_retried(void **state)
{
	struct fixture *fx = setup(state, 8);
	struct ember_unwind_tables_stats st;
	char dir[] = "/tmp/ember-ut-XXXXXX", path[64];
	struct stat sb;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lib.so", dir);
	/* a file of the size of a real library, unreadable as ELF at first */
	int lib = open(test_prog("libzoo_lib.so"), O_RDONLY);
	assert_true(lib >= 0);
	assert_int_equal(fstat(lib, &sb), 0);
	size_t size = (size_t)sb.st_size;
	char *good = malloc(size), *junk = calloc(1, size);
	assert_true(read(lib, good, size) == (ssize_t)size);
	close(lib);
	for (size_t i = 0; i < size; i++)
		junk[i] = (char)(i * 131 + 7);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_true(pwrite(fd, junk, size, 0) == (ssize_t)size);

	/* a child maps it executable and waits */
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		void *m = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
		uint64_t addr = m == MAP_FAILED ? 0 : (uint64_t)(uintptr_t)m;
		if (write(ready[1], &addr, sizeof(addr)) != sizeof(addr))
			_exit(1);
		pause();
		_exit(0);
	}
	uint64_t addr = 0;
	assert_true(read(ready[0], &addr, sizeof(addr)) == sizeof(addr));
	if (!addr) {
		stop(pid);
		skip(); /* a noexec /tmp */
	}

	assert_int_equal(ember_unwind_tables_load(fx->t, (uint32_t)pid), 0);
	assert_int_equal(mapping_flags(fx, pid, addr), EMBER_MAPPING_FP);
	ember_unwind_tables_stats(fx->t, &st);
	assert_int_equal(st.failures, 1);
	/* not retried before its backoff (1 s) */
	ember_unwind_tables_maintain(fx->t, ember_monotonic_ns());
	ember_unwind_tables_stats(fx->t, &st);
	assert_int_equal(st.retries, 0);

	/* the file becomes readable (same inode): the retry finds it, the process is reloaded */
	assert_true(pwrite(fd, good, size, 0) == (ssize_t)size);
	struct timespec ts = {1, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	ember_unwind_tables_maintain(fx->t, ember_monotonic_ns());
	ember_unwind_tables_stats(fx->t, &st);
	assert_int_equal(st.retries, 1);
	assert_int_equal(mapping_flags(fx, pid, addr), EMBER_MAPPING_TABLE);

	stop(pid);
	ember_unwind_tables_unload(fx->t, (uint32_t)pid);
	close(fd);
	close(ready[0]);
	close(ready[1]);
	unlink(path);
	rmdir(dir);
	free(good);
	free(junk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_zombie_is_refused, teardown),
		cmocka_unit_test_teardown(test_exit_between_read_and_write_is_undone, teardown),
		cmocka_unit_test_teardown(test_full_map_evicts_least_recently_sampled, teardown),
		cmocka_unit_test_teardown(test_failed_file_is_retried, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
