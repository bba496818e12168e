// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * libtld_bench.c - row L1 of the benchmark report: tld_get_data() and a store, from C, against a
 * store to a C __thread variable. Both through a function the compiler may not inline, as P1
 * measures the Rust side; libtld is linked into the program (its Rust crate, an rlib).
 */
#include <tld.h>

TLD_DEFINE_KEY(bench_c_key, "bench_c_hint", sizeof(__u64));

static __thread __u64 bench_c_tls;

__attribute__((noinline)) void tld_bench_c_set_hint(__u64 v)
{
	__u64 *p = (__u64 *)tld_get_data(-1, bench_c_key);

	if (p)
		*p = v;
}

__attribute__((noinline)) void tld_bench_c_set_tls(__u64 v)
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
