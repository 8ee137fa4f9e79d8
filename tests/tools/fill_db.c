/*
 * fill_db.c - write a small, known dataset into an Ember database.
 *
 *   fill_db DB [NOW_MS]
 *
 * The browser tests (tests/web/) need a store whose contents they can
 * assert on without loading BPF or profiling anything, so this tool ingests
 * synthetic stacks through the store API (src/store/store.h):
 *
 *   service "shop", version "1.0": the 60 minutes before NOW - 60 min
 *   service "shop", version "2.0": the last 60 minutes before NOW
 *   service "search", version "3.1": the whole two hours
 *
 * Version 2.0 spends far more time in compute_hash (weight 10 -> 50),
 * legacy_cache_lookup vanished (8 -> 0) and apply_discount is new (0 -> 4).
 * Each minute every stack gets weight * k samples with the same k for all
 * stacks of that minute, so each version's shares are exactly its weights
 * divided by their sum (shop 1.0: 114, shop 2.0: 150) whatever the time range.
 * Timestamps are relative to NOW_MS (default: the current time) so the data
 * falls in the page's default time range.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/profile.h"
#include "store/store.h"

#define MINUTE_NS (60LL * 1000000000LL)
#define MAX_DEPTH 32

struct synth_stack {
	const char *frames; /* root first, ';'-separated; "name[k]" = kernel frame */
	unsigned weight_v1, weight_v2;
};

/* service "shop": weights for 1.0 and 2.0 */
static const struct synth_stack shop_stacks[] = {
	{ "main;serve;handle_request;parse_json;json_next_token", 30, 30 },
	{ "main;serve;handle_request;checkout;compute_hash", 10, 50 },
	{ "main;serve;handle_request;checkout;db_query;tcp_sendmsg[k];tcp_write_xmit[k]", 10, 10 },
	{ "main;serve;handle_request;checkout;apply_discount", 0, 4 },
	{ "main;serve;render_page;template_expand", 20, 20 },
	{ "main;serve;render_page;render_node;render_node;render_node;render_node;render_node;"
	  "render_node;render_node;render_node;render_leaf", 6, 6 },
	{ "main;gc_collect", 10, 10 },
	{ "main;serve;legacy_cache_lookup", 8, 0 },
};

/* service "search": one version, weight_v1 used */
static const struct synth_stack search_stacks[] = {
	{ "main;search_loop;score_docs", 50, 0 },
	{ "main;search_loop;tokenize", 30, 0 },
};

#define N_ROUTES 20 /* "main;serve;handle_request;route_NN", weight 1 in both versions */

/* A fake but stable source location per function name. */
static void frame_for(const char *tok, size_t len, struct ember_frame *f, char *name,
		      size_t name_size, char *file, size_t file_size)
{
	bool kernel = len > 3 && memcmp(tok + len - 3, "[k]", 3) == 0;
	size_t n = kernel ? len - 3 : len;
	if (n >= name_size)
		n = name_size - 1;
	memcpy(name, tok, n);
	name[n] = 0;
	memset(f, 0, sizeof(*f));
	f->function = name;
	if (kernel) {
		f->module = "[kernel]";
		f->flags = EMBER_FRAME_KERNEL;
		f->address = 0xffffffff81000000ull + ember_hash64(name, n, 1) % 0x100000;
	} else {
		snprintf(file, file_size, "src/%s.cc", name);
		f->file = file;
		f->line = (uint32_t)(10 + ember_hash64(name, n, 2) % 400);
		f->module = "/usr/bin/shop";
		f->address = 0x401000 + ember_hash64(name, n, 3) % 0x10000;
	}
}

static int add_stack(struct ember_profile *p, uint32_t target, const char *spec, uint64_t count,
		     int64_t time_ns)
{
	uint32_t root_first[MAX_DEPTH], leaf_first[MAX_DEPTH];
	uint32_t depth = 0;
	const char *s = spec;
	while (*s && depth < MAX_DEPTH) {
		const char *end = strchr(s, ';');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		char name[128], file[160];
		struct ember_frame f;
		frame_for(s, len, &f, name, sizeof(name), file, sizeof(file));
		uint32_t id = ember_profile_frame(p, &f);
		if (id == UINT32_MAX)
			return -ENOMEM;
		root_first[depth++] = id;
		s = end ? end + 1 : s + len;
	}
	for (uint32_t i = 0; i < depth; i++)
		leaf_first[i] = root_first[depth - 1 - i];
	return ember_profile_add(p, target, leaf_first, depth, count, time_ns);
}

/* Ingest one minute of one service version. */
static int ingest_minute(struct ember_store *st, const char *service, const char *version,
			 uint32_t pid, const struct synth_stack *stacks, size_t n, bool v2,
			 int routes, int64_t t_ns, unsigned k)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = ember_profile_new();
	if (!p)
		return -ENOMEM;
	char exe[64];
	snprintf(exe, sizeof(exe), "/usr/bin/%s", service);
	struct ember_target t = { .pid = pid, .comm = service, .exe = exe,
				  .service = service, .version = version };
	uint32_t tid = ember_profile_target(p, &t);
	int rc = tid == UINT32_MAX ? -ENOMEM : 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned w = v2 ? stacks[i].weight_v2 : stacks[i].weight_v1;
		if (w)
			rc = add_stack(p, tid, stacks[i].frames, (uint64_t)w * k, t_ns);
	}
	for (int r = 0; r < routes && !rc; r++) {
		char spec[96];
		snprintf(spec, sizeof(spec), "main;serve;handle_request;route_%02d", r);
		rc = add_stack(p, tid, spec, k, t_ns);
	}
	p->period_ns = 1000000000ull / 19;
	p->start_ns = t_ns;
	p->duration_ns = MINUTE_NS;
	if (!rc && ember_store_ingest(st, p, t_ns, err, sizeof(err))) {
		fprintf(stderr, "fill_db: %s\n", err);
		rc = -EIO;
	}
	ember_profile_free(p);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: fill_db DB [NOW_MS]\n");
		return 2;
	}
	int64_t now_ms = argc == 3 ? strtoll(argv[2], NULL, 10) : (int64_t)time(NULL) * 1000;
	int64_t now_ns = now_ms / 60000 * 60000 * 1000000; /* whole minutes */
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *st;
	if (ember_store_open(argv[1], &st, err, sizeof(err))) {
		fprintf(stderr, "fill_db: %s\n", err);
		return 1;
	}
	ember_store_set_host(st, "testhost");
	size_t n_shop = sizeof(shop_stacks) / sizeof(shop_stacks[0]);
	size_t n_search = sizeof(search_stacks) / sizeof(search_stacks[0]);
	int rc = 0;
	for (int m = 0; m < 120 && !rc; m++) {
		int64_t t = now_ns - (int64_t)(120 - m) * MINUTE_NS;
		unsigned k = 2 + (unsigned)(m * 37 % 3); /* 2..4: a timeline with some shape */
		bool v2 = m >= 60;
		rc = ingest_minute(st, "shop", v2 ? "2.0" : "1.0", v2 ? 102 : 101, shop_stacks,
				   n_shop, v2, N_ROUTES, t, k);
		if (!rc)
			rc = ingest_minute(st, "search", "3.1", 201, search_stacks, n_search, false,
					   0, t, 1);
	}
	ember_store_close(st);
	if (rc) {
		fprintf(stderr, "fill_db: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	printf("fill_db: wrote %s\n", argv[1]);
	return 0;
}
