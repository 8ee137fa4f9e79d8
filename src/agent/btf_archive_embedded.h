/*
 * btf_archive_embedded.h - the BTF archive compiled into the binary.
 *
 * Generated at build time (btf-archive/btfgen.sh embed, into
 * build/gen/btf_archive_data.c) from the minimized entries `make` derives
 * from btf-archive/sources/ against the very BPF objects built into this
 * binary, so the embedded entries are never stale.
 */
#ifndef EMBER_AGENT_BTF_ARCHIVE_EMBEDDED_H
#define EMBER_AGENT_BTF_ARCHIVE_EMBEDDED_H

#include <stddef.h>

#include "agent/btf_archive.h"

extern const struct ember_btf_entry ember_btf_embedded[];
extern const size_t ember_btf_embedded_count;
/* sha256 (hex) of the BPF objects in this binary, as btfgen.sh computes it */
extern const char ember_btf_objects_hash[];

#endif
