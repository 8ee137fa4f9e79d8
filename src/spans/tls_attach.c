/*
 * tls_attach.c - finding TLS libraries and Go binaries, and putting the
 * uprobes of bpf/spans/tls.bpf.h on them (see tls_attach.h).
 *
 * Per file (device, inode), once:
 *   libssl.so*   SSL_write, SSL_write_ex, SSL_read, SSL_read_ex by their
 *                dynamic symbols (libbpf resolves them), an entry probe on
 *                each and a return probe (uretprobes are fine in C code);
 *   Go binary    crypto/tls.(*Conn).Write and .Read found in .gopclntab
 *                (stripped binaries too), an entry probe on each and, for
 *                Read, a plain uprobe on every RET (symbolizer/goreturns.c),
 *                never a uretprobe (it would crash the Go runtime).  Write
 *                is complete at its entry (tls.bpf.h).
 * A file is remembered as done once attached or once known to need nothing
 * (not Go, or Go without crypto/tls); a failure that may be transient (the
 * process exited under us) is retried with the next process mapping it.
 * Paths go through /proc/PID/root or /proc/PID/exe, so files in other
 * mount namespaces (containers) resolve to the right inode.
 */
#include "spans/tls_attach.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent/procmaps.h"
#include "core/array.h"
#include "core/log.h"
#include "symbolizer/gopclntab.h"
#include "symbolizer/goreturns.h"

enum file_kind { FILE_NONE, FILE_LIBSSL, FILE_GO };

struct tls_file {
	dev_t dev;
	ino_t ino;
	uint8_t kind;
};

enum tls_stat {
	ST_SCANS,
	ST_PROCS,            /* new processes looked at */
	ST_LIBSSL_FILES,     /* libssl files attached */
	ST_GO_FILES,         /* Go binaries attached */
	ST_PROBES,           /* uprobes attached */
	ST_FAIL_SYMBOL,      /* a libssl without the SSL_* symbols */
	ST_FAIL_GO_TABLES,   /* a Go binary whose tables or RETs could not be read */
	ST_FAIL_GO_ABI,      /* Go before 1.17 (stack ABI) or of unknown version: not attached */
	ST_FAIL_ATTACH,      /* the kernel refused a uprobe */
	ST_FAIL_GONE,        /* the process exited before its files were read */
	ST_FILES_FULL,       /* EMBER_TLS_MAX_FILES reached: file not remembered */
	ST_LINKS_FULL,       /* EMBER_TLS_MAX_LINKS reached: file not attached */
	ST__COUNT,
};

static const char *const stat_names[ST__COUNT] = {
	"scans",         "new_processes",   "libssl_files", "go_files",    "probes",
	"fail_symbol",   "fail_go_tables",  "fail_go_abi",  "fail_attach", "fail_gone",   "files_full",
	"links_full",
};

struct ember_tls_attach {
	struct bpf_program *ssl_write, *ssl_write_ex, *ssl_read, *ssl_read_ex, *ssl_ret;
	struct bpf_program *go_write, *go_read, *go_ret;
	struct tls_file *files;
	size_t n_files, files_cap;
	struct bpf_link **links;
	size_t n_links, links_cap;
	uint32_t *pids, *prev;
	size_t n_pids, pids_cap, n_prev, prev_cap;
	uint64_t stats[ST__COUNT];
	pthread_mutex_t lock; /* one scan at a time */
	pthread_t thread;
	bool running;
	int stop;
};

static void count(struct ember_tls_attach *ta, enum tls_stat s, uint64_t n)
{
	__atomic_add_fetch(&ta->stats[s], n, __ATOMIC_RELAXED);
}

static struct tls_file *find_file(struct ember_tls_attach *ta, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < ta->n_files; i++)
		if (ta->files[i].dev == dev && ta->files[i].ino == ino)
			return &ta->files[i];
	return NULL;
}

static void remember(struct ember_tls_attach *ta, dev_t dev, ino_t ino, enum file_kind kind)
{
	if (ta->n_files >= EMBER_TLS_MAX_FILES ||
	    ember_array_grow(&ta->files, &ta->files_cap, ta->n_files + 1, sizeof(*ta->files))) {
		count(ta, ST_FILES_FULL, 1);
		return;
	}
	ta->files[ta->n_files++] = (struct tls_file){.dev = dev, .ino = ino, .kind = (uint8_t)kind};
}

/* Attach one probe; on failure detach the file's probes so far (from first). */
static int add_probe(struct ember_tls_attach *ta, struct bpf_program *prog, const char *path,
		     const char *func, uint64_t offset, bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .retprobe = ret, .func_name = func);

	if (ta->n_links >= EMBER_TLS_MAX_LINKS ||
	    ember_array_grow(&ta->links, &ta->links_cap, ta->n_links + 1, sizeof(*ta->links))) {
		count(ta, ST_LINKS_FULL, 1);
		return -E2BIG;
	}
	struct bpf_link *l = bpf_program__attach_uprobe_opts(prog, -1, path, (size_t)offset, &o);
	if (!l) {
		int e = errno;
		ember_debug("tls: cannot attach %s to %s%s%s+%#" PRIx64 ": %s",
			    bpf_program__name(prog), path, func ? ":" : "", func ? func : "", offset,
			    strerror(e));
		return -(e ? e : EINVAL);
	}
	ta->links[ta->n_links++] = l;
	return 0;
}

static void undo_probes(struct ember_tls_attach *ta, size_t first)
{
	while (ta->n_links > first)
		bpf_link__destroy(ta->links[--ta->n_links]);
}

static int attach_libssl(struct ember_tls_attach *ta, const char *path)
{
	static const char *const funcs[] = {"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex"};
	struct bpf_program *entry[] = {ta->ssl_write, ta->ssl_write_ex, ta->ssl_read,
				       ta->ssl_read_ex};
	size_t first = ta->n_links;
	int rc = 0;

	for (size_t i = 0; i < 4 && !rc; i++) {
		rc = add_probe(ta, entry[i], path, funcs[i], 0, false);
		if (!rc)
			rc = add_probe(ta, ta->ssl_ret, path, funcs[i], 0, true);
	}
	if (rc) {
		undo_probes(ta, first);
		count(ta, rc == -ENOENT || rc == -ESRCH ? ST_FAIL_SYMBOL : ST_FAIL_ATTACH, 1);
		ember_info("tls: not tracing %s: %s", path, strerror(-rc));
		return rc;
	}
	count(ta, ST_LIBSSL_FILES, 1);
	count(ta, ST_PROBES, ta->n_links - first);
	ember_info("tls: tracing OpenSSL in %s", path);
	return 0;
}

/*
 * Whether the Go that built this binary passes arguments in registers
 * (1.17+; the probes read RAX, RBX, RCX and R14).  The version is the
 * build info's "go1.N[.M]"; a binary without one is not attached.
 */
static bool go_register_abi(const struct ember_gopclntab *g)
{
	const struct ember_gobuildinfo *bi = ember_gopclntab_buildinfo(g);
	unsigned major, minor;

	if (!bi || !bi->go_version || sscanf(bi->go_version, "go%u.%u", &major, &minor) != 2)
		return false;
	return major > 1 || (major == 1 && minor >= 17);
}

/*
 * A Go binary: 0 attached (*n_rets: the RETs of Read probed), 1 nothing to
 * attach (not Go, no crypto/tls), < 0 failed.
 */
static int attach_go(struct ember_tls_attach *ta, const char *path, size_t *n_rets)
{
	static const char *const funcs[] = {"crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read"};
	struct bpf_program *entry[] = {ta->go_write, ta->go_read};
	struct ember_gopclntab *g;
	struct ember_go_probes p;
	char err[512];
	size_t first = ta->n_links;
	int rc = ember_gopclntab_open(path, &g, err, sizeof(err));

	if (rc == -ENOENT || rc == -ENOTSUP || rc == -ENOEXEC)
		return 1;
	if (rc) {
		count(ta, ST_FAIL_GO_TABLES, 1);
		ember_info("tls: %s", err);
		return rc;
	}
	for (size_t f = 0; f < 2 && !rc; f++) {
		rc = ember_go_func_probes(g, path, funcs[f], &p, err, sizeof(err));
		if (rc == -ENOENT && f == 0) {
			ember_gopclntab_free(g);
			return 1; /* a Go program without crypto/tls */
		}
		if (f == 0 && !go_register_abi(g)) {
			const struct ember_gobuildinfo *bi = ember_gopclntab_buildinfo(g);
			count(ta, ST_FAIL_GO_ABI, 1);
			ember_info("tls: not tracing %s: built by %s, before Go 1.17's register ABI",
				   path, bi && bi->go_version ? bi->go_version : "an unknown Go");
			ember_gopclntab_free(g);
			return 1;
		}
		if (rc) {
			count(ta, ST_FAIL_GO_TABLES, 1);
			ember_info("tls: not tracing %s", err);
			break;
		}
		rc = add_probe(ta, entry[f], path, NULL, p.addrs[0], false);
		if (entry[f] == ta->go_read)
			*n_rets = p.n_rets;
		for (size_t r = 0; r < p.n_rets && !rc && entry[f] == ta->go_read; r++)
			rc = add_probe(ta, ta->go_ret, path, NULL, p.addrs[1 + r], false);
		if (rc)
			count(ta, ST_FAIL_ATTACH, 1);
	}
	ember_gopclntab_free(g);
	if (rc) {
		undo_probes(ta, first);
		return rc;
	}
	count(ta, ST_GO_FILES, 1);
	count(ta, ST_PROBES, ta->n_links - first);
	return 0;
}

static bool is_libssl(const char *path)
{
	const char *base = strrchr(path, '/');

	return base && strncmp(base + 1, "libssl.so", 9) == 0;
}

static void look_at_process(struct ember_tls_attach *ta, uint32_t pid)
{
	char path[4096];
	struct stat st;
	struct ember_maps maps = {0};

	count(ta, ST_PROCS, 1);
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (stat(path, &st) == 0 && !find_file(ta, st.st_dev, st.st_ino)) {
		char exe[4200];
		snprintf(exe, sizeof(exe), "%s", path);
		size_t n_rets = 0;
		int rc = attach_go(ta, exe, &n_rets);
		if (rc == 0) {
			ember_info("tls: tracing Go crypto/tls in pid %u (%s): (*Conn).Read has %zu RETs",
				   pid, exe, n_rets);
			remember(ta, st.st_dev, st.st_ino, FILE_GO);
		} else if (rc == 1) {
			remember(ta, st.st_dev, st.st_ino, FILE_NONE);
		} else if (!ember_proc_alive(pid)) {
			count(ta, ST_FAIL_GONE, 1);
		} else {
			remember(ta, st.st_dev, st.st_ino, FILE_NONE); /* a real failure: do not retry */
		}
	}
	if (ember_maps_read_pid(pid, EMBER_MAPS_EXEC_ONLY, &maps)) {
		ember_maps_free(&maps);
		return;
	}
	for (size_t i = 0; i < maps.n; i++) {
		const struct ember_map_entry *e = &maps.entries[i];
		dev_t dev = makedev(e->dev_major, e->dev_minor);
		if (!e->inode || e->deleted || !is_libssl(e->path) ||
		    find_file(ta, dev, (ino_t)e->inode))
			continue;
		snprintf(path, sizeof(path), "/proc/%u/root%s", pid, e->path);
		if (stat(path, &st) != 0 || st.st_ino != (ino_t)e->inode) {
			count(ta, ST_FAIL_GONE, 1);
			continue;
		}
		int rc = attach_libssl(ta, path);
		if (rc == 0 || ember_proc_alive(pid))
			remember(ta, dev, (ino_t)e->inode, rc == 0 ? FILE_LIBSSL : FILE_NONE);
	}
	ember_maps_free(&maps);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void ember_tls_attach_scan(struct ember_tls_attach *ta)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return;
	pthread_mutex_lock(&ta->lock);
	count(ta, ST_SCANS, 1);
	ta->n_pids = 0;
	while ((de = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);
		if (*end || !pid || pid > UINT32_MAX)
			continue;
		if (ember_array_grow(&ta->pids, &ta->pids_cap, ta->n_pids + 1, sizeof(*ta->pids)))
			break;
		ta->pids[ta->n_pids++] = (uint32_t)pid;
	}
	closedir(d);
	qsort(ta->pids, ta->n_pids, sizeof(*ta->pids), cmp_u32);
	uint32_t self = (uint32_t)getpid();
	for (size_t i = 0; i < ta->n_pids; i++) {
		uint32_t pid = ta->pids[i];
		if (pid != self && !bsearch(&pid, ta->prev, ta->n_prev, sizeof(pid), cmp_u32))
			look_at_process(ta, pid);
	}
	/* this scan's pids are the next one's "seen" */
	uint32_t *t = ta->prev;
	size_t tc = ta->prev_cap;
	ta->prev = ta->pids;
	ta->prev_cap = ta->pids_cap;
	ta->n_prev = ta->n_pids;
	ta->pids = t;
	ta->pids_cap = tc;
	ta->n_pids = 0;
	pthread_mutex_unlock(&ta->lock);
}

static void *attach_thread(void *arg)
{
	struct ember_tls_attach *ta = arg;
	struct timespec step = {0, 50 * 1000000L};

	while (!__atomic_load_n(&ta->stop, __ATOMIC_ACQUIRE)) {
		ember_tls_attach_scan(ta);
		for (int i = 0; i < EMBER_TLS_SCAN_MS / 50 && !__atomic_load_n(&ta->stop, __ATOMIC_ACQUIRE);
		     i++)
			nanosleep(&step, NULL);
	}
	return NULL;
}

static struct bpf_program *prog(struct bpf_object *obj, const char *name, int *missing)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	if (!p || bpf_program__fd(p) < 0)
		(*missing)++;
	return p;
}

int ember_tls_attach_start(struct bpf_object *obj, struct ember_tls_attach **out, char *err,
			   size_t errlen)
{
	struct ember_tls_attach *ta = calloc(1, sizeof(*ta));
	int missing = 0;

	*out = NULL;
	if (!ta)
		return -ENOMEM;
	ta->ssl_write = prog(obj, "ember_ssl_write", &missing);
	ta->ssl_write_ex = prog(obj, "ember_ssl_write_ex", &missing);
	ta->ssl_read = prog(obj, "ember_ssl_read", &missing);
	ta->ssl_read_ex = prog(obj, "ember_ssl_read_ex", &missing);
	ta->ssl_ret = prog(obj, "ember_ssl_ret", &missing);
	ta->go_write = prog(obj, "ember_go_tls_write", &missing);
	ta->go_read = prog(obj, "ember_go_tls_read", &missing);
	ta->go_ret = prog(obj, "ember_go_tls_ret", &missing);
	if (missing) {
		snprintf(err, errlen, "tls: %d TLS programs are not loaded", missing);
		free(ta);
		return -ENOENT;
	}
	pthread_mutex_init(&ta->lock, NULL);
	ember_tls_attach_scan(ta); /* what runs now is attached before start returns */
	int rc = pthread_create(&ta->thread, NULL, attach_thread, ta);
	if (rc) {
		snprintf(err, errlen, "tls: cannot start the attach thread: %s", strerror(rc));
		ember_tls_attach_stop(ta);
		return -rc;
	}
	ta->running = true;
	*out = ta;
	return 0;
}

void ember_tls_attach_stop(struct ember_tls_attach *ta)
{
	if (!ta)
		return;
	if (ta->running) {
		__atomic_store_n(&ta->stop, 1, __ATOMIC_RELEASE);
		pthread_join(ta->thread, NULL);
	}
	undo_probes(ta, 0);
	free(ta->links);
	free(ta->files);
	free(ta->pids);
	free(ta->prev);
	pthread_mutex_destroy(&ta->lock);
	free(ta);
}

void ember_tls_attach_stats_json(struct ember_tls_attach *ta, struct strbuf *sb)
{
	sb_puts(sb, "{");
	for (int i = 0; i < ST__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%" PRIu64, i ? "," : "", stat_names[i],
			  __atomic_load_n(&ta->stats[i], __ATOMIC_RELAXED));
	sb_puts(sb, "}");
}
