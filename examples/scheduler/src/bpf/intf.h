/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * intf.h - what scx_tld's BPF side shares with user space. The Rust side is
 * generated from this file at build time (crate scx_tld_intf, in ../../intf),
 * for the loader's counters and for the VM tests, which read the pinned
 * `records` map. Its parser accepts only what is used here: an include guard,
 * `#define NAME VALUE` with an integer literal or (A << B), structs of
 * u8..u64 / s8..s64 fields, `_Static_assert(sizeof(struct x) == N, "...")`
 * and comments (one after an item documents it). Anything else fails the
 * build.
 */
#ifndef __SCX_TLD_INTF_H
#define __SCX_TLD_INTF_H

/* Bits of tld_sched_record.flags. */
#define TLD_REC_PRIORITY	(1U << 0)	/* the priority hint was found */
#define TLD_REC_LATENCY		(1U << 1)	/* the latency hint was found */
#define TLD_REC_FAST_PATH	(1U << 2)	/* read at the generated header's constant offsets */
#define TLD_REC_CRITICAL	(1U << 3)	/* its hints made it critical (see main.bpf.c) */

/* What the scheduler last read for one thread: value of the map `records`,
 * keyed by thread id. Kept only when the loader asks for it (--pin-records),
 * at every enqueue of a thread that has hints; deleted when the thread execs. */
struct tld_sched_record {
	s32 tgid;		/* the thread's process */
	s32 priority;		/* the priority hint (0 if absent) */
	u32 budget_us;		/* latency.budget_us (0 if absent) */
	u32 class;		/* latency.class (0 if absent) */
	u32 weight;		/* the weight the thread runs with (its nice, moved by the hint) */
	u32 flags;		/* TLD_REC_* */
	u64 slice_ns;		/* the slice the hints gave */
	u64 reads;		/* enqueues at which the hints were read */
	u64 fast_reads;		/* ... of which on the fast path */
	u64 read_ns;		/* when they were last read (CLOCK_MONOTONIC) */
	u64 changed_ns;		/* the first read that saw the current values */
	u64 before_change_ns;	/* the read before that one */
};
_Static_assert(sizeof(struct tld_sched_record) == 72, "tld_sched_record layout");

/* Per-CPU counters: value of the map `stats`, one per CPU, each counted by
 * the CPU it names (the one that ran the program, or for `preempted` and
 * `boosted_ns`, the CPU the task ran on). */
struct tld_sched_stats {
	u64 enqueues;		/* ops.enqueue calls */
	u64 direct;		/* wake-ups placed directly on an idle CPU */
	u64 critical;		/* enqueues of a task its hints make critical */
	u64 boosted;		/* ... that got the boost (budgets left) */
	u64 hogs;		/* ... that did not: a thread or process budget was spent */
	u64 preempt_kicks;	/* critical wake-ups that preempted a CPU (the victim's own count is `preempted`) */
	u64 preempted;		/* times this CPU was preempted for a critical task */
	u64 tick_preempts;	/* boosted tasks stopped at a tick on this CPU (budget spent, or the CPU's boost share) */
	u64 capped;		/* dispatches at which this CPU had used its boost share and served ordinary work first */
	u64 boosted_ns;		/* time this CPU ran boosted tasks */
	u64 no_hints;		/* hint reads of threads that have none */
	u64 fast_reads;		/* hint reads on the fast path */
	u64 cached_reads;	/* hint reads through the offset cache */
	u64 exec_clears;	/* tld_data_map elements deleted at exec */
};
_Static_assert(sizeof(struct tld_sched_stats) == 112, "tld_sched_stats layout");

#endif /* __SCX_TLD_INTF_H */
