// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_isolation.bpf.c - stale writers and bad maps, for tests/tests/isolation.rs
 * and tests/tests/connect.rs.
 *
 * Two writers that keep writing into a thread's page after the runtime let the
 * thread go, the ways a real BPF program can:
 *  - stale_switch_writer (tp_btf/sched_switch): every time a task of the
 *    target process is switched out, writes the marker into its page through
 *    its element in THIS object's tld_data_map. Loaded as an "old" map that the
 *    runtime has moved away from, its elements stay behind.
 *  - long_writer (SEC("syscall"), a sleepable program type): looks up one
 *    thread's page once, then writes the marker into it over and over for a
 *    given time, whatever happens to the thread meanwhile.
 * The runtime must make sure that none of these writes is ever seen by another
 * thread that reuses the page.
 *
 * And maps that look like tld_data_map but are not: a task storage map whose
 * value is 16 bytes of integers, and one whose value is two pointers without
 * the __uptr tag. The runtime must refuse both.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* No keys are looked up by name here; the header wants one member. */
struct tld_offsets {
	__s16 unused;
};

#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* Set by the test before the writers run. */
int target_tgid;		/* stale_switch_writer: the process to write into */
__u32 mark_off;			/* byte offset of the marked u64 in a data page */
__u64 marker;			/* the value written */

/* Written by the programs, read by the test. */
__u64 switch_writes;		/* stale_switch_writer's writes */
__u64 long_started;		/* long_writer has its page and is writing */
__u64 long_writes;		/* long_writer's writes so far */

/* Writes the marker into @data at mark_off, a multiple of 8 in 8..4088. */
static __always_inline int write_mark(struct tld_data_u *data)
{
	__u64 idx = mark_off / 8;

	/* A mask the verifier can follow: idx is then a u64 slot of the page. */
	idx &= TLD_PAGE_SIZE / 8 - 1;
	if (!idx)
		return 0;
	((__u64 *)data)[idx] = marker;
	return 1;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(stale_switch_writer, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct tld_map_value *value;
	struct tld_data_u *data;

	if (!target_tgid || prev->tgid != target_tgid)
		return 0;
	value = bpf_task_storage_get(&tld_data_map, prev, NULL, 0);
	if (!value)
		return 0;
	data = value->data;
	if (data && write_mark(data))
		__sync_fetch_and_add(&switch_writes, 1);
	return 0;
}

struct long_writer_ctx {
	__s32 tid;		/* the thread whose page to write */
	__s32 ret;		/* 0, or -ESRCH / -ENODATA */
	__u64 duration_ns;	/* how long to keep writing */
};

SEC("syscall")
int long_writer(struct long_writer_ctx *ctx)
{
	struct tld_map_value *value;
	struct tld_data_u *data;
	struct task_struct *task;
	__u64 deadline;
	int i, j;

	task = bpf_task_from_pid(ctx->tid);
	if (!task) {
		ctx->ret = -3;	/* ESRCH */
		return 0;
	}
	value = bpf_task_storage_get(&tld_data_map, task, NULL, 0);
	data = value ? value->data : NULL;
	if (!data) {
		bpf_task_release(task);
		ctx->ret = -ENODATA;
		return 0;
	}
	deadline = bpf_ktime_get_ns() + ctx->duration_ns;
	long_started = 1;
	/* The pointer is looked up once, as a program that sleeps or runs long would. */
	bpf_for(i, 0, 1 << 22) {
		bpf_for(j, 0, 256) {
			write_mark(data);
		}
		__sync_fetch_and_add(&long_writes, 256);
		if (bpf_ktime_get_ns() > deadline)
			break;
	}
	bpf_task_release(task);
	ctx->ret = 0;
	return 0;
}

/* A task storage map of the right sizes whose value holds plain integers. */
struct plain_value {
	__u64 data;
	__u64 meta;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct plain_value);
} plain_map SEC(".maps");

/* The same with pointers that lack the __uptr tag. */
struct untagged_value {
	struct tld_data_u *data;
	struct tld_meta_u *meta;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct untagged_value);
} untagged_map SEC(".maps");

/*
 * The value of earlier versions of task_local_data.bpf.h: the pointers, then a
 * per-task cache in the element (40 bytes). Neither generation's shape: a
 * writer that sends 16 or 24 bytes would have the kernel copy bytes past its
 * buffer into it.
 */
struct old_cached_value {
	struct tld_data_u __uptr *data;
	struct tld_meta_u __uptr *meta;
	__u64 valid;
	__s16 off[4];
	__s16 size[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct old_cached_value);
} old_cached_map SEC(".maps");

/* 24 bytes, as 7.x's value, but start is a u64: not 7.x's value either. */
struct wide_start_value {
	struct tld_data_u __uptr *data;
	struct tld_meta_u __uptr *meta;
	__u64 start;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wide_start_value);
} wide_start_map SEC(".maps");
