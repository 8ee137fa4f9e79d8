/*
 * fuzz_btf_archive.c - libFuzzer target for the BTF archive's index reader.
 *
 * The input is an index (btf-archive/btfgen.sh min writes them; ember
 * reads one from --btf-archive DIR, which may hold anything).  Every index
 * that parses is searched for a few kernels, and every entry's strings are
 * checked against the rules the parser promises: a release without blanks
 * or '/', a relative file without "..", a size within EMBER_BTF_MAX_RAW.
 * The input is also fed to the zstd reader with a small expected size.
 *
 * FUZZ_SOURCES: src/agent/btf_archive.c
 * FUZZ_LIBS: -lzstd
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/btf_archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ember_btf_archive a;
	char err[256];

	if (ember_btf_archive_parse((const char *)data, size, &a, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < a.n_entries; i++) {
			const struct ember_btf_entry *e = &a.entries[i];
			if (!*e->release || strchr(e->release, '/') || strchr(e->release, ' ') ||
			    e->file[0] == '/' || !strncmp(e->file, "../", 3) || strstr(e->file, "/../") ||
			    e->raw_size == 0 || e->raw_size > EMBER_BTF_MAX_RAW)
				abort();
			const struct ember_btf_entry *other;
			const struct ember_btf_entry *f =
				ember_btf_archive_find(a.entries, a.n_entries, e->release, e->version, &other);
			if (!f || strcmp(f->release, e->release))
				abort();
		}
		const struct ember_btf_entry *other;
		ember_btf_archive_find(a.entries, a.n_entries, "6.1.0-57-cloud-amd64", "#1 SMP", &other);
		ember_btf_archive_free(&a);
	}
	void *out;
	size_t outlen;
	if (ember_btf_decompress(data, size, 4096, &out, &outlen, err, sizeof(err)) == 0) {
		if (outlen != 4096)
			abort();
		free(out);
	}
	return 0;
}
