/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Consistent reads and writes the way BPF authors write them
 * (tests/tests/consistent_patterns.rs): each program is one common pattern,
 * and the test loads them all on the running kernel and runs each for the
 * calling thread, whose seq_value4 is (v, v, v, v) and whose seq_big is 128
 * words of w.
 *
 *  - branching on the result of a read;
 *  - branching on the retry count of bpf_tld_read_consistent_stats();
 *  - reading inside a bpf_for() loop, with both of the above;
 *  - a 1024-byte value, too large for the 512-byte stack, read into and
 *    written from a per-CPU scratch map value, and read into the value of
 *    another map.
 */
#include "tld_generated.h"

char LICENSE[] SEC("license") = "GPL";

/* Mirrored by PatternCtx in tests/tests/consistent_patterns.rs. */
struct pattern_ctx {
	__u32 iters;		/* in: reads of the loop patterns */
	__s32 ret;		/* out: the last read's result */
	__u64 value;		/* out: word a of seq_value4, or word 0 of seq_big */
	__u64 sum;		/* out: the loop patterns' sum of word a */
	__u64 hits;		/* out: reads that had to start over at least once */
	__u64 misses;		/* out: reads that failed */
	__u64 whole;		/* out: 1 if every word of the last value read was equal */
};

_Static_assert(sizeof(struct pattern_ctx) == 48, "pattern_ctx layout");

static __always_inline int init_self(struct bpf_tld *tld)
{
	return bpf_tld_init(bpf_get_current_task_btf(), tld);
}

/*
 * Each program works on a copy of its context and stores it back whole at
 * the end: the verifier refuses stores through a context pointer that the
 * compiler has moved (&ctx->field kept in a register).
 */
#define RETURN(out, ctx)							\
	do {									\
		barrier_var(ctx);						\
		*(ctx) = (out);							\
		return 0;							\
	} while (0)

static __always_inline __u64 whole4(const struct TestStruct *v)
{
	return v->a == v->b && v->a == v->c && v->a == v->d;
}

/* if (bpf_tld_read_consistent(...)) return; then use the value. */
SEC("syscall")
int branch_on_result(struct pattern_ctx *ctx)
{
	struct pattern_ctx out = *ctx;
	struct TestStruct v;
	struct bpf_tld tld;

	out.ret = init_self(&tld);
	if (out.ret)
		RETURN(out, ctx);
	out.ret = bpf_tld_read_consistent(&tld, seq_value4, &v);
	if (out.ret)
		RETURN(out, ctx);
	out.value = v.a;
	out.whole = whole4(&v);
	RETURN(out, ctx);
}

/* if (retries) hits++; after bpf_tld_read_consistent_stats(). */
SEC("syscall")
int branch_on_retries(struct pattern_ctx *ctx)
{
	struct pattern_ctx out = *ctx;
	struct TestStruct v;
	struct bpf_tld tld;
	__u32 retries = 0;
	__u64 hits = 0;
	int err;

	out.ret = init_self(&tld);
	if (out.ret)
		RETURN(out, ctx);
	err = bpf_tld_read_consistent_stats(&tld, seq_value4, &v, &retries);
	if (retries)
		hits++;
	if (retries > 3)
		hits += 10;
	out.hits = hits;
	out.ret = err;
	if (!err) {
		out.value = v.a;
		out.whole = whole4(&v);
	}
	RETURN(out, ctx);
}

/* Reads in a bpf_for() loop, branching on the result and on the retries. */
SEC("syscall")
int read_in_a_loop(struct pattern_ctx *ctx)
{
	struct pattern_ctx out = *ctx;
	struct TestStruct v;
	struct bpf_tld tld;
	__u32 iters = out.iters;
	__u64 sum = 0, hits = 0, misses = 0;
	int i, err = 0;

	out.ret = init_self(&tld);
	if (out.ret)
		RETURN(out, ctx);
	bpf_for(i, 0, iters) {
		__u32 retries = 0;

		err = bpf_tld_read_consistent_stats(&tld, seq_value4, &v, &retries);
		if (retries)
			hits++;
		if (err) {
			misses++;
			continue;
		}
		if (!whole4(&v))
			break;
		sum += v.a;
	}
	out.ret = err;
	out.sum = sum;
	out.hits = hits;
	out.misses = misses;
	out.value = v.a;
	out.whole = whole4(&v);
	RETURN(out, ctx);
}

/*
 * A 1024-byte value does not fit the 512-byte BPF stack. Per-CPU scratch
 * from the header: one map value per CPU, which a program running on that
 * CPU has to itself (a program is not migrated while it runs).
 */
TLD_DEFINE_SCRATCH(seq_big);

/* Or the value of any other map, e.g. one entry per thread. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, sizeof(__tld_value_type_seq_big));
} big_out SEC(".maps");

static __always_inline __u64 whole_big(const __tld_value_type_seq_big *v)
{
	__u64 ok = 1;
	int i;

	bpf_for(i, 1, 128) {
		if ((*v)[i] != (*v)[0])
			ok = 0;
	}
	return ok;
}

/* Reads seq_big into per-CPU scratch, then writes (w + 1) x 128 from it. */
SEC("syscall")
int big_via_scratch(struct pattern_ctx *ctx)
{
	struct pattern_ctx out = *ctx;
	__tld_value_type_seq_big *v;
	struct bpf_tld tld;
	int i;

	v = bpf_tld_scratch(seq_big);
	if (!v)
		RETURN(out, ctx);
	out.ret = init_self(&tld);
	if (out.ret)
		RETURN(out, ctx);
	out.ret = bpf_tld_read_consistent(&tld, seq_big, v);
	if (out.ret)
		RETURN(out, ctx);
	out.value = (*v)[0];
	out.whole = whole_big(v);
	bpf_for(i, 0, 128)
		(*v)[i] += 1;
	out.ret = bpf_tld_write_consistent(&tld, seq_big, v);
	RETURN(out, ctx);
}

/* Reads seq_big straight into the value of another map. */
SEC("syscall")
int big_into_a_map_value(struct pattern_ctx *ctx)
{
	struct pattern_ctx out = *ctx;
	__tld_value_type_seq_big *v;
	struct bpf_tld tld;
	__u32 zero = 0;

	v = bpf_map_lookup_elem(&big_out, &zero);
	if (!v)
		RETURN(out, ctx);
	out.ret = init_self(&tld);
	if (out.ret)
		RETURN(out, ctx);
	out.ret = bpf_tld_read_consistent(&tld, seq_big, v);
	if (out.ret)
		RETURN(out, ctx);
	out.value = (*v)[0];
	out.whole = whole_big(v);
	RETURN(out, ctx);
}
