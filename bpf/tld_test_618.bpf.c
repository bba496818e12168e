// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_test_618.bpf.c - tld_test.bpf.c for the 6.18 generation of the format
 * (TLD_GEN_6_18): tld_data_map's value is { data, meta }, 16 bytes, and start
 * is read from the data page's first u64, as scx's task_local_data.bpf.h
 * reads it. For tests/tests/generations.rs.
 */
#define TLD_GEN_6_18
#include "tld_test.bpf.c"
