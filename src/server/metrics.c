/*
 * metrics.c - writing /metrics in the Prometheus text format (see metrics.h).
 *
 * The TCP series are copied out of the collector's totals under its lock
 * (a copy of a few hundred small structs), then written family by family:
 * the format wants every sample of a family together, after its HELP and
 * TYPE lines, and each series belongs to a dozen families.
 */
#include "server/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/array.h"
#include "net/net_prom.h"

#define CT EMBER_METRICS_CONTENT_TYPE

void ember_metrics_family(struct strbuf *sb, const char *name, const char *type,
			  const char *help)
{
	sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_value(struct strbuf *sb, const char *v)
{
	sb_putc(sb, '"');
	for (; v && *v; v++) {
		if (*v == '\\')
			sb_puts(sb, "\\\\");
		else if (*v == '"')
			sb_puts(sb, "\\\"");
		else if (*v == '\n')
			sb_puts(sb, "\\n");
		else
			sb_putc(sb, *v);
	}
	sb_putc(sb, '"');
}

void ember_metrics_sample(struct strbuf *sb, const char *name, const char *const *labels,
			  size_t n_labels, double value)
{
	sb_puts(sb, name);
	if (n_labels) {
		sb_putc(sb, '{');
		for (size_t i = 0; i < n_labels; i++) {
			sb_printf(sb, "%s%s=", i ? "," : "", labels[2 * i]);
			label_value(sb, labels[2 * i + 1]);
		}
		sb_putc(sb, '}');
	}
	if (isinf(value))
		sb_puts(sb, value > 0 ? " +Inf\n" : " -Inf\n");
	else if (value == floor(value) && fabs(value) < 1e15)
		sb_printf(sb, " %.0f\n", value);
	else
		sb_printf(sb, " %.9g\n", value);
}

static void single(struct strbuf *sb, const char *name, const char *type, const char *help,
		   double value)
{
	ember_metrics_family(sb, name, type, help);
	ember_metrics_sample(sb, name, NULL, 0, value);
}

void ember_metrics_agent(struct strbuf *sb, const struct ember_metrics_agent *a)
{
	single(sb, "ember_agent_samples_total", "counter",
	       "CPU samples the profiler took (perf-event program runs).", (double)a->samples);
	if (a->n_unwind) {
		ember_metrics_family(sb, "ember_agent_unwind_total", "counter",
				     "Samples and frames by unwind outcome (complete stacks, "
				     "truncations, and each reason a stack stopped early).");
		for (size_t i = 0; i < a->n_unwind; i++) {
			const char *l[] = {"outcome", a->unwind[i].name};
			ember_metrics_sample(sb, "ember_agent_unwind_total", l, 1,
					     (double)a->unwind[i].value);
		}
	}
	if (a->n_maps) {
		ember_metrics_family(sb, "ember_agent_bpf_map_entries", "gauge",
				     "Entries in use in a bounded BPF map (last drain).");
		for (size_t i = 0; i < a->n_maps; i++) {
			const char *l[] = {"map", a->maps[i].map};
			ember_metrics_sample(sb, "ember_agent_bpf_map_entries", l, 1,
					     (double)a->maps[i].entries);
		}
		ember_metrics_family(sb, "ember_agent_bpf_map_capacity", "gauge",
				     "Entries a bounded BPF map can hold.");
		for (size_t i = 0; i < a->n_maps; i++) {
			const char *l[] = {"map", a->maps[i].map};
			ember_metrics_sample(sb, "ember_agent_bpf_map_capacity", l, 1,
					     (double)a->maps[i].capacity);
		}
	}
	ember_metrics_family(sb, "ember_agent_cpu_seconds_total", "counter",
			     "CPU time the agent used, by mode.");
	const char *user[] = {"mode", "user"}, *sys[] = {"mode", "system"};
	ember_metrics_sample(sb, "ember_agent_cpu_seconds_total", user, 1, a->cpu_user_s);
	ember_metrics_sample(sb, "ember_agent_cpu_seconds_total", sys, 1, a->cpu_system_s);
	single(sb, "ember_agent_resident_memory_bytes", "gauge",
	       "Resident memory of the agent process.", (double)a->rss_bytes);
	single(sb, "ember_agent_uptime_seconds", "gauge", "Seconds since the agent started.",
	       a->uptime_s);
	single(sb, "ember_agent_flushes_total", "counter", "Writes to the database.",
	       (double)a->flushes);
	single(sb, "ember_agent_flush_errors_total", "counter",
	       "Writes to the database that failed (their data is kept for the next).",
	       (double)a->flush_errors);
	if (a->n_net_events) {
		ember_metrics_family(sb, "ember_agent_net_events_total", "counter",
				     "TCP events the kernel programs saw, and the ones they could "
				     "not record (map full, no owner).");
		for (size_t i = 0; i < a->n_net_events; i++) {
			const char *l[] = {"event", a->net_events[i].name};
			ember_metrics_sample(sb, "ember_agent_net_events_total", l, 1,
					     (double)a->net_events[i].value);
		}
	}
}

/* ---- TCP series ---- */

struct series {
	char *service, *version, *peer;
	int direction;
	struct ember_net_prom_values v;
};

struct drop_series {
	char *service, *version, *reason;
	uint64_t count;
};

struct copy {
	struct series *s;
	size_t n, cap;
	struct drop_series *d;
	size_t nd, capd;
	bool oom;
};

static void copy_series(const char *service, const char *version, int direction,
			const char *peer, const struct ember_net_prom_values *v, void *arg)
{
	struct copy *c = arg;

	if (c->oom || ember_array_grow(&c->s, &c->cap, c->n + 1, sizeof(*c->s))) {
		c->oom = true;
		return;
	}
	struct series *s = &c->s[c->n];
	s->service = strdup(service);
	s->version = strdup(version);
	s->peer = strdup(peer);
	s->direction = direction;
	s->v = *v;
	if (!s->service || !s->version || !s->peer) {
		free(s->service);
		free(s->version);
		free(s->peer);
		c->oom = true;
		return;
	}
	c->n++;
}

static void copy_drop(const char *service, const char *version, const char *reason,
		      uint64_t count, void *arg)
{
	struct copy *c = arg;

	if (c->oom || ember_array_grow(&c->d, &c->capd, c->nd + 1, sizeof(*c->d))) {
		c->oom = true;
		return;
	}
	struct drop_series *d = &c->d[c->nd];
	d->service = strdup(service);
	d->version = strdup(version);
	d->reason = strdup(reason);
	d->count = count;
	if (!d->service || !d->version || !d->reason) {
		free(d->service);
		free(d->version);
		free(d->reason);
		c->oom = true;
		return;
	}
	c->nd++;
}

struct counter_family {
	const char *name, *help;
	size_t offset; /* of the uint64_t in ember_net_prom_values */
};

#define FIELD(f) offsetof(struct ember_net_prom_values, f)

static const struct counter_family counters[] = {
	{"ember_tcp_sent_bytes_total", "Bytes sent to the peer (send calls that returned).",
	 FIELD(bytes_sent)},
	{"ember_tcp_received_bytes_total", "Bytes received from the peer (read by the process).",
	 FIELD(bytes_recv)},
	{"ember_tcp_connects_total", "Connections the process opened (SYN sent).", FIELD(connects)},
	{"ember_tcp_accepts_total", "Connections the process accepted.", FIELD(accepts)},
	{"ember_tcp_closes_total", "Established connections that closed.", FIELD(closes)},
	{"ember_tcp_connect_failures_total",
	 "Connects that never established (refused or timed out).", FIELD(failures)},
	{"ember_tcp_resets_sent_total", "TCP resets the process's sockets sent.",
	 FIELD(resets_sent)},
	{"ember_tcp_resets_received_total", "TCP resets the process's sockets received.",
	 FIELD(resets_recv)},
	{"ember_tcp_retransmits_total", "Segments retransmitted.", FIELD(retransmits)},
};

static void series_labels(const struct series *s, const char *l[8])
{
	l[0] = "service";
	l[1] = s->service;
	l[2] = "version";
	l[3] = s->version;
	l[4] = "direction";
	l[5] = s->direction ? "in" : "out";
	l[6] = "peer";
	l[7] = s->peer;
}

static void histogram(struct strbuf *sb, const char *name, const char *help,
		      const struct copy *c, bool connect)
{
	char bucket[96], sum[96], count[96], le[32];

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	ember_metrics_family(sb, name, "histogram", help);
	for (size_t i = 0; i < c->n; i++) {
		const struct ember_net_prom_hist *h = connect ? &c->s[i].v.connect : &c->s[i].v.rtt;
		const char *l[10];
		if (!h->count)
			continue;
		series_labels(&c->s[i], l);
		l[8] = "le";
		for (unsigned k = 0; k < EMBER_NET_PROM_LE; k++) {
			snprintf(le, sizeof(le), "%g", (double)ember_net_prom_le_us(k) / 1e6);
			l[9] = le;
			ember_metrics_sample(sb, bucket, l, 5, (double)h->le[k]);
		}
		l[9] = "+Inf";
		ember_metrics_sample(sb, bucket, l, 5, (double)h->count);
		ember_metrics_sample(sb, sum, l, 4, (double)h->sum_us / 1e6);
		ember_metrics_sample(sb, count, l, 4, (double)h->count);
	}
}

void ember_metrics_net(struct strbuf *sb, struct ember_net_prom *p)
{
	struct copy c = {0};

	ember_net_prom_each(p, copy_series, copy_drop, &c);
	if (c.oom) {
		sb_puts(sb, "# out of memory copying the TCP series\n");
		goto out;
	}
	for (size_t f = 0; f < sizeof(counters) / sizeof(counters[0]); f++) {
		ember_metrics_family(sb, counters[f].name, "counter", counters[f].help);
		for (size_t i = 0; i < c.n; i++) {
			const char *l[8];
			uint64_t v = *(const uint64_t *)((const char *)&c.s[i].v + counters[f].offset);
			series_labels(&c.s[i], l);
			ember_metrics_sample(sb, counters[f].name, l, 4, (double)v);
		}
	}
	histogram(sb, "ember_tcp_rtt_seconds",
		  "Smoothed round-trip time of the process's connections to the peer, one "
		  "observation per active connection per second.",
		  &c, false);
	histogram(sb, "ember_tcp_connect_duration_seconds",
		  "Time from SYN sent to established, per connect.", &c, true);
	ember_metrics_family(sb, "ember_tcp_drops_total", "counter",
			     "Packets of the process's connections the kernel dropped, by reason "
			     "(kfree_skb drop reasons).");
	for (size_t i = 0; i < c.nd; i++) {
		const char *l[] = {"service", c.d[i].service, "version", c.d[i].version,
				   "reason",  c.d[i].reason};
		ember_metrics_sample(sb, "ember_tcp_drops_total", l, 3, (double)c.d[i].count);
	}
out:
	for (size_t i = 0; i < c.n; i++) {
		free(c.s[i].service);
		free(c.s[i].version);
		free(c.s[i].peer);
	}
	for (size_t i = 0; i < c.nd; i++) {
		free(c.d[i].service);
		free(c.d[i].version);
		free(c.d[i].reason);
	}
	free(c.s);
	free(c.d);
}

/* ---- the page ---- */

static uint64_t file_size(const char *path, const char *suffix)
{
	char buf[4096];
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s%s", path, suffix) >= (int)sizeof(buf) ||
	    stat(buf, &st) != 0)
		return 0;
	return (uint64_t)st.st_size;
}

void ember_metrics_reply(const char *db_path, void (*write_fn)(struct strbuf *sb, void *arg),
			 void *arg, struct ember_api_reply *r)
{
	struct strbuf sb;

	sb_init(&sb);
	if (write_fn)
		write_fn(&sb, arg);
	ember_metrics_family(&sb, "ember_store_size_bytes", "gauge",
			     "Size of the SQLite database on disk, by file.");
	const char *db[] = {"file", "db"}, *wal[] = {"file", "wal"};
	ember_metrics_sample(&sb, "ember_store_size_bytes", db, 1, (double)file_size(db_path, ""));
	ember_metrics_sample(&sb, "ember_store_size_bytes", wal, 1,
			     (double)file_size(db_path, "-wal"));
	ember_api_reply_sb(r, 200, CT, &sb);
}
