/*
 * uprobe_links.c - the kernel's list of BPF uprobe links (a test tool).
 *
 *   uprobe_links
 *
 * Prints one line per perf_event BPF link on a uprobe or uretprobe, for
 * every link in the system (root):
 *   LINK_ID PROG_ID uprobe|uretprobe OFFSET FILE
 * from BPF_OBJ_GET_INFO_BY_FD on the link, which reports a uprobe link's
 * file and offset since Linux 6.6 (bpftool 7.1, Debian 12's, does not show
 * them).  The e2e tests use it as the kernel's own account of the probes an
 * agent holds on a file (spans_tls_detach.sh), apart from Ember's counters.
 * A kernel that does not fill the uprobe fields prints "?" for the file.
 * Exit 0, or 1 when links cannot be listed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

/*
 * struct bpf_link_info as Linux 6.6+ lays out a perf_event link (the uapi
 * header of the build host may predate it): type, id, prog_id, then the
 * union at offset 16: perf_event.type, 4 bytes of padding, and for a
 * uprobe file_name (u64 pointer), name_len, offset.
 */
struct link_info_6_6 {
	uint32_t type, id, prog_id, pad0;
	uint32_t perf_type, pad1;
	uint64_t file_name;
	uint32_t name_len, offset;
	uint64_t rest[24]; /* zero: room for fields of newer kernels */
};

#define LINK_TYPE_PERF_EVENT 7 /* BPF_LINK_TYPE_PERF_EVENT */
#define PERF_EVENT_UPROBE 1    /* BPF_PERF_EVENT_UPROBE */
#define PERF_EVENT_URETPROBE 2 /* BPF_PERF_EVENT_URETPROBE */

int main(void)
{
	uint32_t id = 0;
	int n = 0;

	for (;;) {
		if (bpf_link_get_next_id(id, &id)) {
			if (errno == ENOENT)
				break;
			fprintf(stderr, "uprobe_links: cannot list links: %s\n", strerror(errno));
			return 1;
		}
		int fd = bpf_link_get_fd_by_id(id);
		if (fd < 0)
			continue; /* gone meanwhile */
		char name[4096] = "";
		struct link_info_6_6 info;
		uint32_t len = sizeof(info);
		memset(&info, 0, sizeof(info));
		info.file_name = (uint64_t)(uintptr_t)name;
		info.name_len = sizeof(name);
		int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		if (rc || info.type != LINK_TYPE_PERF_EVENT ||
		    (info.perf_type != PERF_EVENT_UPROBE && info.perf_type != PERF_EVENT_URETPROBE))
			continue;
		printf("%u %u %s %u %s\n", info.id, info.prog_id,
		       info.perf_type == PERF_EVENT_UPROBE ? "uprobe" : "uretprobe", info.offset,
		       name[0] ? name : "?");
		n++;
	}
	fprintf(stderr, "uprobe_links: %d uprobe links\n", n);
	return 0;
}
