// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * demo.bpf.c - the BPF side of `make demo` (examples/src/bin/demo.rs).
 *
 * Every time a thread of the demo process is switched out, this program reads
 * the thread's hints, set from Rust with plain stores:
 *   priority      (i32)                  tld_example_hints::PRIORITY
 *   latency       (struct LatencyHint)   tld_example_hints::LATENCY
 * writes one back:
 *   switches_seen (u64)                  tld_example_hints::SWITCHES_SEEN, +1
 * and records what it saw in the hash map `seen`, keyed by thread id, for the
 * demo to print. The hints' keys and C types come from tld_generated.h, which
 * examples/build.rs generates from the hints crate.
 */
#include "tld_vmlinux.h"
#include "tld_generated.h"	/* includes task_local_data.bpf.h */
#include <bpf/bpf_tracing.h>	/* BPF_PROG */

/* uapi <linux/bpf.h> values that tld_vmlinux.h does not carry. */
#ifndef BPF_MAP_TYPE_HASH
#define BPF_MAP_TYPE_HASH 1
#endif
#ifndef BPF_NOEXIST
#define BPF_NOEXIST 1
#endif

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the loader before load: only this process's threads are looked at. */
const volatile __s32 demo_tgid = 0;

/* Bits of demo_seen.found: which hints bpf_tld_get() found. */
#define FOUND_PRIORITY	(1U << 0)
#define FOUND_LATENCY	(1U << 1)
#define FOUND_SWITCHES	(1U << 2)

/* What BPF saw at a thread's latest switch-out. Mirrored by `Seen` in demo.rs. */
struct demo_seen {
	__u64 switches;		/* switches_seen after this program's increment */
	__s32 priority;		/* priority */
	__u32 budget_us;	/* latency.budget_us */
	__u32 class;		/* latency.class */
	__s32 tgid;		/* the thread's process */
	__u32 found;		/* FOUND_* bits */
	__u32 pad;
};
_Static_assert(sizeof(struct demo_seen) == 32, "demo_seen layout (mirrored in demo.rs)");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __s32);			/* thread id */
	__type(value, struct demo_seen);
} seen SEC(".maps");

/*
 * tp_btf/sched_switch: (bool preempt, struct task_struct *prev,
 *                       struct task_struct *next, unsigned int prev_state)
 * It runs on the CPU that prev is leaving, so prev's hints are not being
 * written from user space at the same time.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(demo_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct demo_seen fresh = {}, *rec;
	struct LatencyHint *latency;
	__u64 *switches;
	struct bpf_tld tld;
	__s32 *priority;
	__s32 tid;

	/* Cheap filter first: every switch on the machine comes through here. */
	if (prev->tgid != demo_tgid)
		return 0;

	/* -ENODATA: this thread has not touched a hint (or has exited). */
	if (bpf_tld_init(prev, &tld))
		return 0;

	tid = prev->pid;
	rec = bpf_map_lookup_elem(&seen, &tid);
	if (!rec) {
		fresh.tgid = prev->tgid;
		bpf_map_update_elem(&seen, &tid, &fresh, BPF_NOEXIST);
		rec = bpf_map_lookup_elem(&seen, &tid);
		if (!rec)
			return 0;
	}

	rec->found = 0;
	priority = bpf_tld_get(&tld, priority);
	if (priority) {
		rec->found |= FOUND_PRIORITY;
		rec->priority = *priority;
	}

	latency = bpf_tld_get(&tld, latency);
	if (latency) {
		rec->found |= FOUND_LATENCY;
		rec->budget_us = latency->budget_us;
		rec->class = latency->class;
	}

	/* The write back: Rust reads this with SWITCHES_SEEN.get(). Counted
	 * only with a record to put it in, so `seen` never lags the page. */
	switches = bpf_tld_get(&tld, switches_seen);
	if (switches) {
		rec->found |= FOUND_SWITCHES;
		*switches += 1;
		rec->switches = *switches;
	}
	return 0;
}
