/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tld_cli_vmlinux.h - the few kernel types the tld inspector's iterator needs
 * beyond the library's tld_vmlinux.h, instead of a vmlinux.h dumped from one
 * kernel's BTF.
 *
 * Kernel structs carry preserve_access_index: every field access is a CO-RE
 * relocation that libbpf fixes up against the running kernel's BTF at load
 * time, so only the fields read are declared, in any order.
 */
#ifndef __TLD_CLI_VMLINUX_H
#define __TLD_CLI_VMLINUX_H

/* Integer types, the map constants, and task_struct's pid and tgid. */
#include "tld_vmlinux.h"

/*
 * The task fields only the inspector reads, as a CO-RE flavour of task_struct:
 * libbpf drops the ___tld_cli suffix and relocates each access against the
 * kernel's task_struct.
 */
struct task_struct___tld_cli {
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
