/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tld_vmlinux.h - the few kernel types a task-local-data BPF program needs,
 * as a small stand-in for a generated vmlinux.h.
 *
 * A program uses this file or a real vmlinux.h, not both: the two define the
 * same names. Include it first, or let "tld_generated.h" (or
 * "task_local_data.bpf.h") include it: they do when no vmlinux.h is on the
 * include path. If a full vmlinux.h was included already, this file is empty.
 * A program that includes its own vmlinux.h after "tld_generated.h" must have
 * that vmlinux.h on the include path (or include it first), or the generated
 * header takes this file instead and the two collide.
 *
 * Kernel structs declared here carry preserve_access_index, so every field
 * access is a CO-RE relocation that libbpf fixes up against the running
 * kernel's BTF at load time. Declare only the fields you read; their order and
 * offsets here do not matter.
 */
#ifndef __TLD_VMLINUX_H
#define __TLD_VMLINUX_H

#ifndef __VMLINUX_H__	/* a full vmlinux.h already has all of this */

/* Fixed-width integer types, as <linux/types.h> spells them for BPF. */
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

/* Same spelling as vmlinux.h; generated hint headers may use bool. */
typedef _Bool bool;
enum {
	false = 0,
	true = 1,
};

/*
 * uapi <linux/bpf.h>: only the values this project uses. The array types hold
 * a program's scratch space, e.g. a consistent value too large for the
 * 512-byte stack (see task_local_data.bpf.h, "Values too large for the
 * stack").
 */
enum bpf_map_type {
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_F_NO_PREALLOC = 1U << 0,	/* map_flags; required for local storage maps */
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1ULL << 0,	/* bpf_task_storage_get() flag */
};

/*
 * State of the numeric open-coded iterator behind bpf_for() (kernel 6.4+);
 * bpf_helpers.h only forward-declares it. Same definition as the kernel's.
 */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

/* CO-RE view of the kernel's task_struct. */
struct task_struct {
	int pid;	/* thread id (what user space calls the tid) */
	int tgid;	/* thread group id (what user space calls the pid) */
} __attribute__((preserve_access_index));

#endif /* !__VMLINUX_H__ */
#endif /* __TLD_VMLINUX_H */
