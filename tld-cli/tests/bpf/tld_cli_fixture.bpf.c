// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_cli_fixture.bpf.c - the BPF side of the tld inspector's tests.
 *
 * It creates a tld_data_map, as a scheduler would (the tests pin it under a
 * unique name and point both the processes under test and `tld` at it), in
 * the 7.x generation of the format, and tld_data_map_618 in the 6.18 one, and
 * has one SEC("syscall") program that writes bytes into a registered task's
 * data page or metadata page, found by thread id: the tests use it for "a
 * value that BPF wrote" and for a metadata page that BPF corrupted.
 *
 * The wire structs are spelled out here on purpose: the map's BTF is what the
 * kernel and the inspector read, whoever defines it.
 */
#include "tld_cli_vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#ifndef __uptr
#define __uptr __attribute__((btf_type_tag("uptr")))
#endif

#define PAGE 4096

struct tld_metadata {
	char name[62];
	__u16 size;
};

struct tld_meta_u {
	__u16 cnt;
	__u16 size;
	struct tld_metadata metadata[PAGE / 64 - 1];
};

struct tld_data_u {
	__u64 start;
	char data[PAGE - 8];
};

/* The 7.x generation's value: start is read from here. */
struct tld_map_value {
	struct tld_data_u __uptr *data;
	struct tld_meta_u __uptr *meta;
	__u16 start;
};

/* The 6.18 generation's: start is read from the data page. */
struct tld_map_value_618 {
	struct tld_data_u __uptr *data;
	struct tld_meta_u __uptr *meta;
};

/*
 * Clang emits a struct reached only through a type-tagged pointer as a
 * forward declaration, and the kernel would then not see the uptr fields:
 * these globals put the full definitions into the object's BTF.
 */
struct tld_data_u *__fixture_anchor_data;
struct tld_meta_u *__fixture_anchor_meta;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tld_map_value);
} tld_data_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tld_map_value_618);
} tld_data_map_618 SEC(".maps");

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

#define WRITE_MAX 64

/* Context of write_page; mirrored by WriteCtx in the tests. */
struct write_ctx {
	__s32 tid;		/* in: the thread */
	__u32 which;		/* in: 0 = its data page, 1 = its metadata page */
	__u32 offset;		/* in: byte offset from the start of the page */
	__u32 len;		/* in: bytes to write, at most WRITE_MAX */
	__u8 bytes[WRITE_MAX];	/* in: what to write */
	__s64 ret;		/* out: 0, -ESRCH (no task), -ENODATA (no element or page), -EINVAL */
};

_Static_assert(sizeof(struct write_ctx) == 88, "write_ctx layout (mirrored in the tests)");

SEC("syscall")
int write_page(struct write_ctx *ctx)
{
	struct write_ctx in = *ctx;
	struct tld_map_value *value;
	struct task_struct *task;
	__u8 *page = 0;
	__u32 i, at, limit;
	__s64 ret = 0;

	if (in.len > WRITE_MAX || in.offset >= PAGE || in.offset + in.len > PAGE) {
		ctx->ret = -22;
		return 0;
	}
	task = bpf_task_from_pid(in.tid);
	if (!task) {
		ctx->ret = -3;
		return 0;
	}
	value = bpf_task_storage_get(&tld_data_map, task, 0, 0);
	if (value)
		page = in.which ? (__u8 *)value->meta : (__u8 *)value->data;
	if (!page) {
		ret = -61;
		goto out;
	}
	/* The metadata page's pointee is sizeof(struct tld_meta_u) bytes. */
	limit = in.which ? sizeof(struct tld_meta_u) : PAGE;
	for (i = 0; i < WRITE_MAX && i < in.len; i++) {
		at = in.offset + i;
		/* Check and use the same register, or the verifier loses the bound. */
		asm volatile("" : "+r"(at));
		if (at >= limit)
			break;
		page[at] = in.bytes[i];
	}
out:
	bpf_task_release(task);
	ctx->ret = ret;
	return 0;
}
