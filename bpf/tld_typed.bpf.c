/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Typed access through a header generated from the Rust declarations: the
 * integration test tests/tests/typed.rs runs this as each of 32 threads and
 * compares every field with what the thread set in Rust.
 */
#include "tld_generated.h"	/* the first include: it finds tld_vmlinux.h itself */

char LICENSE[] SEC("license") = "GPL";

/* Mirrored by TypedCtx in tests/tests/typed.rs. */
struct tld_typed_ctx {
	__s64 init_ret;
	__u64 found;		/* bit 0 nested, bit 1 hint_a, bit 2 hint_b */
	__u64 id;
	__u32 inner_x;
	__s32 inner_y;
	__u32 pair0_x;
	__s32 pair0_y;
	__u32 pair1_x;
	__s32 pair1_y;
	__u16 weights[4];
	__u64 score_bits;	/* the double's bytes: BPF has no floating point */
	__u8 tag[8];
	__u64 hint_a;
	__u64 hint_b;
	__s32 write_pair1_y;	/* in: if non-zero, written to nested.pair[1].y */
	__s32 tid;
	__u64 fast;		/* 1 if the page carried this header's layout fingerprint */
	__u64 meta_size;	/* the metadata page's size field */
};

SEC("syscall")
int tld_typed_read(struct tld_typed_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tld_meta_u *meta;
	__tld_type_hint_a *a;
	__tld_type_hint_b *b;
	struct Nested *n;
	struct bpf_tld tld;
	int err;

	ctx->tid = task->pid;
	err = bpf_tld_init(task, &tld);
	ctx->init_ret = err;
	if (err)
		return 0;
	ctx->fast = tld.fast != NULL;
	meta = tld.value->meta;
	if (meta)
		ctx->meta_size = meta->size;

	n = bpf_tld_get(&tld, nested);
	if (n) {
		ctx->found |= 1;
		ctx->id = n->id;
		ctx->inner_x = n->inner.x;
		ctx->inner_y = n->inner.y;
		ctx->pair0_x = n->pair[0].x;
		ctx->pair0_y = n->pair[0].y;
		ctx->pair1_x = n->pair[1].x;
		ctx->pair1_y = n->pair[1].y;
		ctx->weights[0] = n->weights[0];
		ctx->weights[1] = n->weights[1];
		ctx->weights[2] = n->weights[2];
		ctx->weights[3] = n->weights[3];
		__builtin_memcpy(&ctx->score_bits, &n->score, sizeof(ctx->score_bits));
		__builtin_memcpy(ctx->tag, n->tag, sizeof(ctx->tag));
		if (ctx->write_pair1_y)
			n->pair[1].y = ctx->write_pair1_y;
	}
	a = bpf_tld_get(&tld, hint_a);
	if (a) {
		ctx->found |= 2;
		ctx->hint_a = *a;
	}
	b = bpf_tld_get(&tld, hint_b);
	if (b) {
		ctx->found |= 4;
		ctx->hint_b = *b;
	}
	return 0;
}
