/*
 * test_flamegraph.c - the profile -> flame-graph JSON tree.
 *
 * A small profile built by hand is turned into JSON and compared with the
 * exact expected text, which pins down values, self counts, the order of
 * children (value descending, then name), merging of same-named frames
 * across stacks and targets, and that kernel and user frames of the same
 * name stay apart.  Then the bounds: node cap and value threshold.
 */
#include "testutil.h"

#include "core/profile.h"
#include "core/strbuf.h"
#include "server/flamegraph.h"

struct fixture {
	struct ember_profile *p;
	uint32_t t1, t2;
	uint32_t main_, work20, work25, compute, vfs_read, libfoo, sched_u, sched_k;
};

static uint32_t frame(struct ember_profile *p, const char *fn, const char *file, uint32_t line,
		      uint64_t addr, uint32_t flags)
{
	struct ember_frame f = {.function = fn, .file = file, .line = line,
				.module = flags & EMBER_FRAME_KERNEL ? "[kernel]" : "/usr/bin/app",
				.address = addr, .flags = flags};
	uint32_t id = ember_profile_frame(p, &f);

	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

static void add(struct fixture *fx, uint32_t target, uint64_t count, int n, ...)
{
	uint32_t frames[16];
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		frames[i] = va_arg(ap, uint32_t);
	va_end(ap);
	assert_int_equal(ember_profile_add(fx->p, target, frames, (uint32_t)n, count, 0), 0);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct ember_target t1 = {.pid = 10, .comm = "app"}, t2 = {.pid = 11, .comm = "app"};
	struct ember_frame anon = {.module = "/usr/lib/libfoo.so", .address = 0x1234};

	assert_non_null(fx);
	fx->p = ember_profile_new();
	assert_non_null(fx->p);
	fx->t1 = ember_profile_target(fx->p, &t1);
	fx->t2 = ember_profile_target(fx->p, &t2);
	fx->main_ = frame(fx->p, "main", "main.c", 10, 0x100, 0);
	fx->work20 = frame(fx->p, "work", "work.c", 20, 0x200, 0);
	fx->work25 = frame(fx->p, "work", "work.c", 25, 0x220, 0);
	fx->compute = frame(fx->p, "compute", "work.c", 30, 0x300, EMBER_FRAME_INLINED);
	fx->vfs_read = frame(fx->p, "vfs_read", NULL, 0, 0xffffffff81000000ULL,
			     EMBER_FRAME_KERNEL);
	fx->libfoo = ember_profile_frame(fx->p, &anon);
	fx->sched_u = frame(fx->p, "sched", NULL, 0, 0x400, 0);
	fx->sched_k = frame(fx->p, "sched", NULL, 0, 0xffffffff81000100ULL, EMBER_FRAME_KERNEL);

	/* stacks are leaf first */
	add(fx, fx->t1, 5, 3, fx->compute, fx->work20, fx->main_);
	add(fx, fx->t1, 3, 2, fx->work25, fx->main_); /* same name, other line: merged */
	add(fx, fx->t2, 2, 3, fx->compute, fx->work20, fx->main_); /* other target: merged */
	add(fx, fx->t1, 2, 2, fx->vfs_read, fx->main_);
	add(fx, fx->t1, 1, 1, fx->main_);
	add(fx, fx->t1, 1, 2, fx->libfoo, fx->main_);
	add(fx, fx->t1, 1, 2, fx->sched_u, fx->main_);
	add(fx, fx->t1, 1, 2, fx->sched_k, fx->main_);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	ember_profile_free(fx->p);
	free(fx);
	return 0;
}

static char *flame(const struct ember_profile *p, const struct ember_flame_limits *lim,
		   struct ember_flame_result *res)
{
	struct strbuf sb;

	sb_init(&sb);
	assert_int_equal(ember_flamegraph_json(p, lim, &sb, res), 0);
	return sb_detach(&sb, NULL);
}

static void test_full_tree(void **state)
{
	struct fixture *fx = *state;
	struct ember_flame_result res;
	char *json = flame(fx->p, NULL, &res);
	const char *want =
		"{\"name\":\"all\",\"value\":16,\"self\":0,\"children\":["
		"{\"name\":\"main\",\"value\":16,\"self\":1,\"file\":\"main.c\",\"line\":10,"
		"\"kernel\":false,\"inlined\":false,\"children\":["
		"{\"name\":\"work\",\"value\":10,\"self\":3,\"file\":\"work.c\",\"line\":20,"
		"\"kernel\":false,\"inlined\":false,\"children\":["
		"{\"name\":\"compute\",\"value\":7,\"self\":7,\"file\":\"work.c\",\"line\":30,"
		"\"kernel\":false,\"inlined\":true,\"children\":[]}]},"
		"{\"name\":\"vfs_read\",\"value\":2,\"self\":2,"
		"\"kernel\":true,\"inlined\":false,\"children\":[]},"
		"{\"name\":\"libfoo.so+0x1234\",\"value\":1,\"self\":1,"
		"\"kernel\":false,\"inlined\":false,\"children\":[]},"
		"{\"name\":\"sched\",\"value\":1,\"self\":1,"
		"\"kernel\":false,\"inlined\":false,\"children\":[]},"
		"{\"name\":\"sched\",\"value\":1,\"self\":1,"
		"\"kernel\":true,\"inlined\":false,\"children\":[]}]}]}";

	assert_string_equal(json, want);
	assert_int_equal(res.nodes, 8);
	assert_false(res.truncated);
	free(json);
}

static void test_node_cap(void **state)
{
	struct fixture *fx = *state;
	struct ember_flame_limits lim = {.max_nodes = 3};
	struct ember_flame_result res;
	char *json = flame(fx->p, &lim, &res);

	/* values 16,16,10,7,...: only root, main and work fit */
	assert_int_equal(res.nodes, 3);
	assert_true(res.truncated);
	assert_non_null(strstr(json, "\"name\":\"work\",\"value\":10,\"self\":3"));
	assert_null(strstr(json, "compute"));
	assert_null(strstr(json, "vfs_read"));
	/* the root still carries every sample */
	assert_non_null(strstr(json, "{\"name\":\"all\",\"value\":16,"));
	free(json);
}

static void test_min_fraction(void **state)
{
	struct fixture *fx = *state;
	struct ember_flame_limits lim = {.min_fraction = 0.1}; /* value >= 1.6 -> 2 */
	struct ember_flame_result res;
	char *json = flame(fx->p, &lim, &res);

	assert_int_equal(res.nodes, 5); /* all, main, work, compute, vfs_read */
	assert_true(res.truncated);
	assert_non_null(strstr(json, "\"name\":\"vfs_read\",\"value\":2"));
	assert_null(strstr(json, "sched"));
	assert_null(strstr(json, "libfoo"));
	free(json);
}

static void test_empty_profile(void **state)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_flame_result res;
	char *json;

	assert_non_null(p);
	json = flame(p, NULL, &res);
	assert_string_equal(json, "{\"name\":\"all\",\"value\":0,\"self\":0,\"children\":[]}");
	assert_int_equal(res.nodes, 1);
	assert_false(res.truncated);
	free(json);
	ember_profile_free(p);
}

/* A frame id the profile does not have is skipped, not dereferenced. */
static void test_dangling_frame(void **state)
{
	struct ember_profile *p = ember_profile_new();
	struct ember_target t = {.pid = 1, .comm = "x"};
	struct ember_frame f = {.function = "main\"quoted\"", .module = "/x"};
	uint32_t frames[2];
	char *json;

	assert_non_null(p);
	uint32_t tid = ember_profile_target(p, &t);
	frames[0] = 12345; /* dangling leaf */
	frames[1] = ember_profile_frame(p, &f);
	assert_int_equal(ember_profile_add(p, tid, frames, 2, 4, 0), 0);
	json = flame(p, NULL, NULL);
	assert_non_null(strstr(json, "{\"name\":\"main\\\"quoted\\\"\",\"value\":4,\"self\":4,"));
	free(json);
	ember_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_fraction, setup, teardown),
		cmocka_unit_test(test_empty_profile),
		cmocka_unit_test(test_dangling_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
