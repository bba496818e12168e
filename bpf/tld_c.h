/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tld_c.h - the context of tld_c.bpf.c's programs, shared with the C programs of the libtld
 * tests (tests/c/) and mirrored in Rust by tld_tests::c::CRead. Include it after a header
 * that defines __u64 and friends (tld_vmlinux.h in BPF, <linux/types.h> in user space).
 */
#ifndef TLD_C_H
#define TLD_C_H

/* Bits of struct tld_c_read.found: which keys the thread's element has. */
#define TLD_C_HOST_VALUE	(1ULL << 0)
#define TLD_C_HOST_TYPED	(1ULL << 1)
#define TLD_C_PLUGIN_A_COUNT	(1ULL << 2)
#define TLD_C_PLUGIN_A_FLAG	(1ULL << 3)
#define TLD_C_PLUGIN_B_LEVEL	(1ULL << 4)
#define TLD_C_PLUGIN_B_BUDGET	(1ULL << 5)
#define TLD_C_PY_HINT		(1ULL << 6)

struct tld_c_read {
	__s32 pid;		/* in (tld_c_read_pid): the thread to read; out: the thread read */
	__s32 tgid;		/* out: its process */
	__s64 init_ret;		/* bpf_tld_init(): 0, -ENODATA (not registered), -ESRCH (no such
				 * thread) */
	__u64 found;		/* TLD_C_* bits */
	__u64 host_value;	/* "host_value", __u64 */
	__s64 host_typed;	/* "host_typed", int */
	__u64 plugin_a_count;	/* "plugin_a_count", __u64 */
	__u64 plugin_a_flag;	/* "plugin_a_flag", __u32 */
	__s64 plugin_b_level;	/* "plugin_b_level", __s32 */
	__u64 plugin_b_seq;	/* "plugin_b_budget", consistent: its latch word after the read */
	__u32 plugin_b_budget[2];	/* ... and the whole copy of its value, [u32; 2] */
	__u64 py_hint;		/* "py_hint", __u64 */
};

#endif /* TLD_C_H */
