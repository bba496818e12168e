// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_kernel_lib_618.bpf.c - tld_kernel_lib.bpf.c for the 6.18 generation of
 * the format (TLD_GEN_6_18: a 16-byte value, start in the data page).
 */
#define TLD_GEN_6_18
#include "tld_kernel_lib.bpf.c"
