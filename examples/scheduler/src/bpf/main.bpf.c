/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * scx_tld: a weighted virtual-time scheduler whose policy comes from hints
 * that applications set per thread, from Rust, with plain stores.
 *
 * The hints (crate tld-sched-hints; C definitions in the generated header):
 *   priority  i32                 nice-like, relative to the thread's own nice
 *   latency   struct LatencyHint  { budget_us, class }: slice and boost
 *
 * Policy, evaluated at every enqueue (so a store takes effect at the thread's
 * next wake-up or preemption):
 *  - Weight: the kernel's nice-to-weight table at the thread's own nice plus
 *    its priority hint, the hint clamped to [-max_boost, 39] and the sum to
 *    [-20, 19]. A hint of 0 (its initial value) leaves the thread's own nice
 *    weight. Running for t costs t * 1024 / weight of virtual time, always,
 *    boosted or not; ordinary work runs the smallest virtual time first, and
 *    a waking task is credited at most one slice.
 *  - Slice: the default slice; a latency budget shortens it to the budget
 *    (at least MIN_SLICE_NS); CLASS_BATCH doubles it.
 *  - Critical: a task of CLASS_INTERACTIVE with a budget. A critical task
 *    gets the boost while its budgets last:
 *      * a waking one that finds no idle CPU preempts one CPU that runs
 *        ordinary work (a victim in its cpumask, the one it last ran on
 *        first): it is inserted at the head of that CPU's local queue with
 *        SCX_ENQ_PREEMPT. No other CPU is disturbed.
 *      * otherwise it waits in the critical queue, which a CPU serves before
 *        ordinary work while the CPU's boost share allows.
 *  - Bounds, whatever a thread does with its hints or its sleep pattern:
 *      * per thread: boosted run time comes from a token bucket refilled at
 *        boost_thread_pct of wall time, up to THREAD_BURST slices;
 *      * per process: one bucket for all its threads, refilled at
 *        boost_proc_pct of one CPU, up to PROC_BURST slices (new threads do
 *        not bring new budget);
 *      * per CPU: boosted tasks run at most boost_cpu_pct of each
 *        BOOST_WINDOW_NS window; past it the CPU serves ordinary work first
 *        and a boosted task running there gives way at the next tick if
 *        ordinary work waits.
 *    A critical task whose thread or process budget is spent is a hog: it is
 *    queued as ordinary work (and a running one is stopped at the next tick)
 *    until the bucket refills. Nothing resets a bucket: not blocking, not
 *    toggling the hint. Boosted time is charged to virtual time like any
 *    other, so it is taken from the thread's own fair share.
 *  - A critical task preempted while its hint reads otherwise stays critical
 *    for that one enqueue (a worker between two polls of interactive work);
 *    the next read decides.
 *  - Reads are never cached: a worker thread of an async executor takes on
 *    the hints of each task it polls (tld-runtime's with_hint), so the hint
 *    read at one decision may differ from the one read at the previous.
 *  - Without hints (a thread that never touched one, or use_hints off), all
 *    of this is the default: own nice weight, default slice, no boost.
 *  - exec() deletes the thread's tld_data_map element: hints set before exec
 *    do not outlive it (the new program's runtime registers again on first
 *    use).
 *
 * Queues: one ordinary (virtual time) and one critical queue per last-level
 * cache, so that CPUs of different caches do not share a lock. A CPU serves
 * its own cache's queues first, then takes work from the others'.
 *
 * Hints are read with bpf_tld_init()/bpf_tld_get(). For a process whose
 * hints are exactly those of the header this program was built with, that is
 * a constant-offset read from the thread's page (the fast path); any other
 * process (more hints, other hints) is served from the per-task offset cache.
 *
 * Monitoring: per-CPU counters in `stats` (always: one increment each), and,
 * only when the loader asks (keep_records), what the scheduler last read for
 * each thread in the LRU hash `records`.
 */
#include <scx/common.bpf.h>

/* Pin tld_data_map at /sys/fs/bpf/tld_data_map, where tld-runtime in every
 * application looks for it. A pin left by an earlier run is reused, so the
 * threads registered with it keep their hints across a restart. */
#define TLD_PIN_DATA_MAP
/* The guard's check (tld-guard): on only when the loader attaches the guard
 * and sets tld_guard_enabled (scx_tld --guard); otherwise the verifier drops
 * it. The loader pins the guard's key beside the data map, so stamps survive
 * a restart. */
#define TLD_GUARD
#include "tld_generated.h"	/* from tld-sched-hints; includes task_local_data.bpf.h */

#include "intf.h"

char _license[] SEC("license") = "GPL";

#define MAX_CPUS	1024			/* a power of two */
#define MAX_LLCS	64

/* Set by the loader before load. */
const volatile bool use_hints = true;		/* false: ignore every hint (the control) */
const volatile bool keep_records = false;	/* keep `records` (--pin-records) */
const volatile u64 slice_ns = 20000000;		/* default slice: 20 ms */
/* LatencyHint::CLASS_* of tld-sched-hints; the loader sets them from there. */
const volatile u32 class_interactive = 1;
const volatile u32 class_batch = 2;
/* Nice levels a priority hint may take a thread below its own nice. */
const volatile u32 max_boost = 5;
/* Boost bounds (see the top of this file). */
const volatile u32 boost_cpu_pct = 50;		/* of each CPU, per window */
const volatile u32 boost_thread_pct = 50;	/* of a thread's wall time */
const volatile u32 boost_proc_pct = 100;	/* of one CPU, per process */
/* Topology: the last-level cache of each CPU, 0 .. nr_llcs - 1. */
const volatile u32 nr_llcs = 1;
const volatile u32 cpu_llc[MAX_CPUS];

#define MIN_SLICE_NS	50000ULL		/* shortest slice a budget gives: 50 us */
#define BOOST_WINDOW_NS	100000000ULL		/* the per-CPU boost share's window: 100 ms */
#define THREAD_BURST	4			/* a thread's bucket: 4 default slices (80 ms) */
#define PROC_BURST	8			/* a process's bucket: 8 default slices */
#define REFILL_MAX_NS	10000000000ULL		/* longer gaps refill a full bucket */
#define NICE_0_WEIGHT	1024

/* Queue ids: the ordinary and the critical queue of each LLC. */
#define SHARED_DSQ(llc)	((u64)(llc))
#define LAT_DSQ(llc)	((u64)MAX_LLCS + (llc))

UEI_DEFINE(uei);

/*
 * The virtual time of ordinary work: the largest virtual time a task taken in
 * order (not boosted) has started running with. Boosted tasks run out of
 * order and never move it.
 */
static u64 vtime_now;

/* The kernel's sched_prio_to_weight[]: nice -20 .. 19. */
static const u32 nice_weight[40] = {
	88761, 71755, 56483, 46273, 36291,
	29154, 23254, 18705, 14949, 11916,
	9548,  7620,  6100,  4904,  3906,
	3121,  2501,  1991,  1586,  1277,
	1024,  820,   655,   526,   423,
	335,   272,   215,   172,   137,
	110,   87,    70,    56,    45,
	36,    29,    23,    18,    15,
};

/* A token bucket of boosted run time. */
struct budget {
	s64 tokens;		/* ns of boosted run left (negative: in debt) */
	u64 at;			/* when it was last refilled */
};

/* Per task: the policy its hints gave at its latest enqueue. */
struct task_ctx {
	u64 slice;		/* slice to run with */
	u64 started;		/* when it last started running */
	u32 weight;		/* vtime weight, NICE_0_WEIGHT at nice 0 */
	bool critical;		/* its hints make it critical (see critical()) */
	bool missed;		/* one read of it, critical, found the hint gone */
	bool boosted;		/* it runs boosted: charged to the budgets */
	bool preempting;	/* inserted on a victim CPU with SCX_ENQ_PREEMPT */
	struct budget budget;	/* the thread's bucket */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

/* Per process (by tgid): the bucket all its threads share. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, s32);
	__type(value, struct budget);
} procs SEC(".maps");

/* Per CPU, readable from every CPU (victim choice). */
struct cpu_ctx {
	u32 critical;		/* it runs a critical task, or one was just sent to it */
	u32 boosted;		/* the task it runs is boosted */
	u64 win_start;		/* the boost share's current window */
	u64 win_boost_ns;	/* boosted run time in that window */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctxs SEC(".maps");

/* What the scheduler last read for each thread that has hints (see intf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, s32);
	__type(value, struct tld_sched_record);
} records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct tld_sched_stats);
} stats SEC(".maps");

static struct tld_sched_stats *my_stats(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

#define STAT_ADD(s, field, n)		\
	do {				\
		if (s)			\
			(s)->field += (n);	\
	} while (0)
#define STAT_INC(s, field) STAT_ADD(s, field, 1)

static struct cpu_ctx *cpu_ctx_of(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&cpu_ctxs, &key);
}

static u32 llc_of(s32 cpu)
{
	u32 llc;

	if (cpu < 0 || cpu >= MAX_CPUS)
		return 0;
	llc = cpu_llc[cpu & (MAX_CPUS - 1)];
	return llc < nr_llcs ? llc : 0;
}

static u32 nr_cpus(void)
{
	u32 n = scx_bpf_nr_cpu_ids();

	return n < MAX_CPUS ? n : MAX_CPUS;
}

/* ---------------------------------------------------------------------- */
/* Budgets.                                                                */

static s64 thread_burst(void)
{
	return THREAD_BURST * slice_ns;
}

static s64 proc_burst(void)
{
	return PROC_BURST * slice_ns;
}

/*
 * Refills @b for the time since its last refill at @pct percent, up to
 * @burst; returns the tokens left. Safe against a concurrent refill or
 * charge on another CPU (a process's bucket): only the CPU that moves `at`
 * adds the tokens.
 */
static s64 refill(struct budget *b, u64 now, u64 pct, s64 burst)
{
	u64 at = b->at;
	u64 gap, gained;
	s64 tokens;

	if (!time_before(at, now))
		return b->tokens;
	if (__sync_val_compare_and_swap(&b->at, at, now) != at)
		return b->tokens;
	gap = now - at;
	gained = gap > REFILL_MAX_NS ? (u64)burst : gap * pct / 100;
	tokens = __sync_fetch_and_add(&b->tokens, (s64)gained) + (s64)gained;
	if (tokens > burst)
		b->tokens = burst;	/* racy, and bounded: one charge may be lost */
	return tokens > burst ? burst : tokens;
}

/* The bucket of process @tgid; a process seen for the first time gets a full one. */
static struct budget *proc_budget(s32 tgid, u64 now)
{
	struct budget *b, fresh = { .tokens = proc_burst(), .at = now };

	b = bpf_map_lookup_elem(&procs, &tgid);
	if (b)
		return b;
	bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* Whether @p may run boosted now: tokens left in its thread's and its process's bucket. */
static bool budgets_left(struct task_struct *p, struct task_ctx *tctx, u64 now)
{
	struct budget *pb;

	if (refill(&tctx->budget, now, boost_thread_pct, thread_burst()) <= 0)
		return false;
	pb = proc_budget(p->tgid, now);
	/* No room for the process's bucket (map full, racing creation): no boost. */
	if (!pb)
		return false;
	return refill(pb, now, boost_proc_pct, proc_burst()) > 0;
}

/* Whether CPU @c has run boosted tasks for its share of the current window
 * (counting @running ns of the run in progress). */
static bool cpu_capped(struct cpu_ctx *c, u64 now, u64 running)
{
	if (now - c->win_start >= BOOST_WINDOW_NS)
		return running >= BOOST_WINDOW_NS * boost_cpu_pct / 100;
	return c->win_boost_ns + running >= BOOST_WINDOW_NS * boost_cpu_pct / 100;
}

static void cpu_charge(struct cpu_ctx *c, u64 now, u64 used)
{
	if (now - c->win_start >= BOOST_WINDOW_NS) {
		c->win_start = now;
		c->win_boost_ns = 0;
	}
	c->win_boost_ns += used;
}

/* ---------------------------------------------------------------------- */
/* Hints.                                                                  */

/* The nice value the task was given (static_prio is 120 + nice). */
static s32 own_nice(const struct task_struct *p)
{
	s32 nice = p->static_prio - 120;

	return nice < -20 ? -20 : nice > 19 ? 19 : nice;
}

/* What one read of a thread's hints found. */
struct hints {
	s32 priority;		/* the priority hint, 0 if absent */
	u32 budget_us;		/* latency.budget_us, 0 if absent */
	u32 class;		/* latency.class, 0 if absent */
	bool has_priority;
	bool has_latency;
	bool fast;		/* read on the fast path */
};

/* Keeps the per-thread record of what was read (for monitoring and tests). */
static void record(struct task_struct *p, struct task_ctx *tctx, const struct hints *h)
{
	struct tld_sched_record fresh = {}, *rec;
	s32 tid = p->pid;
	u64 now = bpf_ktime_get_ns();
	u32 flags = 0;

	rec = bpf_map_lookup_elem(&records, &tid);
	if (!rec) {
		fresh.tgid = p->tgid;
		fresh.priority = h->priority;
		fresh.budget_us = h->budget_us;
		fresh.class = h->class;
		fresh.changed_ns = now;
		bpf_map_update_elem(&records, &tid, &fresh, BPF_NOEXIST);
		rec = bpf_map_lookup_elem(&records, &tid);
		if (!rec)
			return;
	}
	if (rec->tgid != p->tgid) {	/* a reused thread id */
		__builtin_memset(rec, 0, sizeof(*rec));
		rec->tgid = p->tgid;
		rec->changed_ns = now;
	}
	if (rec->priority != h->priority || rec->budget_us != h->budget_us ||
	    rec->class != h->class) {
		rec->before_change_ns = rec->read_ns;
		rec->changed_ns = now;
	}
	if (h->has_priority)
		flags |= TLD_REC_PRIORITY;
	if (h->has_latency)
		flags |= TLD_REC_LATENCY;
	if (h->fast)
		flags |= TLD_REC_FAST_PATH;
	if (tctx->critical)
		flags |= TLD_REC_CRITICAL;
	rec->priority = h->priority;
	rec->budget_us = h->budget_us;
	rec->class = h->class;
	rec->flags = flags;
	rec->weight = tctx->weight;
	rec->slice_ns = tctx->slice;
	rec->read_ns = now;
	rec->reads++;
	if (h->fast)
		rec->fast_reads++;
}

/*
 * Reads @p's hints into @h; false if it has none (it never touched a hint,
 * or it exec'd since).
 */
static bool read_hints(struct task_struct *p, struct hints *h)
{
	struct tld_sched_stats *s = my_stats();
	struct bpf_tld tld;
	__u64 *lat;
	s32 *prio;

	__builtin_memset(h, 0, sizeof(*h));
	/* -ENODATA: the thread never touched a hint. */
	if (bpf_tld_init(p, &tld)) {
		STAT_INC(s, no_hints);
		return false;
	}
	h->fast = tld.fast != NULL;
	if (h->fast)
		STAT_INC(s, fast_reads);
	else
		STAT_INC(s, cached_reads);
	prio = bpf_tld_get(&tld, priority);
	if (prio) {
		h->priority = *(volatile s32 *)prio;
		h->has_priority = true;
	}
	/*
	 * struct LatencyHint { u32 budget_us; u32 class; } read in one 8-byte
	 * load, so that budget and class come from the same store (the wire
	 * format puts every value at an 8-byte boundary).
	 */
	_Static_assert(sizeof(struct LatencyHint) == 8, "LatencyHint is read as one u64");
	lat = bpf_tld_lookup(&tld, latency, sizeof(__u64));
	if (lat) {
		__u64 v = *(volatile __u64 *)lat;

		h->budget_us = (u32)v;
		h->class = (u32)(v >> 32);
		h->has_latency = true;
	}
	return true;
}

/*
 * Reads @p's hints and sets its policy in @tctx: weight, slice, and whether
 * its hints make it critical. Called at every enqueue (@preempted: of a task
 * that was running, not waking up) and at wake-ups placed directly on an idle
 * CPU. The budgets are checked by the caller.
 */
static void apply_hints(struct task_struct *p, struct task_ctx *tctx, bool preempted)
{
	bool was_critical = tctx->critical;
	s32 nice = own_nice(p);
	struct hints h;

	tctx->weight = nice_weight[nice + 20];
	tctx->slice = slice_ns;
	tctx->critical = false;

	if (!use_hints || !read_hints(p, &h)) {
		tctx->missed = false;
		return;
	}

	if (h.has_priority && h.priority) {
		s32 delta = h.priority;

		if (delta < -(s32)max_boost)
			delta = -(s32)max_boost;
		if (delta > 39)
			delta = 39;
		nice += delta;
		if (nice < -20)
			nice = -20;
		if (nice > 19)
			nice = 19;
		tctx->weight = nice_weight[nice + 20];
	}
	if (h.class == class_batch) {
		tctx->slice = slice_ns * 2;
	} else if (h.budget_us) {
		u64 want = (u64)h.budget_us * 1000;

		tctx->slice = want < MIN_SLICE_NS ? MIN_SLICE_NS :
			      want > slice_ns ? slice_ns : want;
	}
	if (h.budget_us && h.class == class_interactive) {
		tctx->critical = true;
		tctx->missed = false;
	} else if (preempted && was_critical && !tctx->missed) {
		/*
		 * Preempted while it ran as critical, and its hint now reads
		 * otherwise. Once is no proof that its interactive work is
		 * over: an executor's worker runs its own code between two
		 * polls, with its own hints, and a preemption can land there.
		 * It stays critical for this one enqueue, with the shortest
		 * slice; a second such read in a row ends it. The budgets
		 * bound it like any other boost.
		 */
		tctx->critical = true;
		tctx->missed = true;
		tctx->slice = MIN_SLICE_NS;
	} else {
		tctx->missed = false;
	}
	if (keep_records)
		record(p, tctx, &h);
}

static struct task_ctx *lookup_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* Placement.                                                              */

/*
 * The virtual time to queue @p with: its own, except that a waking task is
 * credited at most one slice for the time it slept. A task that did not
 * sleep keeps its own (CPUs that run different sets of tasks, pinned ones
 * say, advance their tasks' virtual times at different rates: clamping those
 * to the fastest would erase their weights).
 */
static u64 queue_vtime(struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;

	if ((enq_flags & SCX_ENQ_WAKEUP) && time_before(vtime, vtime_now - slice_ns))
		vtime = vtime_now - slice_ns;
	return vtime;
}

/* Whether CPU @cpu may be preempted for a critical task: it runs ordinary
 * work and has boost share left. Claims it, so that two wake-ups at once do
 * not pick the same victim. */
static bool claim_victim(s32 cpu, u64 now)
{
	struct cpu_ctx *c = cpu_ctx_of(cpu);

	if (!c || c->critical || cpu_capped(c, now, 0))
		return false;
	return __sync_val_compare_and_swap(&c->critical, 0, 1) == 0;
}

/*
 * One CPU in @p's cpumask that runs ordinary work, the CPU it last ran on
 * first; -1 if there is none (every allowed CPU runs critical work or has
 * used its boost share).
 */
static s32 pick_victim(struct task_struct *p, u64 now)
{
	s32 prev = scx_bpf_task_cpu(p);
	u32 n = nr_cpus(), i;

	if (prev >= 0 && bpf_cpumask_test_cpu(prev, p->cpus_ptr) && claim_victim(prev, now))
		return prev;
	/*
	 * A task that cannot migrate may only go to the CPU it is on. (A
	 * migration_disabled count of 1 on the current task may be the BPF
	 * prolog's own; taking it for real only narrows the choice.)
	 */
	if (p->nr_cpus_allowed == 1 || p->migration_disabled)
		return -1;
	bpf_for(i, 1, n) {
		s32 cpu = (prev + i) % n;

		if (bpf_cpumask_test_cpu(cpu, p->cpus_ptr) && claim_victim(cpu, now))
			return cpu;
	}
	return -1;
}

s32 BPF_STRUCT_OPS(tld_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = lookup_ctx(p);
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle && tctx) {
		/* An idle CPU: run there now, with the slice the hints give.
		 * It takes nothing from anyone, so it is not a boost. */
		apply_hints(p, tctx, false);
		tctx->boosted = false;
		tctx->preempting = false;
		STAT_INC(my_stats(), direct);
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, tctx->slice, 0);
	}
	return cpu;
}

void BPF_STRUCT_OPS(tld_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_ctx(p);
	struct tld_sched_stats *s = my_stats();
	u32 llc = llc_of(scx_bpf_task_cpu(p));
	u64 now;
	s32 cpu;

	STAT_INC(s, enqueues);
	if (!tctx) {
		/* No context (it could not be created): ordinary work. */
		scx_bpf_dsq_insert_vtime(p, SHARED_DSQ(llc), slice_ns, queue_vtime(p, enq_flags), enq_flags);
		return;
	}
	apply_hints(p, tctx, !(enq_flags & SCX_ENQ_WAKEUP));
	tctx->boosted = false;
	tctx->preempting = false;

	if (tctx->critical) {
		STAT_INC(s, critical);
		now = bpf_ktime_get_ns();
		if (!budgets_left(p, tctx, now)) {
			/* A hog: ordinary work until its buckets refill. */
			STAT_INC(s, hogs);
			goto ordinary;
		}
		STAT_INC(s, boosted);
		tctx->boosted = true;
		/*
		 * A waking task preempts one CPU running ordinary work. One
		 * that was preempted itself goes to the critical queue, which
		 * the CPU it just left serves next.
		 */
		if (enq_flags & SCX_ENQ_WAKEUP) {
			cpu = pick_victim(p, now);
			if (cpu >= 0) {
				tctx->preempting = true;
				STAT_INC(s, preempt_kicks);
				scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, tctx->slice,
						   enq_flags | SCX_ENQ_PREEMPT);
				return;
			}
		}
		scx_bpf_dsq_insert_vtime(p, LAT_DSQ(llc), tctx->slice, queue_vtime(p, enq_flags), enq_flags);
		return;
	}
ordinary:
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ(llc), tctx->slice, queue_vtime(p, enq_flags), enq_flags);
}

/* Moves a task from LLC @llc's queues to this CPU's local queue: the
 * critical queue first unless the CPU has used its boost share. */
static bool take_from(u32 llc, bool capped)
{
	if (!capped && scx_bpf_dsq_move_to_local(LAT_DSQ(llc), 0))
		return true;
	if (scx_bpf_dsq_move_to_local(SHARED_DSQ(llc), 0)) {
		if (capped && scx_bpf_dsq_nr_queued(LAT_DSQ(llc)))
			STAT_INC(my_stats(), capped);
		return true;
	}
	return capped && scx_bpf_dsq_move_to_local(LAT_DSQ(llc), 0);
}

/*
 * @prev's slice ended and it is still runnable. The kernel asks for the next
 * task before it queues @prev again, and would run whatever this returns
 * first: so @prev runs on, with a new slice, if no task in the ordinary queue
 * that may run here has a smaller virtual time than @prev has now, and no
 * critical task waits. (Without this, two tasks sharing a CPU would take
 * turns slice by slice, whatever their weights.) Its hints are read as at an
 * enqueue: one that makes it critical sends it through enqueue instead.
 */
static bool keep_prev(struct task_struct *prev, s32 cpu, u32 llc, bool capped)
{
	struct task_ctx *tctx;
	struct task_struct *p;
	u64 vtime, now;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED))
		return false;
	tctx = lookup_ctx(prev);
	if (!tctx || tctx->critical)
		return false;
	if (!capped && scx_bpf_dsq_nr_queued(LAT_DSQ(llc)))
		return false;
	now = bpf_ktime_get_ns();
	vtime = prev->scx.dsq_vtime +
		(now - tctx->started) * NICE_0_WEIGHT / (tctx->weight ?: 1);
	bpf_for_each(scx_dsq, p, SHARED_DSQ(llc), 0) {
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (time_before(p->scx.dsq_vtime, vtime))
			return false;
		break;
	}
	apply_hints(prev, tctx, true);
	if (tctx->critical)
		return false;
	prev->scx.slice = tctx->slice;
	return true;
}

void BPF_STRUCT_OPS(tld_dispatch, s32 cpu, struct task_struct *prev)
{
	struct cpu_ctx *c = cpu_ctx_of(cpu);
	bool capped = c && cpu_capped(c, bpf_ktime_get_ns(), 0);
	u32 llc = llc_of(cpu), i;

	if (keep_prev(prev, cpu, llc, capped))
		return;
	if (take_from(llc, capped))
		return;
	/* Nothing in this CPU's cache: take work from the others'. */
	bpf_for(i, 1, nr_llcs) {
		if (i >= MAX_LLCS)
			break;
		if (take_from((llc + i) % nr_llcs, capped))
			return;
	}
}

void BPF_STRUCT_OPS(tld_running, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_ctx(p);
	struct cpu_ctx *c = cpu_ctx_of(scx_bpf_task_cpu(p));

	if (!tctx) {
		if (c)
			c->critical = c->boosted = 0;
		return;
	}
	tctx->started = bpf_ktime_get_ns();
	if (c) {
		c->critical = tctx->critical;
		c->boosted = tctx->boosted;
	}
	if (tctx->preempting) {
		tctx->preempting = false;
		STAT_INC(my_stats(), preempted);
	}
	/* Only work taken in virtual-time order moves the clock. */
	if (!tctx->boosted && time_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

void BPF_STRUCT_OPS(tld_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = lookup_ctx(p);
	struct cpu_ctx *c = cpu_ctx_of(scx_bpf_task_cpu(p));
	struct budget *pb;
	u64 now, used;
	s32 tgid;

	if (c)
		c->critical = c->boosted = 0;
	if (!tctx)
		return;
	now = bpf_ktime_get_ns();
	used = now - tctx->started;
	p->scx.dsq_vtime += used * NICE_0_WEIGHT / (tctx->weight ?: 1);
	if (!tctx->boosted)
		return;
	tctx->budget.tokens -= used;
	tgid = p->tgid;
	pb = bpf_map_lookup_elem(&procs, &tgid);
	if (pb)
		__sync_fetch_and_sub(&pb->tokens, (s64)used);
	if (c)
		cpu_charge(c, now, used);
	STAT_ADD(my_stats(), boosted_ns, used);
}

/*
 * At every tick, for a boosted running task only: it gives way when its
 * thread's or process's bucket ran out during this run, or when this CPU has
 * used its boost share and ordinary work waits. Never another CPU, never a
 * task that is not boosted.
 */
void BPF_STRUCT_OPS(tld_tick, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct cpu_ctx *c;
	struct budget *pb;
	u64 now, ran;
	s32 tgid;
	bool stop;

	if (!tctx || !tctx->boosted)
		return;
	now = bpf_ktime_get_ns();
	ran = now - tctx->started;
	tgid = p->tgid;
	pb = bpf_map_lookup_elem(&procs, &tgid);
	stop = tctx->budget.tokens <= (s64)ran || (pb && pb->tokens <= (s64)ran);
	if (!stop) {
		c = cpu_ctx_of(cpu);
		stop = c && cpu_capped(c, now, ran) &&
		       scx_bpf_dsq_nr_queued(SHARED_DSQ(llc_of(cpu)));
	}
	if (stop) {
		p->scx.slice = 0;
		STAT_INC(my_stats(), tick_preempts);
	}
}

/* A higher scheduling class took this CPU: the tasks already queued on it go
 * back through enqueue, to run elsewhere rather than wait. */
void BPF_STRUCT_OPS(tld_cpu_release, s32 cpu, struct scx_cpu_release_args *args)
{
	scx_bpf_reenqueue_local();
}

void BPF_STRUCT_OPS(tld_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 BPF_STRUCT_OPS(tld_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct task_ctx *tctx;

	tctx = bpf_task_storage_get(&task_ctxs, p, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tctx)
		return -ENOMEM;
	tctx->weight = NICE_0_WEIGHT;
	tctx->slice = slice_ns;
	tctx->budget.tokens = thread_burst();
	tctx->budget.at = bpf_ktime_get_ns();
	return 0;
}

/*
 * exec() replaces the program but keeps the task and its tld_data_map
 * element, which still points at the pages the old program registered: the
 * new program would run with the hints the old one set (a launcher's -20 and
 * interactive, say). Delete the element; a new program that uses tld
 * registers the thread again on its first access to a hint.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(tld_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	s32 tid = cur->pid;

	if (!bpf_task_storage_delete(&tld_data_map, cur))
		STAT_INC(my_stats(), exec_clears);
	if (keep_records)
		bpf_map_delete_elem(&records, &tid);
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(tld_init)
{
	u32 i;
	s32 ret;

	bpf_for(i, 0, nr_llcs) {
		if (i >= MAX_LLCS)
			break;
		ret = scx_bpf_create_dsq(SHARED_DSQ(i), -1);
		if (ret)
			return ret;
		ret = scx_bpf_create_dsq(LAT_DSQ(i), -1);
		if (ret)
			return ret;
	}
	return 0;
}

void BPF_STRUCT_OPS(tld_exit, struct scx_exit_info *ei)
{
	UEI_RECORD(uei, ei);
}

SCX_OPS_DEFINE(tld_ops,
	       .select_cpu	= (void *)tld_select_cpu,
	       .enqueue		= (void *)tld_enqueue,
	       .dispatch	= (void *)tld_dispatch,
	       .running		= (void *)tld_running,
	       .stopping	= (void *)tld_stopping,
	       .tick		= (void *)tld_tick,
	       .cpu_release	= (void *)tld_cpu_release,
	       .enable		= (void *)tld_enable,
	       .init_task	= (void *)tld_init_task,
	       .init		= (void *)tld_init,
	       .exit		= (void *)tld_exit,
	       .name		= "tld");
