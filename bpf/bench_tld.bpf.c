// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * bench_tld.bpf.c - the BPF side of the benchmark suite (bench/), ours and the
 * floors side by side in one object, so that one build and one load measure
 * both.
 *
 * Every timed program is SEC("xdp"): BPF_PROG_TEST_RUN runs an XDP program
 * synchronously in the calling thread (so bpf_get_current_task_btf() is the
 * benchmark thread, as for a syscall program), and, unlike a syscall program,
 * accepts `repeat` and reports the mean duration per run. The packet is never
 * looked at. Each program returns the (truncated) sum of what it read, which
 * the report checks against the values it set, so a program that reads the
 * wrong bytes fails the run instead of producing a number.
 *
 * The hints are bench_h00 .. bench_h15 (u64 each) from bench/hints; with no
 * other hint in the process, bench_hNN sits at byte start + 8 * NN of the
 * page, start being the generated header's TLD_LAYOUT_START. The floor
 * programs read those fixed offsets.
 */
#include "tld_vmlinux.h"
#include "tld_generated.h"

char LICENSE[] SEC("license") = "GPL";

/* Offset of bench_hNN in a thread's page (see bench/hints/src/lib.rs). */
#define HINT_OFF(i) (TLD_LAYOUT_START + 8 * (i))
_Static_assert(HINT_OFF(0) == TLD_OFF_bench_h00 && HINT_OFF(15) == TLD_OFF_bench_h15,
	       "the bench hints are not where the floors read them");

/*
 * P2: what applications do without this library. The value is the hint
 * itself, and user space writes it with bpf_map_update_elem() on every change.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} hint_value_map SEC(".maps");

/*
 * P4: the bare registration, a map of the same layout as tld_data_map. The
 * benchmark registers a pre-allocated page here with pidfd_open() plus one
 * update, next to the runtime's registration into tld_data_map.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tld_map_value);
} bare_reg_map SEC(".maps");

/* ------------------------------------------------------------------------ */
/* Harness baseline.                                                        */

/* The cost of a test_run iteration itself. */
SEC("xdp")
int bench_empty(void *ctx)
{
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Floors: one bpf_task_storage_get() and reads at fixed offsets.           */

/*
 * The same map and the same page as ours, with the offset known at compile
 * time: the least any reader of a pinned hint page can do.
 */
#define FLOOR_PROG(name, K)							\
SEC("xdp")									\
int name(void *ctx)								\
{										\
	struct task_struct *task = bpf_get_current_task_btf();			\
	struct tld_map_value *v;						\
	struct tld_data_u *data;						\
	__u64 sum = 0;								\
	int i;									\
										\
	v = bpf_task_storage_get(&tld_data_map, task, NULL, 0);			\
	if (!v)									\
		return 0;							\
	data = v->data;								\
	if (!data)								\
		return 0;							\
	_Pragma("unroll")							\
	for (i = 0; i < (K); i++)						\
		sum += *(__u64 *)((void *)data + HINT_OFF(i));			\
	return (int)sum;							\
}

FLOOR_PROG(bench_floor_k1, 1)
FLOOR_PROG(bench_floor_k4, 4)
FLOOR_PROG(bench_floor_k16, 16)

/* The syscall approach's BPF side: the value is inline in the map element. */
SEC("xdp")
int bench_inline_k1(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 *v = bpf_task_storage_get(&hint_value_map, task, NULL, 0);

	return v ? (int)*v : 0;
}

/* ------------------------------------------------------------------------ */
/* Ours: bpf_tld_init() plus K lookups, each followed by a read. The pages  */
/* carry the generated header's fingerprint, so these take the fast path:   */
/* constant offsets into the page, no per-task cache.                       */

#define LOOKUP(key)								\
	do {									\
		__u64 *p = bpf_tld_get(&tld, key);				\
		if (p)								\
			sum += *p;						\
	} while (0)

#define LOOKUPS_1	LOOKUP(bench_h00);
#define LOOKUPS_4	LOOKUPS_1 LOOKUP(bench_h01); LOOKUP(bench_h02); LOOKUP(bench_h03);
#define LOOKUPS_16	LOOKUPS_4 LOOKUP(bench_h04); LOOKUP(bench_h05); LOOKUP(bench_h06);	\
			LOOKUP(bench_h07); LOOKUP(bench_h08); LOOKUP(bench_h09);		\
			LOOKUP(bench_h10); LOOKUP(bench_h11); LOOKUP(bench_h12);		\
			LOOKUP(bench_h13); LOOKUP(bench_h14); LOOKUP(bench_h15);

#define TLD_PROG(name, LOOKUPS)							\
SEC("xdp")									\
int name(void *ctx)								\
{										\
	struct bpf_tld tld;							\
	__u64 sum = 0;								\
										\
	if (bpf_tld_init(bpf_get_current_task_btf(), &tld))			\
		return 0;							\
	LOOKUPS									\
	return (int)sum;							\
}

TLD_PROG(bench_tld_k1, LOOKUPS_1)
TLD_PROG(bench_tld_k4, LOOKUPS_4)
TLD_PROG(bench_tld_k16, LOOKUPS_16)

/* ------------------------------------------------------------------------ */
/* Diagnostics: where ours spends its time.                                 */

/*
 * bpf_tld_init() alone: one storage get and the fingerprint check, on the
 * pages of this benchmark (which carry the generated header's fingerprint).
 * Returns 1 on success.
 */
SEC("xdp")
int bench_diag_init(void *ctx)
{
	struct bpf_tld tld;

	return bpf_tld_init(bpf_get_current_task_btf(), &tld) == 0 && tld.fast;
}

/* The cached path's init alone: two storage gets and the cache's cookie check. */
SEC("xdp")
int bench_diag_init_cached(void *ctx)
{
	struct bpf_tld tld;

	return __bpf_tld_init(bpf_get_current_task_btf(), &tld, 0) == 0 && tld.cache;
}

/*
 * A second task storage map, for the cost of a second storage get: what the
 * cached path's init pays for the cache's map of its own (tld_off_map).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tld_off_cache);
} second_get_map SEC(".maps");

/* Two bpf_task_storage_get() calls, nothing else: the least a cached init makes. */
SEC("xdp")
int bench_diag_two_gets(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tld_map_value *v;
	struct tld_off_cache *c;

	v = bpf_task_storage_get(&tld_data_map, task, NULL, 0);
	if (!v)
		return 0;
	c = bpf_task_storage_get(&second_get_map, task, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return 0;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Ours on the cached path: what a program without a generated header, or a */
/* process whose layout differs from the header's, runs: keys resolved by   */
/* name once, then read through the per-task offset cache.                  */

#define CACHED_PROG(name, LOOKUPS)						\
SEC("xdp")									\
int name(void *ctx)								\
{										\
	struct bpf_tld tld;							\
	__u64 sum = 0;								\
										\
	if (__bpf_tld_init(bpf_get_current_task_btf(), &tld, 0))		\
		return 0;							\
	LOOKUPS									\
	return (int)sum;							\
}

CACHED_PROG(bench_cached_k1, LOOKUPS_1)
CACHED_PROG(bench_cached_k4, LOOKUPS_4)
CACHED_PROG(bench_cached_k16, LOOKUPS_16)

/* ------------------------------------------------------------------------ */
/* P3a and G1 with 16 pairs per run. One init and lookup costs about 10 ns  */
/* and the kernel's timer counts whole nanoseconds per run, so a ratio of   */
/* single pairs moves in steps of about 10%; 16 pairs per run resolve it to */
/* well under 1%. Each pair is a whole init, lookup (or read) and read, as  */
/* in the K = 1 programs, and the 16 are kept apart by a compiler barrier   */
/* so that clang does not merge them.                                       */

#define X16(BODY)								\
	do {									\
		int ___i;							\
		_Pragma("unroll")						\
		for (___i = 0; ___i < 16; ___i++) {				\
			BODY;							\
			asm volatile("" ::: "memory");				\
		}								\
	} while (0)

SEC("xdp")
int bench_floor_x16(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 sum = 0;

	X16({
		struct tld_map_value *v = bpf_task_storage_get(&tld_data_map, task, NULL, 0);
		struct tld_data_u *data = v ? v->data : NULL;

		if (data)
			sum += *(__u64 *)((void *)data + HINT_OFF(0));
	});
	return (int)sum;
}

#define PAIRS_X16(name, fast)							\
SEC("xdp")									\
int name(void *ctx)								\
{										\
	struct task_struct *task = bpf_get_current_task_btf();			\
	__u64 sum = 0;								\
										\
	X16({									\
		struct bpf_tld tld;						\
		__u64 *p;							\
										\
		/* Leave on any miss: one path per pair keeps the */	\
		/* verifier's walk linear in the 16 copies.        */	\
		if (__bpf_tld_init(task, &tld, (fast)))			\
			return 0;						\
		p = bpf_tld_get(&tld, bench_h00);				\
		if (!p)								\
			return 0;						\
		sum += *p;							\
	});									\
	return (int)sum;							\
}

PAIRS_X16(bench_tld_x16, 1)
PAIRS_X16(bench_cached_x16, 0)

/* bpf_tld_init() alone, 16 times, on either path: G1's programs. */
#define INIT_X16(name, fast)							\
SEC("xdp")									\
int name(void *ctx)								\
{										\
	struct task_struct *task = bpf_get_current_task_btf();			\
										\
	X16({									\
		struct bpf_tld tld;						\
										\
		if (__bpf_tld_init(task, &tld, (fast)))			\
			return 0;						\
	});									\
	return 1;								\
}

INIT_X16(bench_init_x16, 1)
INIT_X16(bench_init_cached_x16, 0)

/* ------------------------------------------------------------------------ */
/* C2: a consistent read of 32 bytes against a plain copy of the same 32    */
/* bytes into a buffer on the stack, K times per run, on the fast and the   */
/* cached path. Each copy is handed to an empty asm that may read the       */
/* buffer and clobbers memory: the copy really lands in the buffer, and the */
/* next read loads from the page again. bench_plain32 and bench_seq32 are   */
/* [u64; 4]; the report sets both to the same value and checks the sums.    */

#define USE_BUFFER(v) asm volatile("" : : "r"(v) : "memory")

#define COPY_PLAIN32								\
	do {									\
		__u64 (*p)[4] = (void *)bpf_tld_get(&tld, bench_plain32);	\
		__u64 v[4];							\
										\
		if (p) {							\
			__builtin_memcpy(v, p, sizeof(v));			\
			USE_BUFFER(v);						\
			sum += v[0] + v[1] + v[2] + v[3];			\
		}								\
	} while (0)

#define READ_SEQ32								\
	do {									\
		__u64 v[4];							\
										\
		if (!bpf_tld_read_consistent(&tld, bench_seq32, &v)) {		\
			USE_BUFFER(v);						\
			sum += v[0] + v[1] + v[2] + v[3];			\
		}								\
	} while (0)

#define READ32_PROG(name, READ, K, fast)					\
SEC("xdp")									\
int name(void *ctx)								\
{										\
	struct bpf_tld tld;							\
	__u64 sum = 0;								\
	int i;									\
										\
	if (__bpf_tld_init(bpf_get_current_task_btf(), &tld, fast))		\
		return 0;							\
	_Pragma("unroll")							\
	for (i = 0; i < (K); i++)						\
		READ;								\
	return (int)sum;							\
}

READ32_PROG(bench_copy32_k1, COPY_PLAIN32, 1, 1)
READ32_PROG(bench_copy32_k16, COPY_PLAIN32, 16, 1)
READ32_PROG(bench_seq32_k1, READ_SEQ32, 1, 1)
READ32_PROG(bench_seq32_k16, READ_SEQ32, 16, 1)
READ32_PROG(bench_copy32_cached_k1, COPY_PLAIN32, 1, 0)
READ32_PROG(bench_seq32_cached_k1, READ_SEQ32, 1, 0)

#ifdef TLD_GUARD
/* ------------------------------------------------------------------------ */
/* The guard's check: bench_tld_guard.bpf.c builds this object with       */
/* TLD_GUARD, loaded with tld_guard_enabled set. The guard's own program,   */
/* which stamps elements, needs BPF trampolines the benchmark machines may  */
/* not have; bench_stamp_self writes the same stamp for the calling thread, */
/* so that bpf_tld_init's check succeeds as it does under the guard.        */

SEC("syscall")
int bench_stamp_self(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const struct tld_guard_key *key = __tld_guard_key();
	struct tld_map_value *v;
	struct tld_data_u *data;
	struct tld_meta_u *meta;

	if (!key)
		return 1;
	v = bpf_task_storage_get(&tld_data_map, task, (void *)0, 0);
	data = v ? v->data : (void *)0;
	meta = v ? v->meta : (void *)0;
	if (!data || !meta)
		return 2;
	__tld_guard_set_stamp(v, __tld_guard_stamp_of(key, v, data, meta, v->start, task->tgid));
	return 0;
}
#endif
