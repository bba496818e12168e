// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_fuzz_value.bpf.c - tld_fuzz.bpf.c with the per-task cache where the
 * header keeps it by default: in this task's tld_data_map element, after the
 * two page pointers. tests/tests/hostile.rs writes hostile caches there.
 */
#define FUZZ_CACHE_IN_VALUE
#include "tld_fuzz.bpf.c"
