/*
 * test_store.c - the SQLite store: ingest, query, selection, listing,
 * errors, re-opening, a 50k-stack round trip, and the query id maps.
 *
 * Every test works on its own database file in a temporary directory that
 * the group teardown removes.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/profile.h"
#include "store/store.h"
#include "store/store_internal.h"

#define T0 1700000000000000000LL /* a multiple of the 10 s bucket */
#define SEC 1000000000LL
#define BUILD_ID "0123456789abcdef0123456789abcdef01234567"
#define KERNEL_ADDR 0xffffffff81000010ULL

static char tmpdir[256];

static const char *db_path(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ember-test-store-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] != '.')
			unlink(db_path(e->d_name));
	}
	if (d)
		closedir(d);
	return rmdir(tmpdir);
}

static struct ember_store *open_store(const char *name)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_store *s = NULL;
	int ret = ember_store_open(db_path(name), &s, err, sizeof(err));

	if (ret)
		fail_msg("open %s: %d %s", name, ret, err);
	assert_int_equal(ember_store_set_host(s, "testhost"), 0);
	return s;
}

/*
 * Two targets; four stacks sharing frames (leaf first):
 *   app (no service/version):   leaf_a work main = 5,  leaf_b work main = 3
 *   checkout v2:  syscall[k] libc+0x2345 work main = 7,  leaf_a work main = 2
 */
static struct ember_profile *make_profile(void)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_frame fr[] = {
		{.function = "main", .file = "main.c", .line = 10, .module = "/usr/bin/app",
		 .build_id = BUILD_ID, .address = 0x1000, .start_line = 7},
		{.function = "work", .file = "work.c", .line = 20, .module = "/usr/bin/app",
		 .build_id = BUILD_ID, .address = 0x1100},
		{.function = "leaf_a", .file = "a.c", .line = 30, .module = "/usr/bin/app",
		 .build_id = BUILD_ID, .address = 0x1200, .flags = EMBER_FRAME_INLINED},
		{.function = "leaf_b", .file = "b.c", .line = 40, .module = "/usr/bin/app",
		 .build_id = BUILD_ID, .address = 0x1300},
		{.function = "do_syscall_64", .module = "[kernel]", .address = KERNEL_ADDR,
		 .flags = EMBER_FRAME_KERNEL},
		{.module = "/usr/lib/libc.so.6", .address = 0x2345},
	};
	struct ember_target app = {.pid = 100, .comm = "app", .exe = "/usr/bin/app",
				   .build_id = BUILD_ID};
	struct ember_target api = {.pid = 200, .comm = "api", .exe = "/srv/api",
				   .service = "checkout", .version = "v2", .labels = "zone=a"};
	uint32_t f[6], t0, t1;

	assert_non_null(p);
	for (int i = 0; i < 6; i++)
		f[i] = ember_profile_frame(p, &fr[i]);
	t0 = ember_profile_target(p, &app);
	t1 = ember_profile_target(p, &api);
	uint32_t s1[] = {f[2], f[1], f[0]}, s2[] = {f[3], f[1], f[0]},
		 s3[] = {f[4], f[5], f[1], f[0]};
	assert_int_equal(ember_profile_add(p, t0, s1, 3, 5, 0), 0);
	assert_int_equal(ember_profile_add(p, t0, s2, 3, 3, 0), 0);
	assert_int_equal(ember_profile_add(p, t1, s3, 4, 7, 0), 0);
	assert_int_equal(ember_profile_add(p, t1, s1, 3, 2, 0), 0);
	p->period_ns = SEC / 19;
	return p;
}

static void ingest(struct ember_store *s, const struct ember_profile *p, int64_t t)
{
	char err[EMBER_STORE_ERRLEN];
	int ret = ember_store_ingest(s, p, t, err, sizeof(err));

	if (ret)
		fail_msg("ingest: %d %s", ret, err);
}

/* The fixture ingested twice in bucket T0 and once in bucket T0 + 60 s. */
static struct ember_store *filled_store(const char *name)
{
	struct ember_store *s = open_store(name);
	struct ember_profile *p = make_profile();

	ingest(s, p, T0);
	ingest(s, p, T0 + 1 * SEC);
	ingest(s, p, T0 + 60 * SEC);
	ember_profile_free(p);
	return s;
}

static struct ember_profile *query(struct ember_store *s, const struct ember_selection *sel)
{
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = NULL;
	int ret = ember_store_query(s, sel, &p, err, sizeof(err));

	if (ret)
		fail_msg("query: %d %s", ret, err);
	assert_non_null(p);
	return p;
}

/* Count of the stack of target `service` whose frame names are names[0..n) leaf first, or -1. */
static int64_t stack_count(const struct ember_profile *p, const char *service,
			   const char *const *names, uint32_t n)
{
	char buf[256];

	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *st = &p->stacks[i];
		if (st->depth != n || strcmp(p->targets[st->target].service, service) != 0)
			continue;
		uint32_t j = 0;
		while (j < n && !strcmp(ember_frame_name(&p->frames[st->frames[j]], buf,
							 sizeof(buf)), names[j]))
			j++;
		if (j == n)
			return (int64_t)st->count;
	}
	return -1;
}

static const char *const S1[] = {"leaf_a", "work", "main"};
static const char *const S2[] = {"leaf_b", "work", "main"};
static const char *const S3[] = {"do_syscall_64", "libc.so.6+0x2345", "work", "main"};

static const struct ember_frame *frame_named(const struct ember_profile *p, const char *name)
{
	char buf[256];

	for (size_t i = 0; i < p->n_frames; i++)
		if (!strcmp(ember_frame_name(&p->frames[i], buf, sizeof(buf)), name))
			return &p->frames[i];
	fail_msg("no frame %s", name);
	return NULL;
}

static void test_round_trip(void **state)
{
	struct ember_store *s = filled_store("roundtrip.db");
	struct ember_profile *p = query(s, NULL);

	assert_int_equal(p->n_stacks, 4);
	assert_int_equal(p->n_targets, 2);
	assert_int_equal(p->n_frames, 6);
	assert_int_equal(p->total, 3 * 17);
	assert_int_equal(stack_count(p, "app", S1, 3), 15);
	assert_int_equal(stack_count(p, "app", S2, 3), 9);
	assert_int_equal(stack_count(p, "checkout", S3, 4), 21);
	assert_int_equal(stack_count(p, "checkout", S1, 3), 6);
	assert_int_equal(p->stacks[0].time_ns, 0);
	assert_int_equal(p->period_ns, SEC / 19);
	assert_int_equal(p->start_ns, T0);
	assert_int_equal(p->duration_ns, 70 * SEC);

	/* Frames keep every field, including a u64 kernel address and NULLs. */
	const struct ember_frame *m = frame_named(p, "main");
	assert_string_equal(m->file, "main.c");
	assert_int_equal(m->line, 10);
	assert_int_equal(m->start_line, 7);
	assert_string_equal(m->module, "/usr/bin/app");
	assert_string_equal(m->build_id, BUILD_ID);
	assert_int_equal(m->address, 0x1000);
	assert_int_equal(frame_named(p, "leaf_a")->flags, EMBER_FRAME_INLINED);
	const struct ember_frame *k = frame_named(p, "do_syscall_64");
	assert_true(k->address == KERNEL_ADDR);
	assert_int_equal(k->flags, EMBER_FRAME_KERNEL);
	assert_null(k->file);
	const struct ember_frame *u = frame_named(p, "libc.so.6+0x2345");
	assert_null(u->function);
	assert_null(u->build_id);

	/* Derived service/version; given ones kept. */
	for (size_t i = 0; i < p->n_targets; i++) {
		const struct ember_target *t = &p->targets[i];
		if (t->pid == 100) {
			assert_string_equal(t->service, "app");
			assert_string_equal(t->version, "0123456789ab");
			assert_string_equal(t->exe, "/usr/bin/app");
			assert_null(t->labels);
		} else {
			assert_int_equal(t->pid, 200);
			assert_string_equal(t->service, "checkout");
			assert_string_equal(t->version, "v2");
			assert_string_equal(t->labels, "zone=a");
			assert_null(t->build_id);
		}
	}
	ember_profile_free(p);
	ember_store_close(s);
}

static uint64_t total_of(struct ember_store *s, const struct ember_selection *sel)
{
	struct ember_profile *p = query(s, sel);
	uint64_t total = p->total;

	ember_profile_free(p);
	return total;
}

static void test_time_range(void **state)
{
	struct ember_store *s = filled_store("range.db");

	assert_int_equal(total_of(s, &(struct ember_selection){.from_ns = T0 + 60 * SEC}), 17);
	assert_int_equal(total_of(s, &(struct ember_selection){.to_ns = T0 + 60 * SEC}), 34);
	/* Buckets overlapping the range count: T0's bucket covers T0 + 5 s. */
	assert_int_equal(total_of(s, &(struct ember_selection){.from_ns = T0 + 5 * SEC,
							       .to_ns = T0 + 6 * SEC}),
			 34);
	assert_int_equal(total_of(s, &(struct ember_selection){.from_ns = T0 + 10 * SEC,
							       .to_ns = T0 + 60 * SEC}),
			 0);
	assert_int_equal(total_of(s, &(struct ember_selection){.from_ns = T0 + 70 * SEC}), 0);
	ember_store_close(s);
}

static int64_t app_target_id;

struct rows {
	struct ember_target_row row[2];
	int n;
};

static int collect_target(const struct ember_target_row *row, void *arg)
{
	struct rows *rows = arg;

	if (!strcmp(row->service, "app"))
		app_target_id = row->id;
	if (rows->n++ >= 2)
		return 0;
	struct ember_target_row *r = &rows->row[rows->n - 1];
	*r = *row;
	/* The strings live only during the call: keep copies of what we check. */
	r->service = strdup(row->service);
	r->version = strdup(row->version);
	r->host = strdup(row->host);
	return 0;
}

static void free_rows(struct rows *rows)
{
	for (int i = 0; i < rows->n && i < 2; i++) {
		free((char *)rows->row[i].service);
		free((char *)rows->row[i].version);
		free((char *)rows->row[i].host);
	}
}

static void test_select_by_target(void **state)
{
	struct ember_store *s = filled_store("select.db");
	struct rows rows = {0};
	char err[EMBER_STORE_ERRLEN];

	assert_int_equal(total_of(s, &(struct ember_selection){.service = "checkout"}), 27);
	assert_int_equal(total_of(s, &(struct ember_selection){.service = "app"}), 24);
	assert_int_equal(total_of(s, &(struct ember_selection){.version = "0123456789ab"}), 24);
	assert_int_equal(total_of(s, &(struct ember_selection){.version = "v2", .pid = 200}), 27);
	assert_int_equal(total_of(s, &(struct ember_selection){.pid = 100}), 24);
	assert_int_equal(total_of(s, &(struct ember_selection){.service = "app", .version = "v2"}),
			 0);
	assert_int_equal(total_of(s, &(struct ember_selection){.service = "nope"}), 0);

	assert_int_equal(ember_store_list_targets(s, collect_target, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 2);
	assert_true(app_target_id > 0);
	assert_int_equal(total_of(s, &(struct ember_selection){.target_id = app_target_id,
							       .from_ns = T0 + 60 * SEC}),
			 8);
	free_rows(&rows);
	ember_store_close(s);
}

static void test_list_targets(void **state)
{
	struct ember_store *s = filled_store("targets.db");
	struct rows rows = {0};
	char err[EMBER_STORE_ERRLEN];

	/* A later ingest of the checkout target only: it becomes the newest. */
	struct ember_profile *p = ember_profile_new();
	struct ember_frame f = {.function = "late", .module = "/srv/api"};
	struct ember_target api = {.pid = 200, .comm = "api", .exe = "/srv/api",
				   .service = "checkout", .version = "v2", .labels = "zone=a"};
	uint32_t fid = ember_profile_frame(p, &f), tid = ember_profile_target(p, &api);
	assert_int_equal(ember_profile_add(p, tid, &fid, 1, 4, T0 + 90 * SEC), 0);
	ingest(s, p, T0 + 200 * SEC); /* the stack's own time wins */
	ember_profile_free(p);

	assert_int_equal(ember_store_list_targets(s, collect_target, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 2);
	const struct ember_target_row *api_row = &rows.row[0], *app_row = &rows.row[1];
	assert_string_equal(api_row->service, "checkout");
	assert_string_equal(api_row->version, "v2");
	assert_string_equal(api_row->host, "testhost");
	assert_int_equal(api_row->pid, 200);
	assert_int_equal(api_row->samples, 31);
	assert_int_equal(api_row->first_seen_ns, T0);
	assert_int_equal(api_row->last_seen_ns, T0 + 90 * SEC);
	assert_string_equal(app_row->service, "app");
	assert_string_equal(app_row->version, "0123456789ab");
	assert_int_equal(app_row->samples, 24);
	assert_int_equal(app_row->first_seen_ns, T0);
	assert_int_equal(app_row->last_seen_ns, T0 + 60 * SEC);
	free_rows(&rows);
	ember_store_close(s);
}

/* Damaged rows give an error naming the file, never a crash. */
static void test_corrupt_rows(void **state)
{
	struct ember_store *s = filled_store("rows.db");
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = NULL;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(db_path("rows.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE stacks SET frames = x'0180' WHERE id = 1", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_true(ember_store_query(s, NULL, &p, err, sizeof(err)) < 0);
	assert_null(p);
	assert_non_null(strstr(err, db_path("rows.db")));
	assert_non_null(strstr(err, "corrupt"));

	assert_int_equal(sqlite3_exec(db, "UPDATE stacks SET frames = x'01' WHERE id = 1;"
					  "DELETE FROM frames WHERE id = 1",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_true(ember_store_query(s, NULL, &p, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "missing frame 1"));
	sqlite3_close(db);
	ember_store_close(s);
}

static void test_stats(void **state)
{
	struct ember_store *s = filled_store("stats.db");
	struct ember_store_stats st;
	char err[EMBER_STORE_ERRLEN];

	assert_int_equal(ember_store_stats(s, &st, err, sizeof(err)), 0);
	assert_int_equal(st.targets, 2);
	assert_int_equal(st.frames, 6);
	assert_int_equal(st.stacks, 3); /* leaf_a work main is shared by both targets */
	assert_int_equal(st.sample_rows, 8); /* 4 (target, stack) pairs x 2 buckets */
	assert_int_equal(st.samples, 51);
	assert_int_equal(st.oldest_ns, T0);
	assert_int_equal(st.newest_ns, T0 + 60 * SEC);
	ember_store_close(s);
}

static void test_max_stacks(void **state)
{
	struct ember_store *s = filled_store("max.db");
	struct ember_selection sel = {.max_stacks = 2};
	char err[EMBER_STORE_ERRLEN];
	struct ember_profile *p = NULL;

	assert_int_equal(ember_store_query(s, &sel, &p, err, sizeof(err)), 0);
	assert_int_equal(p->n_stacks, 2); /* the two heaviest */
	assert_int_equal(stack_count(p, "checkout", S3, 4), 21);
	assert_int_equal(stack_count(p, "app", S1, 3), 15);
	assert_non_null(strstr(err, "more than 2 stacks"));
	ember_profile_free(p);
	ember_store_close(s);
}

static int read_user_version(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void test_reopen(void **state)
{
	struct ember_store *s = filled_store("reopen.db");
	int version = read_user_version(db_path("reopen.db"));

	assert_true(version >= 1);
	/* A second connection (the server's) reads while the first stays open. */
	struct ember_store *reader = open_store("reopen.db");
	assert_int_equal(total_of(reader, NULL), 51);
	struct ember_profile *p = make_profile();
	ingest(s, p, T0 + 120 * SEC);
	assert_int_equal(total_of(reader, NULL), 68);
	ember_store_close(reader);
	ember_store_close(s);

	/* Re-opened: data, schema version and deduplication all persist. */
	s = open_store("reopen.db");
	assert_int_equal(total_of(s, NULL), 68);
	ingest(s, p, T0 + 120 * SEC);
	struct ember_store_stats st;
	char err[EMBER_STORE_ERRLEN];
	assert_int_equal(ember_store_stats(s, &st, err, sizeof(err)), 0);
	assert_int_equal(st.samples, 85);
	assert_int_equal(st.frames, 6);
	assert_int_equal(st.stacks, 3);
	assert_int_equal(st.targets, 2);
	ember_profile_free(p);
	ember_store_close(s);
	assert_int_equal(read_user_version(db_path("reopen.db")), version);
}

static void expect_open_error(const char *path, const char *what)
{
	char err[EMBER_STORE_ERRLEN] = "";
	struct ember_store *s = (struct ember_store *)1;
	int ret = ember_store_open(path, &s, err, sizeof(err));

	assert_true(ret < 0);
	assert_null(s);
	if (!strstr(err, path) || (what && !strstr(err, what)))
		fail_msg("error for %s does not name it or say '%s': %s", path, what, err);
}

static void test_open_errors(void **state)
{
	char path[600];
	FILE *f;

	expect_open_error(tmpdir, NULL); /* a directory */
	snprintf(path, sizeof(path), "%s/no/such/dir/x.db", tmpdir);
	expect_open_error(path, NULL);

	/* Garbage bytes: not a database. */
	const char *bad = db_path("garbage.db");
	assert_non_null(f = fopen(bad, "w"));
	for (int i = 0; i < 8192; i++)
		fputc((i * 7919 + 13) & 0xff, f);
	fclose(f);
	expect_open_error(bad, NULL);

	/* A schema newer than this code knows is refused. */
	struct ember_store *s = open_store("newer.db");
	ember_store_close(s);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(db_path("newer.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	expect_open_error(db_path("newer.db"), "newer");
}

/* A stored stack with the same hash but other frames must not be confused with ours. */
static void test_hash_collision(void **state)
{
	struct ember_store *s = open_store("collision.db");
	const unsigned char blob[] = {1}; /* frame row 1: the first frame ingested */
	char sql[256];
	sqlite3 *db;

	snprintf(sql, sizeof(sql), "INSERT INTO stacks(hash, frames) VALUES (%lld, x'02')",
		 (long long)ember_hash64(blob, 1, 0));
	assert_int_equal(sqlite3_open(db_path("collision.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct ember_profile *p = ember_profile_new();
	struct ember_frame fr = {.function = "only", .module = "/bin/x"};
	struct ember_target t = {.pid = 1, .comm = "x"};
	uint32_t fid = ember_profile_frame(p, &fr), tid = ember_profile_target(p, &t);
	assert_int_equal(ember_profile_add(p, tid, &fid, 1, 3, 0), 0);
	ingest(s, p, T0);
	ember_profile_free(p);

	struct ember_store_stats st;
	char err[EMBER_STORE_ERRLEN];
	assert_int_equal(ember_store_stats(s, &st, err, sizeof(err)), 0);
	assert_int_equal(st.stacks, 2);
	p = query(s, NULL);
	assert_int_equal(p->n_stacks, 1);
	assert_int_equal(p->stacks[0].depth, 1);
	assert_string_equal(p->frames[p->stacks[0].frames[0]].function, "only");
	assert_int_equal(p->total, 3);
	ember_profile_free(p);
	ember_store_close(s);
}

/* 50k distinct stacks of depth 20 round-trip (query speed is in tests/bench/query.sh). */
static void test_many_stacks(void **state)
{
	enum { N_STACKS = 50000, DEPTH = 20, N_FRAMES = 5000 };
	struct ember_store *s = open_store("many.db");
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 42, .comm = "big", .exe = "/usr/bin/big"};
	uint32_t tid = ember_profile_target(p, &t), frames[DEPTH];
	uint64_t x = 88172645463325252ULL;
	char fn[32];

	for (int i = 0; i < N_FRAMES; i++) {
		snprintf(fn, sizeof(fn), "function_number_%d", i);
		struct ember_frame f = {.function = fn, .file = "src/big.cc", .line = (uint32_t)i,
					.module = "/usr/bin/big", .address = 0x400000u + i * 16u};
		assert_int_equal(ember_profile_frame(p, &f), i);
	}
	for (int i = 0; i < N_STACKS; i++) {
		for (int d = 0; d < DEPTH; d++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			frames[d] = (uint32_t)(x % N_FRAMES);
		}
		assert_int_equal(ember_profile_add(p, tid, frames, DEPTH, 1 + i % 7, 0), 0);
	}
	uint64_t expect = p->total;
	assert_int_equal(p->n_stacks, N_STACKS);

	/* A small target with frames of its own: its query loads rows through the temp table. */
	struct ember_target small = {.pid = 7, .comm = "small"};
	struct ember_frame sf[] = {{.function = "s_leaf", .module = "/bin/small", .address = 1},
				   {.function = "s_main", .module = "/bin/small", .address = 2}};
	uint32_t st_id = ember_profile_target(p, &small);
	uint32_t s_frames[] = {ember_profile_frame(p, &sf[0]), ember_profile_frame(p, &sf[1])};
	assert_int_equal(ember_profile_add(p, st_id, s_frames, 2, 11, 0), 0);
	assert_int_equal(ember_profile_add(p, st_id, &s_frames[1], 1, 4, 0), 0);

	ingest(s, p, T0);
	ingest(s, p, T0 + 10 * SEC);
	/* 50000 stacks outgrow the stack cache: emptied (counted), never past its bound */
	struct ember_store_cache_stats cs;
	ember_store_cache_stats(s, &cs);
	assert_true(cs.clears >= 1);
	assert_true(cs.bytes <= cs.max_bytes);
	assert_true(cs.entries > 0);
	struct ember_profile *q = query(s, NULL);
	struct ember_profile *q2 = query(s, &(struct ember_selection){.service = "big",
								     .from_ns = T0 + 10 * SEC});

	assert_int_equal(q->n_stacks, N_STACKS + 2);
	assert_int_equal(q->total, 2 * (expect + 15));
	assert_int_equal(q2->total, expect);

	struct ember_profile *q3 = query(s, &(struct ember_selection){.service = "small"});
	static const char *const s_stack[] = {"s_leaf", "s_main"}, *const s_top[] = {"s_main"};
	assert_int_equal(q3->n_stacks, 2);
	assert_int_equal(q3->n_frames, 2);
	assert_int_equal(stack_count(q3, "small", s_stack, 2), 22);
	assert_int_equal(stack_count(q3, "small", s_top, 1), 8);
	ember_profile_free(q3);
	ember_profile_free(q);
	ember_profile_free(q2);
	ember_profile_free(p);
	ember_store_close(s);
}

/* A read over its time limit stops with -ETIMEDOUT and says why; unbounded it completes. */
static void test_query_timeout(void **state)
{
	struct ember_store *s = open_store("timeout.db");
	struct ember_profile *p = ember_profile_new(), *q = NULL;
	struct ember_target t = {.pid = 5, .comm = "slow"};
	uint32_t tid = ember_profile_target(p, &t);
	char err[EMBER_STORE_ERRLEN], fn[32];

	for (int i = 0; i < 2000; i++) {
		snprintf(fn, sizeof(fn), "f%d", i);
		struct ember_frame f = {.function = fn, .module = "/bin/slow", .address = (uint64_t)i};
		uint32_t fid = ember_profile_frame(p, &f);
		/* a bucket each, so the timeline has rows to read too */
		assert_int_equal(ember_profile_add(p, tid, &fid, 1, 1, T0 + i * 10 * SEC), 0);
	}
	ingest(s, p, T0);
	ember_store_set_query_timeout(s, 1); /* 1 ns: over before the first rows */
	assert_int_equal(ember_store_query(s, NULL, &q, err, sizeof(err)), -ETIMEDOUT);
	assert_null(q);
	assert_non_null(strstr(err, "time limit"));
	struct ember_timeline tl;
	assert_int_equal(ember_store_timeline(s, NULL, 0, 0, &tl, err, sizeof(err)), -ETIMEDOUT);
	ember_store_set_query_timeout(s, 0);
	q = query(s, NULL);
	assert_int_equal(q->total, 2000);
	ember_profile_free(q);
	ember_profile_free(p);
	ember_store_close(s);
}

/* The query's id maps: a dense part for small row ids, hashing above it, same answers. */
static void test_intmap_dense(void **state)
{
	struct store_intmap dense = {0}, hashed = {0};
	uint32_t v;

	assert_int_equal(store_intmap_dense(&dense, 1000), 0);
	for (uint64_t k = 1; k < 5000; k += 7) {
		assert_int_equal(store_intmap_put(&dense, k, (uint32_t)(k * 3)), 0);
		assert_int_equal(store_intmap_put(&hashed, k, (uint32_t)(k * 3)), 0);
	}
	assert_int_equal(store_intmap_put(&dense, 8, 0), 0); /* value 0 is a value */
	assert_int_equal(store_intmap_put(&hashed, 8, 0), 0);
	for (uint64_t k = 0; k < 6000; k++) {
		bool in = k % 7 == 1 && k < 5000;
		assert_int_equal(store_intmap_get(&dense, k, &v), in);
		assert_int_equal(store_intmap_get(&hashed, k, &v), in);
		if (in)
			assert_int_equal(v, k == 8 ? 0 : k * 3);
	}
	assert_false(store_intmap_get(&dense, UINT64_MAX, &v));
	store_intmap_free(&dense);
	store_intmap_free(&hashed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_time_range),
		cmocka_unit_test(test_select_by_target),
		cmocka_unit_test(test_list_targets),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_max_stacks),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_hash_collision),
		cmocka_unit_test(test_corrupt_rows),
		cmocka_unit_test(test_intmap_dense),
		cmocka_unit_test(test_query_timeout),
		cmocka_unit_test(test_many_stacks),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
