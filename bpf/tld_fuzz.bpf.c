// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_fuzz.bpf.c - key lookups over hostile pages, for tests/tests/hostile.rs.
 *
 * The test thread registers a data page and a metadata page of its own, fills
 * them (and sometimes this task's tld_off_map element) with random bytes, and
 * runs tld_fuzz with BPF_PROG_TEST_RUN. The program looks every key up and
 * reports, per lookup, whether it returned NULL, the returned pointer's byte
 * offset from the data page's start, and the bytes read through the pointer.
 * The test compares all of it with a model of task_local_data.bpf.h.
 *
 * Input: the context, struct fuzz_ctx (init_var_mask). Output: the global
 * `out` (struct fuzz_out), rewritten completely by every run; the test reads
 * it through the skeleton's .bss. Field names and order are mirrored by the
 * Rust side.
 */
#include "tld_vmlinux.h"

/*
 * One slot per key, in this order (the Rust side's KEYS). Names that are
 * prefixes of each other (k, k1, k1000), sizes from 1 byte to a whole data
 * area, and a key of the maximal 61 bytes.
 */
struct tld_offsets {
	__s16 k;
	__s16 k1;
	__s16 k4;
	__s16 k8;
	__s16 k32;
	__s16 k1000;
	__s16 k4088;
	__s16 k61_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx;
};

/*
 * The 7.x generation (start in the map value, which the test registers with
 * hostile values); tld_fuzz_618.bpf.c builds the 6.18 one (start in the page).
 * The cache is in tld_off_map, which the test writes hostile bytes into.
 */
#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define FUZZ_NKEYS	8
#define FUZZ_NLOOKUPS	11

/* Returned in init_var_ret[] for keys whose bpf_tld_init_var() was not called. */
#define FUZZ_NOT_CALLED	1

struct fuzz_ctx {
	__u64 init_var_mask;	/* bit i: call bpf_tld_init_var() on key i first */
};

struct fuzz_lookup {
	__s64 off;		/* pointer - data page, or -1 for NULL */
	__u64 first;		/* first min(size, 8) bytes read through it */
	__u64 last;		/* last 8 bytes of the value, if size >= 8 */
};

struct fuzz_out {
	__s64 init_ret;			/* bpf_tld_init() */
	__u64 oob;			/* lookups whose value left the page */
	__s64 init_var_ret[FUZZ_NKEYS];	/* or FUZZ_NOT_CALLED */
	struct fuzz_lookup look[FUZZ_NLOOKUPS];
};

_Static_assert(sizeof(struct fuzz_out) == 16 + 8 * FUZZ_NKEYS + 24 * FUZZ_NLOOKUPS,
	       "fuzz_out layout");

struct fuzz_out out;

/*
 * Records one lookup's result. @size is a constant at every (inlined) call:
 * the verifier then knows each read below stays within the @size bytes that
 * bpf_tld_lookup() vouched for.
 */
static __always_inline void record(struct fuzz_lookup *r, void *p, struct tld_data_u *data,
				   const long size)
{
	long off;

	r->first = 0;
	r->last = 0;
	if (!p) {
		r->off = -1;
		return;
	}
	/* Forget that p was computed from data: the offset below is a real
	 * subtraction of the two pointers, not the cached offset. */
	barrier_var(p);
	off = (long)p - (long)data;
	r->off = off;
	if (off < 0 || off + size > TLD_PAGE_SIZE)
		out.oob++;

	if (size >= 8) {
		r->first = *(__u64 *)p;
		r->last = *(__u64 *)(p + size - 8);
	} else if (size >= 4) {
		r->first = *(__u32 *)p;
	} else if (size >= 2) {
		r->first = *(__u16 *)p;
	} else {
		r->first = *(__u8 *)p;
	}
}

#define INIT_VAR(i, key)							\
	do {									\
		if (mask & (1ULL << (i)))					\
			out.init_var_ret[i] = bpf_tld_init_var(&tld, key);	\
		else								\
			out.init_var_ret[i] = FUZZ_NOT_CALLED;			\
	} while (0)

#define LOOKUP(i, key, size)							\
	record(&out.look[i], bpf_tld_lookup(&tld, key, size), data, size)

#define KLONG k61_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

SEC("syscall")
int tld_fuzz(struct fuzz_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 mask = ctx->init_var_mask;
	struct tld_data_u *data;
	struct bpf_tld tld;
	int i;

	out.oob = 0;
	bpf_for(i, 0, FUZZ_NKEYS)
		out.init_var_ret[i] = FUZZ_NOT_CALLED;
	bpf_for(i, 0, FUZZ_NLOOKUPS) {
		out.look[i].off = -1;
		out.look[i].first = 0;
		out.look[i].last = 0;
	}

	out.init_ret = bpf_tld_init(task, &tld);
	if (out.init_ret) {
		/* Lookups through a failed handle must return NULL, and
		 * init_var -ENOENT: check that too. */
		INIT_VAR(0, k);
		if (bpf_tld_lookup(&tld, k, 1))
			out.oob++;
		return 0;
	}
	data = tld.value->data;
	if (!data)
		return 0;

	INIT_VAR(0, k);
	INIT_VAR(1, k1);
	INIT_VAR(2, k4);
	INIT_VAR(3, k8);
	INIT_VAR(4, k32);
	INIT_VAR(5, k1000);
	INIT_VAR(6, k4088);
	INIT_VAR(7, KLONG);

	LOOKUP(0, k, 2);
	LOOKUP(1, k1, 1);
	LOOKUP(2, k4, 4);
	LOOKUP(3, k8, 8);
	LOOKUP(4, k32, 32);
	LOOKUP(5, k1000, 1000);
	LOOKUP(6, k4088, 4088);
	LOOKUP(7, KLONG, 16);
	/* Same keys again: a smaller and a larger request, and a hot-path hit. */
	LOOKUP(8, k32, 8);
	LOOKUP(9, k4, 8);
	LOOKUP(10, k1, 1);
	return 0;
}
