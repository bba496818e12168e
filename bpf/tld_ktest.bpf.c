// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_ktest.bpf.c - the BPF side of the kernel's 7.x task local data selftest, run against
 * libtld (tests/tests/libtld_kselftest.rs). The selftest's user-space program is built at test
 * time from the kernel's sources; this program takes the place of the kernel's BPF program,
 * with tld's own header: task_main reads the calling thread's "value0", "value1" and "value2"
 * into the globals the selftest checks, and fails if "value_not_exist" is there.
 *
 * The globals are in .bss in this order; tests/c/kselftest/test_task_local_data.skel.h maps
 * the .bss map and mirrors them.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>

struct tld_offsets {
	__s16 value0;
	__s16 value1;
	__s16 value2;
	__s16 value_not_exist;
};

#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct test_tld_struct {
	__u64 a;
	__u64 b;
	__u64 c;
	__u64 d;
};

int test_value0;
int test_value1;
struct test_tld_struct test_value2;

/* Returns 0, or which step failed: 1 not registered, 2..4 a key missing, 5 a key that must
 * not exist was found. */
SEC("syscall")
int task_main(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct test_tld_struct *s;
	struct bpf_tld tld;
	int *v;

	if (bpf_tld_init(task, &tld))
		return 1;
	v = bpf_tld_lookup(&tld, value0, sizeof(int));
	if (!v)
		return 2;
	test_value0 = *v;
	v = bpf_tld_lookup(&tld, value1, sizeof(int));
	if (!v)
		return 3;
	test_value1 = *v;
	s = bpf_tld_lookup(&tld, value2, sizeof(struct test_tld_struct));
	if (!s)
		return 4;
	test_value2 = *s;
	if (bpf_tld_lookup(&tld, value_not_exist, sizeof(int)))
		return 5;
	return 0;
}
