// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * bench_tld_618.bpf.c - bench_tld.bpf.c for the 6.18 generation of the format
 * (TLD_GEN_6_18: a 16-byte value, start read from the data page), so that the
 * report measures both shapes of tld_data_map.
 */
#define TLD_GEN_6_18
#include "bench_tld.bpf.c"
