/*
 * kernel_types.h - the few kernel structures the BPF programs read, as CO-RE types.
 *
 * Instead of a multi-megabyte vmlinux.h generated from the build machine's
 * kernel, the programs declare only the fields they touch, marked
 * preserve_access_index: libbpf relocates each field offset at load time
 * against the running kernel's BTF (/sys/kernel/btf/vmlinux, or a file from
 * btf-archive/).  The "___ember" suffix keeps these apart from the UAPI
 * definitions of the same names; libbpf ignores the suffix when matching.
 */
#ifndef EMBER_KERNEL_TYPES_H
#define EMBER_KERNEL_TYPES_H

#include <linux/types.h>

struct pt_regs___ember {
	unsigned long bp;
	unsigned long ip;
	unsigned long cs;
	unsigned long sp;
	/* syscall arguments and number (raw sys_enter/sys_exit, bpf/spans/) */
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct mm_struct___ember {
	unsigned long start_code, end_code;
	unsigned long start_stack;
} __attribute__((preserve_access_index));

struct files_struct___ember;

/* live: threads not yet exiting; 0 at sched_process_exit means the process is gone */
struct signal_struct___ember {
	struct {
		int counter;
	} live;
} __attribute__((preserve_access_index));

/* x86: the user fs base, where Go keeps g (named fsbase since 4.14) */
struct thread_struct___ember {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct task_struct___ember {
	unsigned int __state; /* since 5.14 (was `long state`, task_struct___ember_old) */
	int pid;
	int tgid;
	void *stack;
	struct mm_struct___ember *mm;
	char comm[16];
	struct files_struct___ember *files;
	struct signal_struct___ember *signal;
	struct thread_struct___ember thread;
	unsigned in_execve : 1; /* set by bprm_execve until the new image runs */
} __attribute__((preserve_access_index));

/* Before 5.14 the task state was `long state` (bpf/offcpu/, kernels before 5.18). */
struct task_struct___ember_old {
	long state;
} __attribute__((preserve_access_index));

/*
 * From a file descriptor to its TCP socket (bpf/spans/):
 * task->files->fdt->fd[fd] is a struct file; a socket's inode has S_IFSOCK
 * in i_mode, and its private_data is the struct socket, whose sk holds the
 * protocol and the addresses.
 */
struct fdtable___ember {
	unsigned int max_fds;
	struct file___ember **fd;
} __attribute__((preserve_access_index));

struct files_struct___ember {
	struct fdtable___ember *fdt;
} __attribute__((preserve_access_index));

struct super_block___ember {
	unsigned int s_dev;
} __attribute__((preserve_access_index));

struct inode___ember {
	unsigned short i_mode;
	unsigned long i_ino;
	struct super_block___ember *i_sb;
} __attribute__((preserve_access_index));

struct file___ember {
	struct inode___ember *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

/* A VMA, as bpf_find_vma's callback sees it (the file's inode: vm_file->f_inode). */
struct vm_area_struct___ember {
	unsigned long vm_start, vm_end, vm_pgoff;
	struct file___ember *vm_file;
} __attribute__((preserve_access_index));

/*
 * Networking (bpf/net/net.bpf.c, bpf/spans/).  The address and port fields
 * of sock_common sit inside anonymous unions in the kernel; libbpf finds a
 * field of the local type inside such unions of the target by name, so
 * they are declared flat here.  skc_v6_* exist only with CONFIG_IPV6
 * (checked with bpf_core_field_exists); sk_protocol was a bit-field
 * before 5.6 (read with BPF_CORE_READ_BITFIELD_PROBED).
 */
struct in6_addr___ember {
	__u8 s6_addr[16];
};

struct ns_common___ember {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net___ember {
	struct ns_common___ember ns;
} __attribute__((preserve_access_index));

struct sock_common___ember {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct {
		struct net___ember *net;
	} skc_net;
	struct in6_addr___ember skc_v6_daddr;
	struct in6_addr___ember skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock___ember {
	struct sock_common___ember __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
} __attribute__((preserve_access_index));

struct socket___ember {
	struct sock___ember *sk;
} __attribute__((preserve_access_index));

struct tcp_sock___ember {
	__u32 srtt_us;       /* smoothed RTT << 3, in microseconds */
	__u32 total_retrans; /* retransmitted segments over the connection's life */
} __attribute__((preserve_access_index));

struct sk_buff___ember {
	struct sock___ember *sk;
} __attribute__((preserve_access_index));

#endif
