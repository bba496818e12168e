// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_test_separate.bpf.c - tld_test.bpf.c with the per-task cache in a map of
 * its own (tld_off_map), as a program that pins tld_data_map
 * (TLD_PIN_DATA_MAP) has it, but without the pin. tld_data_map's value is then
 * the wire format's 16 bytes. For tests/tests/cache_home.rs.
 */
#define TLD_SEPARATE_CACHE
#include "tld_test.bpf.c"
