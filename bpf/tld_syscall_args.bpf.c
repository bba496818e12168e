/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * A program that needs more kernel types than tld_vmlinux.h has: it reads a
 * syscall's arguments from struct pt_regs, and the calling thread's hint
 * value1 (tests/tests/full_vmlinux.rs). Built against a full vmlinux.h that
 * tld_bpf_build::write_vmlinux() made from the running kernel's BTF, on the
 * include path ahead of the generated header's directory: the generated
 * header takes it, and tld_vmlinux.h stays out of the build.
 */
#include "tld_generated.h"
#include <bpf/bpf_tracing.h>	/* BPF_PROG, PT_REGS_PARM2 */

#ifndef __VMLINUX_H__
#error "expected the full vmlinux.h on the include path"
#endif
#ifdef __TLD_VMLINUX_H
#error "tld_vmlinux.h was included next to a full vmlinux.h"
#endif

char LICENSE[] SEC("license") = "GPL";

/* Mirrored by Seen in tests/tests/full_vmlinux.rs. */
struct seen {
	__s32 tid;		/* in: the thread to watch */
	__s32 init_ret;		/* out: bpf_tld_init() for it */
	__s64 nr;		/* in: the syscall to watch */
	__u64 arg2;		/* out: its second argument */
	__s64 value1;		/* out: the thread's value1, or -1 */
	__u64 hits;		/* out: calls seen */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);	/* an enum tld_vmlinux.h lacks */
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seen);
} seen_map SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct bpf_tld tld;
	struct seen *s;
	__u32 zero = 0;
	int *v1;

	s = bpf_map_lookup_elem(&seen_map, &zero);
	if (!s || !s->tid || task->pid != s->tid || id != s->nr)
		return 0;
	s->arg2 = PT_REGS_PARM2(regs);
	s->init_ret = bpf_tld_init(task, &tld);
	v1 = s->init_ret ? 0 : bpf_tld_get(&tld, value1);
	s->value1 = v1 ? *v1 : -1;
	__sync_fetch_and_add(&s->hits, 1);
	return 0;
}
