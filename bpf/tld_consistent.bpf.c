/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Consistent hints against the real kernel (tests/tests/consistent.rs): BPF
 * reads and writes the consistent hint seq_value4 of another thread, found by
 * its thread id, while that thread writes or reads it in Rust, and counts
 * torn values. The same loops over the plain hint test_basic_value4 show what
 * happens without the protocol. Every writer writes (v, v, v, v): a value
 * whose four words differ is torn.
 */
#include "tld_generated.h"
#include <bpf/bpf_tracing.h>	/* BPF_PROG */

char LICENSE[] SEC("license") = "GPL";

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* What the loops do (struct seq_loop_ctx.mode). */
#define MODE_CONSISTENT	0	/* bpf_tld_{read,write}_consistent(), fast path */
#define MODE_CACHED	1	/* the same, on the cached path */
#define MODE_PLAIN	2	/* bpf_tld_get() of test_basic_value4: no protocol */

/* Mirrored by LoopCtx in tests/tests/consistent.rs. */
struct seq_loop_ctx {
	__s32 tid;		/* in: the thread whose hint to read or write */
	__u32 mode;		/* in: MODE_* */
	__u32 iters;		/* in: reads or writes to make */
	__u32 retries;		/* out: attempts that started over (reads) */
	__u64 base;		/* in: writes write base + i */
	__s64 init_ret;		/* out: bpf_tld_init(), or -ESRCH: no such task */
	__u64 ok;		/* out: reads that got a value, writes that wrote */
	__u64 again;		/* out: reads that returned -EAGAIN */
	__u64 busy;		/* out: writes that returned -EBUSY */
	__u64 absent;		/* out: -ENOENT */
	__u64 torn;		/* out: values whose words differ */
	__u64 last;		/* out: the last value read (word a) */
};

_Static_assert(sizeof(struct seq_loop_ctx) == 80, "seq_loop_ctx layout");

static __always_inline int is_torn(const struct TestStruct *v)
{
	return v->a != v->b || v->a != v->c || v->a != v->d;
}

static __always_inline int init_for(struct task_struct *task, struct bpf_tld *tld, __u32 mode)
{
	return __bpf_tld_init(task, tld, mode != MODE_CACHED);
}

SEC("syscall")
int seq_read_loop(struct seq_loop_ctx *ctx)
{
	struct seq_loop_ctx out = *ctx;
	struct task_struct *task;
	struct TestStruct v = {};
	struct bpf_tld tld;
	__u32 retries = 0;
	int i, err;

	task = bpf_task_from_pid(out.tid);
	if (!task) {
		out.init_ret = -3;	/* -ESRCH */
		barrier_var(ctx);
		*ctx = out;
		return 0;
	}
	out.init_ret = init_for(task, &tld, out.mode);
	if (out.init_ret)
		goto done;
	bpf_for(i, 0, out.iters) {
		if (out.mode == MODE_PLAIN) {
			struct TestStruct *p = bpf_tld_get(&tld, test_basic_value4);

			if (!p) {
				out.absent++;
				continue;
			}
			__builtin_memcpy(&v, p, sizeof(v));
			err = 0;
		} else {
			err = bpf_tld_read_consistent_stats(&tld, seq_value4, &v, &retries);
		}
		if (err == -EAGAIN) {
			out.again++;
			continue;
		}
		if (err) {
			out.absent++;
			continue;
		}
		out.ok++;
		out.torn += is_torn(&v);
		out.last = v.a;
	}
done:
	out.retries = retries;
	bpf_task_release(task);
	barrier_var(ctx);
	*ctx = out;
	return 0;
}

SEC("syscall")
int seq_write_loop(struct seq_loop_ctx *ctx)
{
	struct seq_loop_ctx out = *ctx;
	struct task_struct *task;
	struct TestStruct v;
	struct bpf_tld tld;
	int i, err;

	task = bpf_task_from_pid(out.tid);
	if (!task) {
		out.init_ret = -3;
		barrier_var(ctx);
		*ctx = out;
		return 0;
	}
	out.init_ret = init_for(task, &tld, out.mode);
	if (out.init_ret)
		goto done;
	bpf_for(i, 0, out.iters) {
		__u64 x = out.base + i;

		v.a = x;
		v.b = x;
		v.c = x;
		v.d = x;
		if (out.mode == MODE_PLAIN) {
			struct TestStruct *p = bpf_tld_get(&tld, test_basic_value4);

			if (!p) {
				out.absent++;
				continue;
			}
			__builtin_memcpy(p, &v, sizeof(v));
			err = 0;
		} else {
			err = bpf_tld_write_consistent(&tld, seq_value4, &v);
		}
		if (err == -EBUSY)
			out.busy++;
		else if (err)
			out.absent++;
		else
			out.ok++;
	}
done:
	bpf_task_release(task);
	barrier_var(ctx);
	*ctx = out;
	return 0;
}

/*
 * Writers that stop in the middle, on the calling thread's seq_value4,
 * ignoring the library as a hand-written writer would:
 *  - step 0 claims the word for BPF and writes words a and b of (v, v, v, v)
 *    into the copy that is not whole, then returns as if the program had been
 *    aborted: a BPF writer that crashed; step 1 writes c and d and publishes;
 *  - step 4 claims the word for the thread, as the thread itself does when a
 *    set() begins, and writes half of (v, v, v, v) the same way: what a
 *    reader meets when the thread is preempted in the middle of a write;
 *    step 5 finishes that write and publishes it;
 *  - step 2 only looks, step 3 looks and calls bpf_tld_write_consistent().
 * Every step reads the entry through the plain typed pointer, as a program
 * that does not know the protocol does, and then with
 * bpf_tld_read_consistent().
 */
struct seq_poke_ctx {
	__u32 step;		/* in: see above */
	__s32 ret;		/* out: 0, or -ENOENT */
	__u64 v;		/* in: the value to write */
	__u64 seq;		/* out: the word after the step */
	struct TestStruct value;	/* out: the whole copy after the step */
	struct TestStruct other;	/* out: the other copy */
	__u32 read_ret;		/* out: -bpf_tld_read_consistent() after the step */
	__u32 write_ret;	/* out: -bpf_tld_write_consistent() of (v + 1) x 4, step 3 */
	struct TestStruct read;	/* out: what bpf_tld_read_consistent() read */
};

_Static_assert(sizeof(struct seq_poke_ctx) == 128, "seq_poke_ctx layout");

SEC("syscall")
int seq_poke(struct seq_poke_ctx *ctx)
{
	struct seq_poke_ctx out = *ctx;
	struct tld_consistent_seq_value4 *e;
	struct TestStruct v = {}, *w;
	struct bpf_tld tld;
	__u64 seq;
	int err;

	out.ret = -ENOENT;
	if (bpf_tld_init(bpf_get_current_task_btf(), &tld))
		goto done;
	e = bpf_tld_get(&tld, seq_value4);
	if (!e)
		goto done;
	out.ret = 0;
	/* Plain stores, as a hand-written writer might do it. */
	seq = *(volatile __u64 *)&e->seq;
	w = &e->value[TLD_SEQ_COPY(seq + TLD_SEQ_ONE)];	/* the copy that is not whole */
	if (out.step == 0 || out.step == 4) {
		*(volatile __u64 *)&e->seq =
			seq | (out.step == 0 ? TLD_SEQ_CLAIM_BPF : TLD_SEQ_CLAIM_THREAD);
		w->a = out.v;
		w->b = out.v;
	} else if (out.step == 1 || out.step == 5) {
		w->c = out.v;
		w->d = out.v;
		*(volatile __u64 *)&e->seq = (seq & ~TLD_SEQ_CLAIMS) + TLD_SEQ_ONE;
	}
	out.seq = *(volatile __u64 *)&e->seq;
	__builtin_memcpy(&out.value, &e->value[TLD_SEQ_COPY(out.seq)], sizeof(out.value));
	__builtin_memcpy(&out.other, &e->value[TLD_SEQ_COPY(out.seq + TLD_SEQ_ONE)],
			 sizeof(out.other));
	err = bpf_tld_read_consistent(&tld, seq_value4, &v);
	out.read_ret = -err;
	out.read = v;
	if (out.step == 3) {
		v.a = out.v + 1;
		v.b = out.v + 1;
		v.c = out.v + 1;
		v.d = out.v + 1;
		out.write_ret = -bpf_tld_write_consistent(&tld, seq_value4, &v);
	}
done:
	barrier_var(ctx);
	*ctx = out;
	return 0;
}

/*
 * Round trips for the calling thread: reads seq_value4 and seq_small as BPF
 * sees them, on the fast or the cached path, then writes both.
 */
struct seq_roundtrip_ctx {
	__u32 cached;		/* in: 1 forces the cached path */
	__s32 read_ret;		/* out: bpf_tld_read_consistent(seq_value4) */
	__s32 small_ret;	/* out: bpf_tld_read_consistent(seq_small) */
	__s32 write_ret;	/* out: bpf_tld_write_consistent(seq_value4) */
	__s32 small_write_ret;	/* out: bpf_tld_write_consistent(seq_small) */
	__u32 fast;		/* out: 1 if the fast path was taken */
	struct TestStruct value;	/* out: read; in: written */
	__u16 small[4];		/* out: read (3 used); in: written */
	__u64 seq;		/* out: the word of seq_value4 after the write */
	__u64 small_seq;	/* out: the word of seq_small after the write */
};

_Static_assert(sizeof(struct seq_roundtrip_ctx) == 80, "seq_roundtrip_ctx layout");

SEC("syscall")
int seq_roundtrip(struct seq_roundtrip_ctx *ctx)
{
	struct seq_roundtrip_ctx out = *ctx;
	struct tld_consistent_seq_value4 *e;
	struct tld_consistent_seq_small *s;
	__tld_value_type_seq_small small_in, small = {};
	struct TestStruct in = out.value, v = {};
	struct bpf_tld tld;

	small_in[0] = out.small[0];
	small_in[1] = out.small[1];
	small_in[2] = out.small[2];
	out.read_ret = __bpf_tld_init(bpf_get_current_task_btf(), &tld, !out.cached);
	if (out.read_ret)
		goto done;
	out.fast = tld.fast != 0;
	out.read_ret = bpf_tld_read_consistent(&tld, seq_value4, &v);
	out.value = v;
	out.small_ret = bpf_tld_read_consistent(&tld, seq_small, &small);
	out.small[0] = small[0];
	out.small[1] = small[1];
	out.small[2] = small[2];
	out.write_ret = bpf_tld_write_consistent(&tld, seq_value4, &in);
	out.small_write_ret = bpf_tld_write_consistent(&tld, seq_small, &small_in);
	e = bpf_tld_get(&tld, seq_value4);
	if (e)
		out.seq = *(volatile __u64 *)&e->seq;
	s = bpf_tld_get(&tld, seq_small);
	if (s)
		out.small_seq = *(volatile __u64 *)&s->seq;
done:
	barrier_var(ctx);
	*ctx = out;
	return 0;
}

/*
 * A reader that cannot wait: the consistent hint seq_value4 of one thread,
 * read as that thread is switched out (where a scheduler reads), while the
 * thread writes it back to back. The thread is often preempted in the middle
 * of a write; a reader must still get a whole value, at once.
 */
struct switch_stats {
	__s32 tid;		/* in: the thread to watch (0: none) */
	__u32 pad;
	__u64 switches;		/* out: its switch-outs with its hints readable */
	__u64 mid_write;	/* out: of which it was in the middle of a write */
	__u64 ok;		/* out: reads that got a value */
	__u64 again;		/* out: reads that returned -EAGAIN */
	__u64 absent;		/* out: -ENOENT */
	__u64 torn;		/* out: values whose words differ */
	__u64 retries;		/* out: attempts that started over */
};

_Static_assert(sizeof(struct switch_stats) == 64, "switch_stats layout");


struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct switch_stats);
} switch_map SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(seq_on_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct tld_consistent_seq_value4 *e;
	struct switch_stats *st;
	struct TestStruct v = {};
	struct bpf_tld tld;
	__u32 zero = 0, retries = 0;
	int err;

	st = bpf_map_lookup_elem(&switch_map, &zero);
	if (!st || !st->tid || prev->pid != st->tid)
		return 0;
	if (bpf_tld_init(prev, &tld))
		return 0;
	e = bpf_tld_get(&tld, seq_value4);
	if (!e)
		return 0;
	__sync_fetch_and_add(&st->switches, 1);
	if (TLD_SEQ_WRITING(*(volatile __u64 *)&e->seq))
		__sync_fetch_and_add(&st->mid_write, 1);
	err = bpf_tld_read_consistent_stats(&tld, seq_value4, &v, &retries);
	__sync_fetch_and_add(&st->retries, retries);
	if (err == -EAGAIN)
		__sync_fetch_and_add(&st->again, 1);
	else if (err)
		__sync_fetch_and_add(&st->absent, 1);
	else if (is_torn(&v))
		__sync_fetch_and_add(&st->torn, 1);
	else
		__sync_fetch_and_add(&st->ok, 1);
	return 0;
}

/*
 * 1024-byte values (seq_big) do not fit the 512-byte BPF stack: they are
 * copied through a per-CPU map value instead.
 */
struct big_values {
	__tld_value_type_seq_big v[2];
};

/* Sized, not typed: the skeleton would otherwise give it a Rust type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, sizeof(struct big_values));
} big_scratch SEC(".maps");

/*
 * Writes seq_big of thread ctx->tid ctx->iters times, back to back, with
 * nothing in between: alternately (b, b, ..., b) and (b + 1, ..., b + 1),
 * b = ctx->base. Counts as seq_write_loop does.
 */
SEC("syscall")
int seq_big_write_loop(struct seq_loop_ctx *ctx)
{
	struct seq_loop_ctx out = *ctx;
	struct task_struct *task;
	struct big_values *s;
	struct bpf_tld tld;
	__u32 zero = 0;
	int i, err;

	s = bpf_map_lookup_elem(&big_scratch, &zero);
	if (!s)
		return 0;
	bpf_for(i, 0, 128) {
		s->v[0][i] = out.base;
		s->v[1][i] = out.base + 1;
	}
	task = bpf_task_from_pid(out.tid);
	if (!task) {
		out.init_ret = -3;
		barrier_var(ctx);
		*ctx = out;
		return 0;
	}
	out.init_ret = bpf_tld_init(task, &tld);
	if (out.init_ret)
		goto done;
	bpf_for(i, 0, out.iters) {
		err = bpf_tld_write_consistent(&tld, seq_big, &s->v[i & 1]);
		if (err == -EBUSY)
			out.busy++;
		else if (err)
			out.absent++;
		else
			out.ok++;
	}
done:
	bpf_task_release(task);
	barrier_var(ctx);
	*ctx = out;
	return 0;
}
