/*
 * net_bpf.c - the user half of bpf/net/net.bpf.c: choosing hooks, loading, draining.
 *
 * Choosing: one BPF object holds every variant of every hook; before load,
 * bpf_program__set_autoload() keeps only the chosen ones, so a kernel
 * never sees (or verifies) a program whose attach point it lacks.  The
 * send/receive family is tried in the order of net_hooks.h (or only the
 * one asked for); a family that fails to load or attach is torn down and
 * the next one tried.  Connection-event hooks other than the state change
 * are optional: one that will not attach (an old kernel without
 * tcp_destroy_sock, say) is reported and skipped.
 *
 * Map sizes: the per-CPU counters cost (key + value x CPUs) per entry and
 * per generation, so their entry count comes from a memory budget
 * (COUNTS_BUDGET) divided by the CPU count, clamped to [1024, 8192]: ~2.5
 * MiB on 2 CPUs, ~8 MiB on 64.  tests/bench/net.sh measures the total.
 *
 * Draining reads the old generation with one BPF_MAP_LOOKUP_AND_DELETE_BATCH
 * call per map (5.6+), or key by key where batches are not supported.
 * Nothing writes the old generation once the grace period is over, so
 * neither way can lose or misplace an update.
 */
#include "net/net_bpf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/kernel.h"
#include "core/bpf_counters.h"
#include "core/bpf_sync.h"
#include "core/log.h"
#include "net.skel.h"

#define DEFAULT_SOCKETS 16384
#define COUNTS_BUDGET (8u << 20)
#define COUNTS_MIN 1024
#define COUNTS_MAX 8192
#define HTAB_ELEM_OVERHEAD 64 /* struct htab_elem and the per-CPU pointer, roughly */
#define MAX_LINKS 16
#define ENOTSUPP_KERNEL 524

struct ember_net_bpf {
	struct net *skel;
	struct ember_kernel *kernel; /* NULL: the running kernel, every feature */
	struct bpf_link *links[MAX_LINKS];
	int n_links;
	struct bpf_program *io_progs[3];
	int ncpus;
	struct ember_net_hook_report report;
	/* drain buffers */
	struct ember_net_key *keys;
	struct ember_net_counts *vals; /* max_counts x ncpus */
	struct ember_net_row *rows;
	struct ember_net_drop_key *dkeys;
	uint64_t *dvals; /* max_drops x ncpus */
	struct ember_net_drop_row *drows;
	uint64_t *skeys;
	struct ember_net_sock *svals;
	bool no_batch; /* the kernel refused batch operations once */
};

static void add_reason(struct ember_net_hook_report *r, const char *fmt, const char *what,
		       const char *why)
{
	size_t len = strlen(r->reasons);

	r->fallbacks++;
	if (len + 3 >= sizeof(r->reasons))
		return;
	snprintf(r->reasons + len, sizeof(r->reasons) - len, "%s", len ? "; " : "");
	len = strlen(r->reasons);
	snprintf(r->reasons + len, sizeof(r->reasons) - len, fmt, what, why);
}

static uint32_t counts_entries(int ncpus)
{
	size_t per = 2 * (HTAB_ELEM_OVERHEAD + sizeof(struct ember_net_key) +
			  sizeof(struct ember_net_counts) * (size_t)ncpus);
	size_t n = COUNTS_BUDGET / per;

	return n < COUNTS_MIN ? COUNTS_MIN : n > COUNTS_MAX ? COUNTS_MAX : (uint32_t)n;
}

static void destroy_links(struct ember_net_bpf *nb)
{
	for (int i = 0; i < nb->n_links; i++)
		bpf_link__destroy(nb->links[i]);
	nb->n_links = 0;
}

/* Attach prog; on failure returns -errno (no link kept). */
static int attach(struct ember_net_bpf *nb, struct bpf_program *prog)
{
	struct bpf_link *l;

	if (nb->n_links == MAX_LINKS)
		return -E2BIG;
	l = bpf_program__attach(prog);
	if (!l)
		return -errno;
	nb->links[nb->n_links++] = l;
	return 0;
}

/* The event hooks: tp_btf where the kernel has it, else the raw tracepoint. */
struct event_hook {
	const char *name;
	bool essential;
	struct bpf_program *tp, *raw;
	bool has_tp;
};

static void event_hooks(struct net *sk, const struct ember_net_features *f,
			struct event_hook out[5])
{
	out[0] = (struct event_hook){"inet_sock_set_state", true, sk->progs.ember_tp_set_state,
				     sk->progs.ember_raw_set_state, f->tp_state};
	out[1] = (struct event_hook){"tcp_retransmit_skb", false, sk->progs.ember_tp_retransmit,
				     sk->progs.ember_raw_retransmit, f->tp_retransmit};
	out[2] = (struct event_hook){"tcp_send_reset", false, sk->progs.ember_tp_send_reset,
				     sk->progs.ember_raw_send_reset, f->tp_send_reset};
	out[3] = (struct event_hook){"tcp_receive_reset", false, sk->progs.ember_tp_receive_reset,
				     sk->progs.ember_raw_receive_reset, f->tp_receive_reset};
	out[4] = (struct event_hook){"tcp_destroy_sock", false, sk->progs.ember_tp_destroy,
				     sk->progs.ember_raw_destroy, f->tp_destroy};
}

/*
 * Open, configure, load and attach with send/receive family io.  On
 * failure everything is torn down and *why says what failed.
 */
static int try_family(struct ember_net_bpf *nb, const struct ember_net_bpf_opts *opts,
		      const struct ember_net_features *f, enum ember_net_io io, char *why,
		      size_t whylen)
{
	struct net *sk = opts->kernel ? net__open_opts(ember_kernel_open_opts(opts->kernel))
				      : net__open();
	struct event_hook ev[5];
	int rc;

	if (!sk) {
		rc = -errno;
		snprintf(why, whylen, "%s: cannot open the BPF object: %s", ember_net_io_names[io],
			 strerror(errno));
		return rc;
	}
	struct bpf_program *fam[EMBER_NET_IO__COUNT][3] = {
		[EMBER_NET_IO_FENTRY] = {sk->progs.ember_fexit_sendmsg,
					 sk->progs.ember_fentry_cleanup_rbuf, NULL},
		[EMBER_NET_IO_KPROBE] = {sk->progs.ember_kprobe_sendmsg,
					 sk->progs.ember_kretprobe_sendmsg,
					 sk->progs.ember_kprobe_cleanup_rbuf},
		[EMBER_NET_IO_TRACEPOINT] = {sk->progs.ember_tp_send, sk->progs.ember_tp_recv, NULL},
	};
	for (int i = 0; i < EMBER_NET_IO__COUNT; i++)
		for (int j = 0; j < 3; j++)
			if (fam[i][j])
				bpf_program__set_autoload(fam[i][j], i == (int)io);
	memcpy(nb->io_progs, fam[io], sizeof(nb->io_progs));

	event_hooks(sk, f, ev);
	for (int i = 0; i < 5; i++) {
		bpf_program__set_autoload(ev[i].tp, ev[i].has_tp);
		bpf_program__set_autoload(ev[i].raw, !ev[i].has_tp);
	}
	bool drops4 = !opts->no_drops && f->kfree_skb_args >= 4;
	bool drops3 = !opts->no_drops && f->kfree_skb_args == 3;
	bpf_program__set_autoload(sk->progs.ember_tp_kfree_skb4, drops4);
	bpf_program__set_autoload(sk->progs.ember_tp_kfree_skb3, drops3);

	bpf_map__set_max_entries(sk->maps.socks, nb->report.max_sockets);
	bpf_map__set_max_entries(sk->maps.counts0, nb->report.max_counts);
	bpf_map__set_max_entries(sk->maps.counts1, nb->report.max_counts);
	nb->report.max_drops = bpf_map__max_entries(sk->maps.drops0);

	rc = net__load(sk);
	if (rc) {
		snprintf(why, whylen, "%s: the kernel refused the programs: %s",
			 ember_net_io_names[io], strerror(-rc));
		net__destroy(sk);
		return rc;
	}
	nb->skel = sk;
	for (int j = 0; j < 3; j++) {
		if (!fam[io][j])
			continue;
		rc = attach(nb, fam[io][j]);
		if (rc) {
			snprintf(why, whylen, "%s: cannot attach %s: %s", ember_net_io_names[io],
				 bpf_program__name(fam[io][j]), strerror(-rc));
			goto fail;
		}
	}
	nb->report.events = "tp_btf";
	for (int i = 0; i < 5; i++) {
		struct bpf_program *p = ev[i].has_tp ? ev[i].tp : ev[i].raw;
		if (!ev[i].has_tp)
			nb->report.events = "raw_tp";
		rc = attach(nb, p);
		if (rc && ev[i].essential) {
			snprintf(why, whylen, "cannot attach to %s: %s", ev[i].name, strerror(-rc));
			goto fail;
		}
		if (rc)
			add_reason(&nb->report, "%s: not counted (%s)", ev[i].name, strerror(-rc));
	}
	nb->report.drops = "off";
	if (drops4 || drops3) {
		rc = attach(nb, drops4 ? sk->progs.ember_tp_kfree_skb4 : sk->progs.ember_tp_kfree_skb3);
		if (rc)
			add_reason(&nb->report, "%s: drops not counted (%s)", "kfree_skb", strerror(-rc));
		else
			nb->report.drops = drops4 ? "kfree_skb(4 args)" : "kfree_skb(3 args)";
	} else if (!opts->no_drops) {
		add_reason(&nb->report, "%s: %s", "kfree_skb",
			   f->btf ? "no drop reasons on this kernel (5.17+): drops not counted"
				  : "tp_btf needs the kernel's own BTF: drops not counted");
	}
	nb->report.io = io;
	return 0;
fail:
	destroy_links(nb);
	net__destroy(sk);
	nb->skel = NULL;
	return rc ? rc : -EINVAL;
}

/*
 * What the shared kernel description (agent/kernel.h) rules out on top of
 * net's own reading of the BTF: no kernel BTF (forced off; from the archive
 * net's probe found nothing typed anyway) and no tp_btf.  Kprobes and
 * fentry are checked per family in ember_net_bpf_open (io_ruled_out).
 */
static void apply_kernel(struct ember_net_features *f, const struct ember_kernel *k)
{
	if (!ember_kernel_has(k, EMBER_KF_KERNEL_BTF))
		f->btf = false;
	if (!ember_kernel_has(k, EMBER_KF_TP_BTF)) {
		f->tp_send_recv = f->tp_state = f->tp_retransmit = false;
		f->tp_send_reset = f->tp_receive_reset = f->tp_destroy = false;
		f->kfree_skb_args = 0;
	}
}

/* The family io needs this feature; skipping it is a fallback on that feature. */
static const enum ember_kfeature io_feature[EMBER_NET_IO__COUNT] = {
	[EMBER_NET_IO_FENTRY] = EMBER_KF_FENTRY,
	[EMBER_NET_IO_KPROBE] = EMBER_KF_KPROBES,
	[EMBER_NET_IO_TRACEPOINT] = EMBER_KF_TP_BTF,
};

/*
 * Family io needs kprobes or fentry and the kernel description says they
 * are absent (forced off with --no-kprobes, --no-fentry or --no-feature,
 * or found broken by its probe): *why gets the reason.
 */
static bool io_ruled_out(const struct ember_kernel *k, enum ember_net_io io, char *why,
			 size_t whylen)
{
	enum ember_kfeature kf = io_feature[io];

	if (!k || io == EMBER_NET_IO_TRACEPOINT || ember_kernel_has(k, kf))
		return false;
	snprintf(why, whylen, "%s: %s", ember_net_io_names[io],
		 ember_kernel_features(k)->detail[kf]);
	return true;
}

/* The hooks chosen and the fallbacks taken, in the shared kernel notes. */
static void note_choice(struct ember_net_bpf *nb, const struct ember_net_bpf_opts *opts)
{
	struct ember_net_hook_report *r = &nb->report;
	char text[160];

	if (!opts->kernel)
		return;
	snprintf(text, sizeof(text), "send/receive by %s, connection events by %s, drops by %s",
		 ember_net_io_names[r->io], r->events, r->drops);
	ember_kernel_note_hooks(opts->kernel, "net", text);
	if (opts->io < 0) /* families passed over; a forced family is no fallback */
		for (int io = 0; io < (int)r->io; io++)
			ember_kernel_note_fallback(opts->kernel, "net", io_feature[io],
						   ember_net_io_names[r->io]);
	if (!ember_kernel_has(opts->kernel, EMBER_KF_MMAP_MAPS))
		ember_kernel_note_fallback(opts->kernel, "net", EMBER_KF_MMAP_MAPS,
					   "the generation flipped by map updates");
	if (strcmp(r->events, "raw_tp") == 0)
		ember_kernel_note_fallback(opts->kernel, "net", EMBER_KF_TP_BTF,
					   "raw tracepoints for connection events");
}

static int alloc_buffers(struct ember_net_bpf *nb)
{
	size_t nc = nb->report.max_counts, nd = nb->report.max_drops, ns = nb->report.max_sockets;
	size_t cpus = (size_t)nb->ncpus;

	nb->keys = calloc(nc, sizeof(*nb->keys));
	nb->vals = calloc(nc * cpus, sizeof(*nb->vals));
	nb->rows = calloc(nc, sizeof(*nb->rows));
	nb->dkeys = calloc(nd, sizeof(*nb->dkeys));
	nb->dvals = calloc(nd * cpus, sizeof(*nb->dvals));
	nb->drows = calloc(nd, sizeof(*nb->drows));
	nb->skeys = calloc(ns, sizeof(*nb->skeys));
	nb->svals = calloc(ns, sizeof(*nb->svals));
	if (!nb->keys || !nb->vals || !nb->rows || !nb->dkeys || !nb->dvals || !nb->drows ||
	    !nb->skeys || !nb->svals)
		return -ENOMEM;
	return 0;
}

int ember_net_bpf_open(const struct ember_net_bpf_opts *opts, struct ember_net_bpf **out,
		       char *err, size_t errlen)
{
	struct ember_net_features f;
	struct ember_net_bpf *nb;
	char why[256] = "";
	int rc = -ENOENT;

	*out = NULL;
	nb = calloc(1, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	nb->kernel = opts->kernel;
	nb->ncpus = libbpf_num_possible_cpus();
	if (nb->ncpus <= 0) {
		snprintf(err, errlen, "cannot count CPUs: %s", strerror(-nb->ncpus));
		free(nb);
		return -EINVAL;
	}
	nb->report.max_sockets = opts->max_sockets ? opts->max_sockets : DEFAULT_SOCKETS;
	nb->report.max_counts = opts->max_counts ? opts->max_counts : counts_entries(nb->ncpus);
	ember_net_probe_features(&f);
	if (opts->kernel)
		apply_kernel(&f, opts->kernel);

	for (int io = 0; io < EMBER_NET_IO__COUNT; io++) {
		const char *missing;
		if (opts->io >= 0 && io != opts->io)
			continue;
		if (io_ruled_out(opts->kernel, (enum ember_net_io)io, why, sizeof(why))) {
			add_reason(&nb->report, "%s%s", why, "");
			continue;
		}
		if (!ember_net_io_possible(&f, (enum ember_net_io)io, &missing)) {
			add_reason(&nb->report, "%s%s", missing, "");
			snprintf(why, sizeof(why), "%s", missing);
			continue;
		}
		rc = try_family(nb, opts, &f, (enum ember_net_io)io, why, sizeof(why));
		if (rc == 0)
			break;
		ember_debug("net: %s", why);
		add_reason(&nb->report, "%s%s", why, "");
	}
	if (!nb->skel) {
		if (opts->io >= 0)
			snprintf(err, errlen, "cannot use the %s hooks for TCP metrics: %s",
				 ember_net_io_names[opts->io], why);
		else
			snprintf(err, errlen,
				 "no hook for TCP metrics works on this kernel (last: %s); "
				 "run without them with --no-net",
				 why);
		ember_net_bpf_close(nb);
		return rc ? rc : -ENOENT;
	}
	note_choice(nb, opts);
	if (alloc_buffers(nb)) {
		snprintf(err, errlen, "net: out of memory");
		ember_net_bpf_close(nb);
		return -ENOMEM;
	}
	*out = nb;
	return 0;
}

void ember_net_bpf_close(struct ember_net_bpf *nb)
{
	if (!nb)
		return;
	destroy_links(nb);
	net__destroy(nb->skel);
	free(nb->keys);
	free(nb->vals);
	free(nb->rows);
	free(nb->dkeys);
	free(nb->dvals);
	free(nb->drows);
	free(nb->skeys);
	free(nb->svals);
	free(nb);
}

void ember_net_bpf_report(const struct ember_net_bpf *nb, struct ember_net_hook_report *r)
{
	*r = nb->report;
}

static bool batch_unsupported(int e)
{
	return e == EINVAL || e == ENOTSUP || e == ENOTSUPP_KERNEL || e == ENOSYS;
}

/*
 * Read (and, when del, delete) every entry of map fd into keys/vals
 * (value_size per CPU x cpus for a per-CPU map).  Returns the entry count
 * or -errno.
 */
static long read_map(struct ember_net_bpf *nb, int fd, size_t key_size, size_t val_size,
		     size_t max, void *keys, void *vals, bool del)
{
	long n = 0;

	if (!nb->no_batch) {
		DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, bo);
		__u32 out_batch = 0, in_batch = 0;
		bool first = true;
		for (;;) {
			__u32 count = (__u32)(max - (size_t)n);
			int rc;
			if (!count)
				return n;
			rc = del ? bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in_batch,
								  &out_batch, (char *)keys + n * key_size,
								  (char *)vals + n * val_size, &count, &bo)
				 : bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch,
							(char *)keys + n * key_size,
							(char *)vals + n * val_size, &count, &bo);
			int e = rc ? errno : 0;
			if (rc && e != ENOENT && !(n == 0 && first && batch_unsupported(e)))
				return -e;
			if (rc && e != ENOENT) {
				nb->no_batch = true; /* key by key from now on */
				break;
			}
			n += count;
			if (rc) /* ENOENT: the whole map was read */
				return n;
			in_batch = out_batch;
			first = false;
		}
	}
	/* key by key: collect the keys first, then read and delete */
	char *prev = NULL;
	while ((size_t)n < max) {
		char *next = (char *)keys + n * key_size;
		if (bpf_map_get_next_key(fd, prev, next))
			break;
		prev = next;
		n++;
	}
	long kept = 0;
	for (long i = 0; i < n; i++) {
		char *k = (char *)keys + i * key_size;
		char *v = (char *)vals + kept * val_size;
		if (bpf_map_lookup_elem(fd, k, v))
			continue;
		if (del)
			bpf_map_delete_elem(fd, k);
		if (kept != i)
			memmove((char *)keys + kept * key_size, k, key_size);
		kept++;
	}
	return kept;
}

int ember_net_bpf_drain(struct ember_net_bpf *nb, const struct ember_net_row **rows,
			size_t *n_rows, const struct ember_net_drop_row **drops, size_t *n_drops)
{
	struct net *sk = nb->skel;
	__u32 old = ember_kernel_bss_load(nb->kernel, sk->maps.bss, sk->bss, &sk->bss->active_gen) & 1;
	size_t cpus = (size_t)nb->ncpus;
	long n;

	*n_rows = *n_drops = 0;
	*rows = nb->rows;
	*drops = nb->drows;
	ember_kernel_bss_store(nb->kernel, sk->maps.bss, sk->bss, &sk->bss->active_gen, old ^ 1);
	ember_bpf_wait_for_programs();

	n = read_map(nb, bpf_map__fd(old ? sk->maps.counts1 : sk->maps.counts0),
		     sizeof(*nb->keys), sizeof(*nb->vals) * cpus, nb->report.max_counts, nb->keys,
		     nb->vals, true);
	if (n < 0)
		return (int)n;
	for (long i = 0; i < n; i++) {
		struct ember_net_row *r = &nb->rows[i];
		const struct ember_net_counts *v = &nb->vals[(size_t)i * cpus];
		uint64_t srtt = 0, srtt_n = 0;

		memset(r, 0, sizeof(*r));
		r->key = nb->keys[i];
		for (size_t c = 0; c < cpus; c++) {
			r->c.bytes_sent += v[c].bytes_sent;
			r->c.bytes_recv += v[c].bytes_recv;
			r->c.sends += v[c].sends;
			r->c.recvs += v[c].recvs;
			r->c.retrans += v[c].retrans;
			r->c.resets_sent += v[c].resets_sent;
			r->c.resets_recv += v[c].resets_recv;
			r->c.established += v[c].established;
			r->c.accepts += v[c].accepts;
			r->c.failures += v[c].failures;
			r->c.closes += v[c].closes;
			if (v[c].connect_us > r->c.connect_us)
				r->c.connect_us = v[c].connect_us;
			if (v[c].srtt_us) {
				srtt += v[c].srtt_us;
				srtt_n++;
			}
		}
		r->c.srtt_us = srtt_n ? (uint32_t)(srtt / srtt_n) : 0;
	}
	*n_rows = (size_t)n;

	n = read_map(nb, bpf_map__fd(old ? sk->maps.drops1 : sk->maps.drops0),
		     sizeof(*nb->dkeys), sizeof(*nb->dvals) * cpus, nb->report.max_drops, nb->dkeys,
		     nb->dvals, true);
	if (n < 0)
		return (int)n;
	for (long i = 0; i < n; i++) {
		nb->drows[i].key = nb->dkeys[i];
		nb->drows[i].count = 0;
		for (size_t c = 0; c < cpus; c++)
			nb->drows[i].count += nb->dvals[(size_t)i * cpus + c];
	}
	*n_drops = (size_t)n;
	return 0;
}

long ember_net_bpf_socks(struct ember_net_bpf *nb,
			 void (*fn)(uint64_t sk, const struct ember_net_sock *e, void *arg),
			 void *arg)
{
	long n = read_map(nb, bpf_map__fd(nb->skel->maps.socks), sizeof(*nb->skeys),
			  sizeof(*nb->svals), nb->report.max_sockets, nb->skeys, nb->svals, false);

	for (long i = 0; i < n; i++)
		fn(nb->skeys[i], &nb->svals[i], arg);
	return n;
}

int ember_net_bpf_forget_sock(struct ember_net_bpf *nb, uint64_t sk, uint64_t born_ns)
{
	int fd = bpf_map__fd(nb->skel->maps.socks);
	struct ember_net_sock e;

	/* a new socket at the same address keeps its entry (the window between
	 * this look and the delete is microseconds, not the drain's second) */
	if (bpf_map_lookup_elem(fd, &sk, &e))
		return -errno;
	if (e.born_ns != born_ns)
		return -ESTALE;
	return bpf_map_delete_elem(fd, &sk) ? -errno : 0;
}

void ember_net_bpf_stats(struct ember_net_bpf *nb, uint64_t out[EMBER_NET_STAT__COUNT])
{
	ember_bpf_percpu_sum(bpf_map__fd(nb->skel->maps.net_stats), EMBER_NET_STAT__COUNT, out);
}

static uint64_t fd_memlock(int fd)
{
	char path[64], line[256];
	uint64_t bytes = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lu", &bytes) == 1)
			break;
	fclose(f);
	return bytes;
}

uint64_t ember_net_bpf_map_bytes(struct ember_net_bpf *nb)
{
	struct bpf_map *m;
	uint64_t sum = 0;

	bpf_object__for_each_map(m, nb->skel->obj)
		if (bpf_map__fd(m) >= 0)
			sum += fd_memlock(bpf_map__fd(m));
	return sum;
}

void ember_net_bpf_io_prog_stats(struct ember_net_bpf *nb, uint64_t *run_cnt,
				 uint64_t *run_time_ns)
{
	*run_cnt = *run_time_ns = 0;
	for (int i = 0; i < 3; i++)
		if (nb->io_progs[i])
			ember_bpf_prog_run_stats(bpf_program__fd(nb->io_progs[i]), run_cnt, run_time_ns);
}
