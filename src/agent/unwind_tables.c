/*
 * unwind_tables.c - compile, place and reclaim unwind rows in the BPF maps.
 *
 * Files.  A mapped file is known by (device, inode).  The first time one is
 * seen its PT_LOAD segments and build-id are read, its CFI compiled (or read
 * back from the zstd disk cache, keyed by build-id plus a hash of the
 * compiler's inputs: see cache_key) and its rows placed:
 * cut at 64 KiB chunk boundaries of ELF address, each chunk contiguous in a
 * shard and starting with a row at the chunk's first byte, one index entry
 * per chunk.  A file without CFI or .gopclntab is walked by frame pointer.
 *
 * Rows are packed to 4 bytes for the kernel: the pc's offset in its chunk
 * and the id of its rule in the shared rules table, where each distinct
 * rule is stored once (a few thousand cover a whole host).
 *
 * Shards.  BPF array maps of EMBER_SHARD_ELEMS u64 elements (two rows
 * each), created mmap-able so rows are copied in with memcpy instead of a
 * syscall per row (kernels before 5.5 cannot mmap maps: there the rows are
 * packed in a scratch buffer and written one element per map update).
 * Free space in each shard is a sorted list of extents; allocation is
 * first fit, freeing merges neighbours.
 *
 * Processes.  The procs entry of a pid lists its executable mappings sorted
 * by start, each with its bias (runtime address - ELF address) and file id.
 * The pid holds a reference on each file; the last reference frees the rows.
 *
 * Lifetime.  The kernel reports the exit of a pid in the procs map, so an
 * entry written after the process exited would stay forever (and fill the
 * map under process churn).  Hence: a process without executable mappings
 * (a zombie, a kernel thread) is never entered, and after writing an entry
 * the process is checked for memory (ember_proc_has_mm): the kernel frees
 * a process's memory before sched_process_exit, so a process that still
 * has memory after the write will have its exit reported, and one that
 * has none is unloaded at once.  The table is bounded by the procs map's
 * capacity: when full, the process least recently sampled (or loaded) is
 * evicted and counted; a map found full while the table is not (it should
 * not happen) is first cleared of pids the table does not hold.  Lookups
 * by pid and by file id go through
 * pidtab indexes (thousands of processes come and go a second under churn).
 *
 * Failed reads.  A mapped file is opened once, through the process
 * (/proc/PID/map_files, else /proc/PID/root/PATH), and read from that
 * descriptor, so a process exiting after the open cannot fail the read.  A
 * failure is never final: the file is retried with exponential backoff
 * (1 s doubling to 10 min) and the processes mapping it are reloaded when
 * it is due.  An open that fails because the process exited is a race, not
 * a problem: counted as "vanished" and logged at debug level only.
 */
#include "core/array.h"
#include "agent/unwind_tables.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <bpf/bpf.h>

#include "agent/pidtab.h"
#include "agent/procmaps.h"
#include "core/bpf_counters.h"
#include "core/clock.h"
#include "core/dir_names.h"
#include "core/log.h"
#include "core/safefile.h"
#include "ehframe/ehframe.h"
#include "symbolizer/elf_identity.h"
#include "symbolizer/gopclntab.h"
#include "ember_unwind.h"

#define DEFAULT_BUDGET (64u << 20)
#define MAX_LOADS 16
#define VDSO_INO UINT64_MAX /* the vDSO's inode among the files (get_vdso) */
#define IDLE_KEEP_NS (30 * 1000000000LL) /* tables of files no process maps: kept 30 s */
#define SHARD_BYTES ((size_t)EMBER_SHARD_ELEMS * sizeof(uint64_t))
#define RULE_SLOTS (2 * EMBER_MAX_RULES) /* open addressing, half full at most */
#define DEFAULT_MAX_PROCS 2048
/* map bytes of a chunk: its elements (8 bytes, two rows) and its index entry */
#define CHUNK_BYTES(elems) \
	((elems) * sizeof(uint64_t) + sizeof(struct ember_index_key) + sizeof(struct ember_index_value))
#define RETRY_FIRST_NS 1000000000LL          /* first retry of a failed file after 1 s */
#define RETRY_MAX_NS (600 * 1000000000LL)   /* backoff cap: 10 min */
#define CACHE_MAGIC 0x52424d45u /* "EMBR" */
#define CACHE_VERSION (0x100 + EMBER_EHFRAME_ROWS_VERSION)

struct extent {
	uint32_t first, count;
};

struct shard {
	int fd;
	bool borrowed;              /* shard 0: the BPF object's map, not ours to close */
	uint64_t *elems;            /* mmap'ed: two packed rows each (NULL with no_mmap) */
	struct extent *free;        /* sorted by first */
	size_t n_free, cap_free;
};

struct chunk {
	uint32_t chunk, shard, first, count;
};

struct load_segment {
	uint64_t offset, vaddr, filesz;
};

struct file {
	uint64_t dev, ino;
	uint32_t id;        /* exe_id in the index (never 0) */
	uint32_t refs;      /* processes mapping it */
	bool has_table;
	bool failed;        /* the last read failed: retried at retry_ns */
	uint32_t failures;  /* consecutive failed reads (backoff exponent) */
	int64_t retry_ns;
	struct load_segment loads[MAX_LOADS];
	size_t n_loads;
	struct chunk *chunks;
	size_t n_chunks;
	uint64_t rows;
	uint64_t entry;     /* ELF entry point (e_entry), 0 if none */
	bool go_runtime;    /* has an entry in the go_runtimes map */
	bool published;     /* has an entry in the file_tables map */
	int64_t idle_ns;    /* no process maps it since then (0: mapped) */
	char *path;         /* as seen in the first process, for messages */
};

struct proc {
	uint32_t pid;
	uint32_t *file_ids; /* references held */
	size_t n_files;
	int64_t used_ns;    /* last loaded or sampled: the eviction order */
	int64_t retry_ns;   /* reload then: a file it maps failed to read (0 = none) */
};

struct rule_slot {
	uint32_t key; /* packed rule + 1; 0 = empty */
	uint16_t id;
};

struct ember_unwind_tables {
	struct ember_unwind_maps maps;
	struct rule_slot *rule_slots; /* rule -> id */
	uint32_t n_rules;
	size_t budget;
	char *cache_dir;
	struct ember_dir_names cache_names; /* cache_dir's file names (collision checks) */
	bool no_mmap;
	uint64_t *scratch;            /* no_mmap: rows of one chunk before their map updates */
	struct shard shards[EMBER_MAX_SHARDS];
	size_t n_shards;
	struct file *files;
	size_t n_files, cap_files;
	struct ember_pidtab file_index; /* file id -> position in files[] */
	uint32_t next_id;
	struct proc *procs;
	size_t n_procs, cap_procs, max_procs;
	struct ember_pidtab proc_index; /* pid -> position in procs[] */
	struct ember_unwind_tables_stats stats;
};

/* ---- shards ---------------------------------------------------------------- */

static int shard_init(struct shard *sh, int fd, bool no_mmap)
{
	void *p = no_mmap ? NULL : mmap(NULL, SHARD_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	sh->fd = fd;
	sh->elems = p;
	sh->free = malloc(sizeof(*sh->free) * 16);
	if (!sh->free) {
		if (p)
			munmap(p, SHARD_BYTES);
		return -ENOMEM;
	}
	sh->cap_free = 16;
	sh->n_free = 1;
	sh->free[0] = (struct extent){0, EMBER_SHARD_ELEMS};
	return 0;
}

static int add_shard(struct ember_unwind_tables *t)
{
	if (t->n_shards >= EMBER_MAX_SHARDS || (t->n_shards + 1) * SHARD_BYTES > t->budget)
		return -ENOSPC;
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = t->no_mmap ? 0 : BPF_F_MMAPABLE);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ember_shard", sizeof(uint32_t),
				sizeof(uint64_t), EMBER_SHARD_ELEMS, &opts);
	if (fd < 0)
		return -errno;
	uint32_t slot = (uint32_t)t->n_shards;
	if (bpf_map_update_elem(t->maps.shards_fd, &slot, &fd, BPF_ANY)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	int rc = shard_init(&t->shards[slot], fd, t->no_mmap);
	if (rc) {
		bpf_map_delete_elem(t->maps.shards_fd, &slot);
		close(fd);
		return rc;
	}
	t->n_shards++;
	t->stats.shards = t->n_shards;
	return 0;
}

/* no_mmap: elements [first, first + count) of a shard, one map update each. */
static int write_elems(const struct shard *sh, uint32_t first, const uint64_t *elems,
		       uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		uint32_t idx = first + i;
		if (bpf_map_update_elem(sh->fd, &idx, &elems[i], BPF_ANY))
			return -errno;
	}
	return 0;
}

/* First fit over every shard, adding one when none has room. */
static int alloc_rows(struct ember_unwind_tables *t, uint32_t count, uint32_t *shard_out,
		      uint32_t *first_out)
{
	if (count == 0 || count > EMBER_SHARD_ELEMS)
		return -EINVAL;
	for (int attempt = 0; attempt < 2; attempt++) {
		for (size_t s = 0; s < t->n_shards; s++) {
			struct shard *sh = &t->shards[s];
			for (size_t i = 0; i < sh->n_free; i++) {
				struct extent *e = &sh->free[i];
				if (e->count < count)
					continue;
				*shard_out = (uint32_t)s;
				*first_out = e->first;
				e->first += count;
				e->count -= count;
				if (e->count == 0) {
					memmove(e, e + 1, (sh->n_free - i - 1) * sizeof(*e));
					sh->n_free--;
				}
				return 0;
			}
		}
		int rc = add_shard(t);
		if (rc)
			return rc;
	}
	return -ENOSPC;
}

static void free_rows(struct ember_unwind_tables *t, uint32_t s, uint32_t first, uint32_t count)
{
	struct shard *sh = &t->shards[s];
	size_t i = 0;

	while (i < sh->n_free && sh->free[i].first < first)
		i++;
	/* merge with the previous and/or next extent */
	bool prev = i > 0 && sh->free[i - 1].first + sh->free[i - 1].count == first;
	bool next = i < sh->n_free && first + count == sh->free[i].first;
	if (prev && next) {
		sh->free[i - 1].count += count + sh->free[i].count;
		memmove(&sh->free[i], &sh->free[i + 1], (sh->n_free - i - 1) * sizeof(struct extent));
		sh->n_free--;
	} else if (prev) {
		sh->free[i - 1].count += count;
	} else if (next) {
		sh->free[i].first = first;
		sh->free[i].count += count;
	} else {
		if (ember_array_grow((void **)&sh->free, &sh->cap_free, sh->n_free + 1, sizeof(struct extent))) {
			ember_warn("unwind tables: out of memory freeing rows (leaked %u rows)", count);
			return;
		}
		memmove(&sh->free[i + 1], &sh->free[i], (sh->n_free - i) * sizeof(struct extent));
		sh->free[i] = (struct extent){first, count};
		sh->n_free++;
	}
}

/* ---- ELF facts: load segments and build-id --------------------------------- */

static int read_elf_facts(const char *path, struct file *f, char *build_id, size_t id_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	build_id[0] = '\0';
	if (fd < 0)
		return -errno;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	size_t nph;
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getphdrnum(elf, &nph)) {
		rc = -ENOEXEC;
		goto out;
	}
	GElf_Ehdr eh;
	f->entry = gelf_getehdr(elf, &eh) ? eh.e_entry : 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_LOAD && f->n_loads < MAX_LOADS) {
			f->loads[f->n_loads++] = (struct load_segment){ph.p_offset, ph.p_vaddr,
								      ph.p_filesz};
		} else if (ph.p_type == PT_NOTE && !build_id[0]) {
			size_t len;
			char *img = elf_rawfile(elf, &len);
			if (!img || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
				continue;
			Elf_Data data = {.d_buf = img + ph.p_offset, .d_size = ph.p_filesz,
					 .d_type = ELF_T_NHDR, .d_version = EV_CURRENT};
			GElf_Nhdr nh;
			size_t off = 0, name_off, desc_off;
			while ((off = gelf_getnote(&data, off, &nh, &name_off, &desc_off)) > 0) {
				if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
				    memcmp(img + ph.p_offset + name_off, "GNU", 4))
					continue;
				const unsigned char *d =
					(const unsigned char *)img + ph.p_offset + desc_off;
				for (size_t k = 0; k < nh.n_descsz && 2 * k + 2 < id_size; k++)
					snprintf(build_id + 2 * k, 3, "%02x", d[k]);
				break;
			}
		}
	}
	if (f->n_loads == 0)
		rc = -ENOEXEC;
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return rc;
}

/* Bias of a mapping: runtime address - ELF address, from the segment holding pgoff. */
static bool mapping_bias(const struct file *f, const struct ember_map_entry *e, uint64_t *bias)
{
	for (size_t i = 0; i < f->n_loads; i++) {
		const struct load_segment *l = &f->loads[i];
		uint64_t page_off = l->offset & ~(uint64_t)0xfff;
		if (e->pgoff >= page_off && e->pgoff < l->offset + l->filesz) {
			*bias = e->start - e->pgoff + l->offset - l->vaddr;
			return true;
		}
	}
	return false;
}

/* ---- disk cache -------------------------------------------------------------- */

struct cache_header {
	uint32_t magic, version;
	uint64_t base, n_rows;
};

#define CACHE_SUFFIX ".rows.zst"
#define CACHE_HASH_BYTES 16 /* of the SHA-256 in a key: 128 bits */
#define CACHE_KEY_MAX (2 * EMBER_BUILD_ID_MAX + 2 + 2 * CACHE_HASH_BYTES + 1)

/*
 * The disk cache key of the file at path: "BUILDID-HASH", BUILDID its GNU
 * build-id, else the one derived from Go's build ID, else "nobuildid"
 * (elf_identity.h); HASH 128 bits of ember_elf_unwind_hash in hex.  The
 * hash covers what the compiler reads (CFI, .gopclntab, headers; ~4 ms for
 * the 6 MB of CFI of a 117 MB libLLVM, whose compile takes 25-75 ms), so
 * a table is read back only for a file with the inputs it was compiled
 * from, whatever build-id the file claims.  *id_len gets strlen(BUILDID),
 * 0 for "nobuildid".  Returns 0, or -errno (then nothing is cached).
 */
static int cache_key(const char *path, char *key, size_t size, size_t *id_len)
{
	char id[2 * EMBER_BUILD_ID_MAX + 1], gnu[2 * EMBER_BUILD_ID_MAX + 1], hex[65];
	uint8_t hash[EMBER_HASH_BYTES];
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -ENOEXEC;

	if (fd < 0)
		return -errno;
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		ember_elf_read_build_id(elf, gnu);
		if (ember_elf_build_id(elf, fd, gnu, NULL, id) == EMBER_BUILD_ID_NONE)
			strcpy(id, "nobuildid");
		rc = ember_elf_unwind_hash(elf, fd, hash);
	}
	if (elf)
		elf_end(elf);
	close(fd);
	if (rc)
		return rc;
	ember_hex_encode(hash, CACHE_HASH_BYTES, hex);
	*id_len = strcmp(id, "nobuildid") ? strlen(id) : 0;
	return (size_t)snprintf(key, size, "%s-%s", id, hex) < size ? 0 : -ENAMETOOLONG;
}

static void cache_path(const struct ember_unwind_tables *t, const char *key, char *buf,
		       size_t size)
{
	snprintf(buf, size, "%s/%s" CACHE_SUFFIX, t->cache_dir, key);
}

/*
 * True when the cache holds a table for key's build-id (its first id_len
 * characters) compiled from other inputs: two files claim one build-id
 * (a copied --build-id, or a stripped copy without .debug_frame).  Neither
 * table is used for the other; the caller counts it.  The directory's names
 * are kept in memory and read again only when it changes (dir_names.h):
 * walking a cache of thousands of tables for every new file was the
 * agent's largest cost on a host that builds software.
 */
static bool cache_collides(struct ember_unwind_tables *t, const char *key, size_t id_len)
{
	size_t klen = strlen(key), slen = sizeof(CACHE_SUFFIX) - 1;
	char prefix[CACHE_KEY_MAX];

	if (!t->cache_dir || id_len == 0 || id_len + 1 >= sizeof(prefix) ||
	    ember_dir_names_refresh(&t->cache_names))
		return false;
	memcpy(prefix, key, id_len + 1); /* "BUILDID-" */
	prefix[id_len + 1] = '\0';
	for (size_t i = ember_dir_names_lower_bound(&t->cache_names, prefix);
	     i < t->cache_names.n; i++) {
		const char *name = t->cache_names.names[i];
		if (strncmp(name, prefix, id_len + 1) != 0)
			break;
		if (strlen(name) == klen + slen && strncmp(name, key, klen) != 0 &&
		    strcmp(name + klen, CACHE_SUFFIX) == 0)
			return true;
	}
	return false;
}

static int cache_read(const struct ember_unwind_tables *t, const char *key,
		      struct ember_unwind_table *table)
{
	char path[4096];
	struct stat st;
	int rc = -ENOENT;

	if (!t->cache_dir || !key)
		return -ENOENT;
	cache_path(t, key, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size <= 0 || st.st_size > (256 << 20)) {
		close(fd);
		return -EINVAL;
	}
	void *z = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (z == MAP_FAILED)
		return -errno;
	unsigned long long raw = ZSTD_getFrameContentSize(z, (size_t)st.st_size);
	if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN ||
	    raw < sizeof(struct cache_header) || raw > (1ull << 30))
		goto bad;
	char *buf = malloc(raw);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	size_t got = ZSTD_decompress(buf, raw, z, (size_t)st.st_size);
	struct cache_header h;
	memcpy(&h, buf, sizeof(h));
	if (!ZSTD_isError(got) && got == raw && h.magic == CACHE_MAGIC &&
	    h.version != CACHE_VERSION) {
		free(buf); /* written by another version of the compiler */
		rc = -ESTALE;
		goto out;
	}
	if (ZSTD_isError(got) || got != raw || h.magic != CACHE_MAGIC ||
	    h.n_rows != (raw - sizeof(h)) / sizeof(struct ember_unwind_row) ||
	    (raw - sizeof(h)) % sizeof(struct ember_unwind_row)) {
		free(buf);
		goto bad;
	}
	memset(table, 0, sizeof(*table));
	table->base = h.base;
	table->n_rows = h.n_rows;
	table->rows = malloc(h.n_rows * sizeof(struct ember_unwind_row) + 1);
	if (!table->rows) {
		free(buf);
		rc = -ENOMEM;
		goto out;
	}
	memcpy(table->rows, buf + sizeof(h), h.n_rows * sizeof(struct ember_unwind_row));
	free(buf);
	rc = 0;
	goto out;
bad:
	ember_warn_once(path, "unwind cache %s is corrupt; recompiling", path);
	rc = -EINVAL;
out:
	munmap(z, (size_t)st.st_size);
	return rc;
}

static void cache_write(const struct ember_unwind_tables *t, const char *key,
			const struct ember_unwind_table *table)
{
	char path[4096];

	if (!t->cache_dir || !key)
		return;
	size_t raw = sizeof(struct cache_header) + table->n_rows * sizeof(struct ember_unwind_row);
	char *buf = malloc(raw);
	size_t zcap = ZSTD_compressBound(raw);
	void *z = malloc(zcap);
	if (!buf || !z)
		goto out;
	struct cache_header h = {CACHE_MAGIC, CACHE_VERSION, table->base, table->n_rows};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), table->rows, table->n_rows * sizeof(struct ember_unwind_row));
	size_t zlen = ZSTD_compress(z, zcap, buf, raw, 3);
	if (ZSTD_isError(zlen))
		goto out;
	cache_path(t, key, path, sizeof(path));
	/* a random O_EXCL|O_NOFOLLOW temporary renamed over path; no fsync: a
	 * torn cache file fails its checks on read and is recompiled */
	int rc = ember_safefile_write(path, z, zlen, 0600, false);
	if (rc)
		ember_warn_once(path, "cannot write the unwind cache %s: %s", path, strerror(-rc));
out:
	free(buf);
	free(z);
}

/* ---- files --------------------------------------------------------------------- */

static struct file *find_file(struct ember_unwind_tables *t, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < t->n_files; i++)
		if (t->files[i].dev == dev && t->files[i].ino == ino)
			return &t->files[i];
	return NULL;
}

static void release_chunks(struct ember_unwind_tables *t, struct file *f)
{
	for (size_t i = 0; i < f->n_chunks; i++) {
		struct ember_index_key k = {.exe_id = f->id, .chunk = f->chunks[i].chunk};
		bpf_map_delete_elem(t->maps.index_fd, &k);
		free_rows(t, f->chunks[i].shard, f->chunks[i].first, f->chunks[i].count);
		t->stats.table_bytes -= CHUNK_BYTES(f->chunks[i].count);
	}
	t->stats.rows -= f->rows;
	free(f->chunks);
	f->chunks = NULL;
	f->n_chunks = 0;
	f->rows = 0;
}

/*
 * The id of a rule in the shared rules table, registering it on first use.
 * When the table is full, the rule becomes "unsupported" (id 0): counted by
 * the unwinder, never guessed.
 */
static uint16_t rule_id(struct ember_unwind_tables *t, const struct ember_unwind_row *row)
{
	struct ember_unwind_rule rule = {row->cfa_offset, row->kind, row->rbp_offset};
	uint32_t key;

	memcpy(&key, &rule, sizeof(key));
	key += 1;
	for (uint32_t h = (key * 2654435761u) % RULE_SLOTS, n = 0; n < RULE_SLOTS;
	     n++, h = (h + 1) % RULE_SLOTS) {
		struct rule_slot *sl = &t->rule_slots[h];
		if (sl->key == key)
			return sl->id;
		if (sl->key)
			continue;
		if (t->n_rules >= EMBER_MAX_RULES) {
			ember_warn_once("rules-full", "unwind rules table full (%d rules)",
					EMBER_MAX_RULES);
			return 0;
		}
		uint32_t id = t->n_rules;
		if (bpf_map_update_elem(t->maps.rules_fd, &id, &rule, BPF_ANY))
			return 0;
		sl->key = key;
		sl->id = (uint16_t)id;
		t->n_rules++;
		return (uint16_t)id;
	}
	return 0;
}

/*
 * Place a compiled table: one chunk per 64 KiB of ELF address that has rows,
 * each starting with a row at the chunk's first byte, packed two rows to an
 * element.
 */
static int place_table(struct ember_unwind_tables *t, struct file *f,
		       const struct ember_unwind_table *table)
{
	size_t i = 0;
	int rc = 0;

	while (i < table->n_rows) {
		uint64_t vaddr = table->base + table->rows[i].pc;
		uint32_t chunk = (uint32_t)(vaddr >> EMBER_CHUNK_SHIFT);
		uint64_t chunk_start = (uint64_t)chunk << EMBER_CHUNK_SHIFT;
		size_t j = i;
		while (j < table->n_rows &&
		       ((table->base + table->rows[j].pc) >> EMBER_CHUNK_SHIFT) == chunk)
			j++;
		/* a leading copy of the rule in force at the chunk's first byte */
		bool lead = i > 0 && vaddr > chunk_start;
		uint32_t n = (uint32_t)(j - i) + (lead ? 1 : 0);
		uint32_t count = (n + 1) / 2, shard, first;
		rc = alloc_rows(t, count, &shard, &first);
		if (rc)
			break;
		uint64_t *elems = t->no_mmap ? t->scratch : t->shards[shard].elems + first;
		uint32_t *dst = (uint32_t *)elems;
		uint32_t k = 0;
		if (lead)
			dst[k++] = EMBER_PACK_ROW(0, rule_id(t, &table->rows[i - 1]));
		for (size_t r = i; r < j; r++) {
			uint64_t pc = table->base + table->rows[r].pc - chunk_start;
			dst[k++] = EMBER_PACK_ROW(pc, rule_id(t, &table->rows[r]));
		}
		if (k & 1)
			dst[k] = EMBER_PACKED_NONE; /* x86_64 is little-endian: low half first */
		if (t->no_mmap && (rc = write_elems(&t->shards[shard], first, elems, count))) {
			free_rows(t, shard, first, count);
			break;
		}
		struct ember_index_key key = {.exe_id = f->id, .chunk = chunk};
		struct ember_index_value v = {.shard = shard, .first = first, .count = count};
		/* chunks are few (one per 64 KiB of code): grow one at a time */
		struct chunk *nc = realloc(f->chunks, (f->n_chunks + 1) * sizeof(*nc));
		if (!nc) {
			free_rows(t, shard, first, count);
			rc = -ENOMEM;
			break;
		}
		f->chunks = nc;
		f->chunks[f->n_chunks++] = (struct chunk){chunk, shard, first, count};
		t->stats.table_bytes += CHUNK_BYTES(count);
		f->rows += n;
		t->stats.rows += n;
		if (bpf_map_update_elem(t->maps.index_fd, &key, &v, BPF_ANY)) {
			rc = -errno;
			break;
		}
		i = j;
	}
	if (rc)
		release_chunks(t, f);
	return rc;
}

/* Append a row unless it repeats the previous rule. */
static int push_row(struct ember_unwind_table *t, size_t *cap, struct ember_unwind_row row)
{
	if (t->n_rows) {
		const struct ember_unwind_row *prev = &t->rows[t->n_rows - 1];
		if (prev->kind == row.kind && prev->cfa_offset == row.cfa_offset &&
		    prev->rbp_offset == row.rbp_offset)
			return 0;
	}
	if (ember_array_grow((void **)&t->rows, cap, t->n_rows + 1, sizeof(row)))
		return -ENOMEM;
	t->rows[t->n_rows++] = row;
	return 0;
}

/* Go rows that know more than any FDE: stack switches, signal frames, roots. */
static bool go_row_wins(const struct ember_unwind_row *g)
{
	unsigned cfa = EMBER_ROW_CFA(g);

	return cfa == EMBER_CFA_GO_SWITCH || cfa == EMBER_CFA_GO_SIGTRAMP ||
	       cfa == EMBER_CFA_SIGNAL || cfa == EMBER_CFA_END_OF_STACK;
}

/*
 * Overlay Go's rows (from .gopclntab) with the CFI rows of a cgo binary
 * (or Go's own .debug_frame): where an FDE covers a pc its row wins, except
 * over Go's stack-switch, sigtramp and root rows; elsewhere the Go row applies.
 * Both tables are sorted; every pc where either changes is a breakpoint.
 */
static int merge_go_rows(struct ember_unwind_table *cfi, struct ember_unwind_table *go,
			 struct ember_unwind_table *out)
{
	size_t i = 0, j = 0, cap = 0;

	memset(out, 0, sizeof(*out));
	out->base = go->base < cfi->base ? go->base : cfi->base;
	while (i < cfi->n_rows || j < go->n_rows) {
		uint64_t a = i < cfi->n_rows ? cfi->base + cfi->rows[i].pc : UINT64_MAX;
		uint64_t b = j < go->n_rows ? go->base + go->rows[j].pc : UINT64_MAX;
		uint64_t pc = a < b ? a : b;
		if (a == pc)
			i++;
		if (b == pc)
			j++;
		const struct ember_unwind_row *c = ember_unwind_find(cfi, pc);
		const struct ember_unwind_row *g = ember_unwind_find(go, pc);
		struct ember_unwind_row row;
		if (c && EMBER_ROW_CFA(c) != EMBER_CFA_GAP && !(g && go_row_wins(g)))
			row = *c;
		else if (g)
			row = *g;
		else
			row = (struct ember_unwind_row){.kind = EMBER_ROW_KIND(EMBER_CFA_GAP, 0)};
		if (pc - out->base > UINT32_MAX)
			break;
		row.pc = (uint32_t)(pc - out->base);
		if (push_row(out, &cap, row)) {
			ember_unwind_table_free(out);
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * Compile a file's table: CFI from .eh_frame/.debug_frame, and for Go
 * binaries the rows of .gopclntab (pure Go has no .eh_frame; a stripped
 * binary has no .debug_frame either).
 */
static int compile_table(const char *path, struct ember_unwind_table *table, char *err,
			 size_t errlen)
{
	struct ember_gopclntab *go = NULL;
	struct ember_unwind_table go_rows = {0}, cfi = {0};
	char goerr[256];
	int rc = ember_ehframe_compile_file(path, NULL, 0, &cfi, err, errlen);

	if (ember_gopclntab_open(path, &go, goerr, sizeof(goerr)) != 0)
		go = NULL;
	if (go && ember_gopclntab_compile_rows(go, &go_rows, goerr, sizeof(goerr)) == 0 &&
	    go_rows.n_rows) {
		if (rc == 0 && cfi.n_rows) {
			rc = merge_go_rows(&cfi, &go_rows, table);
			ember_unwind_table_free(&cfi);
			ember_unwind_table_free(&go_rows);
		} else {
			ember_unwind_table_free(&cfi);
			*table = go_rows;
			rc = 0;
		}
	} else {
		ember_unwind_table_free(&go_rows);
		*table = cfi;
	}
	ember_gopclntab_free(go);
	return rc;
}

/*
 * The entry point of a program or of the dynamic loader is the root of its
 * first thread.  Programs describe theirs (_start's CFI leaves the return
 * address undefined); glibc's ld.so has no FDE around its _start and
 * _dl_start_user at all, so every sample of a process still in the loader
 * ended in a gap.  An entry point in a gap becomes end-of-stack up to the
 * gap's end.  Returns 0 or -ENOMEM.
 */
static int root_entry_gap(struct ember_unwind_table *t, uint64_t entry)
{
	if (!entry || entry < t->base || entry - t->base > UINT32_MAX || !t->n_rows)
		return 0;
	uint32_t pc = (uint32_t)(entry - t->base);
	size_t i = 0;
	while (i < t->n_rows && t->rows[i].pc <= pc)
		i++;
	/* rows[i - 1] covers pc; it must be a gap for the rule to apply */
	if (i == 0 || EMBER_ROW_CFA(&t->rows[i - 1]) != EMBER_CFA_GAP)
		return 0;
	bool starts_here = t->rows[i - 1].pc == pc;
	struct ember_unwind_row root = {.pc = pc,
					.kind = EMBER_ROW_KIND(EMBER_CFA_END_OF_STACK,
							       EMBER_RBP_SAME)};
	if (starts_here) {
		t->rows[i - 1] = root; /* the gap ends where the next row starts */
		return 0;
	}
	struct ember_unwind_row *rows = realloc(t->rows, (t->n_rows + 1) * sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	memmove(&rows[i + 1], &rows[i], (t->n_rows - i) * sizeof(*rows));
	rows[i] = root;
	t->rows = rows;
	t->n_rows++;
	return 0;
}

/* The kernel's dev_t of a maps-file device (major:minor as user space splits it). */
static uint64_t kernel_dev(uint64_t dev)
{
	return ((dev >> 32) << 20) | (dev & 0xfffff);
}

/*
 * Publish f's table by inode (file_tables), so that a process the agent
 * has not read yet unwinds through it at once (bpf_find_vma).
 */
static void publish_file(struct ember_unwind_tables *t, struct file *f)
{
	struct ember_file_key key = {.dev = kernel_dev(f->dev), .ino = f->ino};
	struct ember_file_table v = {.exe_id = f->id};

	if (t->maps.file_tables_fd <= 0 || f->published || !f->has_table || f->ino == VDSO_INO)
		return;
	for (size_t i = 0; i < f->n_loads && v.n_loads < EMBER_FILE_LOADS; i++, v.n_loads++) {
		v.loads[v.n_loads].offset = f->loads[i].offset;
		v.loads[v.n_loads].vaddr = f->loads[i].vaddr;
		v.loads[v.n_loads].filesz = f->loads[i].filesz;
	}
	if (bpf_map_update_elem(t->maps.file_tables_fd, &key, &v, BPF_ANY) == 0)
		f->published = true;
	else
		t->stats.file_map_full++;
}

/* Load a file's table (from the cache when `cached`, else compiled).  0, or the compile error. */
static int load_table(struct ember_unwind_tables *t, struct file *f, const char *path,
		      bool cached)
{
	struct ember_unwind_table table;
	char err[256], key_buf[CACHE_KEY_MAX];
	size_t id_len = 0;
	const char *key = NULL;

	if (cached && t->cache_dir && cache_key(path, key_buf, sizeof(key_buf), &id_len) == 0)
		key = key_buf;
	int rc = cache_read(t, key, &table);
	if (key && cache_collides(t, key, id_len)) {
		t->stats.build_id_collisions++;
		ember_warn_once(f->path,
				"unwind tables: %s has the build-id of a table cached from other "
				"contents (a stripped copy, or a copied build-id); its own is used",
				f->path);
	}

	if (rc == 0) {
		t->stats.cache_hits++;
	} else {
		int64_t t0 = ember_monotonic_ns();
		rc = compile_table(path, &table, err, sizeof(err));
		t->stats.compile_ns += (uint64_t)(ember_monotonic_ns() - t0);
		t->stats.compiles++;
		if (rc) {
			t->stats.failures++;
			ember_warn_once(f->path, "no unwind table for %s (frame pointers used): %s",
					f->path, err);
			return rc;
		}
		if (table.n_rows)
			cache_write(t, key, &table);
	}
	if (table.n_rows && root_entry_gap(&table, f->entry))
		ember_debug("%s: out of memory marking the entry point", f->path);
	if (table.n_rows) {
		rc = place_table(t, f, &table);
		if (rc == -ENOSPC) {
			t->stats.budget_exhausted++;
			ember_warn_once("unwind-budget",
					"unwind table budget (%zu MiB) spent: %s and later files "
					"are unwound by frame pointer",
					t->budget >> 20, f->path);
		} else if (rc) {
			ember_warn_once(f->path, "cannot place the unwind table of %s: %s", f->path,
					strerror(-rc));
		}
		f->has_table = rc == 0;
		publish_file(t, f);
	}
	ember_unwind_table_free(&table);
	return 0;
}

/* A new, empty file entry with a fresh id, indexed (NULL on OOM). */
static struct file *new_file(struct ember_unwind_tables *t, uint64_t dev, uint64_t ino,
			     const char *path)
{
	char *copy = strdup(path);

	if (!copy ||
	    ember_array_grow((void **)&t->files, &t->cap_files, t->n_files + 1, sizeof(*t->files)) ||
	    ember_pidtab_set(&t->file_index, t->next_id, (uint32_t)t->n_files)) {
		free(copy);
		return NULL;
	}
	struct file *f = &t->files[t->n_files++];
	memset(f, 0, sizeof(*f));
	f->dev = dev;
	f->ino = ino;
	f->id = t->next_id++;
	f->path = copy;
	return f;
}

/* Remove a file entry (its rows already released), moving the last one into its place. */
static void remove_file(struct ember_unwind_tables *t, struct file *f)
{
	size_t pos = (size_t)(f - t->files);

	ember_pidtab_del(&t->file_index, f->id);
	free(f->chunks);
	free(f->path);
	if (pos != t->n_files - 1) {
		*f = t->files[t->n_files - 1];
		ember_pidtab_set(&t->file_index, f->id, (uint32_t)pos);
	}
	t->n_files--;
}

/*
 * Open the file behind mapping e of pid, through the process (map_files
 * works for deleted files and other mount namespaces, root for the
 * process's own view of the path).  The inode must be the mapped one.
 */
static int open_mapped(uint32_t pid, const struct ember_map_entry *e)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%u/map_files/%llx-%llx", pid,
		 (unsigned long long)e->start, (unsigned long long)e->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/proc/%u/root%s", pid, e->path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		/*
		 * The process is exiting (its map_files and root go first): the
		 * same file by the path the agent sees, if dev and inode match.
		 */
		int saved = errno;
		fd = open(e->path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) || (uint64_t)st.st_ino != e->inode ||
				major(st.st_dev) != e->dev_major || minor(st.st_dev) != e->dev_minor)) {
			close(fd);
			fd = -1;
		}
		if (fd < 0)
			return -saved;
		return fd;
	}
	if (fstat(fd, &st) || (uint64_t)st.st_ino != e->inode) {
		close(fd);
		return -ESTALE; /* the path names another file now */
	}
	return fd;
}

/*
 * A Go binary: tell the unwinder where its runtime keeps g, m and the saved
 * registers, so it can cross runtime.systemstack & co (goruntime.c).
 */
static void load_go_runtime(struct ember_unwind_tables *t, struct file *f, const char *path)
{
	struct ember_gopclntab *go;
	struct ember_go_runtime rt;
	enum ember_go_runtime_source source;
	char err[256];

	if (t->maps.go_runtimes_fd <= 0 || ember_gopclntab_open(path, &go, err, sizeof(err)))
		return;
	if (ember_gopclntab_runtime(go, path, &rt, &source) == 0 &&
	    bpf_map_update_elem(t->maps.go_runtimes_fd, &f->id, &rt, BPF_ANY) == 0) {
		f->go_runtime = true;
		t->stats.go_runtimes++;
		ember_debug("%s: Go runtime offsets from %s: tls_g %d g.m %u g.sched.sp %u "
			    "m.g0 %u m.curg %u m.vdsoSP %u m.vdsoPC %u",
			    f->path, source == EMBER_GO_RUNTIME_DWARF ? "DWARF" : "code", rt.tls_g,
			    rt.g_m, rt.g_sched_sp, rt.m_g0, rt.m_curg, rt.m_vdso_sp, rt.m_vdso_pc);
	} else {
		t->stats.go_runtime_missing++;
		ember_debug("%s: no Go runtime offsets: its stack switches end the walk", f->path);
	}
	ember_gopclntab_free(go);
}

/*
 * Read f (mapped by pid as e): ELF facts, then its table.  On failure f is
 * marked for a retry: at once when pid exited before the file could be
 * opened (a race, counted as vanished), else after a backoff.
 */
static void read_file(struct ember_unwind_tables *t, struct file *f, uint32_t pid,
		      const struct ember_map_entry *e, int64_t now)
{
	char path[64], build_id[129];
	int fd = open_mapped(pid, e), rc;

	if (fd < 0 && !ember_proc_has_mm(pid)) {
		t->stats.vanished++;
		ember_debug("cannot open %s: pid %u exited meanwhile; the next process mapping it "
			    "reads it", f->path, pid);
		f->failed = true;
		f->retry_ns = 0;
		return;
	}
	if (fd < 0) {
		rc = fd;
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		f->n_loads = 0;
		rc = read_elf_facts(path, f, build_id, sizeof(build_id));
		if (rc == 0)
			rc = load_table(t, f, path, true);
		else
			t->stats.failures++;
		if (rc == 0 && f->has_table)
			load_go_runtime(t, f, path);
		close(fd);
	}
	if (rc == 0) {
		f->failed = false;
		f->failures = 0;
		if (f->has_table)
			t->stats.files++;
		return;
	}
	if (fd < 0 && !ember_proc_alive(pid)) {
		/* it exited while being read: a race, not the user's business */
		t->stats.vanished++;
		ember_debug("cannot open %s: pid %u exited meanwhile (%s); read again when mapped",
			    f->path, pid, strerror(-rc));
		f->failed = true;
		f->retry_ns = 0;
		return;
	}
	int64_t backoff = RETRY_FIRST_NS << (f->failures < 10 ? f->failures : 10);
	f->failed = true;
	f->failures++;
	f->retry_ns = now + (backoff < RETRY_MAX_NS ? backoff : RETRY_MAX_NS);
	if (fd < 0)
		t->stats.failures++;
	ember_warn_once(f->path, "cannot read ELF %s (pid %u): %s; frame pointers used until a "
			"retry succeeds", f->path, pid, strerror(-rc));
}


static struct file *get_file(struct ember_unwind_tables *t, uint32_t pid,
			     const struct ember_map_entry *e, int64_t now)
{
	uint64_t dev = ((uint64_t)e->dev_major << 32) | e->dev_minor;
	struct file *f = find_file(t, dev, e->inode);

	if (f) {
		if (f->failed && now >= f->retry_ns) {
			t->stats.retries++;
			read_file(t, f, pid, e, now);
		}
		return f;
	}
	f = new_file(t, dev, e->inode, e->path);
	if (f)
		read_file(t, f, pid, e, now);
	return f;
}

/*
 * The vDSO has CFI but no file: every process on this kernel maps the same
 * image as the agent, so its table is compiled from the agent's own copy
 * (ember_vdso_memfd).  Known as (dev 0, ino VDSO_INO) among the files.
 */

static struct file *get_vdso(struct ember_unwind_tables *t)
{
	struct file *f = find_file(t, 0, VDSO_INO);
	char path[64], build_id[129];
	size_t size;

	if (f)
		return f;
	int fd = ember_vdso_memfd(&size);
	if (fd < 0)
		return NULL;
	f = new_file(t, 0, VDSO_INO, "[vdso]");
	if (!f) {
		close(fd);
		return NULL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (read_elf_facts(path, f, build_id, sizeof(build_id)) == 0) {
		load_table(t, f, path, false); /* no disk cache: the image is at hand */
		if (f->has_table)
			t->stats.files++;
	}
	close(fd);
	return f;
}

/* ---- processes -------------------------------------------------------------------- */

static struct proc *find_proc(struct ember_unwind_tables *t, uint32_t pid)
{
	uint32_t i;

	return ember_pidtab_get(&t->proc_index, pid, &i) ? &t->procs[i] : NULL;
}

/* Free what f holds in the maps and forget it. */
static void free_file(struct ember_unwind_tables *t, struct file *f)
{
	if (f->published) {
		struct ember_file_key key = {.dev = kernel_dev(f->dev), .ino = f->ino};
		bpf_map_delete_elem(t->maps.file_tables_fd, &key);
	}
	if (f->has_table) {
		release_chunks(t, f);
		t->stats.files--;
		t->stats.reclaimed++;
	}
	if (f->go_runtime) {
		bpf_map_delete_elem(t->maps.go_runtimes_fd, &f->id);
		t->stats.go_runtimes--;
	}
	if (f->idle_ns)
		t->stats.idle_files--;
	remove_file(t, f);
}

/*
 * Drop p's references.  A file no process maps any more keeps its table
 * for IDLE_KEEP_NS when it has one: the next run of a short-lived program
 * (a compiler, a test, a CLI tool) is unwound with it from its first sample.
 */
static void drop_refs(struct ember_unwind_tables *t, struct proc *p)
{
	int64_t now = ember_monotonic_ns();

	for (size_t i = 0; i < p->n_files; i++) {
		uint32_t pos;
		if (!ember_pidtab_get(&t->file_index, p->file_ids[i], &pos))
			continue;
		struct file *f = &t->files[pos];
		if (--f->refs > 0)
			continue;
		if (f->published) {
			f->idle_ns = now;
			t->stats.idle_files++;
			continue;
		}
		free_file(t, f);
	}
	free(p->file_ids);
	p->file_ids = NULL;
	p->n_files = 0;
}

/* Free the tables of files idle for IDLE_KEEP_NS. */
static void expire_idle_files(struct ember_unwind_tables *t, int64_t now_ns)
{
	if (!t->stats.idle_files)
		return; /* the common case: no walk over every file each second */
	for (size_t i = 0; i < t->n_files;) {
		struct file *f = &t->files[i];
		if (f->refs == 0 && f->idle_ns && now_ns - f->idle_ns >= IDLE_KEEP_NS) {
			t->stats.idle_expired++;
			free_file(t, f); /* moves the last file here */
			continue;
		}
		i++;
	}
}

/* Forget p: its map entry, its file references, its slot. */
static void remove_proc(struct ember_unwind_tables *t, struct proc *p)
{
	size_t pos = (size_t)(p - t->procs);
	uint32_t pid = p->pid;

	bpf_map_delete_elem(t->maps.procs_fd, &pid);
	drop_refs(t, p);
	ember_pidtab_del(&t->proc_index, pid);
	if (pos != t->n_procs - 1) {
		*p = t->procs[t->n_procs - 1];
		ember_pidtab_set(&t->proc_index, p->pid, (uint32_t)pos);
	}
	t->n_procs--;
	t->stats.processes--;
}

/* Make room: evict the process least recently sampled or loaded (never `keep`). */
static void evict_lru(struct ember_unwind_tables *t, uint32_t keep)
{
	struct proc *victim = NULL;

	for (size_t i = 0; i < t->n_procs; i++) {
		struct proc *p = &t->procs[i];
		if (p->pid != keep && (!victim || p->used_ns < victim->used_ns))
			victim = p;
	}
	if (!victim)
		return;
	ember_debug("unwind tables full (%zu processes): evicting pid %u", t->max_procs,
		    victim->pid);
	remove_proc(t, victim);
	t->stats.evictions++;
}

/* Delete map entries of pids the table does not hold (there should be none). */
static void reconcile_map(struct ember_unwind_tables *t)
{
	uint32_t key, next, pos, *stale = NULL;
	size_t n = 0, cap = 0;
	uint32_t *prev = NULL;

	while (bpf_map_get_next_key(t->maps.procs_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (!ember_pidtab_get(&t->proc_index, key, &pos) &&
		    !ember_array_grow((void **)&stale, &cap, n + 1, sizeof(*stale)))
			stale[n++] = key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(t->maps.procs_fd, &stale[i]);
	t->stats.stale_entries += n;
	free(stale);
}

/* Write pid's entry, making room when the map is full. */
static int write_entry(struct ember_unwind_tables *t, uint32_t pid, const struct ember_proc *entry)
{
	for (int attempt = 0;; attempt++) {
		if (bpf_map_update_elem(t->maps.procs_fd, &pid, entry, BPF_ANY) == 0)
			return 0;
		if (errno != E2BIG || attempt == 2)
			return -errno;
		if (attempt == 0)
			reconcile_map(t);
		else
			evict_lru(t, pid);
	}
}

int ember_unwind_tables_load(struct ember_unwind_tables *t, uint32_t pid)
{
	struct ember_maps maps = {0};
	int rc = ember_maps_read_pid(pid, EMBER_MAPS_EXEC_ONLY, &maps);

	if (rc == 0)
		rc = ember_unwind_tables_load_maps(t, pid, &maps);
	else
		ember_unwind_tables_unload(t, pid);
	ember_maps_free(&maps);
	return rc;
}

int ember_unwind_tables_load_maps(struct ember_unwind_tables *t, uint32_t pid,
				  const struct ember_maps *maps_in)
{
	const struct ember_maps maps = *maps_in;
	struct ember_proc *entry = NULL;
	uint32_t *ids = NULL;
	int64_t now = ember_monotonic_ns(), retry_ns = 0;
	int rc = 0;

	if (maps.n == 0) {
		/* no memory: a zombie or a kernel thread; its exit may be past already */
		t->stats.refused_dead++;
		ember_unwind_tables_unload(t, pid);
		return -ESRCH;
	}
	entry = calloc(1, sizeof(*entry));
	ids = calloc(maps.n + 1, sizeof(*ids));
	if (!entry || !ids) {
		rc = -ENOMEM;
		goto out;
	}
	size_t n_ids = 0;
	for (size_t i = 0; i < maps.n && entry->n_mappings < EMBER_MAX_MAPPINGS; i++) {
		const struct ember_map_entry *e = &maps.entries[i];
		struct ember_mapping *m = &entry->mappings[entry->n_mappings];
		m->start = e->start;
		m->end = e->end;
		m->flags = EMBER_MAPPING_FP;
		bool vdso = !strcmp(e->path, "[vdso]");
		if (vdso || (e->inode && !ember_map_is_special(e))) {
			struct file *f = vdso ? get_vdso(t) : get_file(t, pid, e, now);
			uint64_t bias;
			if (f && f->has_table && mapping_bias(f, e, &bias)) {
				m->bias = bias;
				m->exe_id = f->id;
				m->flags = EMBER_MAPPING_TABLE;
			}
			if (f) {
				if (f->refs++ == 0 && f->idle_ns) {
					f->idle_ns = 0;
					t->stats.idle_files--;
				}
				ids[n_ids++] = f->id;
				if (f->failed && (!retry_ns || f->retry_ns < retry_ns))
					retry_ns = f->retry_ns > now ? f->retry_ns : now + RETRY_FIRST_NS;
			}
		}
		entry->n_mappings++;
	}
	/* replace the old entry's references after taking the new ones */
	struct proc *p = find_proc(t, pid);
	if (p) {
		drop_refs(t, p);
	} else {
		if (t->n_procs >= t->max_procs)
			evict_lru(t, pid);
		if (ember_array_grow((void **)&t->procs, &t->cap_procs, t->n_procs + 1,
				     sizeof(*t->procs)) ||
		    ember_pidtab_set(&t->proc_index, pid, (uint32_t)t->n_procs)) {
			struct proc taken = {.pid = pid, .file_ids = ids, .n_files = n_ids};
			drop_refs(t, &taken); /* give back the references (frees ids) */
			ids = NULL;
			rc = -ENOMEM;
			goto out;
		}
		p = &t->procs[t->n_procs++];
		memset(p, 0, sizeof(*p));
		p->pid = pid;
		t->stats.processes++;
	}
	p->file_ids = ids;
	p->n_files = n_ids;
	p->used_ns = now;
	p->retry_ns = retry_ns;
	ids = NULL;
	rc = write_entry(t, pid, entry);
	if (rc) {
		ember_warn_once("procs-full", "cannot add pid %u to the unwinder: %s", pid,
				strerror(-rc));
		ember_unwind_tables_unload(t, pid);
	} else if (!ember_proc_has_mm(pid)) {
		/* exited meanwhile, maybe before the entry existed: no exit event would come */
		t->stats.raced_exits++;
		ember_unwind_tables_unload(t, pid);
		rc = -ESRCH;
	}
out:
	free(ids);
	free(entry);
	return rc;
}

void ember_unwind_tables_unload(struct ember_unwind_tables *t, uint32_t pid)
{
	struct proc *p = find_proc(t, pid);

	if (p)
		remove_proc(t, p);
	else
		bpf_map_delete_elem(t->maps.procs_fd, &pid);
}

void ember_unwind_tables_touch(struct ember_unwind_tables *t, uint32_t pid, int64_t now_ns)
{
	struct proc *p = find_proc(t, pid);

	if (p)
		p->used_ns = now_ns;
}

void ember_unwind_tables_maintain(struct ember_unwind_tables *t, int64_t now_ns)
{
	uint32_t due[64];
	size_t n = 0;

	/* reloads change procs[]: collect the pids first */
	for (size_t i = 0; i < t->n_procs && n < sizeof(due) / sizeof(due[0]); i++)
		if (t->procs[i].retry_ns && now_ns >= t->procs[i].retry_ns)
			due[n++] = t->procs[i].pid;
	for (size_t i = 0; i < n; i++)
		ember_unwind_tables_load(t, due[i]);
	expire_idle_files(t, now_ns);
}

size_t ember_unwind_tables_map_entries(const struct ember_unwind_tables *t)
{
	return ember_bpf_map_count(t->maps.procs_fd);
}

/* ---- lifetime -------------------------------------------------------------------- */

int ember_unwind_tables_new(const struct ember_unwind_maps *maps,
			    const struct ember_unwind_tables_opts *opts,
			    struct ember_unwind_tables **out)
{
	struct ember_unwind_tables *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	elf_version(EV_CURRENT);
	t->maps = *maps;
	t->budget = opts && opts->budget_bytes ? opts->budget_bytes : DEFAULT_BUDGET;
	if (t->budget < SHARD_BYTES)
		t->budget = SHARD_BYTES;
	t->next_id = 1;
	t->max_procs = maps->procs_max ? maps->procs_max : DEFAULT_MAX_PROCS;
	t->stats.max_processes = t->max_procs;
	if (opts && opts->cache_dir && opts->cache_dir[0]) {
		t->cache_dir = strdup(opts->cache_dir);
		for (char *p = t->cache_dir ? t->cache_dir + 1 : NULL; p && *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			mkdir(t->cache_dir, 0755);
			*p = '/';
		}
		if (t->cache_dir && mkdir(t->cache_dir, 0700) && errno != EEXIST) {
			ember_warn("cannot create the unwind cache %s (%s): tables are not cached",
				   t->cache_dir, strerror(errno));
			free(t->cache_dir);
			t->cache_dir = NULL;
		}
		if (t->cache_dir && ember_dir_names_init(&t->cache_names, t->cache_dir)) {
			free(t->cache_dir);
			free(t);
			return -ENOMEM;
		}
	}
	t->rule_slots = calloc(RULE_SLOTS, sizeof(*t->rule_slots));
	if (!t->rule_slots) {
		ember_dir_names_free(&t->cache_names);
		free(t->cache_dir);
		free(t);
		return -ENOMEM;
	}
	/* rule 0: "unsupported", what rows get when the table is full */
	struct ember_unwind_row unsupported = {.kind = EMBER_ROW_KIND(EMBER_CFA_UNSUPPORTED, 0)};
	rule_id(t, &unsupported);
	/* shard 0 is the one declared in the BPF object, already in slot 0 */
	t->no_mmap = opts && opts->no_mmap;
	if (t->no_mmap && !(t->scratch = malloc(SHARD_BYTES)))
		rc = -ENOMEM;
	else
		rc = shard_init(&t->shards[0], maps->shard0_fd, t->no_mmap);
	if (rc) {
		free(t->rule_slots);
		ember_dir_names_free(&t->cache_names);
		free(t->cache_dir);
		free(t->scratch);
		free(t);
		return rc;
	}
	t->shards[0].borrowed = true;
	t->n_shards = 1;
	t->stats.shards = 1;
	*out = t;
	return 0;
}

void ember_unwind_tables_free(struct ember_unwind_tables *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_procs; i++)
		free(t->procs[i].file_ids);
	for (size_t i = 0; i < t->n_files; i++) {
		free(t->files[i].chunks);
		free(t->files[i].path);
	}
	for (size_t s = 0; s < t->n_shards; s++) {
		if (t->shards[s].elems)
			munmap(t->shards[s].elems, SHARD_BYTES);
		free(t->shards[s].free);
		if (!t->shards[s].borrowed)
			close(t->shards[s].fd);
	}
	free(t->procs);
	free(t->files);
	ember_pidtab_free(&t->proc_index);
	ember_pidtab_free(&t->file_index);
	free(t->rule_slots);
	free(t->cache_dir);
	ember_dir_names_free(&t->cache_names);
	free(t->scratch);
	free(t);
}

void ember_unwind_tables_stats(const struct ember_unwind_tables *t,
			       struct ember_unwind_tables_stats *st)
{
	/*
	 * Plain counters only: this runs on the HTTP thread while the agent
	 * thread changes the tables (a slightly stale figure is fine, walking
	 * arrays being reallocated is not).
	 */
	*st = t->stats;
	st->shard_bytes = t->n_shards * SHARD_BYTES;
	st->rules = t->n_rules;
	st->cache_dir_reads = t->cache_names.reads;
	/* what the rows occupy: their elements, index entries and the rules */
	st->table_bytes = t->stats.table_bytes + st->rules * sizeof(uint64_t);
}
