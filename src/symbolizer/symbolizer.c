/*
 * symbolizer.c - per-process address resolution (implements symbolizer.h).
 *
 * Two caches:
 *
 *  - processes: pid -> snapshot of its executable mappings (sorted, binary
 *    searched) plus comm/exe/build-id.  Each mapping points, once resolved,
 *    at an ELF cache entry.  Maps are read on first use and re-read when a
 *    pc falls outside every mapping (new dlopen), at most once a second
 *    when re-reading does not help (JIT code, garbage pcs).  The agent
 *    also snapshots a process within ~100 ms of its exec
 *    (ember_symbolizer_track) and when the kernel side first samples it or
 *    sees it run new code (ember_symbolizer_refresh): a process that exits
 *    before the next drain (a compiler in a build) keeps its names.
 *
 *  - ELF files: entries shared by every process.  A mapping's file is
 *    opened through /proc/PID/root/<path> (containers see their own files),
 *    else /proc/PID/map_files/<start>-<end> (works for deleted files), else
 *    <path>; the candidate whose inode matches the maps line wins.  fstat
 *    gives an identity key (dev, inode, size, mtime) that finds a file we
 *    already loaded without reading it; a newly loaded file is then looked
 *    up by its content hash (elf_identity.h), so the same binary in many
 *    containers or at another path is loaded once.  A build-id is never
 *    trusted alone: two files with one build-id and different contents
 *    (a copied --build-id, or a stripped copy) are loaded apart and
 *    counted (build_id_collisions).  Files that fail to load are cached
 *    too (elf == NULL) and warned about once, but never for good: once the
 *    entry's backoff (1 s doubling to 10 min) has passed, the next open of
 *    the file loads it again and a new entry replaces the failed one;
 *    mappings that got no file retry on the same schedule.  An open that
 *    fails because the process has exited is a race, counted as vanished
 *    and logged at debug level.  Entries no mapping refers to are dropped
 *    once unused for ELF_IDLE_NS (a program run again soon, a compiler in a
 *    build, finds its file loaded), and all of them when the cache grows
 *    past ELF_CACHE_SOFT_MAX: checked when a process is forgotten and by
 *    ember_symbolizer_maintain.
 *
 *  - resolved addresses: (content hash, ELF vaddr) -> the
 *    whole inline chain (symcache.h), bounded in bytes, CLOCK eviction.
 *    A miss resolves through DWARF (dwarf.h: function, file:line, inline
 *    frames), falling back to .symtab/.dynsym.  The stats' cache_hits
 *    count lookups answered without loading anything or resolving.
 *
 * Frames: address is the ELF virtual address of pc (what symbol tables,
 * DWARF and llvm-symbolizer use), so frames of one binary are identical in
 * every process whatever its load address.  Unknown symbols keep module
 * and address; pcs outside every mapping become "[unknown]" (address 0, so
 * they collapse into one frame); anonymous executable memory (JIT) becomes
 * module "[anon]" (address 0).  "[vdso]" frames are named from the
 * agent's own copy of the vDSO image (ember_vdso_memfd), the same in every
 * process of this kernel when the mapping's size matches; they keep pc -
 * start as address.
 *
 * Kernel frames come from /proc/kallsyms, loaded on first use and again
 * (at most once a minute) when an address misses, for new modules.  The
 * environment variable EMBER_KALLSYMS names another file (tests, offline
 * symbolization of a saved kallsyms).
 *
 * Bounds: at most max_procs processes (EMBER_SYMBOLIZER_MAX_PROCS unless
 * set): when full, the least recently used one is forgotten (counted as
 * an eviction; it is read again if it is still running and sampled).  The
 * agent forgets processes when they exit (ember_symbolizer_forget), and a
 * snapshot attempt on a process that is gone leaves nothing behind.
 *
 * Thread-safety: none.  One symbolizer is used by one thread (the agent's
 * drain loop); use one symbolizer per thread otherwise.
 */
#include "symbolizer/symbolizer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "agent/procmaps.h"
#include "core/clock.h"
#include "core/log.h"
#include "symbolizer/dwarf.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/kallsyms.h"
#include "symbolizer/symcache.h"

#define ELF_CACHE_SOFT_MAX 512
#define ELF_IDLE_NS (30 * 1000000000LL)    /* unreferenced files are dropped after this */
#define RETRY_FIRST_NS 1000000000LL        /* first retry of a failed file */
#define RETRY_MAX_NS (600 * 1000000000LL)  /* backoff cap */
#define REREAD_THROTTLE_NS 1000000000LL
#define KALLSYMS_RELOAD_NS (60 * 1000000000LL)

/* ---- ELF cache ---- */

struct elf_entry {
	struct elf_entry *next; /* list of all entries */
	struct ember_elf *elf;  /* NULL when loading failed */
	uint64_t cache_key;     /* symcache module key: 64 bits of the content hash */
	int err;
	unsigned failures;      /* consecutive failed loads of this file (backoff exponent) */
	int64_t retry_ns;       /* when elf == NULL: load again after this */
	unsigned refs;          /* mappings pointing here */
	int64_t idle_since_ns;  /* when refs last became 0 (or the entry was made) */
	bool doomed;            /* being evicted */
	char *path;             /* as first opened: names mappings known by inode only */
};

/* A string-keyed chained hash map; several keys may name one entry. */
struct key_node {
	struct key_node *next;
	uint64_t hash;
	struct elf_entry *entry;
	char key[];
};

struct key_map {
	struct key_node **buckets;
	size_t n_buckets, n;
};

/* ---- processes ---- */

enum map_kind { MAP_FILE, MAP_VDSO, MAP_ANON, MAP_SPECIAL };

struct pmap {
	uint64_t start, end, pgoff, inode;
	char *path;
	enum map_kind kind;
	bool resolved;          /* tried to open the file */
	int64_t retry_ns;       /* resolution failed: try again after this (0 = never) */
	struct elf_entry *elf;  /* holds a ref when not NULL */
};

struct proc {
	struct proc *next;
	struct proc *lru_prev, *lru_next; /* most recently used first */
	uint32_t pid;
	bool have_maps, have_info;
	struct pmap *maps;
	size_t n_maps;
	int64_t futile_reread_ns; /* when a re-read last failed to find a pc */
	char *comm, *exe, *build_id;
};

struct ember_symbolizer {
	struct proc **procs;
	size_t n_proc_buckets, n_procs, max_procs;
	struct proc *lru_head, *lru_tail;

	struct key_map keys;
	struct elf_entry *entries;
	size_t n_entries;

	struct ember_symcache *symcache;

	struct elf_entry *vdso; /* the vDSO image's entry, once vdso_tried */
	size_t vdso_size;
	bool vdso_tried;

	struct ember_kallsyms *kallsyms;
	bool kallsyms_tried;
	int64_t kallsyms_loaded_ns; /* for reloading after modules appear */

	ember_kernel_vmas_fn kernel_vmas; /* a vanished process's mappings (may be NULL) */
	void *kernel_vmas_arg;

	struct ember_symbolizer_stats stats;
};

/* ---- helpers ---- */

static uint32_t intern_frame(struct ember_profile *p, const struct ember_frame *f, uint32_t *out)
{
	uint32_t id = ember_profile_frame(p, f);
	if (id == UINT32_MAX)
		return 0;
	out[0] = id;
	return 1;
}

/* Backoff before the next try after `failures` failed ones. */
static int64_t retry_delay(unsigned failures)
{
	int64_t d = RETRY_FIRST_NS << (failures < 10 ? failures : 10);
	return d < RETRY_MAX_NS ? d : RETRY_MAX_NS;
}

static const char *describe_err(int err)
{
	switch (err) {
	case -ENOEXEC:
		return "not a usable ELF file";
	case -EINVAL:
		return "malformed ELF file";
	default:
		return strerror(-err);
	}
}

/* ---- key map ---- */

static struct key_node **key_slot(struct key_map *m, const char *key, uint64_t h)
{
	struct key_node **pp = &m->buckets[h & (m->n_buckets - 1)];
	while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

static struct elf_entry *key_get(struct key_map *m, const char *key)
{
	if (!m->n_buckets)
		return NULL;
	uint64_t h = ember_hash64(key, strlen(key), 0);
	struct key_node *n = *key_slot(m, key, h);
	return n ? n->entry : NULL;
}

static int key_grow(struct key_map *m)
{
	size_t nb = m->n_buckets ? m->n_buckets * 2 : 256;
	struct key_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_buckets; i++) {
		for (struct key_node *n = m->buckets[i], *next; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = nb;
	return 0;
}

/* Insert or overwrite key -> entry. */
static int key_put(struct key_map *m, const char *key, struct elf_entry *e)
{
	if (m->n >= m->n_buckets && key_grow(m))
		return -ENOMEM;
	uint64_t h = ember_hash64(key, strlen(key), 0);
	struct key_node **pp = key_slot(m, key, h);
	if (*pp) {
		(*pp)->entry = e;
		return 0;
	}
	size_t len = strlen(key) + 1;
	struct key_node *n = malloc(sizeof(*n) + len);
	if (!n)
		return -ENOMEM;
	n->next = NULL;
	n->hash = h;
	n->entry = e;
	memcpy(n->key, key, len);
	*pp = n;
	m->n++;
	return 0;
}

/* Remove every key naming a doomed entry. */
static void key_remove_doomed(struct key_map *m)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct key_node **pp = &m->buckets[i];
		while (*pp) {
			struct key_node *n = *pp;
			if (n->entry->doomed) {
				*pp = n->next;
				free(n);
				m->n--;
			} else {
				pp = &n->next;
			}
		}
	}
}

static void key_map_free(struct key_map *m)
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		for (struct key_node *n = m->buckets[i], *next; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

/* ---- ELF cache ---- */

/* Heap bytes of a loaded file's symbol table (DWARF not included). */
static uint64_t elf_symbol_bytes(const struct ember_elf *elf)
{
	if (!elf)
		return 0;
	return elf->n_syms * (sizeof(*elf->syms) + sizeof(*elf->max_end) + sizeof(*elf->demangled)) +
	       elf->names_len;
}

static struct elf_entry *entry_new(struct ember_symbolizer *s, struct ember_elf *elf, int err)
{
	struct elf_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->elf = elf;
	e->err = err;
	e->idle_since_ns = ember_monotonic_ns();
	e->next = s->entries;
	s->entries = e;
	s->n_entries++;
	if (elf)
		s->stats.elf_files++;
	s->stats.elf_symbol_bytes += elf_symbol_bytes(elf);
	return e;
}

static void entry_unref(struct elf_entry *e)
{
	if (e && e->refs > 0 && --e->refs == 0)
		e->idle_since_ns = ember_monotonic_ns();
}

/* Drop unreferenced entries idle for ELF_IDLE_NS, and all of them once the cache is big. */
static void elf_cache_trim(struct ember_symbolizer *s, int64_t now)
{
	bool big = s->n_entries > ELF_CACHE_SOFT_MAX, any = false;

	for (struct elf_entry *e = s->entries; e; e = e->next)
		if (e->refs == 0 && (big || now - e->idle_since_ns >= ELF_IDLE_NS))
			e->doomed = any = true;
	if (!any)
		return;
	key_remove_doomed(&s->keys);
	for (struct elf_entry **pp = &s->entries; *pp;) {
		struct elf_entry *e = *pp;
		if (e->doomed) {
			*pp = e->next;
			if (e->elf)
				s->stats.elf_files--;
			s->stats.elf_symbol_bytes -= elf_symbol_bytes(e->elf);
			ember_elf_free(e->elf);
			free(e->path);
			free(e);
			s->n_entries--;
			s->stats.elf_dropped++;
		} else {
			pp = &e->next;
		}
	}
}

/*
 * Two files claim one build-id but differ: keep them apart, count it, and
 * say so once per build-id.
 */
static void note_collision(struct ember_symbolizer *s, const struct ember_elf *have,
			   const struct ember_elf *elf)
{
	s->stats.build_id_collisions++;
	ember_warn_once(elf->build_id,
			"symbolizer: %s and %s have the same build-id %s but different "
			"contents (a stripped copy, or a copied build-id): each is "
			"symbolized from its own file",
			have->path, elf->path, elf->build_id);
}

/*
 * The cache entry for the file open on fd (name for messages).  Files are
 * known by identity (device, inode, size, mtime): the libc that 100
 * processes map is read once.  A file not seen yet is loaded; if another
 * file with the same content hash is loaded already (the same binary at
 * another path, in another container), that entry is shared.  A build-id
 * alone shares nothing: another file with the same build-id but other
 * content is a collision, counted and kept apart.  Returns NULL only on OOM.
 */
/* "n:DEV:INO": the newest loaded file with that identity (dev as in st_dev). */
static void inode_key(char *key, size_t size, uint64_t dev, uint64_t ino)
{
	snprintf(key, size, "n:%" PRIx64 ":%" PRIx64, dev, ino);
}

static struct elf_entry *elf_cache_get(struct ember_symbolizer *s, int fd, const char *name)
{
	char id_key[128], content_key[2 * EMBER_HASH_BYTES + 8], bid_key[2 * EMBER_BUILD_ID_MAX + 8];
	char ino_key[64];
	struct elf_entry *e, *same_id;
	struct ember_elf *elf;
	struct stat st;
	int err;

	if (fstat(fd, &st) != 0)
		return NULL;
	snprintf(id_key, sizeof(id_key), "i:%" PRIx64 ":%" PRIx64 ":%" PRId64 ":%" PRId64 ".%ld",
		 (uint64_t)st.st_dev, (uint64_t)st.st_ino, (int64_t)st.st_size,
		 (int64_t)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
	e = key_get(&s->keys, id_key);
	int64_t now = ember_monotonic_ns();
	if (e && (e->elf || now < e->retry_ns))
		return e;
	/* a failed load whose backoff has passed: load again; a new entry replaces it */
	unsigned failures = e ? e->failures : 0;
	if (e)
		s->stats.elf_retries++;

	err = ember_elf_open_fd(fd, name, &elf);
	if (err) {
		s->stats.elf_errors++;
		ember_warn_once(name, "symbolizer: cannot use %s: %s; its frames stay unnamed",
				name, describe_err(err));
		e = entry_new(s, NULL, err);
		if (!e)
			return NULL;
		e->failures = failures + 1;
		e->retry_ns = now + retry_delay(failures);
		return key_put(&s->keys, id_key, e) ? NULL : e;
	}
	strcpy(content_key, "c:");
	ember_hex_encode(elf->content_hash, EMBER_HASH_BYTES, content_key + 2);
	snprintf(bid_key, sizeof(bid_key), "b:%s", elf->build_id);
	inode_key(ino_key, sizeof(ino_key), (uint64_t)st.st_dev, (uint64_t)st.st_ino);
	e = key_get(&s->keys, content_key);
	if (e) {
		ember_elf_free(elf); /* same bytes under another path or container */
		return key_put(&s->keys, id_key, e) || key_put(&s->keys, ino_key, e) ? NULL : e;
	}
	same_id = key_get(&s->keys, bid_key);
	if (same_id && same_id->elf)
		note_collision(s, same_id->elf, elf);
	e = entry_new(s, elf, 0);
	if (!e) {
		ember_elf_free(elf);
		return NULL;
	}
	/* symcache entries are keyed by content: 64 bits of its SHA-256 */
	memcpy(&e->cache_key, elf->content_hash, sizeof(e->cache_key));
	e->cache_key |= 1;
	e->path = strdup(name);
	if (key_put(&s->keys, id_key, e) || key_put(&s->keys, content_key, e) ||
	    key_put(&s->keys, ino_key, e) ||
	    (!same_id && key_put(&s->keys, bid_key, e)))
		return NULL;
	return e;
}

/* ---- opening a mapped file ---- */

/*
 * Open the file behind mapping m of pid.  Prefers the candidate whose inode
 * matches the maps line; else the first that opened.  Returns fd or -errno.
 */
static int open_mapped_file(uint32_t pid, const struct pmap *m)
{
	char cand[3][PATH_MAX + 64];
	int n = 0, fallback = -1, err = -ENOENT;

	if (m->path[0] == '/') {
		if ((size_t)snprintf(cand[n], sizeof(cand[n]), "/proc/%u/root%s", pid, m->path) <
		    sizeof(cand[n]))
			n++;
	}
	snprintf(cand[n++], sizeof(cand[0]), "/proc/%u/map_files/%" PRIx64 "-%" PRIx64, pid,
		 m->start, m->end);
	if (m->path[0] == '/' && strlen(m->path) < sizeof(cand[0]))
		snprintf(cand[n++], sizeof(cand[0]), "%s", m->path);

	for (int i = 0; i < n; i++) {
		struct stat st;
		int fd = open(cand[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			err = -EINVAL;
			continue;
		}
		if (m->inode == 0 || (uint64_t)st.st_ino == m->inode) {
			if (fallback >= 0)
				close(fallback);
			return fd;
		}
		if (fallback < 0)
			fallback = fd;
		else
			close(fd);
	}
	return fallback >= 0 ? fallback : err;
}

/* The vDSO's entry when a mapping of `size` bytes holds our image, else NULL. */
static struct elf_entry *vdso_entry(struct ember_symbolizer *s, size_t size)
{
	if (!s->vdso_tried) {
		int fd = ember_vdso_memfd(&s->vdso_size);
		s->vdso_tried = true;
		if (fd >= 0) {
			s->vdso = elf_cache_get(s, fd, "[vdso]");
			if (s->vdso)
				s->vdso->refs++;
			close(fd);
		}
	}
	return s->vdso && s->vdso_size == size ? s->vdso : NULL;
}

static void resolve_map(struct ember_symbolizer *s, uint32_t pid, struct pmap *m)
{
	int64_t now = ember_monotonic_ns();

	if (m->elf) { /* a retry: let go of the failed entry */
		entry_unref(m->elf);
		m->elf = NULL;
	}
	m->resolved = true;
	m->retry_ns = 0;
	if (m->kind == MAP_VDSO) {
		m->elf = vdso_entry(s, m->end - m->start);
		if (m->elf)
			m->elf->refs++;
		return;
	}
	if (m->kind != MAP_FILE)
		return;
	int fd = open_mapped_file(pid, m);
	if (fd < 0) {
		if (!ember_proc_has_mm(pid)) {
			/* the process exited under us: a race, nothing to tell */
			s->stats.open_vanished++;
			ember_debug("symbolizer: cannot open %s: pid %u exited meanwhile", m->path,
				    pid);
			return;
		}
		s->stats.elf_errors++;
		ember_warn_once(m->path, "symbolizer: cannot open %s (pid %u): %s", m->path, pid,
				strerror(-fd));
		m->retry_ns = now + RETRY_FIRST_NS;
		return;
	}
	m->elf = elf_cache_get(s, fd, m->path);
	close(fd);
	if (m->elf) {
		m->elf->refs++;
		if (!m->elf->elf)
			m->retry_ns = m->elf->retry_ns;
	}
}

/* ---- processes ---- */

static struct proc **proc_slot(struct ember_symbolizer *s, uint32_t pid)
{
	struct proc **pp = &s->procs[(pid * 2654435761u) & (s->n_proc_buckets - 1)];
	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->next;
	return pp;
}

static int procs_grow(struct ember_symbolizer *s)
{
	size_t nb = s->n_proc_buckets ? s->n_proc_buckets * 2 : 256;
	struct proc **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_proc_buckets; i++) {
		for (struct proc *p = s->procs[i], *next; p; p = next) {
			next = p->next;
			size_t j = (p->pid * 2654435761u) & (nb - 1);
			p->next = b[j];
			b[j] = p;
		}
	}
	free(s->procs);
	s->procs = b;
	s->n_proc_buckets = nb;
	return 0;
}

static void lru_unlink(struct ember_symbolizer *s, struct proc *p)
{
	if (p->lru_prev)
		p->lru_prev->lru_next = p->lru_next;
	else
		s->lru_head = p->lru_next;
	if (p->lru_next)
		p->lru_next->lru_prev = p->lru_prev;
	else
		s->lru_tail = p->lru_prev;
	p->lru_prev = p->lru_next = NULL;
}

static void lru_push_front(struct ember_symbolizer *s, struct proc *p)
{
	p->lru_prev = NULL;
	p->lru_next = s->lru_head;
	if (s->lru_head)
		s->lru_head->lru_prev = p;
	else
		s->lru_tail = p;
	s->lru_head = p;
}

/* pid's process, marked most recently used; NULL when unknown. */
static struct proc *proc_find(struct ember_symbolizer *s, uint32_t pid)
{
	if (!s->n_proc_buckets)
		return NULL;
	struct proc *p = *proc_slot(s, pid);
	if (p && p != s->lru_head) {
		lru_unlink(s, p);
		lru_push_front(s, p);
	}
	return p;
}

static struct proc *proc_get(struct ember_symbolizer *s, uint32_t pid)
{
	struct proc *p = proc_find(s, pid);

	if (p)
		return p;
	if (s->n_procs >= s->max_procs && s->lru_tail) {
		s->stats.proc_evictions++;
		ember_symbolizer_forget(s, s->lru_tail->pid);
	}
	if (s->n_procs >= s->n_proc_buckets && procs_grow(s))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	struct proc **pp = proc_slot(s, pid);
	*pp = p;
	lru_push_front(s, p);
	s->n_procs++;
	s->stats.processes = s->n_procs;
	return p;
}

static void free_maps(struct pmap *maps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		entry_unref(maps[i].elf);
		free(maps[i].path);
	}
	free(maps);
}

static void proc_free(struct proc *p)
{
	free_maps(p->maps, p->n_maps);
	free(p->comm);
	free(p->exe);
	free(p->build_id);
	free(p);
}

static enum map_kind classify(const struct ember_map_entry *e)
{
	if (e->path[0] == '\0')
		return MAP_ANON;
	if (strcmp(e->path, "[vdso]") == 0)
		return MAP_VDSO;
	if (ember_map_is_special(e))
		return MAP_SPECIAL;
	return MAP_FILE;
}

/* Same mapping of the same file (so a resolved ELF can be carried over). */
static bool same_mapping(const struct pmap *a, const struct ember_map_entry *b)
{
	return a->start == b->start && a->end == b->end && a->pgoff == b->pgoff &&
	       a->inode == b->inode && strcmp(a->path, b->path) == 0;
}

static struct pmap *find_old(struct pmap *maps, size_t n, uint64_t start)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (maps[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && maps[lo].start == start ? &maps[lo] : NULL;
}

/* (Re-)read pid's executable mappings, keeping already resolved files. */
static int load_maps(struct proc *p)
{
	struct ember_maps mm = {0};
	struct pmap *maps;
	int err = ember_maps_read_pid(p->pid, EMBER_MAPS_EXEC_ONLY, &mm);

	if (err) {
		ember_maps_free(&mm);
		return err;
	}
	maps = calloc(mm.n ? mm.n : 1, sizeof(*maps));
	if (!maps) {
		ember_maps_free(&mm);
		return -ENOMEM;
	}
	for (size_t i = 0; i < mm.n; i++) {
		struct ember_map_entry *e = &mm.entries[i];
		struct pmap *m = &maps[i], *old = find_old(p->maps, p->n_maps, e->start);

		m->start = e->start;
		m->end = e->end;
		m->pgoff = e->pgoff;
		m->inode = e->inode;
		m->kind = classify(e);
		if (old && same_mapping(old, e)) {
			m->resolved = old->resolved;
			m->retry_ns = old->retry_ns;
			m->elf = old->elf; /* move the reference */
			old->elf = NULL;
		}
		m->path = e->path; /* take ownership */
		e->path = NULL;
	}
	size_t n = mm.n;
	ember_maps_free(&mm);
	free_maps(p->maps, p->n_maps);
	p->maps = maps;
	p->n_maps = n;
	p->have_maps = true;
	return 0;
}

static int vma_by_start(const void *a, const void *b)
{
	const struct ember_kernel_vma *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * A process gone before its maps were read: its code mappings as the
 * kernel noted them, each bound to the cached file with its device and
 * inode (none cached: the frames stay "[unknown]" as before).
 */
static void load_kernel_vmas(struct ember_symbolizer *s, struct proc *p)
{
	struct ember_kernel_vma v[EMBER_KERNEL_VMAS_MAX];
	char key[64];
	int n = s->kernel_vmas ? s->kernel_vmas(p->pid, v, EMBER_KERNEL_VMAS_MAX,
						 s->kernel_vmas_arg) : 0;

	if (n <= 0)
		return;
	if (n > EMBER_KERNEL_VMAS_MAX)
		n = EMBER_KERNEL_VMAS_MAX;
	qsort(v, (size_t)n, sizeof(v[0]), vma_by_start);
	struct pmap *maps = calloc((size_t)n, sizeof(*maps));
	if (!maps)
		return;
	size_t used = 0;
	for (int i = 0; i < n; i++) {
		if (v[i].end <= v[i].start || (used && v[i].start < maps[used - 1].end))
			continue; /* empty, or overlapping the one before: not to be trusted */
		inode_key(key, sizeof(key), makedev(v[i].dev >> 20, v[i].dev & 0xfffff), v[i].ino);
		struct elf_entry *e = key_get(&s->keys, key);
		struct pmap *m = &maps[used];
		m->path = strdup(e && e->path ? e->path : "[unknown]");
		if (!m->path)
			continue;
		m->start = v[i].start;
		m->end = v[i].end;
		m->pgoff = v[i].offset;
		m->inode = v[i].ino;
		m->kind = MAP_FILE;
		m->resolved = true; /* never opened: there is no process to open it through */
		if (e && e->elf) {
			m->elf = e;
			e->refs++;
		}
		used++;
	}
	free_maps(p->maps, p->n_maps);
	p->maps = maps;
	p->n_maps = used;
	p->have_maps = true;
	s->stats.kernel_vma_procs++;
}

static struct pmap *find_map(struct proc *p, uint64_t pc)
{
	size_t lo = 0, hi = p->n_maps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct pmap *m = &p->maps[mid];
		if (pc < m->start)
			hi = mid;
		else if (pc >= m->end)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

static char *read_comm(uint32_t pid)
{
	char path[64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return strdup(buf);
}

static char *read_exe(uint32_t pid)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

/* comm, exe and the executable's build-id.  Returns 0 or -ESRCH. */
static int load_info(struct ember_symbolizer *s, struct proc *p)
{
	char path[64];
	char *comm = read_comm(p->pid);

	if (!comm)
		return -ESRCH;
	free(p->comm);
	free(p->exe);
	free(p->build_id);
	p->comm = comm;
	p->exe = read_exe(p->pid);
	p->build_id = NULL;

	snprintf(path, sizeof(path), "/proc/%u/exe", p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct elf_entry *e = elf_cache_get(s, fd, p->exe ? p->exe : path);
		if (e && e->elf && e->elf->build_id[0])
			p->build_id = strdup(e->elf->build_id);
		close(fd);
	}
	p->have_info = true;
	return 0;
}

/* ---- public API ---- */

/* Cache budget: EMBER_SYMCACHE_MB, else EMBER_SYMCACHE_DEFAULT_BYTES. */
static size_t symcache_budget(void)
{
	const char *v = getenv("EMBER_SYMCACHE_MB");
	char *end;

	if (v && *v) {
		unsigned long mb = strtoul(v, &end, 10);
		if (!*end && mb > 0 && mb <= (1ul << 20))
			return (size_t)mb << 20;
	}
	return EMBER_SYMCACHE_DEFAULT_BYTES;
}

struct ember_symbolizer *ember_symbolizer_new(void)
{
	struct ember_symbolizer *s = calloc(1, sizeof(struct ember_symbolizer));

	if (s && !(s->symcache = ember_symcache_new(symcache_budget()))) {
		free(s);
		return NULL;
	}
	if (s) {
		s->max_procs = EMBER_SYMBOLIZER_MAX_PROCS;
		s->stats.max_processes = s->max_procs;
	}
	return s;
}

void ember_symbolizer_set_kernel_vmas(struct ember_symbolizer *s, ember_kernel_vmas_fn fn,
				      void *arg)
{
	s->kernel_vmas = fn;
	s->kernel_vmas_arg = arg;
}

void ember_symbolizer_free(struct ember_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_proc_buckets; i++) {
		for (struct proc *p = s->procs[i], *next; p; p = next) {
			next = p->next;
			proc_free(p);
		}
	}
	free(s->procs);
	key_map_free(&s->keys);
	for (struct elf_entry *e = s->entries, *next; e; e = next) {
		next = e->next;
		ember_elf_free(e->elf);
		free(e->path);
		free(e);
	}
	ember_kallsyms_free(s->kallsyms);
	ember_symcache_free(s->symcache);
	free(s);
}

/* Frame for pc inside mapping m (already resolved). */
static void map_frame(struct ember_symbolizer *s, const struct pmap *m, uint64_t pc,
		      struct ember_frame *f)
{
	uint64_t file_off = pc - m->start + m->pgoff;

	switch (m->kind) {
	case MAP_ANON:
		f->module = "[anon]";
		return;
	case MAP_VDSO: /* no file: the image starts the mapping */
		f->module = m->path;
		f->address = pc - m->start;
		if (m->elf && m->elf->elf) {
			uint64_t vaddr;
			if (ember_elf_offset_to_vaddr(m->elf->elf, f->address, &vaddr) == 0)
				f->address = vaddr;
			if (m->elf->elf->build_id[0])
				f->build_id = m->elf->elf->build_id;
		}
		return;
	case MAP_SPECIAL:
		f->module = m->path;
		f->address = pc - m->start;
		return;
	case MAP_FILE:
		break;
	}
	f->module = m->path;
	f->address = file_off;
	if (!m->elf || !m->elf->elf)
		return;
	struct ember_elf *elf = m->elf->elf;
	uint64_t vaddr;
	if (ember_elf_offset_to_vaddr(elf, file_off, &vaddr) == 0)
		f->address = vaddr;
	if (elf->build_id[0])
		f->build_id = elf->build_id;
}

/*
 * Intern the inline chain of f->address (f: module, address, build_id set)
 * into out[0..max_out), from the cache or resolved now (*hit says which).
 * A chain longer than max_out keeps its innermost frames and its outermost.
 */
static int chain_frames(struct ember_symbolizer *s, struct elf_entry *ee, struct ember_frame *f,
			struct ember_profile *p, uint32_t *out, int max_out, bool *hit)
{
	struct ember_sym_frame tmp[EMBER_DWARF_MAX_CHAIN];
	const struct ember_sym_frame *chain;
	int n = ember_symcache_get(s->symcache, ee->cache_key, f->address, &chain);

	*hit = n >= 0;
	if (n < 0) {
		n = ember_elf_symbolize(ee->elf, f->address, tmp, EMBER_DWARF_MAX_CHAIN);
		if (n < 0)
			n = 0;
		ember_symcache_put(s->symcache, ee->cache_key, f->address, tmp, n);
		chain = tmp;
	}
	if (n == 0)
		return intern_frame(p, f, out) ? 1 : -ENOMEM;
	int kept = n <= max_out ? n : max_out;
	for (int i = 0; i < kept; i++) {
		/* The last slot always gets the outermost frame. */
		const struct ember_sym_frame *c = &chain[i == kept - 1 ? n - 1 : i];
		f->function = c->function;
		f->file = c->file;
		f->line = c->line;
		f->start_line = c->start_line;
		f->flags = i < kept - 1 ? EMBER_FRAME_INLINED : 0;
		if (!intern_frame(p, f, &out[i]))
			return -ENOMEM;
	}
	return kept;
}

int ember_symbolize_user(struct ember_symbolizer *s, uint32_t pid, uint64_t pc,
			 struct ember_profile *p, uint32_t *out, int max_out)
{
	struct ember_frame f = {0};
	struct proc *proc;
	struct pmap *m = NULL;
	bool hit = true;

	if (max_out <= 0)
		return 0;
	s->stats.lookups++;
	proc = proc_get(s, pid);
	if (!proc)
		return -ENOMEM;
	if (!proc->have_maps) {
		hit = false;
		if (load_maps(proc) != 0)
			load_kernel_vmas(s, proc); /* else a vanished process stays without maps */
	}
	m = find_map(proc, pc);
	if (!m && proc->have_maps && hit) {
		int64_t now = ember_monotonic_ns();
		if (!proc->futile_reread_ns || now - proc->futile_reread_ns >= REREAD_THROTTLE_NS) {
			hit = false;
			if (load_maps(proc) == 0)
				m = find_map(proc, pc);
			if (!m)
				proc->futile_reread_ns = now;
		}
	}
	if (m) {
		if (!m->resolved || (m->retry_ns && ember_monotonic_ns() >= m->retry_ns)) {
			hit = false;
			resolve_map(s, pid, m);
		}
		map_frame(s, m, pc, &f);
		if ((m->kind == MAP_FILE || m->kind == MAP_VDSO) && m->elf && m->elf->elf) {
			bool cached;
			int n = chain_frames(s, m->elf, &f, p, out, max_out, &cached);
			if (hit && cached)
				s->stats.cache_hits++;
			return n;
		}
	}
	if (hit)
		s->stats.cache_hits++;
	return intern_frame(p, &f, out) ? 1 : -ENOMEM;
}

/* (Re)load kallsyms; on failure keep what was loaded before. */
static void load_kallsyms(struct ember_symbolizer *s)
{
	const char *path = getenv("EMBER_KALLSYMS");
	struct ember_kallsyms *k;
	int err;

	s->kallsyms_tried = true;
	s->kallsyms_loaded_ns = ember_monotonic_ns();
	if (!path || !path[0])
		path = EMBER_KALLSYMS_PATH;
	err = ember_kallsyms_load(path, &k);
	if (!err) {
		ember_kallsyms_free(s->kallsyms);
		s->kallsyms = k;
	} else if (err == -EPERM)
		ember_warn_once(path, "symbolizer: %s hides kernel addresses (kernel.kptr_restrict); "
				"run as root or set kernel.kptr_restrict=0 to name kernel frames",
				path);
	else if (err)
		ember_warn_once(path, "symbolizer: cannot load kernel symbols from %s: %s", path,
				strerror(-err));
}

int ember_symbolize_kernel(struct ember_symbolizer *s, uint64_t pc, struct ember_profile *p,
			   uint32_t *out, int max_out)
{
	struct ember_frame f = {.module = "[kernel]", .address = pc, .flags = EMBER_FRAME_KERNEL};
	char module[80];

	if (max_out <= 0)
		return 0;
	s->stats.lookups++;
	if (!s->kallsyms_tried)
		load_kallsyms(s);
	else
		s->stats.cache_hits++;
	const struct ember_ksym *k = s->kallsyms ? ember_kallsyms_lookup(s->kallsyms, pc, NULL)
						 : NULL;
	/* A miss may be a module loaded since: reload, but rarely (it is a big file). */
	if (!k && s->kallsyms && ember_monotonic_ns() - s->kallsyms_loaded_ns >= KALLSYMS_RELOAD_NS) {
		load_kallsyms(s);
		k = ember_kallsyms_lookup(s->kallsyms, pc, NULL);
	}
	if (k) {
		f.function = k->name;
		if (k->module) {
			snprintf(module, sizeof(module), "[%s]", k->module);
			f.module = module;
		}
	}
	return intern_frame(p, &f, out) ? 1 : -ENOMEM;
}

int ember_symbolizer_process(struct ember_symbolizer *s, uint32_t pid,
			     struct ember_process_info *info)
{
	struct proc *p = proc_find(s, pid);

	memset(info, 0, sizeof(*info));
	if (!p && kill((pid_t)pid, 0) && errno == ESRCH)
		return -ESRCH; /* gone: make no room for it */
	if (!p || !p->have_info) {
		bool created = !p;
		if (created && !(p = proc_get(s, pid)))
			return -ENOMEM;
		if (load_info(s, p) != 0) {
			if (created)
				ember_symbolizer_forget(s, pid); /* keep no trace of a dead pid */
			return -ESRCH;
		}
	}
	info->comm = p->comm;
	info->exe = p->exe;
	info->build_id = p->build_id;
	return 0;
}

int ember_symbolizer_refresh(struct ember_symbolizer *s, uint32_t pid)
{
	struct proc *p = proc_get(s, pid);
	int err;

	if (!p)
		return -ENOMEM;
	err = load_maps(p); /* keeps the mappings already resolved */
	if (err) {
		if (!p->have_maps && !p->have_info) /* gone before anything was read */
			ember_symbolizer_forget(s, pid);
		return err;
	}
	p->futile_reread_ns = 0;
	if (!p->have_info)
		load_info(s, p);
	/* Open the files now: after the process exits /proc/PID/root is gone. */
	for (size_t i = 0; i < p->n_maps; i++)
		if (!p->maps[i].resolved)
			resolve_map(s, pid, &p->maps[i]);
	return 0;
}

int ember_symbolizer_track(struct ember_symbolizer *s, uint32_t pid)
{
	struct proc *p = proc_get(s, pid);

	if (!p)
		return -ENOMEM;
	/* After an exec the pid shows a new program: start from a clean snapshot. */
	free_maps(p->maps, p->n_maps);
	p->maps = NULL;
	p->n_maps = 0;
	p->have_maps = false;
	p->have_info = false;
	return ember_symbolizer_refresh(s, pid);
}

void ember_symbolizer_forget(struct ember_symbolizer *s, uint32_t pid)
{
	if (!s->n_proc_buckets)
		return;
	struct proc **pp = proc_slot(s, pid);
	struct proc *p = *pp;
	if (!p)
		return;
	*pp = p->next;
	lru_unlink(s, p);
	proc_free(p);
	s->n_procs--;
	s->stats.processes = s->n_procs;
	elf_cache_trim(s, ember_monotonic_ns());
}

void ember_symbolizer_maintain(struct ember_symbolizer *s)
{
	elf_cache_trim(s, ember_monotonic_ns());
}

void ember_symbolizer_set_max_processes(struct ember_symbolizer *s, size_t max)
{
	s->max_procs = max ? max : EMBER_SYMBOLIZER_MAX_PROCS;
	s->stats.max_processes = s->max_procs;
	while (s->n_procs > s->max_procs && s->lru_tail) {
		s->stats.proc_evictions++;
		ember_symbolizer_forget(s, s->lru_tail->pid);
	}
}

void ember_symbolizer_stats(const struct ember_symbolizer *s, struct ember_symbolizer_stats *st)
{
	struct ember_symcache_stats cs;

	*st = s->stats;
	ember_symcache_get_stats(s->symcache, &cs);
	st->symcache_lookups = cs.lookups;
	st->symcache_hits = cs.hits;
	st->symcache_entries = cs.entries;
	st->symcache_bytes = cs.bytes;
	st->symcache_max_bytes = cs.max_bytes;
	st->symcache_evictions = cs.evictions;
}

void ember_symbolizer_symcache_stats(const struct ember_symbolizer *s,
				     struct ember_symcache_stats *st)
{
	ember_symcache_get_stats(s->symcache, st);
}
