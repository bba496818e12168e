// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * bench_tld_guard.bpf.c - bench_tld.bpf.c with the guard's check compiled in
 * (TLD_GUARD; the report loads it with tld_guard_enabled set), so that the
 * report measures what the check adds to bpf_tld_init.
 */
#define TLD_GUARD
#include "bench_tld.bpf.c"
