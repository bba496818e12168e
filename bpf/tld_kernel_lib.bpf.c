// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_kernel_lib.bpf.c - our header reading what other writers registered:
 * the kernel's own 7.x C library (prog_tests/task_local_data.h, fetched and
 * built at test time), and the foreign writers of tests/c/edge_writer.c. For
 * tests/tests/kernel_library.rs. Built for the 7.x generation (the default) and,
 * through tld_kernel_lib_618.bpf.c, for 6.18's.
 *
 * Both programs are SEC("syscall"), run with BPF_PROG_TEST_RUN, and read
 * another thread by its id. Their contexts are mirrored on the Rust side.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>

/* The keys of the kernel's own test: value0 and value1 are ints, value2 a
 * struct of four u64; value_not_exist is never created. */
struct test_tld_struct {
	__u64 a, b, c, d;
};

struct tld_offsets {
	__s16 value0;
	__s16 value1;
	__s16 value2;
	__s16 value_not_exist;
	__s16 edge;		/* tests/c/edge_writer.c's one key, a u32 */
};

typedef __s32 __tld_type_value0;
typedef __s32 __tld_type_value1;
typedef struct test_tld_struct __tld_type_value2;
typedef __s32 __tld_type_value_not_exist;
typedef __u32 __tld_type_edge;

#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "GPL";

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* Bits of read_ctx.found. */
#define FOUND_VALUE0		(1U << 0)
#define FOUND_VALUE1		(1U << 1)
#define FOUND_VALUE2		(1U << 2)
#define FOUND_NOT_EXIST		(1U << 3)
#define FOUND_EDGE		(1U << 4)

struct read_ctx {
	__s32 tid;		/* in: the thread to read */
	__u32 found;		/* FOUND_* */
	__s64 init_ret;		/* bpf_tld_init(), or -ESRCH */
	__s64 value0, value1;
	struct test_tld_struct value2;
	__s64 value0_off;	/* where value0 is, from the data page's start */
	__s64 edge;
};

_Static_assert(sizeof(struct read_ctx) == 80, "read_ctx layout (mirrored in Rust)");

SEC("syscall")
int read_keys(struct read_ctx *ctx)
{
	struct read_ctx out = { .tid = ctx->tid };
	struct test_tld_struct *v2;
	struct task_struct *task;
	struct bpf_tld tld;
	__s32 *v;

	task = bpf_task_from_pid(out.tid);
	if (!task) {
		out.init_ret = -3; /* -ESRCH */
		*ctx = out;
		return 0;
	}
	out.init_ret = bpf_tld_init(task, &tld);
	if (!out.init_ret) {
		v = bpf_tld_get(&tld, value0);
		if (v) {
			out.found |= FOUND_VALUE0;
			out.value0 = *v;
			out.value0_off = (long)v - (long)tld.data;
		}
		v = bpf_tld_get(&tld, value1);
		if (v) {
			out.found |= FOUND_VALUE1;
			out.value1 = *v;
		}
		v2 = bpf_tld_get(&tld, value2);
		if (v2) {
			out.found |= FOUND_VALUE2;
			out.value2 = *v2;
		}
		if (bpf_tld_get(&tld, value_not_exist))
			out.found |= FOUND_NOT_EXIST;
		v = (__s32 *)bpf_tld_get(&tld, edge);
		if (v) {
			out.found |= FOUND_EDGE;
			out.edge = *(__u32 *)v;
		}
	}
	bpf_task_release(task);
	*ctx = out;
	return 0;
}

/*
 * The element's bytes after the two pointers, as BPF sees them: 7.x's start
 * and padding (the pointers themselves are kernel addresses, and stay here).
 */
struct value_ctx {
	__s32 tid;		/* in */
	__s32 ret;		/* 0, -ESRCH, -ENODATA */
	__u64 tail;		/* bytes 16..24 of a 7.x value; 0 for 6.18's */
};

SEC("syscall")
int read_value(struct value_ctx *ctx)
{
	struct value_ctx out = { .tid = ctx->tid };
	struct tld_map_value *value;
	struct task_struct *task;

	task = bpf_task_from_pid(out.tid);
	if (!task) {
		out.ret = -3;
		*ctx = out;
		return 0;
	}
	value = bpf_task_storage_get(&tld_data_map, task, NULL, 0);
	if (!value)
		out.ret = -ENODATA;
#if TLD_GENERATION == 7
	else
		out.tail = *(__u64 *)((void *)value + 16);
#endif
	bpf_task_release(task);
	*ctx = out;
	return 0;
}
