/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tld_cli_vmlinux.h - the few kernel types the tld inspector's iterator needs,
 * instead of a vmlinux.h dumped from one kernel's BTF.
 *
 * Kernel structs carry preserve_access_index: every field access is a CO-RE
 * relocation that libbpf fixes up against the running kernel's BTF at load
 * time, so only the fields read are declared, in any order.
 */
#ifndef __TLD_CLI_VMLINUX_H
#define __TLD_CLI_VMLINUX_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;

/* Used by the helper prototypes in <bpf/bpf_helper_defs.h>. */
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;

/* uapi <linux/bpf.h>: only the values used here. */
enum bpf_map_type {
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_F_NO_PREALLOC = 1U << 0,
};

struct task_struct {
	int pid;		/* thread id (user space's tid) */
	int tgid;		/* thread group id (user space's pid) */
	char comm[16];		/* the thread's name */
	struct task_struct *group_leader;	/* the process's main thread */
} __attribute__((preserve_access_index));

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

/* Context of an iter/task program: one call per task, then one with task NULL. */
struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

#endif /* __TLD_CLI_VMLINUX_H */
