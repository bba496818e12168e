// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_c.bpf.c - what BPF sees of a thread's hints set from C, C++, Python and Rust plugins,
 * for the libtld tests (tests/tests/libtld_*.rs): every key of every part of the process, read
 * by name from the thread's single tld_data_map element. SEC("syscall") programs, run with
 * BPF_PROG_TEST_RUN by the thread under test (tld_c_read) or for any thread by its id
 * (tld_c_read_pid). Both return 0.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>

/* One member per key the tests create, in any order: the per-task offset cache. */
struct tld_offsets {
	__s16 host_value;
	__s16 host_typed;
	__s16 plugin_a_count;
	__s16 plugin_a_flag;
	__s16 plugin_b_level;
	__s16 plugin_b_budget;
	__s16 py_hint;
};

#include "task_local_data.bpf.h"
#include "tld_c.h"

char LICENSE[] SEC("license") = "GPL";

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/*
 * "plugin_b_budget" is consistent: its entry is the latch word, then two copies
 * of the value, a [u32; 2] (24 bytes, as published). The header's latch read
 * picks the copy that the word names as whole.
 */
typedef struct {
	__u32 v[2];
} budget_value;

struct budget_entry {
	__u64 seq;
	budget_value value[2];
};

static __always_inline void read_task(struct task_struct *task, struct tld_c_read *out)
{
	struct budget_entry *budget;
	struct bpf_tld tld;
	__u64 *u64p;
	__u32 *u32p;
	__s32 *s32p;

	out->pid = task->pid;
	out->tgid = task->tgid;
	out->init_ret = bpf_tld_init(task, &tld);
	if (out->init_ret)
		return;
	u64p = bpf_tld_lookup(&tld, host_value, sizeof(__u64));
	if (u64p) {
		out->found |= TLD_C_HOST_VALUE;
		out->host_value = *u64p;
	}
	s32p = bpf_tld_lookup(&tld, host_typed, sizeof(__s32));
	if (s32p) {
		out->found |= TLD_C_HOST_TYPED;
		out->host_typed = *s32p;
	}
	u64p = bpf_tld_lookup(&tld, plugin_a_count, sizeof(__u64));
	if (u64p) {
		out->found |= TLD_C_PLUGIN_A_COUNT;
		out->plugin_a_count = *u64p;
	}
	u32p = bpf_tld_lookup(&tld, plugin_a_flag, sizeof(__u32));
	if (u32p) {
		out->found |= TLD_C_PLUGIN_A_FLAG;
		out->plugin_a_flag = *u32p;
	}
	s32p = bpf_tld_lookup(&tld, plugin_b_level, sizeof(__s32));
	if (s32p) {
		out->found |= TLD_C_PLUGIN_B_LEVEL;
		out->plugin_b_level = *s32p;
	}
	budget = bpf_tld_lookup(&tld, plugin_b_budget, sizeof(struct budget_entry));
	if (budget) {
		budget_value b;
		__u32 retries = 0;

		out->found |= TLD_C_PLUGIN_B_BUDGET;
		if (!__bpf_tld_seq_read(budget, &b, budget_value, &retries)) {
			out->plugin_b_seq = budget->seq;
			out->plugin_b_budget[0] = b.v[0];
			out->plugin_b_budget[1] = b.v[1];
		}
	}
	u64p = bpf_tld_lookup(&tld, py_hint, sizeof(__u64));
	if (u64p) {
		out->found |= TLD_C_PY_HINT;
		out->py_hint = *u64p;
	}
}

SEC("syscall")
int tld_c_read(struct tld_c_read *ctx)
{
	/* Filled on the stack and copied out at the end: stores through a ctx pointer that
	 * clang has moved are refused by the verifier. */
	struct tld_c_read out = {};

	read_task(bpf_get_current_task_btf(), &out);
	*ctx = out;
	return 0;
}

SEC("syscall")
int tld_c_read_pid(struct tld_c_read *ctx)
{
	struct tld_c_read out = {};
	struct task_struct *task;

	out.pid = ctx->pid;
	task = bpf_task_from_pid(out.pid);
	if (!task) {
		out.init_ret = -3; /* -ESRCH */
		*ctx = out;
		return 0;
	}
	read_task(task, &out);
	bpf_task_release(task);
	*ctx = out;
	return 0;
}
