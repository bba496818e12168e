// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_test.bpf.c - programs for the Rust integration tests.
 *
 * All programs are SEC("syscall") and are run with BPF_PROG_TEST_RUN from the
 * thread under test: bpf_get_current_task_btf() is then that thread. Each
 * takes a context buffer (in and out) whose layout the Rust side mirrors with
 * #[repr(C)] structs; field names and order are part of that contract. Pass a
 * buffer of the full struct size. Every program returns 0.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>

/*
 * Hand-written stand-in for the header tld-runtime will generate for the
 * test hints. Rust side: "value1" i32, "test_basic_value4" TestStruct,
 * "dummy" [u8; 1000], "hint_a" u64, "hint_b" u32. "not_declared" is never
 * declared by user space.
 */
struct test_struct {
	__u64 a, b, c, d;
};

struct tld_offsets {
	__s16 value1;
	__s16 test_basic_value4;
	__s16 dummy;
	__s16 hint_a;
	__s16 hint_b;
	__s16 not_declared;
	/* Created at run time by tests/tests/dynamic_keys.rs: even ones u64, odd ones u32. */
	__s16 dyn_0, dyn_1, dyn_2, dyn_3, dyn_4, dyn_5, dyn_6, dyn_7, dyn_8, dyn_9;
};

typedef __s32 __tld_type_value1;
typedef struct test_struct __tld_type_test_basic_value4;
typedef __u8 __tld_type_dummy[1000];
typedef __u64 __tld_type_hint_a;
typedef __u32 __tld_type_hint_b;

#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Bits of tld_read_ctx.found. */
#define FOUND_VALUE1		(1ULL << 0)
#define FOUND_VALUE4		(1ULL << 1)
#define FOUND_DUMMY		(1ULL << 2)
#define FOUND_HINT_A		(1ULL << 3)
#define FOUND_HINT_B		(1ULL << 4)

#define DUMMY_LEN 1000

struct tld_read_ctx {
	__s64 init_ret;		/* bpf_tld_init() result */
	__u64 found;		/* FOUND_* bits */
	__s64 value1;
	__u64 v4_a, v4_b, v4_c, v4_d;
	__u64 dummy_sum;	/* sum of the 1000 bytes */
	__u8 dummy_first, dummy_last, pad[6];
	__u64 hint_a;
	__u64 hint_b;
	__s32 tid;		/* task->pid */
	__s32 tgid;		/* task->tgid */
};

struct tld_write_ctx {
	__s64 init_ret;		/* bpf_tld_init() result */
	__s64 ret;		/* 0, or -ENOENT if a lookup returned NULL */
	__s32 value1;		/* in: written to "value1" */
	__u32 pad;
	__u64 v4_a, v4_b, v4_c, v4_d;	/* in: written to "test_basic_value4" */
};

struct tld_negative_ctx {
	__s64 init_ret;
	__u64 undeclared_is_null;		/* lookup(not_declared) == NULL */
	__u64 oversize_is_null;			/* lookup(value1, 8) == NULL, first */
	__u64 oversize_after_cache_is_null;	/* same, after init_var(value1) */
	__u64 exact_is_nonnull;			/* lookup(value1, 4) != NULL */
};

_Static_assert(sizeof(struct tld_read_ctx) == 96, "tld_read_ctx layout");
_Static_assert(sizeof(struct tld_write_ctx) == 56, "tld_write_ctx layout");
_Static_assert(sizeof(struct tld_negative_ctx) == 40, "tld_negative_ctx layout");

SEC("syscall")
int tld_read(struct tld_read_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct test_struct *v4;
	struct bpf_tld tld;
	__u64 found = 0, sum = 0;
	__u32 *hint_b;
	__u64 *hint_a;
	__s32 *v1;
	__u8 *dummy;
	int err, i;

	ctx->tid = task->pid;
	ctx->tgid = task->tgid;

	err = bpf_tld_init(task, &tld);
	ctx->init_ret = err;
	if (err)
		return 0;

	v1 = bpf_tld_lookup(&tld, value1, sizeof(__s32));
	if (v1) {
		found |= FOUND_VALUE1;
		ctx->value1 = *v1;
	}

	v4 = bpf_tld_lookup(&tld, test_basic_value4, sizeof(struct test_struct));
	if (v4) {
		found |= FOUND_VALUE4;
		ctx->v4_a = v4->a;
		ctx->v4_b = v4->b;
		ctx->v4_c = v4->c;
		ctx->v4_d = v4->d;
	}

	dummy = bpf_tld_lookup(&tld, dummy, DUMMY_LEN);
	if (dummy) {
		found |= FOUND_DUMMY;
		bpf_for(i, 0, DUMMY_LEN)
			sum += dummy[i];
		ctx->dummy_sum = sum;
		ctx->dummy_first = dummy[0];
		ctx->dummy_last = dummy[DUMMY_LEN - 1];
	}

	hint_a = bpf_tld_lookup(&tld, hint_a, sizeof(__u64));
	if (hint_a) {
		found |= FOUND_HINT_A;
		ctx->hint_a = *hint_a;
	}

	hint_b = bpf_tld_lookup(&tld, hint_b, sizeof(__u32));
	if (hint_b) {
		found |= FOUND_HINT_B;
		ctx->hint_b = *hint_b;
	}

	ctx->found = found;
	return 0;
}

SEC("syscall")
int tld_write(struct tld_write_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct test_struct *v4;
	struct bpf_tld tld;
	int err, ret = 0;
	__s32 *v1;

	err = bpf_tld_init(task, &tld);
	ctx->init_ret = err;
	if (err)
		return 0;

	v1 = bpf_tld_get(&tld, value1);
	if (v1)
		*v1 = ctx->value1;
	else
		ret = -ENOENT;

	v4 = bpf_tld_get(&tld, test_basic_value4);
	if (v4) {
		v4->a = ctx->v4_a;
		v4->b = ctx->v4_b;
		v4->c = ctx->v4_c;
		v4->d = ctx->v4_d;
	} else {
		ret = -ENOENT;
	}

	/* One store: clang may otherwise keep &ctx->ret in a register, and
	 * the verifier rejects stores through a modified ctx pointer. */
	ctx->ret = ret;
	return 0;
}

SEC("syscall")
int tld_negative(struct tld_negative_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct bpf_tld tld;
	int err;

	err = bpf_tld_init(task, &tld);
	ctx->init_ret = err;
	if (err)
		return 0;

	ctx->undeclared_is_null = bpf_tld_lookup(&tld, not_declared, 1) == NULL;
	ctx->oversize_is_null = bpf_tld_lookup(&tld, value1, 8) == NULL;
	bpf_tld_init_var(&tld, value1);
	ctx->oversize_after_cache_is_null = bpf_tld_lookup(&tld, value1, 8) == NULL;
	ctx->exact_is_nonnull = bpf_tld_lookup(&tld, value1, 4) != NULL;
	return 0;
}

/*
 * Lifecycle tests: read another task's hints by its tid, from whichever
 * thread runs the program (the test process observing a forked or exec'd
 * child).
 */
extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

struct tld_read_pid_ctx {
	__s32 pid;		/* in: the task (thread id) to read */
	__s32 pad;
	__s64 init_ret;		/* bpf_tld_init() result, or -ESRCH: no such task */
	__u64 found;		/* FOUND_VALUE1 | FOUND_HINT_A */
	__s64 value1;
	__u64 hint_a;
};

_Static_assert(sizeof(struct tld_read_pid_ctx) == 40, "tld_read_pid_ctx layout");

SEC("syscall")
int tld_read_pid(struct tld_read_pid_ctx *ctx)
{
	/* Filled on the stack and copied out at the end: stores through a ctx
	 * pointer that clang has moved are refused by the verifier. */
	struct tld_read_pid_ctx out = { .pid = ctx->pid };
	struct task_struct *task;
	struct bpf_tld tld;
	__u64 *a;
	__s32 *v1;

	task = bpf_task_from_pid(out.pid);
	if (!task) {
		out.init_ret = -3; /* -ESRCH */
		*ctx = out;
		return 0;
	}
	out.init_ret = bpf_tld_init(task, &tld);
	if (!out.init_ret) {
		v1 = bpf_tld_get(&tld, value1);
		if (v1) {
			out.found |= FOUND_VALUE1;
			out.value1 = *v1;
		}
		a = bpf_tld_get(&tld, hint_a);
		if (a) {
			out.found |= FOUND_HINT_A;
			out.hint_a = *a;
		}
	}
	bpf_task_release(task);
	*ctx = out;
	return 0;
}

/*
 * Churn test: when a task of the process under test is freed, did it still
 * have a tld_data_map element? The runtime deletes a thread's element as the
 * thread exits, so the count must stay 0. Attached only by the churn test.
 */
int churn_tgid;
__u64 churn_freed;
__u64 churn_freed_with_storage;

SEC("tp_btf/sched_process_free")
int churn_count_frees(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];

	if (!churn_tgid || task->tgid != churn_tgid)
		return 0;
	__sync_fetch_and_add(&churn_freed, 1);
	if (bpf_task_storage_get(&tld_data_map, task, NULL, 0))
		__sync_fetch_and_add(&churn_freed_with_storage, 1);
	return 0;
}

/* Dynamic keys: the values of dyn_0 .. dyn_9 for the calling thread. */
struct tld_dyn_ctx {
	__s64 init_ret;
	__u64 found;		/* bit i: dyn_i found */
	__u64 values[10];
};

#define DYN_READ(i, type)							\
	do {									\
		type *p = bpf_tld_lookup(&tld, dyn_##i, sizeof(type));		\
		if (p) {							\
			ctx->found |= 1ULL << i;				\
			ctx->values[i] = *p;					\
		}								\
	} while (0)

SEC("syscall")
int tld_read_dyn(struct tld_dyn_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct bpf_tld tld;
	int err;

	err = bpf_tld_init(task, &tld);
	ctx->init_ret = err;
	if (err)
		return 0;
	DYN_READ(0, __u64);
	DYN_READ(1, __u32);
	DYN_READ(2, __u64);
	DYN_READ(3, __u32);
	DYN_READ(4, __u64);
	DYN_READ(5, __u32);
	DYN_READ(6, __u64);
	DYN_READ(7, __u32);
	DYN_READ(8, __u64);
	DYN_READ(9, __u32);
	return 0;
}
