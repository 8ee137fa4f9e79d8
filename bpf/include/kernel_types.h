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
} __attribute__((preserve_access_index));

struct mm_struct___ember {
	unsigned long start_stack;
} __attribute__((preserve_access_index));

/* x86: the user fs base, where Go keeps g (named fsbase since 4.14) */
struct thread_struct___ember {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct task_struct___ember {
	int pid;
	int tgid;
	void *stack;
	struct mm_struct___ember *mm;
	char comm[16];
	struct thread_struct___ember thread;
} __attribute__((preserve_access_index));

#endif
