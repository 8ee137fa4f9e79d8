/*
 * kfeatures.c - probe the running kernel's BPF features by trying them.
 *
 * "The verifier knows the helper" and "the feature works" differ, so most
 * probes go further than libbpf's:
 *   - kprobes: open a kprobe perf event on tcp_sendmsg through the kprobe
 *     PMU and attach a two-instruction program to it (a kernel built
 *     without CONFIG_KPROBES, or one whose kprobes are refused, fails here);
 *   - fentry and tp_btf: load a program against the kernel's BTF id of
 *     tcp_sendmsg / btf_trace_sched_switch and attach it (this 6.18 VM
 *     loads fentry programs but refuses to attach them);
 *   - raw and classic tracepoints: load and attach to sched_switch and to
 *     the sys_enter_write syscall event;
 *   - bpf_task_pt_regs: verify bpf_task_pt_regs(bpf_get_current_task_btf())
 *     in a perf-event program, which needs BTF inside the kernel, not only
 *     a helper the verifier has heard of (libbpf_probe_bpf_helper() says yes
 *     on a kernel built without BTF, then the real program is rejected);
 *   - ring buffer, bpf_probe_read_user, bpf_loop: libbpf's map and helper
 *     probes; mmap-able arrays: create one and mmap it.
 * Each probe undoes what it did (programs, links, events, maps are closed).
 */
#include "agent/kfeatures.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "core/clock.h"

const char *const ember_kfeature_names[EMBER_KF__COUNT] = {
	[EMBER_KF_KERNEL_BTF] = "kernel_btf",
	[EMBER_KF_KPROBES] = "kprobes",
	[EMBER_KF_FENTRY] = "fentry",
	[EMBER_KF_TP_BTF] = "tp_btf",
	[EMBER_KF_RAW_TP] = "raw_tp",
	[EMBER_KF_TRACEPOINTS] = "tracepoints",
	[EMBER_KF_RINGBUF] = "ringbuf",
	[EMBER_KF_TASK_PT_REGS] = "task_pt_regs",
	[EMBER_KF_PROBE_READ_USER] = "probe_read_user",
	[EMBER_KF_BPF_LOOP] = "bpf_loop",
	[EMBER_KF_MMAP_MAPS] = "mmap_maps",
	[EMBER_KF_FIND_VMA] = "find_vma",
};

/* The kernel function and events the attach probes use (the net family's hooks). */
#define KPROBE_TARGET "tcp_sendmsg"
#define TRACEPOINT_TARGET "sched_switch"
#define SYSCALL_EVENT "syscalls/sys_enter_write"

int ember_kfeature_by_name(const char *name)
{
	for (int i = 0; i < EMBER_KF__COUNT; i++)
		if (!strcmp(name, ember_kfeature_names[i]))
			return i;
	return -1;
}

int ember_kfeatures_parse_list(const char *list, uint32_t *mask, char *err, size_t errlen)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");
		int f = -1;
		for (int i = 0; i < EMBER_KF__COUNT && f < 0; i++)
			if (strlen(ember_kfeature_names[i]) == n && !strncmp(p, ember_kfeature_names[i], n))
				f = i;
		if (f < 0 && n > 0) {
			int len = snprintf(err, errlen, "unknown feature '%.*s' (one of:", (int)(n > 32 ? 32 : n), p);
			for (int i = 0; i < EMBER_KF__COUNT && len > 0 && (size_t)len < errlen; i++)
				len += snprintf(err + len, errlen - (size_t)len, " %s", ember_kfeature_names[i]);
			if (len > 0 && (size_t)len < errlen)
				snprintf(err + len, errlen - (size_t)len, ")");
			return -EINVAL;
		}
		if (f >= 0)
			*mask |= 1u << f;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* ---- tiny programs ---------------------------------------------------------- */

#define INSN_CALL(fn) ((struct bpf_insn){.code = BPF_JMP | BPF_CALL, .imm = (fn)})
#define INSN_MOV_REG(dst, src) \
	((struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = (dst), .src_reg = (src)})
#define INSN_RET0_A ((struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0})
#define INSN_RET0_B ((struct bpf_insn){.code = BPF_JMP | BPF_EXIT})

static const struct bpf_insn return_zero[] = {INSN_RET0_A, INSN_RET0_B};

static int load_return_zero(enum bpf_prog_type type, struct bpf_prog_load_opts *opts)
{
	int fd = bpf_prog_load(type, "ember_probe", "GPL", return_zero, 2, opts);
	return fd < 0 ? -errno : fd;
}

static void set_errno_detail(char *why, const char *what, int err)
{
	snprintf(why, EMBER_KF_DETAIL_LEN, "%s: %s", what, strerror(err < 0 ? -err : err));
}

static int read_int_file(const char *path, long *out)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	char *end;
	*out = strtol(buf, &end, 10);
	return end == buf ? -EINVAL : 0;
}

/* Open a perf event (pid -1, CPU 0), attach a return-0 program of `type` to it. */
static bool attach_to_perf_event(struct perf_event_attr *attr, enum bpf_prog_type type, char *why)
{
	int pfd = (int)syscall(__NR_perf_event_open, attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0) {
		set_errno_detail(why, "perf_event_open", errno);
		return false;
	}
	int fd = load_return_zero(type, NULL);
	bool ok = false;
	if (fd < 0) {
		set_errno_detail(why, "program load", fd);
	} else if (ioctl(pfd, PERF_EVENT_IOC_SET_BPF, fd)) {
		set_errno_detail(why, "attach", errno);
	} else {
		ok = true;
	}
	if (fd >= 0)
		close(fd);
	close(pfd);
	return ok;
}

/* ---- the probes ------------------------------------------------------------- */

static bool probe_kprobes(char *why)
{
	long type;

	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL) != 1) {
		snprintf(why, EMBER_KF_DETAIL_LEN, "kprobe programs not supported");
		return false;
	}
	if (read_int_file("/sys/bus/event_source/devices/kprobe/type", &type)) {
		snprintf(why, EMBER_KF_DETAIL_LEN, "no kprobe PMU (CONFIG_KPROBES off?)");
		return false;
	}
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = (__u32)type,
		.config1 = (__u64)(uintptr_t)KPROBE_TARGET,
	};
	return attach_to_perf_event(&attr, BPF_PROG_TYPE_KPROBE, why);
}

/*
 * Load a return-0 program and attach it with BPF_RAW_TRACEPOINT_OPEN: to
 * the raw tracepoint tp, or (tp NULL) to the BTF id its load options name.
 */
static bool load_and_open_raw(enum bpf_prog_type type, struct bpf_prog_load_opts *opts,
			      const char *tp, char *why)
{
	int fd = load_return_zero(type, opts);
	if (fd < 0) {
		set_errno_detail(why, "program load", fd);
		return false;
	}
	int link = bpf_raw_tracepoint_open(tp, fd);
	bool ok = link >= 0;
	if (!ok)
		set_errno_detail(why, tp ? "attach to " TRACEPOINT_TARGET : "attach", errno);
	else
		close(link);
	close(fd);
	return ok;
}

static bool probe_btf_attach(const struct btf *vmlinux, enum bpf_attach_type at, const char *name,
			     int kind, char *why)
{
	if (!vmlinux) {
		snprintf(why, EMBER_KF_DETAIL_LEN, "needs the kernel's BTF");
		return false;
	}
	int id = btf__find_by_name_kind(vmlinux, name, kind);
	if (id <= 0) {
		snprintf(why, EMBER_KF_DETAIL_LEN, "%s not in the kernel's BTF", name);
		return false;
	}
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = at, .attach_btf_id = (__u32)id);
	return load_and_open_raw(BPF_PROG_TYPE_TRACING, &opts, NULL, why);
}

static bool probe_tracepoints(char *why)
{
	static const char *const roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
	char path[128];
	long id = -1;

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]) && id < 0; i++) {
		snprintf(path, sizeof(path), "%s/events/" SYSCALL_EVENT "/id", roots[i]);
		if (read_int_file(path, &id))
			id = -1;
	}
	if (id < 0) {
		snprintf(why, EMBER_KF_DETAIL_LEN, "no " SYSCALL_EVENT " event (tracefs not mounted?)");
		return false;
	}
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = PERF_TYPE_TRACEPOINT,
		.config = (__u64)id,
	};
	return attach_to_perf_event(&attr, BPF_PROG_TYPE_TRACEPOINT, why);
}

static bool probe_task_pt_regs(char *why)
{
	const struct bpf_insn insns[] = {
		INSN_CALL(BPF_FUNC_get_current_task_btf),
		INSN_MOV_REG(BPF_REG_1, BPF_REG_0),
		INSN_CALL(BPF_FUNC_task_pt_regs),
		INSN_RET0_A,
		INSN_RET0_B,
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_PERF_EVENT, "ember_probe", "GPL", insns,
			       sizeof(insns) / sizeof(insns[0]), NULL);
	if (fd < 0) {
		set_errno_detail(why, "verifier", errno);
		return false;
	}
	close(fd);
	return true;
}

/* A libbpf probe's answer: 1 yes, 0 "unknown to this kernel", < 0 the probe failed. */
static bool libbpf_answer(int rc, const char *what, char *why)
{
	if (rc == 1)
		return true;
	if (rc == 0)
		snprintf(why, EMBER_KF_DETAIL_LEN, "%s unknown to this kernel", what);
	else
		set_errno_detail(why, "probe", rc);
	return false;
}

static bool probe_mmap_maps(char *why)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ember_probe", sizeof(__u32), sizeof(__u64), 1,
				&opts);
	if (fd < 0) {
		set_errno_detail(why, "map create", errno);
		return false;
	}
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	bool ok = p != MAP_FAILED;
	if (ok)
		munmap(p, (size_t)page);
	else
		set_errno_detail(why, "mmap", errno);
	close(fd);
	return ok;
}

void ember_kfeatures_probe(struct ember_kfeatures *kf, uint32_t disabled)
{
	int64_t start = ember_monotonic_ns();
	struct btf *vmlinux = NULL;

	memset(kf, 0, sizeof(*kf));
	for (int f = 0; f < EMBER_KF__COUNT; f++) {
		char *why = kf->detail[f];
		bool have = false;

		if (disabled & (1u << f)) {
			kf->forced_off[f] = true;
			snprintf(why, EMBER_KF_DETAIL_LEN, "forced off");
			continue;
		}
		switch ((enum ember_kfeature)f) {
		case EMBER_KF_KERNEL_BTF:
			vmlinux = btf__load_vmlinux_btf();
			have = vmlinux != NULL;
			if (!have && errno == ESRCH) /* libbpf: nowhere it looks */
				snprintf(why, EMBER_KF_DETAIL_LEN, "no /sys/kernel/btf/vmlinux");
			else if (!have)
				set_errno_detail(why, "/sys/kernel/btf/vmlinux", errno);
			break;
		case EMBER_KF_KPROBES: have = probe_kprobes(why); break;
		case EMBER_KF_FENTRY:
			have = probe_btf_attach(vmlinux, BPF_TRACE_FENTRY, KPROBE_TARGET, BTF_KIND_FUNC, why);
			break;
		case EMBER_KF_TP_BTF:
			have = probe_btf_attach(vmlinux, BPF_TRACE_RAW_TP, "btf_trace_" TRACEPOINT_TARGET,
						BTF_KIND_TYPEDEF, why);
			break;
		case EMBER_KF_RAW_TP:
			have = load_and_open_raw(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL, TRACEPOINT_TARGET, why);
			break;
		case EMBER_KF_TRACEPOINTS: have = probe_tracepoints(why); break;
		case EMBER_KF_RINGBUF:
			have = libbpf_answer(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL),
					     "map type", why);
			break;
		case EMBER_KF_TASK_PT_REGS: have = probe_task_pt_regs(why); break;
		case EMBER_KF_PROBE_READ_USER:
		case EMBER_KF_BPF_LOOP:
		case EMBER_KF_FIND_VMA:
			have = libbpf_answer(libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT,
								     f == EMBER_KF_BPF_LOOP ? BPF_FUNC_loop
								     : f == EMBER_KF_FIND_VMA
									     ? BPF_FUNC_find_vma
									     : BPF_FUNC_probe_read_user,
								     NULL),
					     "helper", why);
			break;
		case EMBER_KF_MMAP_MAPS: have = probe_mmap_maps(why); break;
		case EMBER_KF__COUNT: break;
		}
		kf->have[f] = have;
		if (have)
			why[0] = '\0';
	}
	btf__free(vmlinux);
	kf->probe_ns = (uint64_t)(ember_monotonic_ns() - start);
}
