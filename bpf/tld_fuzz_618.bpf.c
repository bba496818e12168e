// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_fuzz_618.bpf.c - tld_fuzz.bpf.c for the 6.18 generation of the format
 * (TLD_GEN_6_18): start comes from the data page's first u64, which the test
 * fills with hostile bytes, instead of from the map value.
 */
#define TLD_GEN_6_18
#include "tld_fuzz.bpf.c"
