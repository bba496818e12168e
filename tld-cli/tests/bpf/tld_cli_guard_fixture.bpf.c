// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_cli_guard_fixture.bpf.c - a guarded tld_data_map for the inspector's
 * tests: the map and key map of task_local_data.bpf.h built with TLD_GUARD,
 * and a program that stamps a thread's element as the guard does.
 *
 * The real guard's program (tld-guard) needs BPF trampolines, which the test
 * machines may not have. The inspector finds a guard's key map through the
 * guard's program, by its name, tld_guard_stamp: this one has that name, and
 * stamps (rightly or wrongly) the thread the test names.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TLD_GUARD
struct tld_offsets {
	__s16 priority;
};
#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

struct stamp_ctx {
	__s32 tid;		/* in: the thread */
	__s32 wrong;		/* in: write a wrong stamp */
	__s32 ret;		/* out: 0, -ESRCH, -ENODATA, -EAGAIN (no key) */
};

SEC("syscall")
int tld_guard_stamp(struct stamp_ctx *ctx)
{
	const struct tld_guard_key *key = __tld_guard_key();
	struct stamp_ctx in = *ctx;
	struct tld_map_value *v;
	struct tld_data_u *data;
	struct tld_meta_u *meta;
	struct task_struct *task;
	__u64 stamp;

	if (!key) {
		ctx->ret = -EAGAIN;
		return 0;
	}
	task = bpf_task_from_pid(in.tid);
	if (!task) {
		ctx->ret = -3;
		return 0;
	}
	v = bpf_task_storage_get(&tld_data_map, task, (void *)0, 0);
	data = v ? v->data : (void *)0;
	meta = v ? v->meta : (void *)0;
	if (data && meta) {
		stamp = __tld_guard_stamp_of(key, v, data, meta, v->start, task->tgid);
		__tld_guard_set_stamp(v, in.wrong ? (stamp + 1) & TLD_GUARD_STAMP_MASK : stamp);
		ctx->ret = 0;
	} else {
		ctx->ret = -ENODATA;
	}
	bpf_task_release(task);
	return 0;
}
