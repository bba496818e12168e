// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * libtld_bench.c - row L1 of the benchmark report: tld_get_data() and a store, from C, against a
 * store to a C __thread variable. Both through a function the compiler may not inline, as P1
 * measures the Rust side; libtld is linked into the program (its Rust crate, an rlib).
 *
 * Both measured functions start on a 64-byte boundary, so that where the linker happens to
 * place them cannot decide the figure: on Intel cores with the jump-on-32-byte-boundary
 * erratum, a conditional jump that ends on such a boundary costs about a cycle per call,
 * which moved L1 from 1.03x to 1.2x between two builds of the same code.
 */
#define BENCH_ALIGNED __attribute__((noinline, aligned(64)))
#include <tld.h>

TLD_DEFINE_KEY(bench_c_key, "bench_c_hint", sizeof(__u64));

static __thread __u64 bench_c_tls;

BENCH_ALIGNED void tld_bench_c_set_hint(__u64 v)
{
	__u64 *p = (__u64 *)tld_get_data(-1, bench_c_key);

	if (p)
		*p = v;
}

BENCH_ALIGNED void tld_bench_c_set_tls(__u64 v)
{
	bench_c_tls = v;
}

__u64 tld_bench_c_hint(void)
{
	__u64 *p = (__u64 *)tld_get_data(-1, bench_c_key);

	return p ? *p : ~0ULL;
}

__u64 tld_bench_c_tls(void)
{
	return bench_c_tls;
}
