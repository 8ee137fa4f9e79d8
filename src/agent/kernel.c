/*
 * kernel.c - find the BTF for CO-RE, probe the features, record hooks and fallbacks.
 *
 * BTF that is not the kernel's own reaches libbpf as a path
 * (btf_custom_path).  Archive entries are decompressed into a memfd and
 * passed as /proc/self/fd/N, so nothing is written to disk; each is parsed
 * with btf__new() first, so a corrupt entry is reported as such and not as
 * a relocation failure later.
 *
 * An archive directory (--btf-archive) records the hash of the BPF objects
 * its entries were reduced against; min_core_btf output only holds the
 * types those objects use, so an entry made for other objects is refused
 * with the command that regenerates it.  The embedded archive is made by
 * the same build as the objects and cannot be stale.
 */
#include "agent/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/btf_archive.h"
#include "agent/btf_archive_embedded.h"
#include "core/log.h"
#include "core/strbuf.h"

#define MAX_NOTES 32
#define FAMILY_LEN 16
#define NOTE_LEN 160
#define INDEX_MAX (4u << 20)
#define ADD_HINT                                                                            \
	"to add it, run `make btf-archive BTF=FILE` with this kernel's BTF (a vmlinux with "  \
	"DWARF, e.g. from its -dbg package, or a BTFHub .btf) and rebuild, or pass --btf FILE " \
	"(see btf-archive/README.md)"

struct note {
	char family[FAMILY_LEN];
	char text[NOTE_LEN];
	int missing; /* fallbacks: the feature; hooks: -1 */
	uint64_t count;
};

struct ember_kernel {
	struct utsname uts;
	struct ember_kfeatures kf;
	enum ember_btf_source source;
	char btf_from[PATH_MAX + 64]; /* what the BTF is: a path, an archive entry */
	char btf_path[PATH_MAX];      /* given to libbpf, "" for the kernel's own */
	size_t btf_bytes;
	int memfd;
	struct bpf_object_open_opts open_opts;
	pthread_mutex_t lock;
	struct note hooks[MAX_NOTES], fallbacks[MAX_NOTES];
	size_t n_hooks, n_fallbacks;
	uint64_t fallbacks_total;
};

/* ---- installing a BTF blob ---------------------------------------------------- */

static int install_btf(struct ember_kernel *k, const void *raw, size_t len, const char *what,
		       char *err, size_t errlen)
{
	struct btf *btf = btf__new(raw, (__u32)len);
	if (!btf) {
		int rc = -errno;
		snprintf(err, errlen, "%s: not valid BTF: %s", what, strerror(errno));
		return rc ? rc : -EINVAL;
	}
	btf__free(btf);
	int fd = memfd_create("ember-btf", MFD_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: memfd_create: %s", what, strerror(errno));
		return -errno;
	}
	const char *p = raw;
	size_t left = len;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n <= 0) {
			int rc = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "%s: writing the memfd: %s", what, strerror(-rc));
			close(fd);
			return rc;
		}
		p += n;
		left -= (size_t)n;
	}
	k->memfd = fd;
	k->btf_bytes = len;
	snprintf(k->btf_path, sizeof(k->btf_path), "/proc/self/fd/%d", fd);
	return 0;
}

/* Read a whole file of at most max bytes (+1 NUL). */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		int rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		close(fd);
		return rc;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

static int install_entry(struct ember_kernel *k, const struct ember_btf_entry *e, const void *z,
			 size_t zlen, const char *what, char *err, size_t errlen)
{
	char why[256];
	void *raw;
	size_t len;
	int rc = ember_btf_decompress(z, zlen, e->raw_size, &raw, &len, why, sizeof(why));

	if (rc) {
		snprintf(err, errlen, "%s: %s", what, why);
		return rc;
	}
	rc = install_btf(k, raw, len, what, err, errlen);
	free(raw);
	if (rc == 0)
		snprintf(k->btf_from, sizeof(k->btf_from), "%s (%zu bytes of BTF, %zu zstd; from %s)",
			 what, len, zlen, e->origin);
	return rc;
}

static bool is_zstd(const char *path)
{
	unsigned char m[4] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	ssize_t n = read(fd, m, sizeof(m));
	close(fd);
	return n == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd;
}

/* --btf FILE: raw BTF or an ELF with .BTF as is; zstd'ed either, decompressed. */
static int use_btf_file(struct ember_kernel *k, const char *path, char *err, size_t errlen)
{
	int rc;

	k->source = EMBER_BTF_FILE;
	if (is_zstd(path)) {
		char *z;
		size_t zlen;
		if ((rc = read_file(path, EMBER_BTF_MAX_RAW, &z, &zlen))) {
			snprintf(err, errlen, "--btf %s: %s", path, strerror(-rc));
			return rc;
		}
		struct ember_btf_entry e = {.origin = "zstd file"};
		char what[PATH_MAX + 8];
		snprintf(what, sizeof(what), "--btf %s", path);
		rc = install_entry(k, &e, z, zlen, what, err, errlen);
		free(z);
		return rc;
	}
	struct btf *btf = btf__parse(path, NULL);
	if (!btf) {
		rc = -errno;
		snprintf(err, errlen, "--btf %s: neither raw BTF nor an ELF file with .BTF: %s", path,
			 strerror(errno));
		return rc ? rc : -EINVAL;
	}
	btf__free(btf);
	snprintf(k->btf_path, sizeof(k->btf_path), "%s", path);
	snprintf(k->btf_from, sizeof(k->btf_from), "%s", path);
	return 0;
}

/*
 * The entry for this kernel in --btf-archive DIR.  Returns 0 when used,
 * -ENOENT when DIR has none (note says why), other errors with err set.
 */
static int use_archive_dir(struct ember_kernel *k, const char *dir, char *note, size_t notelen,
			   char *err, size_t errlen)
{
	struct ember_btf_archive a;
	char path[PATH_MAX], why[256];
	char *text;
	size_t len;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/index", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	if ((rc = read_file(path, INDEX_MAX, &text, &len))) {
		snprintf(err, errlen, "--btf-archive %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = ember_btf_archive_parse(text, len, &a, why, sizeof(why));
	free(text);
	if (rc) {
		snprintf(err, errlen, "--btf-archive %s: %s", path, why);
		return rc;
	}
	const struct ember_btf_entry *other;
	const struct ember_btf_entry *e = ember_btf_archive_find(
		a.entries, a.n_entries, k->uts.release, k->uts.version, &other);
	if (!e) {
		if (other)
			snprintf(note, notelen, "; %s has %s only as build '%s'", dir, other->release,
				 other->version);
		else
			snprintf(note, notelen, "; %s has %zu kernels, not this one", dir, a.n_entries);
		ember_btf_archive_free(&a);
		return -ENOENT;
	}
	if (strcmp(a.objects, ember_btf_objects_hash)) {
		snprintf(err, errlen,
			 "--btf-archive %s: the entry for %s was reduced against other BPF objects "
			 "(archive objects %.12s, this ember %.12s) and may lack types they use; "
			 "regenerate it with `make btf-archive BTF_ARCHIVE_OUT=%s` from this build",
			 dir, k->uts.release, a.objects, ember_btf_objects_hash, dir);
		ember_btf_archive_free(&a);
		return -ESTALE;
	}
	char *z;
	size_t zlen;
	snprintf(path, sizeof(path), "%s/%s", dir, e->file);
	if ((rc = read_file(path, EMBER_BTF_MAX_RAW, &z, &zlen))) {
		snprintf(err, errlen, "--btf-archive %s: %s", path, strerror(-rc));
		ember_btf_archive_free(&a);
		return rc;
	}
	rc = install_entry(k, e, z, zlen, path, err, errlen);
	free(z);
	ember_btf_archive_free(&a);
	return rc;
}

static int use_archive(struct ember_kernel *k, const struct ember_kernel_opts *o, char *err,
		       size_t errlen)
{
	char note[256] = "";
	int rc;

	k->source = EMBER_BTF_ARCHIVE;
	if (o->btf_archive) {
		rc = use_archive_dir(k, o->btf_archive, note, sizeof(note), err, errlen);
		if (rc != -ENOENT)
			return rc;
	}
	const struct ember_btf_entry *other;
	const struct ember_btf_entry *e = ember_btf_archive_find(
		ember_btf_embedded, ember_btf_embedded_count, k->uts.release, k->uts.version, &other);
	if (e)
		return install_entry(k, e, e->data, e->size, "the archive built into ember", err,
				     errlen);
	snprintf(err, errlen,
		 "kernel %s (%s) has no BTF (%s) and no entry in the BTF archive "
		 "(embedded: %zu kernels%s%s%s%s); %s",
		 k->uts.release, k->uts.version, k->kf.detail[EMBER_KF_KERNEL_BTF],
		 ember_btf_embedded_count, other ? ", this release only as build '" : "",
		 other ? other->version : "", other ? "'" : "", note, ADD_HINT);
	return -ENOENT;
}

/* ---- opening ------------------------------------------------------------------ */

/* libbpf's warnings with -v, its debug log with -v -v (ember_log_libbpf); else quiet. */
static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && ember_log_get_level() >= EMBER_LOG_DEBUG)
		return vfprintf(stderr, fmt, ap);
	if (level == LIBBPF_DEBUG && ember_log_libbpf())
		return vfprintf(stderr, fmt, ap);
	return 0;
}

int ember_kernel_open(const struct ember_kernel_opts *opts, struct ember_kernel **out,
		      char *err, size_t errlen)
{
	struct ember_kernel_opts none = {0};
	struct ember_kernel *k = calloc(1, sizeof(*k));
	int rc = 0;

	if (!opts)
		opts = &none;
	if (!k)
		return -ENOMEM;
	libbpf_set_print(libbpf_quiet);
	k->memfd = -1;
	pthread_mutex_init(&k->lock, NULL);
	uname(&k->uts);
	ember_kfeatures_probe(&k->kf, opts->disabled);

	if (opts->btf_file) {
		rc = use_btf_file(k, opts->btf_file, err, errlen);
	} else if (k->kf.have[EMBER_KF_KERNEL_BTF]) {
		k->source = EMBER_BTF_KERNEL;
		snprintf(k->btf_from, sizeof(k->btf_from), "/sys/kernel/btf/vmlinux");
	} else {
		rc = use_archive(k, opts, err, errlen);
	}
	if (rc) {
		ember_kernel_close(k);
		return rc;
	}
	k->open_opts.sz = sizeof(k->open_opts);
	k->open_opts.btf_custom_path = k->btf_path[0] ? k->btf_path : NULL;
	*out = k;
	return 0;
}

void ember_kernel_close(struct ember_kernel *k)
{
	if (!k)
		return;
	if (k->memfd >= 0)
		close(k->memfd);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

struct ember_kernel *ember_kernel_default(char *err, size_t errlen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct ember_kernel *k;
	struct ember_kernel_opts o = {.btf_file = getenv("EMBER_BTF"),
				      .btf_archive = getenv("EMBER_BTF_ARCHIVE")};
	const char *off = getenv("EMBER_NO_FEATURE");

	pthread_mutex_lock(&lock);
	if (!k && off && ember_kfeatures_parse_list(off, &o.disabled, err, errlen)) {
		pthread_mutex_unlock(&lock);
		return NULL;
	}
	if (!k && ember_kernel_open(&o, &k, err, errlen))
		k = NULL;
	pthread_mutex_unlock(&lock);
	return k;
}

const struct ember_kfeatures *ember_kernel_features(const struct ember_kernel *k) { return &k->kf; }

bool ember_kernel_has(const struct ember_kernel *k, enum ember_kfeature f)
{
	return f < EMBER_KF__COUNT && k->kf.have[f];
}

enum ember_btf_source ember_kernel_btf_source(const struct ember_kernel *k) { return k->source; }

const char *ember_kernel_release(const struct ember_kernel *k) { return k->uts.release; }

const struct bpf_object_open_opts *ember_kernel_open_opts(const struct ember_kernel *k)
{
	return &k->open_opts;
}

static const char *source_name(enum ember_btf_source s)
{
	return s == EMBER_BTF_KERNEL ? "kernel" : s == EMBER_BTF_FILE ? "file" : "archive";
}

void ember_kernel_load_error(const struct ember_kernel *k, const char *what, int rc, char *err,
			     size_t errlen)
{
	if ((rc == -EPERM || rc == -EACCES) && geteuid() != 0)
		snprintf(err, errlen,
			 "cannot load the BPF %s: %s: run ember as root (or grant CAP_BPF, "
			 "CAP_PERFMON and CAP_SYS_RESOURCE)",
			 what, strerror(-rc));
	else if (rc == -EPERM)
		snprintf(err, errlen,
			 "cannot load the BPF %s: %s: BPF is not permitted here "
			 "(kernel.unprivileged_bpf_disabled, lockdown or a seccomp filter?)",
			 what, strerror(-rc));
	else if (rc == -EACCES || rc == -EINVAL)
		snprintf(err, errlen,
			 "the kernel's verifier rejected the BPF %s (%s; BTF from %s; "
			 "run with -v for its log)",
			 what, strerror(-rc), k->btf_from);
	else
		snprintf(err, errlen,
			 "cannot load the BPF %s: %s (CO-RE relocations against %s BTF, %s; "
			 "run with -v -v for libbpf's log)",
			 what, strerror(-rc), source_name(k->source), k->btf_from);
}

/* ---- hooks and fallbacks ---------------------------------------------------------- */

static struct note *find_note(struct note *notes, size_t *n, const char *family, int missing)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(notes[i].family, family) && notes[i].missing == missing)
			return &notes[i];
	if (*n == MAX_NOTES)
		return NULL;
	struct note *nt = &notes[(*n)++];
	memset(nt, 0, sizeof(*nt));
	snprintf(nt->family, sizeof(nt->family), "%s", family);
	nt->missing = missing;
	return nt;
}

void ember_kernel_note_hooks(struct ember_kernel *k, const char *family, const char *hooks)
{
	pthread_mutex_lock(&k->lock);
	struct note *nt = find_note(k->hooks, &k->n_hooks, family, -1);
	if (nt) {
		snprintf(nt->text, sizeof(nt->text), "%s", hooks);
		nt->count++;
	}
	pthread_mutex_unlock(&k->lock);
}

void ember_kernel_note_fallback(struct ember_kernel *k, const char *family,
				enum ember_kfeature missing, const char *instead)
{
	pthread_mutex_lock(&k->lock);
	struct note *nt = find_note(k->fallbacks, &k->n_fallbacks, family, (int)missing);
	if (nt) { /* the table is bounded; the total counts every fallback */
		snprintf(nt->text, sizeof(nt->text), "%s", instead);
		nt->count++;
	}
	k->fallbacks_total++;
	pthread_mutex_unlock(&k->lock);
}

uint64_t ember_kernel_fallbacks(const struct ember_kernel *k)
{
	return __atomic_load_n(&k->fallbacks_total, __ATOMIC_RELAXED);
}

/* ---- .bss globals ----------------------------------------------------------------- */

uint32_t ember_kernel_bss_load(const struct ember_kernel *k, const struct bpf_map *bss,
			       const void *base, const uint32_t *field)
{
	size_t size = bpf_map__value_size(bss), off = (size_t)((const char *)field - (const char *)base);
	uint32_t zero = 0, v = 0;

	if (!k || ember_kernel_has(k, EMBER_KF_MMAP_MAPS))
		return __atomic_load_n(field, __ATOMIC_SEQ_CST);
	char *buf = calloc(1, size);
	if (buf && off + sizeof(v) <= size &&
	    bpf_map__lookup_elem(bss, &zero, sizeof(zero), buf, size, 0) == 0)
		memcpy(&v, buf + off, sizeof(v));
	else
		ember_warn_once("bss-read", "cannot read the .bss of %s: %s", bpf_map__name(bss),
				strerror(buf ? errno : ENOMEM));
	free(buf);
	return v;
}

int ember_kernel_bss_store(const struct ember_kernel *k, struct bpf_map *bss, void *base,
			   uint32_t *field, uint32_t value)
{
	size_t size = bpf_map__value_size(bss), off = (size_t)((char *)field - (char *)base);
	uint32_t zero = 0;
	int rc = 0;

	if (!k || ember_kernel_has(k, EMBER_KF_MMAP_MAPS)) {
		__atomic_store_n(field, value, __ATOMIC_SEQ_CST);
		return 0;
	}
	char *buf = calloc(1, size);
	if (!buf || off + sizeof(value) > size)
		rc = buf ? -EINVAL : -ENOMEM;
	else if (bpf_map__lookup_elem(bss, &zero, sizeof(zero), buf, size, 0))
		rc = -errno;
	if (rc == 0) {
		memcpy(buf + off, &value, sizeof(value));
		if (bpf_map__update_elem(bss, &zero, sizeof(zero), buf, size, 0))
			rc = -errno;
	}
	if (rc)
		ember_warn_once("bss-write", "cannot write the .bss of %s: %s", bpf_map__name(bss),
				strerror(-rc));
	free(buf);
	*field = value; /* the skeleton's copy agrees either way */
	return rc;
}

/* ---- reporting ------------------------------------------------------------------- */

void ember_kernel_describe(const struct ember_kernel *k, FILE *f)
{
	fprintf(f, "ember: kernel %s %s\n", k->uts.release, k->uts.version);
	fprintf(f, "ember: BTF: %s: %s\n", source_name(k->source), k->btf_from);
	fprintf(f, "ember: features:");
	for (int i = 0; i < EMBER_KF__COUNT; i++)
		fprintf(f, " %s=%s", ember_kfeature_names[i],
			k->kf.have[i] ? "yes" : k->kf.forced_off[i] ? "off" : "no");
	fprintf(f, " (probed in %.1f ms)\n", k->kf.probe_ns / 1e6);
	for (int i = 0; i < EMBER_KF__COUNT; i++)
		if (!k->kf.have[i] && !k->kf.forced_off[i])
			fprintf(f, "ember:   no %s: %s\n", ember_kfeature_names[i], k->kf.detail[i]);
}

void ember_kernel_describe_choices(const struct ember_kernel *k, FILE *f)
{
	struct ember_kernel *mk = (struct ember_kernel *)k; /* the lock only */

	pthread_mutex_lock(&mk->lock);
	for (size_t i = 0; i < k->n_hooks; i++)
		fprintf(f, "ember: hooks: %s: %s\n", k->hooks[i].family, k->hooks[i].text);
	for (size_t i = 0; i < k->n_fallbacks; i++)
		fprintf(f, "ember: fallback: %s: no %s: %s\n", k->fallbacks[i].family,
			ember_kfeature_names[k->fallbacks[i].missing], k->fallbacks[i].text);
	pthread_mutex_unlock(&mk->lock);
}

void ember_kernel_json(const struct ember_kernel *k, struct strbuf *sb)
{
	struct ember_kernel *mk = (struct ember_kernel *)k; /* the lock only */

	sb_puts(sb, "{\"release\":");
	sb_json_str(sb, k->uts.release);
	sb_puts(sb, ",\"version\":");
	sb_json_str(sb, k->uts.version);
	sb_printf(sb, ",\"btf\":{\"source\":\"%s\",\"from\":", source_name(k->source));
	sb_json_str(sb, k->btf_from);
	sb_printf(sb, ",\"bytes\":%zu},\"features\":{", k->btf_bytes);
	for (int i = 0; i < EMBER_KF__COUNT; i++)
		sb_printf(sb, "%s\"%s\":%s", i ? "," : "", ember_kfeature_names[i],
			  k->kf.have[i] ? "true" : "false");
	sb_puts(sb, "},\"absent\":{");
	for (int i = 0, n = 0; i < EMBER_KF__COUNT; i++) {
		if (k->kf.have[i])
			continue;
		sb_printf(sb, "%s\"%s\":", n++ ? "," : "", ember_kfeature_names[i]);
		sb_json_str(sb, k->kf.detail[i]);
	}
	sb_printf(sb, "},\"probe_ms\":%.2f,\"hooks\":{", k->kf.probe_ns / 1e6);
	pthread_mutex_lock(&mk->lock);
	for (size_t i = 0; i < k->n_hooks; i++) {
		sb_printf(sb, "%s", i ? "," : "");
		sb_json_str(sb, k->hooks[i].family);
		sb_putc(sb, ':');
		sb_json_str(sb, k->hooks[i].text);
	}
	sb_puts(sb, "},\"fallbacks\":[");
	for (size_t i = 0; i < k->n_fallbacks; i++) {
		const struct note *nt = &k->fallbacks[i];
		sb_printf(sb, "%s{\"family\":", i ? "," : "");
		sb_json_str(sb, nt->family);
		sb_printf(sb, ",\"missing\":\"%s\",\"using\":", ember_kfeature_names[nt->missing]);
		sb_json_str(sb, nt->text);
		sb_printf(sb, ",\"count\":%llu}", (unsigned long long)nt->count);
	}
	sb_printf(sb, "],\"fallbacks_total\":%llu}", (unsigned long long)k->fallbacks_total);
	pthread_mutex_unlock(&mk->lock);
}
