/*
 * test_folded.c - the folded (collapsed stack) writer.
 *
 * A hand-built profile with an inline chain, kernel frames, a frame without
 * a function name and two processes must print exactly the expected lines:
 * root first, kernel frames last with "_[k]", merged and sorted.
 */
#include "testutil.h"

#include "core/profile.h"
#include "core/strbuf.h"
#include "pprof/folded.h"

struct fixture {
	struct ember_profile *p;
	uint32_t server, worker;
	uint32_t main_f, handle, parse, parse_number, parse_digit, unnamed, syscall, ksys_read;
};

static uint32_t frame(struct ember_profile *p, const char *fn, const char *file, uint32_t line,
		      const char *module, uint64_t addr, uint32_t flags)
{
	struct ember_frame f = {.function = fn, .file = file, .line = line, .module = module,
				.build_id = "abcd", .address = addr, .flags = flags};
	uint32_t id = ember_profile_frame(p, &f);

	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

static void add(struct ember_profile *p, uint32_t target, const uint32_t *frames, uint32_t depth,
		uint64_t count, int64_t time_ns)
{
	assert_int_equal(ember_profile_add(p, target, frames, depth, count, time_ns), 0);
}

static void build(struct fixture *fx)
{
	const char *server = "/usr/bin/server";
	struct ember_target t0 = {.pid = 100, .comm = "server", .exe = server};
	struct ember_target t1 = {.pid = 200, .comm = "worker", .exe = "/usr/bin/worker"};

	fx->p = ember_profile_new();
	assert_non_null(fx->p);
	fx->server = ember_profile_target(fx->p, &t0);
	fx->worker = ember_profile_target(fx->p, &t1);
	fx->main_f = frame(fx->p, "main", "main.cc", 10, server, 0x1000, 0);
	fx->handle = frame(fx->p, "handle(Request&)", "handle.cc", 20, server, 0x2000, 0);
	/* parse_digit inlined into parse_number inlined into parse, all at 0x3000 */
	fx->parse_digit = frame(fx->p, "parse_digit", "parse.h", 5, server, 0x3000,
				EMBER_FRAME_INLINED);
	fx->parse_number = frame(fx->p, "parse_number", "parse.h", 15, server, 0x3000,
				 EMBER_FRAME_INLINED);
	fx->parse = frame(fx->p, "parse", "parse.cc", 30, server, 0x3000, 0);
	fx->unnamed = frame(fx->p, NULL, NULL, 0, "/usr/lib/libfoo.so", 0x1234, 0);
	fx->syscall = frame(fx->p, "do_syscall_64", NULL, 0, "[kernel]", 0xffffffff81000000ULL,
			    EMBER_FRAME_KERNEL);
	fx->ksys_read = frame(fx->p, "ksys_read", NULL, 0, "[kernel]", 0xffffffff81000100ULL,
			      EMBER_FRAME_KERNEL);

	uint32_t hot[] = {fx->parse_digit, fx->parse_number, fx->parse, fx->handle, fx->main_f};
	uint32_t sys[] = {fx->ksys_read, fx->syscall, fx->unnamed, fx->handle, fx->main_f};
	uint32_t shallow[] = {fx->handle, fx->main_f};

	add(fx->p, fx->server, hot, 5, 5, 0);
	add(fx->p, fx->server, sys, 5, 2, 0);
	add(fx->p, fx->worker, hot, 5, 2, 0);
	add(fx->p, fx->worker, hot, 5, 1, 1000); /* other time bucket: same line */
	add(fx->p, fx->worker, shallow, 2, 1, 0);
}

static char *format(const struct ember_profile *p, bool with_process)
{
	struct ember_folded_options opt = {.with_process = with_process};
	struct strbuf sb;

	sb_init(&sb);
	assert_int_equal(ember_folded_format(&sb, p, &opt), 0);
	return sb_detach(&sb, NULL);
}

static void test_folded_merges_processes(void **state)
{
	struct fixture fx;
	char *text;

	build(&fx);
	text = format(fx.p, false);
	assert_string_equal(text,
			    "main;handle(Request&) 1\n"
			    "main;handle(Request&);libfoo.so+0x1234;do_syscall_64_[k];ksys_read_[k] 2\n"
			    "main;handle(Request&);parse;parse_number;parse_digit 8\n");
	free(text);
	ember_profile_free(fx.p);
}

static void test_folded_with_process(void **state)
{
	struct fixture fx;
	char *text;

	build(&fx);
	text = format(fx.p, true);
	assert_string_equal(text,
			    "server;main;handle(Request&);libfoo.so+0x1234;do_syscall_64_[k];ksys_read_[k] 2\n"
			    "server;main;handle(Request&);parse;parse_number;parse_digit 5\n"
			    "worker;main;handle(Request&) 1\n"
			    "worker;main;handle(Request&);parse;parse_number;parse_digit 3\n");
	free(text);
	ember_profile_free(fx.p);
}

/* ';' would split a frame in two and '\n' would end the record: both are neutralized. */
static void test_folded_sanitizes_names(void **state)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 7, .comm = "odd;name\n"};
	uint32_t target = ember_profile_target(p, &t);
	uint32_t frames[2];
	char *text;

	frames[0] = frame(p, "operator;(int)\n", NULL, 0, "/bin/x", 0x10, 0);
	frames[1] = frame(p, "main\r\n", NULL, 0, "/bin/x", 0x20, 0);
	add(p, target, frames, 2, 4, 0);
	text = format(p, true);
	assert_string_equal(text, "odd:name;main;operator:(int) 4\n");
	free(text);
	ember_profile_free(p);
}

/* Two addresses in one function print the same line: one line, counts summed. */
static void test_folded_merges_addresses(void **state)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 7, .comm = "x"};
	uint32_t target = ember_profile_target(p, &t);
	uint32_t a[] = {frame(p, "f", NULL, 0, "/bin/x", 0x10, 0)};
	uint32_t b[] = {frame(p, "f", NULL, 0, "/bin/x", 0x14, 0)};
	uint32_t none[] = {0};
	char *text;

	add(p, target, a, 1, 3, 0);
	add(p, target, b, 1, 4, 0);
	add(p, target, none, 0, 1, 0); /* an empty stack still counts */
	text = format(p, false);
	assert_string_equal(text, "[unknown] 1\nf 7\n");
	free(text);
	ember_profile_free(p);
}

static void test_folded_write_file(void **state)
{
	struct fixture fx;
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);

	assert_non_null(f);
	build(&fx);
	assert_int_equal(ember_folded_write(f, fx.p, NULL), 0);
	fclose(f);
	assert_string_equal(mem,
			    "main;handle(Request&) 1\n"
			    "main;handle(Request&);libfoo.so+0x1234;do_syscall_64_[k];ksys_read_[k] 2\n"
			    "main;handle(Request&);parse;parse_number;parse_digit 8\n");
	free(mem);
	ember_profile_free(fx.p);
}

static void test_folded_empty(void **state)
{
	struct ember_profile *p = ember_profile_new();
	struct strbuf sb;

	sb_init(&sb);
	assert_int_equal(ember_folded_format(&sb, p, NULL), 0);
	assert_int_equal(sb.len, 0);
	sb_free(&sb);
	ember_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folded_merges_processes),
		cmocka_unit_test(test_folded_with_process),
		cmocka_unit_test(test_folded_sanitizes_names),
		cmocka_unit_test(test_folded_merges_addresses),
		cmocka_unit_test(test_folded_write_file),
		cmocka_unit_test(test_folded_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
