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
	unsigned long start_stack;
} __attribute__((preserve_access_index));

struct files_struct___ember;

/* live: threads not yet exiting; 0 at sched_process_exit means the process is gone */
struct signal_struct___ember {
	struct {
		int counter;
	} live;
} __attribute__((preserve_access_index));

struct task_struct___ember {
	int pid;
	int tgid;
	void *stack;
	struct mm_struct___ember *mm;
	char comm[16];
	struct files_struct___ember *files;
	struct signal_struct___ember *signal;
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

struct inode___ember {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file___ember {
	struct inode___ember *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct in6_addr___ember {
	__u8 s6_addr[16];
} __attribute__((preserve_access_index));

/* The address fields sit in anonymous unions in the kernel; CO-RE finds them by name. */
struct sock_common___ember {
	__u32 skc_daddr;      /* __be32 */
	__u32 skc_rcv_saddr;  /* __be32 */
	__u16 skc_dport;      /* __be16 */
	__u16 skc_num;        /* host order */
	unsigned short skc_family;
	struct in6_addr___ember skc_v6_daddr;
	struct in6_addr___ember skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

/* sk_protocol is a bitfield before 5.6: read it with BPF_CORE_READ_BITFIELD_PROBED. */
struct sock___ember {
	struct sock_common___ember __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket___ember {
	struct sock___ember *sk;
} __attribute__((preserve_access_index));

#endif
