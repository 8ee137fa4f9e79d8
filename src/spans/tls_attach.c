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
 *
 * Lifetimes: every process looked at keeps a record of the files it was
 * seen mapping (its executable and libssl files), each holding a count on
 * the file.  A scan compares the pids in /proc with the records: a pid
 * gone releases its files; one that exec'd (an event) releases them and is
 * looked at afresh.  An attached file with no count left for
 * EMBER_TLS_DETACH_GRACE_MS is detached (the grace spares a program run
 * again and again, a client in a loop, from being detached and attached
 * between runs).  A pid reused between two scans without an exec event is
 * taken for the old process: its files are counted until it exits.
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
#include "core/clock.h"
#include "core/log.h"
#include "symbolizer/gopclntab.h"
#include "symbolizer/goreturns.h"

enum file_kind { FILE_NONE, FILE_LIBSSL, FILE_GO };

struct tls_file {
	dev_t dev;
	ino_t ino;
	bool used;            /* the slot holds a file */
	uint8_t kind;
	uint32_t users;       /* process records holding it */
	int64_t idle_since;   /* monotonic ns users fell to 0 */
	struct bpf_link **links;
	size_t n_links, links_cap;
	char *path;           /* as attached (logs) */
};

#define PROC_FILES 8 /* files one process record holds: its executable and libssl files */

struct tls_proc {
	uint32_t pid;
	uint8_t n_files;
	bool again;           /* look at it again at the next scan (exec'd: libraries still to map) */
	bool missed;          /* a file of it found no room for its probes (max_probes) */
	uint32_t files[PROC_FILES];
};

enum tls_stat {
	ST_SCANS,
	ST_PROCS,            /* processes looked at (new, exec'd) */
	ST_LIBSSL_FILES,     /* libssl files attached */
	ST_GO_FILES,         /* Go binaries attached */
	ST_PROBES,           /* uprobes attached */
	ST_ATTACHES,         /* files attached (libssl_files + go_files) */
	ST_DETACHES,         /* files detached: no process maps them any more */
	ST_DETACHED_PROBES,  /* uprobes destroyed by those detaches */
	ST_FILES_NOW,        /* files attached now */
	ST_PROBES_NOW,       /* uprobes attached now */
	ST_EVENTS,           /* exec events handled */
	ST_QUEUE_FULL,       /* events dropped: EMBER_TLS_QUEUE waiting (the scan finds the process) */
	ST_FAIL_SYMBOL,      /* a libssl without the SSL_* symbols */
	ST_FAIL_GO_TABLES,   /* a Go binary whose tables or RETs could not be read */
	ST_FAIL_GO_ABI,      /* Go before 1.17 (stack ABI) or of unknown version: not attached */
	ST_FAIL_ATTACH,      /* the kernel refused a uprobe */
	ST_FAIL_GONE,        /* the process exited before its files were read */
	ST_FILES_FULL,       /* EMBER_TLS_MAX_FILES in use: file not looked at */
	ST_FILES_EVICTED,    /* files needing nothing forgotten to make room */
	ST_LINKS_FULL,       /* max_probes reached: file not attached */
	ST_PROCS_FULL,       /* EMBER_TLS_MAX_PROCS followed: process not looked at */
	ST_PROC_FILES_FULL,  /* a process mapping more than PROC_FILES files: the rest not held */
	ST__COUNT,
};

static const char *const stat_names[ST__COUNT] = {
	"scans",          "new_processes",  "libssl_files",  "go_files",
	"probes",         "attaches",       "detaches",      "detached_probes",
	"files_attached", "probes_attached", "events",       "events_dropped",
	"fail_symbol",    "fail_go_tables", "fail_go_abi",   "fail_attach",
	"fail_gone",      "files_full",     "files_evicted", "links_full",
	"procs_full",     "proc_files_full",
};

struct ember_tls_attach {
	struct bpf_program *ssl_write, *ssl_write_ex, *ssl_read, *ssl_read_ex, *ssl_ret;
	struct bpf_program *go_write, *go_read, *go_ret;
	size_t max_links;
	struct tls_file *files; /* slots; a free one (!used) is reused */
	size_t n_files, files_cap;
	size_t n_links;         /* uprobes attached, all files */
	uint32_t *pids;         /* this scan's pids, sorted */
	size_t n_pids, pids_cap;
	struct tls_proc *procs, *next; /* records by pid, sorted; next: the scan's new list */
	size_t n_procs, procs_cap, n_next, next_cap;
	uint64_t stats[ST__COUNT];
	pthread_mutex_t lock;   /* files and records: one scan or event batch at a time */
	pthread_mutex_t qlock;  /* the event queue and stop */
	pthread_cond_t qcond;
	uint32_t queue[EMBER_TLS_QUEUE];
	size_t n_queue;
	pthread_t thread;
	bool running;
	int stop;
};

static void count(struct ember_tls_attach *ta, enum tls_stat s, uint64_t n)
{
	__atomic_add_fetch(&ta->stats[s], n, __ATOMIC_RELAXED);
}

static void uncount(struct ember_tls_attach *ta, enum tls_stat s, uint64_t n)
{
	__atomic_sub_fetch(&ta->stats[s], n, __ATOMIC_RELAXED);
}

static struct tls_file *find_file(struct ember_tls_attach *ta, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < ta->n_files; i++)
		if (ta->files[i].used && ta->files[i].dev == dev && ta->files[i].ino == ino)
			return &ta->files[i];
	return NULL;
}

/*
 * A free slot for a new file: a free one, a new one, or, when
 * EMBER_TLS_MAX_FILES are in use, the longest unused file that needs
 * nothing (evicted: it is looked at again if a process maps it later).
 */
static struct tls_file *new_file(struct ember_tls_attach *ta, dev_t dev, ino_t ino)
{
	struct tls_file *f = NULL, *idle = NULL;

	for (size_t i = 0; i < ta->n_files && !f; i++) {
		struct tls_file *c = &ta->files[i];
		if (!c->used)
			f = c;
		else if (c->kind == FILE_NONE && !c->users &&
			 (!idle || c->idle_since < idle->idle_since))
			idle = c;
	}
	if (!f && ta->n_files < EMBER_TLS_MAX_FILES &&
	    !ember_array_grow(&ta->files, &ta->files_cap, ta->n_files + 1, sizeof(*ta->files)))
		f = &ta->files[ta->n_files++];
	if (!f && idle) {
		count(ta, ST_FILES_EVICTED, 1);
		free(idle->path);
		free(idle->links);
		f = idle;
	}
	if (!f) {
		count(ta, ST_FILES_FULL, 1);
		return NULL;
	}
	*f = (struct tls_file){.dev = dev, .ino = ino, .used = true, .kind = FILE_NONE};
	return f;
}

/* Destroy f's uprobes. */
static void undo_probes(struct ember_tls_attach *ta, struct tls_file *f)
{
	while (f->n_links > 0) {
		bpf_link__destroy(f->links[--f->n_links]);
		ta->n_links--;
		uncount(ta, ST_PROBES_NOW, 1);
	}
}

static void free_file(struct ember_tls_attach *ta, struct tls_file *f)
{
	undo_probes(ta, f);
	free(f->links);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

/* Attach one probe to f (on failure the caller undoes f's probes). */
static int add_probe(struct ember_tls_attach *ta, struct tls_file *f, struct bpf_program *prog,
		     const char *path, const char *func, uint64_t offset, bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .retprobe = ret, .func_name = func);

	if (ta->n_links >= ta->max_links ||
	    ember_array_grow(&f->links, &f->links_cap, f->n_links + 1, sizeof(*f->links))) {
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
	f->links[f->n_links++] = l;
	ta->n_links++;
	count(ta, ST_PROBES_NOW, 1);
	return 0;
}

/* f attached: count it. */
static void attached(struct ember_tls_attach *ta, struct tls_file *f, const char *path,
		     enum file_kind kind)
{
	f->kind = (uint8_t)kind;
	f->path = strdup(path);
	count(ta, kind == FILE_GO ? ST_GO_FILES : ST_LIBSSL_FILES, 1);
	count(ta, ST_ATTACHES, 1);
	count(ta, ST_FILES_NOW, 1);
	count(ta, ST_PROBES, f->n_links);
}

static int attach_libssl(struct ember_tls_attach *ta, struct tls_file *f, const char *path)
{
	static const char *const funcs[] = {"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex"};
	struct bpf_program *entry[] = {ta->ssl_write, ta->ssl_write_ex, ta->ssl_read,
				       ta->ssl_read_ex};
	int rc = 0;

	for (size_t i = 0; i < 4 && !rc; i++) {
		rc = add_probe(ta, f, entry[i], path, funcs[i], 0, false);
		if (!rc)
			rc = add_probe(ta, f, ta->ssl_ret, path, funcs[i], 0, true);
	}
	if (rc) {
		undo_probes(ta, f);
		if (rc == -E2BIG) { /* counted by add_probe; tried again when there is room */
			ember_debug("tls: no room for the probes of %s", path);
			return rc;
		}
		count(ta, rc == -ENOENT || rc == -ESRCH ? ST_FAIL_SYMBOL : ST_FAIL_ATTACH, 1);
		ember_info("tls: not tracing %s: %s", path, strerror(-rc));
		return rc;
	}
	attached(ta, f, path, FILE_LIBSSL);
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
static int attach_go(struct ember_tls_attach *ta, struct tls_file *f, const char *path,
		     size_t *n_rets)
{
	static const char *const funcs[] = {"crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read"};
	struct bpf_program *entry[] = {ta->go_write, ta->go_read};
	struct ember_gopclntab *g;
	struct ember_go_probes p;
	char err[512];
	int rc = ember_gopclntab_open(path, &g, err, sizeof(err));

	if (rc == -ENOENT || rc == -ENOTSUP || rc == -ENOEXEC)
		return 1;
	if (rc) {
		count(ta, ST_FAIL_GO_TABLES, 1);
		ember_info("tls: %s", err);
		return rc;
	}
	for (size_t i = 0; i < 2 && !rc; i++) {
		rc = ember_go_func_probes(g, path, funcs[i], &p, err, sizeof(err));
		if (rc == -ENOENT && i == 0) {
			ember_gopclntab_free(g);
			return 1; /* a Go program without crypto/tls */
		}
		if (i == 0 && !go_register_abi(g)) {
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
		rc = add_probe(ta, f, entry[i], path, NULL, p.addrs[0], false);
		if (entry[i] == ta->go_read)
			*n_rets = p.n_rets;
		for (size_t r = 0; r < p.n_rets && !rc && entry[i] == ta->go_read; r++)
			rc = add_probe(ta, f, ta->go_ret, path, NULL, p.addrs[1 + r], false);
		if (rc && rc != -E2BIG)
			count(ta, ST_FAIL_ATTACH, 1);
	}
	ember_gopclntab_free(g);
	if (rc) {
		undo_probes(ta, f);
		return rc;
	}
	attached(ta, f, path, FILE_GO);
	return 0;
}

static bool is_libssl(const char *path)
{
	const char *base = strrchr(path, '/');

	return base && strncmp(base + 1, "libssl.so", 9) == 0;
}

/* rec holds f (once). */
static void hold(struct ember_tls_attach *ta, struct tls_proc *rec, struct tls_file *f)
{
	uint32_t idx = (uint32_t)(f - ta->files);

	for (size_t i = 0; i < rec->n_files; i++)
		if (rec->files[i] == idx)
			return;
	if (rec->n_files >= PROC_FILES) {
		count(ta, ST_PROC_FILES_FULL, 1);
		return;
	}
	rec->files[rec->n_files++] = idx;
	f->users++;
}

/* rec lets go of its files; an attached file left unused is detached after the grace. */
static void release(struct ember_tls_attach *ta, struct tls_proc *rec, int64_t now)
{
	for (size_t i = 0; i < rec->n_files; i++) {
		struct tls_file *f = &ta->files[rec->files[i]];
		if (f->users && !--f->users)
			f->idle_since = now;
	}
	rec->n_files = 0;
}

/*
 * Detach the attached files unused for the grace; free their slots.  When
 * that makes room, the processes whose files found none are looked at again.
 */
static void sweep(struct ember_tls_attach *ta, int64_t now)
{
	bool room = false;

	for (size_t i = 0; i < ta->n_files; i++) {
		struct tls_file *f = &ta->files[i];
		if (!f->used || f->users || f->kind == FILE_NONE ||
		    now - f->idle_since < (int64_t)EMBER_TLS_DETACH_GRACE_MS * 1000000)
			continue;
		size_t n = f->n_links;
		ember_info("tls: detached %zu probes from %s: no process maps it", n,
			   f->path ? f->path : "?");
		count(ta, ST_DETACHES, 1);
		count(ta, ST_DETACHED_PROBES, n);
		uncount(ta, ST_FILES_NOW, 1);
		free_file(ta, f);
		room = true;
	}
	for (size_t i = 0; room && i < ta->n_procs; i++)
		if (ta->procs[i].missed)
			ta->procs[i].again = true;
}

/*
 * Look at pid's executable and (with_maps) its libssl files: attach what is
 * new, hold them in rec.  At an exec only the executable is worth a look:
 * the dynamic loader has not mapped the libraries yet.
 */
static void look_at_process(struct ember_tls_attach *ta, uint32_t pid, struct tls_proc *rec,
			    bool with_maps)
{
	char path[4096];
	struct stat st;
	struct ember_maps maps = {0};
	struct tls_file *f;

	count(ta, ST_PROCS, 1);
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	bool exe = stat(path, &st) == 0;
	if (exe && (f = find_file(ta, st.st_dev, st.st_ino))) {
		hold(ta, rec, f);
	} else if (exe && (f = new_file(ta, st.st_dev, st.st_ino))) {
		size_t n_rets = 0;
		int rc = attach_go(ta, f, path, &n_rets);
		if (rc == 0) {
			char name[4096];
			ssize_t len = readlink(path, name, sizeof(name) - 1);
			name[len > 0 ? len : 0] = '\0';
			free(f->path);
			f->path = strdup(len > 0 ? name : path); /* the logs name the file */
			ember_info("tls: tracing Go crypto/tls in pid %u (%s): (*Conn).Read has %zu RETs",
				   pid, f->path ? f->path : path, n_rets);
		}
		if (rc < 0 && (rc == -E2BIG || !ember_proc_alive(pid))) {
			if (rc != -E2BIG)
				count(ta, ST_FAIL_GONE, 1);
			rec->missed |= rc == -E2BIG;
			free_file(ta, f); /* retried with the next process mapping it */
		} else {
			hold(ta, rec, f); /* attached, nothing to attach, or a real failure: no retry */
		}
	}
	if (!with_maps)
		return;
	if (ember_maps_read_pid(pid, EMBER_MAPS_EXEC_ONLY, &maps)) {
		ember_maps_free(&maps);
		return;
	}
	for (size_t i = 0; i < maps.n; i++) {
		const struct ember_map_entry *e = &maps.entries[i];
		dev_t dev = makedev(e->dev_major, e->dev_minor);
		if (!e->inode || e->deleted || !is_libssl(e->path))
			continue;
		if ((f = find_file(ta, dev, (ino_t)e->inode))) {
			hold(ta, rec, f);
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%u/root%s", pid, e->path);
		if (stat(path, &st) != 0 || st.st_ino != (ino_t)e->inode) {
			count(ta, ST_FAIL_GONE, 1);
			continue;
		}
		if (!(f = new_file(ta, dev, (ino_t)e->inode)))
			continue;
		int rc = attach_libssl(ta, f, path);
		rec->missed |= rc == -E2BIG;
		if (rc && (rc == -E2BIG || !ember_proc_alive(pid)))
			free_file(ta, f);
		else
			hold(ta, rec, f);
	}
	ember_maps_free(&maps);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Append a record for pid to the scan's new list, looked at unless it is the agent. */
static void add_record(struct ember_tls_attach *ta, uint32_t pid, uint32_t self)
{
	if (ta->n_next >= EMBER_TLS_MAX_PROCS ||
	    ember_array_grow(&ta->next, &ta->next_cap, ta->n_next + 1, sizeof(*ta->next))) {
		count(ta, ST_PROCS_FULL, 1); /* looked at by a later scan, when there is room */
		return;
	}
	struct tls_proc *rec = &ta->next[ta->n_next++];
	*rec = (struct tls_proc){.pid = pid};
	if (pid != self)
		look_at_process(ta, pid, rec, true);
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

	/* merge the records (sorted) with the pids: gone, kept, new */
	uint32_t self = (uint32_t)getpid();
	int64_t now = ember_monotonic_ns();
	size_t i = 0, j = 0;
	ta->n_next = 0;
	while (i < ta->n_procs || j < ta->n_pids) {
		struct tls_proc *old = i < ta->n_procs ? &ta->procs[i] : NULL;
		if (old && (j == ta->n_pids || old->pid < ta->pids[j])) {
			release(ta, old, now); /* exited */
			i++;
		} else if (!old || old->pid > ta->pids[j]) {
			add_record(ta, ta->pids[j++], self);
		} else if (old->again) {
			release(ta, old, now); /* exec'd: its libraries are mapped by now */
			add_record(ta, old->pid, self);
			i++, j++;
		} else if (ta->n_next < ta->next_cap ||
			   !ember_array_grow(&ta->next, &ta->next_cap, ta->n_next + 1,
					     sizeof(*ta->next))) {
			ta->next[ta->n_next++] = *old;
			i++, j++;
		} else {
			release(ta, old, now); /* out of memory: looked at again next time */
			i++, j++;
		}
	}
	struct tls_proc *t = ta->procs;
	size_t tc = ta->procs_cap;
	ta->procs = ta->next;
	ta->procs_cap = ta->next_cap;
	ta->n_procs = ta->n_next;
	ta->next = t;
	ta->next_cap = tc;
	ta->n_next = 0;
	sweep(ta, now);
	pthread_mutex_unlock(&ta->lock);
}

static int cmp_proc(const void *key, const void *elem)
{
	return cmp_u32(key, &((const struct tls_proc *)elem)->pid);
}

/* Events: look at each pid now (its record replaced), and again at the next scan. */
static void handle_events(struct ember_tls_attach *ta, const uint32_t *pids, size_t n)
{
	uint32_t self = (uint32_t)getpid();

	pthread_mutex_lock(&ta->lock);
	int64_t now = ember_monotonic_ns();
	for (size_t k = 0; k < n; k++) {
		uint32_t pid = pids[k];
		if (pid == self)
			continue;
		count(ta, ST_EVENTS, 1);
		struct tls_proc *rec = bsearch(&pid, ta->procs, ta->n_procs, sizeof(*ta->procs),
					       cmp_proc);
		if (!rec) {
			size_t at = 0;
			while (at < ta->n_procs && ta->procs[at].pid < pid)
				at++;
			if (ta->n_procs >= EMBER_TLS_MAX_PROCS ||
			    ember_array_grow(&ta->procs, &ta->procs_cap, ta->n_procs + 1,
					     sizeof(*ta->procs))) {
				count(ta, ST_PROCS_FULL, 1);
				continue;
			}
			memmove(&ta->procs[at + 1], &ta->procs[at],
				(ta->n_procs - at) * sizeof(*ta->procs));
			ta->n_procs++;
			rec = &ta->procs[at];
			*rec = (struct tls_proc){.pid = pid};
		}
		release(ta, rec, now);
		look_at_process(ta, pid, rec, false);
		rec->again = true; /* its libraries: at the next scan */
	}
	pthread_mutex_unlock(&ta->lock);
}

void ember_tls_attach_notify(struct ember_tls_attach *ta, uint32_t pid)
{
	if (!ta)
		return;
	pthread_mutex_lock(&ta->qlock);
	bool dup = false;
	for (size_t i = 0; i < ta->n_queue && !dup; i++)
		dup = ta->queue[i] == pid;
	if (!dup && ta->n_queue < EMBER_TLS_QUEUE)
		ta->queue[ta->n_queue++] = pid;
	else if (!dup)
		count(ta, ST_QUEUE_FULL, 1);
	pthread_cond_signal(&ta->qcond);
	pthread_mutex_unlock(&ta->qlock);
}

static void *attach_thread(void *arg)
{
	struct ember_tls_attach *ta = arg;
	uint32_t batch[EMBER_TLS_QUEUE];

	for (;;) {
		ember_tls_attach_scan(ta);
		int64_t next_scan = ember_monotonic_ns() + (int64_t)EMBER_TLS_SCAN_MS * 1000000;
		for (;;) {
			size_t n = 0;
			pthread_mutex_lock(&ta->qlock);
			while (!ta->stop && !ta->n_queue && ember_monotonic_ns() < next_scan) {
				struct timespec until = {.tv_sec = next_scan / 1000000000,
							 .tv_nsec = next_scan % 1000000000};
				pthread_cond_timedwait(&ta->qcond, &ta->qlock, &until);
			}
			int stop = ta->stop;
			if (!stop) {
				n = ta->n_queue;
				memcpy(batch, ta->queue, n * sizeof(*batch));
				ta->n_queue = 0;
			}
			pthread_mutex_unlock(&ta->qlock);
			if (stop)
				return NULL;
			if (!n)
				break; /* time for a scan */
			handle_events(ta, batch, n);
		}
	}
}

static struct bpf_program *prog(struct bpf_object *obj, const char *name, int *missing)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	if (!p || bpf_program__fd(p) < 0)
		(*missing)++;
	return p;
}

int ember_tls_attach_start(struct bpf_object *obj, const struct ember_tls_attach_opts *opts,
			   struct ember_tls_attach **out, char *err, size_t errlen)
{
	struct ember_tls_attach *ta = calloc(1, sizeof(*ta));
	pthread_condattr_t ca;
	int missing = 0;

	*out = NULL;
	if (!ta)
		return -ENOMEM;
	ta->max_links = opts && opts->max_probes ? opts->max_probes : EMBER_TLS_MAX_LINKS;
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
	pthread_mutex_init(&ta->qlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ember_monotonic_ns() deadlines */
	pthread_cond_init(&ta->qcond, &ca);
	pthread_condattr_destroy(&ca);
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
		pthread_mutex_lock(&ta->qlock);
		ta->stop = 1;
		pthread_cond_signal(&ta->qcond);
		pthread_mutex_unlock(&ta->qlock);
		pthread_join(ta->thread, NULL);
	}
	for (size_t i = 0; i < ta->n_files; i++)
		free_file(ta, &ta->files[i]);
	free(ta->files);
	free(ta->pids);
	free(ta->procs);
	free(ta->next);
	pthread_cond_destroy(&ta->qcond);
	pthread_mutex_destroy(&ta->qlock);
	pthread_mutex_destroy(&ta->lock);
	free(ta);
}

void ember_tls_attach_stats_json(struct ember_tls_attach *ta, struct strbuf *sb)
{
	sb_puts(sb, "{");
	for (int i = 0; i < ST__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%" PRIu64, i ? "," : "", stat_names[i],
			  __atomic_load_n(&ta->stats[i], __ATOMIC_RELAXED));
	sb_printf(sb, ",\"max_probes\":%zu,\"detach_grace_ms\":%d}", ta->max_links,
		  EMBER_TLS_DETACH_GRACE_MS);
}
