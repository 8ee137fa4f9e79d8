/*
 * test_pprof.c - the pprof encoder.
 *
 * A hand-built profile (an inline chain, kernel frames, a frame without a
 * function name, two processes) is encoded, gunzipped and unpacked with
 * protobuf-c, and its structure checked: string table, sample values,
 * inline chain folded into one Location with Lines innermost first, mapping
 * flags, function names, labels and root frames.  Then the real consumer,
 * `go tool pprof`, reads the file: -top must name the hot function first
 * and -traces must show the inline frames on lines of their own.
 */
#include "testutil.h"

#include <errno.h>
#include <unistd.h>
#include <zlib.h>

#include "core/profile.h"
#include "pprof/pprof.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile pb_profile;
typedef Perftools__Profiles__Location pb_location;
typedef Perftools__Profiles__Mapping pb_mapping;
typedef Perftools__Profiles__Sample pb_sample;

#define PERIOD_NS 10000000ULL /* 100 Hz */

struct fixture {
	struct ember_profile *p;
	uint32_t server, worker;
};

static uint32_t frame(struct ember_profile *p, const char *fn, const char *file, uint32_t line,
		      const char *module, const char *build_id, uint64_t addr, uint32_t flags)
{
	/* a start line that is the same for every frame of a function */
	struct ember_frame f = {.function = fn, .file = file, .line = line, .module = module,
				.build_id = build_id, .address = addr, .flags = flags,
				.start_line = fn && file ? (uint32_t)strlen(fn) : 0};
	uint32_t id = ember_profile_frame(p, &f);

	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

/*
 * server (pid 100): parse_digit<-parse_number<-parse (inline chain) x5,
 *                   ksys_read<-do_syscall_64 (kernel)<-libfoo.so+0x1234 x2
 * worker (pid 200): the same inline chain x3, handle x1
 * parse_digit is the hot function: 8 of 11 samples.
 */
static void build(struct fixture *fx)
{
	const char *server = "/usr/bin/server";
	struct ember_target t0 = {.pid = 100, .comm = "server", .exe = server, .service = "api",
				  .version = "1.2", .labels = "region=eu,zone=a"};
	struct ember_target t1 = {.pid = 200, .comm = "worker", .exe = "/usr/bin/worker"};
	struct ember_profile *p = ember_profile_new();

	assert_non_null(p);
	fx->p = p;
	p->period_ns = PERIOD_NS;
	p->start_ns = 1700000000000000000LL;
	p->duration_ns = 10000000000LL;
	fx->server = ember_profile_target(p, &t0);
	fx->worker = ember_profile_target(p, &t1);

	uint32_t main_f = frame(p, "main", "main.cc", 10, server, "abcd", 0x1000, 0);
	uint32_t handle = frame(p, "handle(Request&)", "handle.cc", 20, server, "abcd", 0x2000, 0);
	uint32_t digit = frame(p, "parse_digit", "parse.h", 5, server, "abcd", 0x3000,
			       EMBER_FRAME_INLINED);
	uint32_t number = frame(p, "parse_number", "parse.h", 15, server, "abcd", 0x3000,
				EMBER_FRAME_INLINED);
	uint32_t parse = frame(p, "parse", "parse.cc", 30, server, "abcd", 0x3000, 0);
	uint32_t unnamed = frame(p, NULL, NULL, 0, "/usr/lib/libfoo.so", "ff00", 0x1234, 0);
	uint32_t syscall = frame(p, "do_syscall_64", NULL, 0, "[kernel]", NULL,
				 0xffffffff81000000ULL, EMBER_FRAME_KERNEL);
	uint32_t ksys_read = frame(p, "ksys_read", NULL, 0, "[kernel]", NULL,
				   0xffffffff81000100ULL, EMBER_FRAME_KERNEL);

	uint32_t hot[] = {digit, number, parse, handle, main_f};
	uint32_t sys[] = {ksys_read, syscall, unnamed, handle, main_f};
	uint32_t shallow[] = {handle, main_f};

	assert_int_equal(ember_profile_add(p, fx->server, hot, 5, 5, 0), 0);
	assert_int_equal(ember_profile_add(p, fx->server, sys, 5, 2, 0), 0);
	assert_int_equal(ember_profile_add(p, fx->worker, hot, 5, 3, 0), 0);
	assert_int_equal(ember_profile_add(p, fx->worker, shallow, 2, 1, 0), 0);
}

/* gunzip data (gzip wrapper: windowBits 15 + 16) into a malloc'd buffer. */
static uint8_t *gunzip(const uint8_t *data, size_t len, size_t *out_len)
{
	z_stream zs;
	size_t cap = 4096;
	uint8_t *out = malloc(cap);
	int ret;

	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len;
	do {
		if (zs.total_out == cap) {
			cap *= 2;
			out = realloc(out, cap);
		}
		assert_non_null(out);
		zs.next_out = out + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		ret = inflate(&zs, Z_NO_FLUSH);
		assert_true(ret == Z_OK || ret == Z_STREAM_END || ret == Z_BUF_ERROR);
		assert_false(ret == Z_BUF_ERROR && zs.avail_out != 0); /* truncated input */
	} while (ret != Z_STREAM_END);
	*out_len = zs.total_out;
	inflateEnd(&zs);
	return out;
}

static pb_profile *encode_and_unpack(const struct ember_profile *p,
				     const struct ember_pprof_options *opt)
{
	uint8_t *gz, *raw;
	size_t gz_len, raw_len;
	pb_profile *prof;

	assert_int_equal(ember_pprof_encode(p, opt, &gz, &gz_len), 0);
	assert_true(gz_len > 18);
	assert_int_equal(gz[0], 0x1f); /* gzip magic */
	assert_int_equal(gz[1], 0x8b);
	raw = gunzip(gz, gz_len, &raw_len);
	prof = perftools__profiles__profile__unpack(NULL, raw_len, raw);
	assert_non_null(prof);
	free(gz);
	free(raw);
	return prof;
}

static const char *str(const pb_profile *prof, int64_t i)
{
	assert_true(i >= 0 && (size_t)i < prof->n_string_table);
	return prof->string_table[i];
}

static const pb_location *location(const pb_profile *prof, uint64_t id)
{
	assert_true(id >= 1 && id <= prof->n_location);
	assert_int_equal(prof->location[id - 1]->id, id);
	return prof->location[id - 1];
}

static const pb_mapping *mapping(const pb_profile *prof, uint64_t id)
{
	assert_true(id >= 1 && id <= prof->n_mapping);
	assert_int_equal(prof->mapping[id - 1]->id, id);
	return prof->mapping[id - 1];
}

static const char *function_name(const pb_profile *prof, uint64_t id)
{
	assert_true(id >= 1 && id <= prof->n_function);
	assert_int_equal(prof->function[id - 1]->id, id);
	assert_int_equal(prof->function[id - 1]->name, prof->function[id - 1]->system_name);
	return str(prof, prof->function[id - 1]->name);
}

/* Name of the function of line i of a location. */
static const char *line_name(const pb_profile *prof, const pb_location *loc, size_t i)
{
	assert_true(i < loc->n_line);
	return function_name(prof, loc->line[i]->function_id);
}

static const pb_sample *sample_with_count(const pb_profile *prof, int64_t count, size_t depth)
{
	for (size_t i = 0; i < prof->n_sample; i++) {
		const pb_sample *s = prof->sample[i];
		assert_int_equal(s->n_value, 2);
		if (s->value[0] == count && s->n_location_id == depth)
			return s;
	}
	fail_msg("no sample with count %lld and depth %zu", (long long)count, depth);
	return NULL;
}

static const char *label_str(const pb_profile *prof, const pb_sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (strcmp(str(prof, s->label[i]->key), key) == 0 && s->label[i]->str)
			return str(prof, s->label[i]->str);
	return NULL;
}

static int64_t label_num(const pb_profile *prof, const pb_sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (strcmp(str(prof, s->label[i]->key), key) == 0)
			return s->label[i]->num;
	return -1;
}

static void test_pprof_structure(void **state)
{
	struct fixture fx;
	pb_profile *prof;

	build(&fx);
	prof = encode_and_unpack(fx.p, NULL);
	/* Functions carry the start line of their frames */
	for (size_t i = 0; i < prof->n_function; i++) {
		const Perftools__Profiles__Function *fn = prof->function[i];
		const char *name = str(prof, fn->name), *file = str(prof, fn->filename);
		assert_int_equal(fn->start_line, file[0] ? strlen(name) : 0);
	}

	assert_true(prof->n_string_table > 1);
	assert_string_equal(prof->string_table[0], "");
	assert_int_equal(prof->n_sample_type, 2);
	assert_string_equal(str(prof, prof->sample_type[0]->type), "samples");
	assert_string_equal(str(prof, prof->sample_type[0]->unit), "count");
	assert_string_equal(str(prof, prof->sample_type[1]->type), "cpu");
	assert_string_equal(str(prof, prof->sample_type[1]->unit), "nanoseconds");
	assert_non_null(prof->period_type);
	assert_string_equal(str(prof, prof->period_type->type), "cpu");
	assert_string_equal(str(prof, prof->period_type->unit), "nanoseconds");
	assert_int_equal(prof->period, PERIOD_NS);
	assert_int_equal(prof->time_nanos, 1700000000000000000LL);
	assert_int_equal(prof->duration_nanos, 10000000000LL);

	/* 4 stacks, values {count, count * period}; no labels unless asked */
	assert_int_equal(prof->n_sample, 4);
	int64_t total = 0;
	for (size_t i = 0; i < prof->n_sample; i++) {
		const pb_sample *s = prof->sample[i];
		assert_int_equal(s->value[1], s->value[0] * (int64_t)PERIOD_NS);
		assert_int_equal(s->n_label, 0);
		total += s->value[0];
	}
	assert_int_equal(total, 11);

	/* the inline chain is one Location, lines innermost first */
	const pb_sample *hot = sample_with_count(prof, 5, 3);
	const pb_location *chain = location(prof, hot->location_id[0]);
	assert_int_equal(chain->address, 0x3000);
	assert_int_equal(chain->n_line, 3);
	assert_string_equal(line_name(prof, chain, 0), "parse_digit");
	assert_string_equal(line_name(prof, chain, 1), "parse_number");
	assert_string_equal(line_name(prof, chain, 2), "parse");
	assert_int_equal(chain->line[0]->line, 5);
	assert_int_equal(chain->line[1]->line, 15);
	assert_int_equal(chain->line[2]->line, 30);
	assert_string_equal(line_name(prof, location(prof, hot->location_id[1]), 0),
			    "handle(Request&)");
	assert_string_equal(line_name(prof, location(prof, hot->location_id[2]), 0), "main");
	/* the worker's identical stack shares the Locations */
	const pb_sample *hot2 = sample_with_count(prof, 3, 3);
	assert_memory_equal(hot->location_id, hot2->location_id, 3 * sizeof(uint64_t));

	/* the server binary is mapping 1 (pprof's "main binary") and fully symbolized */
	const pb_mapping *m = mapping(prof, chain->mapping_id);
	assert_int_equal(m->id, 1);
	assert_string_equal(str(prof, m->filename), "/usr/bin/server");
	assert_string_equal(str(prof, m->build_id), "abcd");
	assert_true(m->has_functions && m->has_filenames && m->has_line_numbers &&
		    m->has_inline_frames);

	/* kernel frames, then the unnamed frame, each in its own mapping */
	const pb_sample *sys = sample_with_count(prof, 2, 5);
	const pb_location *kread = location(prof, sys->location_id[0]);
	assert_string_equal(line_name(prof, kread, 0), "ksys_read");
	assert_int_equal(kread->address, 0xffffffff81000100ULL);
	m = mapping(prof, kread->mapping_id);
	assert_string_equal(str(prof, m->filename), "[kernel]");
	assert_true(m->has_functions);
	assert_false(m->has_filenames || m->has_line_numbers || m->has_inline_frames);
	assert_string_equal(line_name(prof, location(prof, sys->location_id[1]), 0),
			    "do_syscall_64");
	assert_int_equal(location(prof, sys->location_id[1])->mapping_id, kread->mapping_id);

	const pb_location *foo = location(prof, sys->location_id[2]);
	assert_int_equal(foo->address, 0x1234);
	assert_int_equal(foo->n_line, 1);
	assert_string_equal(line_name(prof, foo, 0), "libfoo.so+0x1234");
	m = mapping(prof, foo->mapping_id);
	assert_string_equal(str(prof, m->filename), "/usr/lib/libfoo.so");
	assert_string_equal(str(prof, m->build_id), "ff00");
	assert_false(m->has_functions || m->has_filenames || m->has_line_numbers ||
		     m->has_inline_frames);

	/* everything deduplicated */
	assert_int_equal(prof->n_mapping, 3);
	assert_int_equal(prof->n_location, 6);
	assert_int_equal(prof->n_function, 8);
	for (size_t i = 0; i < prof->n_string_table; i++)
		for (size_t j = i + 1; j < prof->n_string_table; j++)
			assert_string_not_equal(prof->string_table[i], prof->string_table[j]);

	perftools__profiles__profile__free_unpacked(prof, NULL);
	ember_profile_free(fx.p);
}

static void test_pprof_labels_and_root(void **state)
{
	struct ember_pprof_options opt = {.process_labels = true, .target_labels = true,
					  .process_root = true, .comment = "ember record --all"};
	struct fixture fx;
	pb_profile *prof;

	build(&fx);
	prof = encode_and_unpack(fx.p, &opt);

	/* server's hot stack: 3 locations + the root frame naming the process */
	const pb_sample *s = sample_with_count(prof, 5, 4);
	assert_string_equal(line_name(prof, location(prof, s->location_id[3]), 0), "server");
	assert_int_equal(location(prof, s->location_id[3])->mapping_id, 0);
	assert_string_equal(label_str(prof, s, "process"), "server");
	assert_int_equal(label_num(prof, s, "pid"), 100);
	assert_string_equal(label_str(prof, s, "service"), "api");
	assert_string_equal(label_str(prof, s, "version"), "1.2");
	assert_string_equal(label_str(prof, s, "region"), "eu");
	assert_string_equal(label_str(prof, s, "zone"), "a");
	assert_int_equal(s->n_label, 6);

	s = sample_with_count(prof, 3, 4);
	assert_string_equal(line_name(prof, location(prof, s->location_id[3]), 0), "worker");
	assert_string_equal(label_str(prof, s, "process"), "worker");
	assert_int_equal(label_num(prof, s, "pid"), 200);
	assert_null(label_str(prof, s, "service"));
	assert_int_equal(s->n_label, 2);

	assert_int_equal(prof->n_comment, 1);
	assert_string_equal(str(prof, prof->comment[0]), "ember record --all");
	assert_int_equal(prof->n_function, 10);

	perftools__profiles__profile__free_unpacked(prof, NULL);
	ember_profile_free(fx.p);
}

static void test_pprof_empty_and_invalid(void **state)
{
	struct ember_profile *p = ember_profile_new();
	pb_profile *prof = encode_and_unpack(p, NULL);
	uint32_t bogus[] = {12345};
	uint8_t *out;
	size_t len;

	assert_int_equal(prof->n_sample, 0);
	assert_int_equal(prof->n_string_table >= 1, 1);
	assert_string_equal(prof->string_table[0], "");
	perftools__profiles__profile__free_unpacked(prof, NULL);

	/* a stack naming a frame the profile does not have is refused, not read */
	assert_int_equal(ember_profile_add(p, 0, bogus, 1, 1, 0), 0);
	assert_int_equal(ember_pprof_encode(p, NULL, &out, &len), -EINVAL);
	assert_null(out);
	ember_profile_free(p);
}

/* Many distinct frames: the dedup indexes grow and ids stay consistent. */
static void test_pprof_many_frames(void **state)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 1, .comm = "x"};
	uint32_t target = ember_profile_target(p, &t);
	char name[32];
	pb_profile *prof;

	for (uint32_t i = 0; i < 2000; i++) {
		uint32_t ids[2];
		snprintf(name, sizeof(name), "fn%u", i);
		ids[0] = frame(p, name, NULL, 0, "/bin/x", NULL, 0x1000 + i, 0);
		ids[1] = frame(p, "main", NULL, 0, "/bin/x", NULL, 0x10, 0);
		assert_int_equal(ember_profile_add(p, target, ids, 2, i + 1, 0), 0);
	}
	prof = encode_and_unpack(p, NULL);
	assert_int_equal(prof->n_sample, 2000);
	assert_int_equal(prof->n_location, 2001);
	assert_int_equal(prof->n_function, 2001);
	assert_int_equal(prof->n_mapping, 1);
	for (size_t i = 0; i < prof->n_sample; i++) {
		const pb_sample *s = prof->sample[i];
		const pb_location *leaf = location(prof, s->location_id[0]);
		snprintf(name, sizeof(name), "fn%lld", (long long)(s->value[0] - 1));
		assert_string_equal(line_name(prof, leaf, 0), name);
		assert_int_equal(leaf->address, 0x1000 + (uint64_t)(s->value[0] - 1));
		assert_string_equal(line_name(prof, location(prof, s->location_id[1]), 0), "main");
	}
	perftools__profiles__profile__free_unpacked(prof, NULL);
	ember_profile_free(p);
}

/* ---- the real consumer: go tool pprof ---- */

static bool have_go(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		size_t len = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s/go", (int)len, path);
		if (len && access(buf, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

/* Run `go tool pprof <args> <file>` in dir; returns its stdout (malloc'd). */
static char *run_pprof(const char *dir, const char *args)
{
	char cmd[1024], *out = NULL;
	size_t cap = 0, len = 0, n;
	char chunk[4096];
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "cd %s && HOME=%s GOCACHE=%s/gocache PPROF_TMPDIR=%s go tool pprof %s "
		 "profile.pb.gz 2>%s/stderr",
		 dir, dir, dir, dir, args, dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		memcpy(out + len, chunk, n);
		len += n;
	}
	assert_int_equal(pclose(f), 0);
	assert_non_null(out);
	out[len] = '\0';
	return out;
}

/* The line after the one containing `marker`, without leading blanks. */
static const char *line_after(const char *text, const char *marker)
{
	const char *s = strstr(text, marker);

	if (!s || !(s = strchr(s, '\n')))
		return NULL;
	s++;
	while (*s == ' ')
		s++;
	return s;
}

static void test_pprof_go_tool(void **state)
{
	char dir[] = "/tmp/ember-pprof-XXXXXX", path[256], cmd[300];
	struct fixture fx;
	char *top, *traces;
	const char *l, *hot;

	if (!have_go()) {
		printf("SKIPPED: go not installed\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/profile.pb.gz", dir);
	build(&fx);
	assert_int_equal(ember_pprof_write_file(fx.p, NULL, path), 0);
	ember_profile_free(fx.p);

	/* -top: the hot function first, 8 of 11 samples at 10ms = 80ms */
	top = run_pprof(dir, "-top");
	l = line_after(top, "flat%");
	assert_non_null(l);
	assert_true(strncmp(l, "80ms", 4) == 0);
	hot = strstr(l, "parse_digit");
	assert_non_null(hot);
	assert_true(hot < strchr(l, '\n'));
	assert_non_null(strstr(top, "libfoo.so+0x1234"));
	assert_non_null(strstr(top, "ksys_read"));

	/* -traces: each inlined function on a line of its own, innermost first */
	traces = run_pprof(dir, "-traces");
	l = line_after(traces, "parse_digit (inline)");
	assert_non_null(l);
	assert_true(strncmp(l, "parse_number (inline)\n", 22) == 0);
	l = line_after(l, "parse_number (inline)");
	assert_true(strncmp(l, "parse\n", 6) == 0);
	l = line_after(l, "parse");
	assert_true(strncmp(l, "handle(Request&)\n", 17) == 0);
	l = line_after(traces, "   ksys_read");
	assert_non_null(l);
	assert_true(strncmp(l, "do_syscall_64\n", 14) == 0);
	l = line_after(l, "do_syscall_64");
	assert_true(strncmp(l, "libfoo.so+0x1234\n", 17) == 0);

	free(top);
	free(traces);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pprof_structure),
		cmocka_unit_test(test_pprof_labels_and_root),
		cmocka_unit_test(test_pprof_empty_and_invalid),
		cmocka_unit_test(test_pprof_many_frames),
		cmocka_unit_test(test_pprof_go_tool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
