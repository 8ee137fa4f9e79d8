/*
 * net_hooks.c - reading the kernel's offer of hooks from its BTF and sysfs.
 *
 * A tracepoint X usable as tp_btf has a "btf_trace_X" typedef in vmlinux
 * BTF, a pointer to the prototype of its probe: (void *data, args...), so
 * its argument count is the prototype's length minus one.  fentry needs
 * the target functions as BTF FUNCs; kprobes need the kprobe PMU (or the
 * legacy tracefs interface libbpf falls back to).  Whether fentry really
 * attaches is only known by trying: net_bpf.c does, and falls back.
 */
#include "net/net_hooks.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

const char *const ember_net_io_names[EMBER_NET_IO__COUNT] = {"fentry", "kprobe", "tracepoint"};

/* Arguments of tracepoint name (without the data pointer), -1 if absent. */
static int tracepoint_args(const struct btf *btf, const char *name)
{
	char tname[128];
	const struct btf_type *t;
	int id;

	snprintf(tname, sizeof(tname), "btf_trace_%s", name);
	id = btf__find_by_name_kind(btf, tname, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, (unsigned)id);
	while (t && (btf_is_typedef(t) || btf_is_ptr(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t) || btf_vlen(t) < 1)
		return -1;
	return btf_vlen(t) - 1;
}

static bool has_func(const struct btf *btf, const char *name)
{
	return btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
}

void ember_net_probe_features(struct ember_net_features *f)
{
	struct btf *btf;

	memset(f, 0, sizeof(*f));
	f->kprobes = access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0 ||
		     access("/sys/kernel/tracing/kprobe_events", F_OK) == 0 ||
		     access("/sys/kernel/debug/tracing/kprobe_events", F_OK) == 0;
	btf = btf__load_vmlinux_btf();
	if (!btf || libbpf_get_error(btf))
		return;
	f->btf = true;
	f->fentry_targets = has_func(btf, "tcp_sendmsg") && has_func(btf, "tcp_cleanup_rbuf");
	f->tp_send_recv = tracepoint_args(btf, "sock_send_length") >= 2 &&
			  tracepoint_args(btf, "sock_recv_length") >= 3;
	f->tp_state = tracepoint_args(btf, "inet_sock_set_state") >= 3;
	f->tp_retransmit = tracepoint_args(btf, "tcp_retransmit_skb") >= 1;
	f->tp_send_reset = tracepoint_args(btf, "tcp_send_reset") >= 1;
	f->tp_receive_reset = tracepoint_args(btf, "tcp_receive_reset") >= 1;
	f->tp_destroy = tracepoint_args(btf, "tcp_destroy_sock") >= 1;
	int n = tracepoint_args(btf, "kfree_skb");
	f->kfree_skb_args = n > 0 ? n : 0;
	btf__free(btf);
}

int ember_net_io_parse(const char *name)
{
	if (!name || !*name || strcmp(name, "auto") == 0)
		return -1;
	for (int i = 0; i < EMBER_NET_IO__COUNT; i++)
		if (strcmp(name, ember_net_io_names[i]) == 0)
			return i;
	return -2;
}

bool ember_net_io_possible(const struct ember_net_features *f, enum ember_net_io io,
			   const char **why)
{
	switch (io) {
	case EMBER_NET_IO_FENTRY:
		if (!f->btf) {
			*why = "fentry: no kernel BTF";
			return false;
		}
		if (!f->fentry_targets) {
			*why = "fentry: tcp_sendmsg or tcp_cleanup_rbuf missing from the kernel's BTF";
			return false;
		}
		return true;
	case EMBER_NET_IO_KPROBE:
		if (!f->kprobes) {
			*why = "kprobe: the kernel has no kprobes (CONFIG_KPROBES off)";
			return false;
		}
		return true;
	case EMBER_NET_IO_TRACEPOINT:
		if (!f->btf || !f->tp_send_recv) {
			*why = "tracepoint: no sock_send_length/sock_recv_length tracepoints "
			       "(added in 6.3)";
			return false;
		}
		return true;
	default:
		*why = "unknown hook family";
		return false;
	}
}
