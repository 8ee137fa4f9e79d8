/*
 * test_btf_archive.c - the BTF archive: index parsing (good and malformed
 * indexes), lookup by release and build (exact, BTFHub's any-build,
 * another build of the release), zstd blobs, and the archive compiled into
 * this build: same entries as build/btf-archive/index, each a valid BTF of
 * the recorded size, made for the objects whose sha256 btfgen.sh prints.
 */
#include "testutil.h"

#include <errno.h>
#include <zstd.h>

#include <bpf/btf.h>

#include "agent/btf_archive.h"
#include "agent/btf_archive_embedded.h"

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char good[] =
	"ember-btf-archive\t1\n"
	"# a comment\n"
	"objects\t" HASH "\n"
	"entry\t6.1.0-57-cloud-amd64\t#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\t"
	"6.1.0-57-cloud-amd64/aaa.btf.zst\t205\tDebian linux-image-6.1.0-57-cloud-amd64\n"
	"\n"
	"entry\t5.4.0-100-generic\t*\t5.4.0-100-generic/any.btf.zst\t4000\tBTFHub ubuntu 20.04\n"
	"entry\t5.4.0-100-generic\t#7 SMP Mon Jan 1\t5.4.0-100-generic/b7.btf.zst\t4100\tbuilt\n";

static void test_parse_and_find(void **state)
{
	struct ember_btf_archive a;
	const struct ember_btf_entry *e, *other;
	char err[256];

	assert_int_equal(ember_btf_archive_parse(good, strlen(good), &a, err, sizeof(err)), 0);
	assert_string_equal(a.objects, HASH);
	assert_int_equal(a.n_entries, 3);
	assert_string_equal(a.entries[0].file, "6.1.0-57-cloud-amd64/aaa.btf.zst");
	assert_int_equal(a.entries[0].raw_size, 205);
	assert_string_equal(a.entries[0].origin, "Debian linux-image-6.1.0-57-cloud-amd64");

	/* exact release and build */
	e = ember_btf_archive_find(a.entries, a.n_entries, "6.1.0-57-cloud-amd64",
				   "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)", &other);
	assert_ptr_equal(e, &a.entries[0]);
	assert_null(other);
	/* another build of the same release: refused, and named */
	e = ember_btf_archive_find(a.entries, a.n_entries, "6.1.0-57-cloud-amd64",
				   "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-4 (2026-12-01)", &other);
	assert_null(e);
	assert_ptr_equal(other, &a.entries[0]);
	/* an exact build beats the any-build entry; an unknown build takes it */
	e = ember_btf_archive_find(a.entries, a.n_entries, "5.4.0-100-generic", "#7 SMP Mon Jan 1",
				   &other);
	assert_ptr_equal(e, &a.entries[2]);
	e = ember_btf_archive_find(a.entries, a.n_entries, "5.4.0-100-generic", "#8 SMP", &other);
	assert_ptr_equal(e, &a.entries[1]);
	assert_null(other);
	/* an unknown release */
	assert_null(ember_btf_archive_find(a.entries, a.n_entries, "5.10.0-1", "#1", &other));
	assert_null(other);
	ember_btf_archive_free(&a);
}

static void expect_bad(const char *text, const char *why)
{
	struct ember_btf_archive a;
	char err[256] = "";

	assert_int_equal(ember_btf_archive_parse(text, strlen(text), &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, why));
	assert_null(a.entries);
	assert_int_equal(a.n_entries, 0);
}

#define HEAD "ember-btf-archive\t1\nobjects\t" HASH "\n"
#define REL "6.1.0-57-cloud-amd64\t#1 SMP"

static void test_malformed(void **state)
{
	expect_bad("", "empty index");
	expect_bad("ember-btf-archive\t2\n", "line 1: not an ember BTF archive");
	expect_bad("entry\tx\n", "line 1: not an ember BTF archive");
	expect_bad("ember-btf-archive\t1\n", "no objects line");
	expect_bad("ember-btf-archive\t1\nobjects\t0123\n", "line 2: objects");
	expect_bad("ember-btf-archive\t1\nobjects\t" HASH "0\n", "line 2: objects");
	expect_bad(HEAD "entry\t" REL "\tf.zst\t10\n", "line 3: entry: expected 5");
	expect_bad(HEAD "entry\t" REL "\tf.zst\t10\to\textra\n", "line 3: entry: expected 5");
	expect_bad(HEAD "entry\t6.1/x\t#1\tf.zst\t10\to\n", "bad release");
	expect_bad(HEAD "entry\t6.1 x\t#1\tf.zst\t10\to\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\t../etc/passwd\t10\to\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\ta/../../b\t10\to\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\t/abs.zst\t10\to\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\tf.zst\t0\to\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\tf.zst\t67108865\to\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\tf.zst\t12x\to\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\tf.zst\t10\t\x01\n", "bad release");
	expect_bad(HEAD "entry\t" REL "\tf.zst\t10\t\n", "bad release");
	expect_bad(HEAD "something\telse\n", "line 3: unknown record 'something'");

	/* a NUL inside */
	static const char nul[] = HEAD "entry\t" REL "\tf\0.zst\t10\to\n";
	struct ember_btf_archive a;
	char err[128];
	assert_int_equal(ember_btf_archive_parse(nul, sizeof(nul) - 1, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));

	/* "..." and "a..b" are names, not parent directories */
	static const char dots[] = HEAD "entry\t" REL "\ta..b/...zst\t10\to\n";
	assert_int_equal(ember_btf_archive_parse(dots, strlen(dots), &a, err, sizeof(err)), 0);
	ember_btf_archive_free(&a);
}

static void test_entry_limit(void **state)
{
	size_t cap = 64 + (EMBER_BTF_MAX_ENTRIES + 1) * 64;
	char *text = malloc(cap);
	size_t len = (size_t)snprintf(text, cap, HEAD);
	struct ember_btf_archive a;
	char err[128];

	for (int i = 0; i < EMBER_BTF_MAX_ENTRIES; i++)
		len += (size_t)snprintf(text + len, cap - len, "entry\tr%d\t#1\tr%d/x.zst\t10\to\n", i, i);
	assert_int_equal(ember_btf_archive_parse(text, len, &a, err, sizeof(err)), 0);
	assert_int_equal(a.n_entries, EMBER_BTF_MAX_ENTRIES);
	ember_btf_archive_free(&a);
	len += (size_t)snprintf(text + len, cap - len, "entry\tone\t#1\tone/x.zst\t10\to\n");
	assert_int_equal(ember_btf_archive_parse(text, len, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "more than"));
	free(text);
}

static void test_decompress(void **state)
{
	char raw[3000], z[4096], err[128];
	void *out;
	size_t outlen;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (char)(i * 7 % 251);
	size_t zlen = ZSTD_compress(z, sizeof(z), raw, sizeof(raw), 3);
	assert_false(ZSTD_isError(zlen));

	assert_int_equal(ember_btf_decompress(z, zlen, sizeof(raw), &out, &outlen, err, sizeof(err)), 0);
	assert_int_equal(outlen, sizeof(raw));
	assert_memory_equal(out, raw, sizeof(raw));
	free(out);
	/* the size from the frame header */
	assert_int_equal(ember_btf_decompress(z, zlen, 0, &out, &outlen, err, sizeof(err)), 0);
	assert_int_equal(outlen, sizeof(raw));
	free(out);
	/* the index disagrees with the frame */
	assert_int_equal(ember_btf_decompress(z, zlen, 2999, &out, &outlen, err, sizeof(err)), -EINVAL);
	assert_null(out);
	assert_non_null(strstr(err, "index says 2999"));
	/* truncated, and not zstd at all */
	assert_int_equal(ember_btf_decompress(z, zlen - 5, sizeof(raw), &out, &outlen, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(ember_btf_decompress(raw, 100, 10, &out, &outlen, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a zstd frame"));
}

static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;

	if (!f)
		return NULL;
	buf = calloc(1, 1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	return buf;
}

/* The archive in this binary is build/btf-archive, made for these objects. */
static void test_embedded_matches_build(void **state)
{
	struct ember_btf_archive a;
	size_t len = 0;
	char err[256], line[128];
	char *text = read_text("build/btf-archive/index", &len);

	if (!text)
		skip(); /* built elsewhere */
	assert_int_equal(ember_btf_archive_parse(text, len, &a, err, sizeof(err)), 0);
	free(text);
	assert_string_equal(a.objects, ember_btf_objects_hash);
	assert_int_equal(a.n_entries, ember_btf_embedded_count);
	for (size_t i = 0; i < a.n_entries; i++) {
		const struct ember_btf_entry *e = &ember_btf_embedded[i];
		void *raw;
		size_t rawlen;
		assert_string_equal(e->release, a.entries[i].release);
		assert_string_equal(e->version, a.entries[i].version);
		assert_int_equal(e->raw_size, a.entries[i].raw_size);
		assert_int_equal(ember_btf_decompress(e->data, e->size, e->raw_size, &raw, &rawlen, err,
						      sizeof(err)),
				 0);
		struct btf *btf = btf__new(raw, (__u32)rawlen);
		assert_non_null(btf);
		assert_true(btf__type_cnt(btf) > 1);
		btf__free(btf);
		free(raw);
	}
	ember_btf_archive_free(&a);

	/* the oracle: sha256sum over the objects, as the build hashed them */
	FILE *p = popen("cat $(ls build/bpf/*/*.bpf.o | LC_ALL=C sort) | sha256sum", "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	pclose(p);
	line[EMBER_BTF_HASH_LEN] = '\0';
	assert_string_equal(line, ember_btf_objects_hash);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_find),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_entry_limit),
		cmocka_unit_test(test_decompress),
		cmocka_unit_test(test_embedded_matches_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
