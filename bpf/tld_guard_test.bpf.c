// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_guard_test.bpf.c - a reader built with the guard's check (TLD_GUARD),
 * for tests/tests/guard.rs. Like tld_test.bpf.c's tld_read, for the hints of
 * the test crates, plus:
 *  - read_tid: another thread's value1, as a scheduler would read it;
 *  - stamp_self: writes the stamp the guard would write for the calling
 *    thread's element, or a wrong one, so that the reader's check can be
 *    tested where the guard's fexit program cannot load (the host).
 * The loader sets tld_guard_enabled, as a scheduler does when it attaches the
 * guard.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TLD_GUARD

struct tld_offsets {
	__s16 value1;
};

typedef __s32 __tld_type_value1;

#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

struct read_ctx {
	__s32 tid;		/* in: the thread to read; 0: the calling thread */
	__s32 init_ret;		/* out: bpf_tld_init() */
	__s64 value1;		/* out: the thread's value1, if found */
	__u64 found;		/* out: 1 if value1 was found */
};

SEC("syscall")
int read_tid(struct read_ctx *ctx)
{
	struct read_ctx out = { .tid = ctx->tid };
	struct task_struct *task;
	struct bpf_tld tld;
	__s32 *v;

	task = bpf_task_from_pid(out.tid ? out.tid : bpf_get_current_task_btf()->pid);
	if (!task) {
		out.init_ret = -3;
		*ctx = out;
		return 0;
	}
	out.init_ret = bpf_tld_init(task, &tld);
	if (!out.init_ret) {
		v = bpf_tld_get(&tld, value1);
		if (v) {
			out.found = 1;
			out.value1 = *v;
		}
	}
	bpf_task_release(task);
	*ctx = out;
	return 0;
}

struct stamp_ctx {
	__s32 wrong;		/* in: write a wrong stamp (the right one + 1) */
	__s32 ret;		/* out: 0, -ENODATA (no element), -EAGAIN (no key) */
};

SEC("syscall")
int stamp_self(struct stamp_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const struct tld_guard_key *key = __tld_guard_key();
	struct tld_map_value *v;
	struct tld_data_u *data;
	struct tld_meta_u *meta;
	__u64 stamp;
	int wrong = ctx->wrong;

	if (!key) {
		ctx->ret = -EAGAIN;
		return 0;
	}
	v = bpf_task_storage_get(&tld_data_map, task, (void *)0, 0);
	data = v ? v->data : (void *)0;
	meta = v ? v->meta : (void *)0;
	if (!data || !meta) {
		ctx->ret = -ENODATA;
		return 0;
	}
	stamp = __tld_guard_stamp_of(key, v, data, meta, v->start, task->tgid);
	__tld_guard_set_stamp(v, wrong ? (stamp + 1) & TLD_GUARD_STAMP_MASK : stamp);
	ctx->ret = 0;
	return 0;
}

struct write_ctx {
	__s32 value1;		/* in: what to write into the calling thread's value1 */
	__s32 ret;		/* out: 0, bpf_tld_init()'s error, or -ENOENT */
};

/* A BPF writer: the guard must not get in its way. */
SEC("syscall")
int write_self(struct write_ctx *ctx)
{
	struct bpf_tld tld;
	__s32 *v;
	int ret;

	ret = bpf_tld_init(bpf_get_current_task_btf(), &tld);
	if (!ret) {
		v = bpf_tld_get(&tld, value1);
		if (v)
			*v = ctx->value1;
		else
			ret = -ENOENT;
	}
	ctx->ret = ret;
	return 0;
}
