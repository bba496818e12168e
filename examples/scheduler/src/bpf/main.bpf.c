/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * scx_tld: a weighted virtual-time scheduler whose policy comes from hints
 * that applications set per thread, from Rust, with plain stores.
 *
 * The hints (crate tld-sched-hints; C definitions in the generated header):
 *   priority  i32                 nice-like, -20..19: the thread's weight
 *   latency   struct LatencyHint  { budget_us, class }: slice and preemption
 *
 * Policy, evaluated at every enqueue (so a store takes effect at the thread's
 * next wake-up or preemption), and for the running task at every tick while a
 * critical task waits:
 *  - Weight: the kernel's nice-to-weight table at `priority`, or the task's
 *    own weight (from its nice value) without the hint. Running for t costs
 *    t * 1024 / weight of virtual time; the shared queue runs the smallest
 *    virtual time first, and a waking task is credited at most one slice.
 *  - Slice: the default slice; a latency budget shortens it to the budget
 *    (at least MIN_SLICE_NS); CLASS_BATCH doubles it.
 *  - Preemption: a task of CLASS_INTERACTIVE with a budget is "critical".
 *    When it is queued it goes to LAT_DSQ, which every CPU serves before the
 *    shared queue. A critical task that wakes up has the CPU it last ran on
 *    (or any CPU it may use) preempted if no CPU is idle; one that was
 *    preempted itself (its slice ended while it still held the hint) gets a
 *    CPU at the next tick: a running task whose hints, read at the tick, do
 *    not make it critical gives way.
 *  - Hogs: a task that has run as critical for HOG_SLICES default slices
 *    without blocking is a CPU hog, whatever it claims: it loses the boost
 *    until it blocks, or until a read finds its hint no longer interactive.
 *  - A critical task preempted while its hint reads otherwise stays critical
 *    for that one enqueue (a worker between two polls of interactive work);
 *    the next read decides.
 *  - Reads are never cached: a worker thread of an async executor takes on
 *    the hints of each task it polls (tld-runtime's with_hint), so the hint
 *    read at one decision may differ from the one read at the previous.
 *  - Without hints (a thread that never touched one, or use_hints off), all
 *    of this is the default: own weight, default slice, no preemption.
 *
 * Hints are read with bpf_tld_init()/bpf_tld_get(). For a process whose
 * hints are exactly those of the header this program was built with, that is
 * a constant-offset read from the thread's page (the fast path); any other
 * process (more hints, other hints) is served from the per-task offset cache.
 *
 * For monitoring and tests, what the scheduler last read for each thread is
 * kept in the LRU hash `records` (by thread id), and per-CPU counters in
 * `stats`; the loader prints them and can pin `records` in bpffs.
 */
#include <scx/common.bpf.h>

/* Pin tld_data_map at /sys/fs/bpf/tld_data_map, where tld-runtime in every
 * application looks for it. A pin left by an earlier run is reused, so the
 * threads registered with it keep their hints across a restart. */
#define TLD_PIN_DATA_MAP
#include "tld_generated.h"	/* from tld-sched-hints; includes task_local_data.bpf.h */

#include "intf.h"

char _license[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile bool use_hints = true;		/* false: ignore every hint (the control) */
const volatile u64 slice_ns = 20000000;		/* default slice: 20 ms */
/* LatencyHint::CLASS_* of tld-sched-hints; the loader sets them from there. */
const volatile u32 class_interactive = 1;
const volatile u32 class_batch = 2;

#define HOG_SLICES	4			/* critical run, in default slices, that makes a hog */
#define MIN_SLICE_NS	50000ULL		/* shortest slice a budget gives: 50 us */
#define SHARED_DSQ	0			/* by virtual time */
#define LAT_DSQ		1			/* critical tasks, first come first served */
#define NICE_0_WEIGHT	1024

UEI_DEFINE(uei);

/* The largest virtual time any task has started running with. */
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

/* Per task: the policy its hints gave at its latest enqueue. */
struct task_ctx {
	u64 slice;		/* slice to run with */
	u64 started;		/* when it last started running */
	u32 weight;		/* vtime weight, NICE_0_WEIGHT at nice 0 */
	u64 critical_ns;	/* CPU time run as critical since it last blocked */
	bool critical;		/* queued as critical (see critical()) */
	bool missed;		/* one read of it, critical, found the hint gone */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

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

#define STAT_INC(s, field)		\
	do {				\
		if (s)			\
			(s)->field++;	\
	} while (0)

static u32 task_weight(const struct task_struct *p)
{
	/* p->scx.weight is 100 at nice 0 (1 .. 10000). */
	return p->scx.weight * NICE_0_WEIGHT / 100 ?: 1;
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
 * Reads @p's hints into @h; false if it has none (it never touched a hint).
 * For the running task this is the live value.
 */
static bool read_hints(struct task_struct *p, struct hints *h)
{
	struct tld_sched_stats *s = my_stats();
	struct LatencyHint *lat;
	struct bpf_tld tld;
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
		h->priority = *prio;
		h->has_priority = true;
	}
	lat = bpf_tld_get(&tld, latency);
	if (lat) {
		h->budget_us = lat->budget_us;
		h->class = lat->class;
		h->has_latency = true;
	}
	return true;
}

/*
 * Whether hints @h make a task critical: an interactive latency hint with a
 * budget, unless the task is a hog: it has already run as a critical task for
 * HOG_SLICES default slices without blocking. The boost buys a place at the
 * head of the queue for work that soon blocks, not a CPU for a thread that
 * claims to be interactive and burns it. The bound is counted in default
 * slices rather than in the budget because one thread may run many pieces of
 * interactive work in a row: an executor's worker polls one interactive
 * request after another, each within its budget.
 */
static bool critical(const struct task_ctx *tctx, const struct hints *h)
{
	if (!h->budget_us || h->class != class_interactive)
		return false;
	return tctx->critical_ns < HOG_SLICES * slice_ns;
}

/*
 * Reads @p's hints and sets its policy in @tctx. Called at every enqueue
 * (@preempted: of a task that was running, not waking up) and at wake-ups
 * placed directly on an idle CPU.
 */
static void apply_hints(struct task_struct *p, struct task_ctx *tctx, bool preempted)
{
	struct tld_sched_stats *s = my_stats();
	bool was_critical = tctx->critical;
	struct hints h;
	s32 nice;

	tctx->weight = task_weight(p);
	tctx->slice = slice_ns;
	tctx->critical = false;

	if (!use_hints || !read_hints(p, &h))
		return;

	if (h.has_priority) {
		nice = h.priority;
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
		tctx->critical = critical(tctx, &h);
		tctx->missed = false;
		if (!tctx->critical)
			STAT_INC(s, hogs);
	} else if (preempted && was_critical && !tctx->missed) {
		/*
		 * Preempted while it ran as critical, and its hint now reads
		 * otherwise. Once is no proof that its interactive work is
		 * over: an executor's worker runs its own code between two
		 * polls, with its own hints, and a tick can land there. It
		 * stays critical for this one enqueue, with the shortest slice
		 * (in effect, until the next tick); a second such read in a row
		 * ends it.
		 */
		tctx->critical = true;
		tctx->missed = true;
		tctx->slice = MIN_SLICE_NS;
	} else {
		tctx->missed = false;
		/* Its interactive work is over, and with it any hog verdict:
		 * a worker has moved on to other requests. */
		tctx->critical_ns = 0;
	}
	record(p, tctx, &h);
}

static struct task_ctx *lookup_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, NULL, 0);
}

s32 BPF_STRUCT_OPS(tld_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = lookup_ctx(p);
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle && tctx) {
		/* An idle CPU: run there now, with the slice the hints give. */
		apply_hints(p, tctx, false);
		STAT_INC(my_stats(), direct);
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, tctx->slice, 0);
	}
	return cpu;
}

/* Makes room for a critical task: an idle CPU if there is one, else the CPU
 * it last ran on (or any it may use) is preempted. */
static void kick_for(struct task_struct *p)
{
	struct tld_sched_stats *s = my_stats();
	s32 cpu;

	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return;
	}
	cpu = scx_bpf_task_cpu(p);
	if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
		cpu = scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		STAT_INC(s, preempt_kicks);
	}
}

void BPF_STRUCT_OPS(tld_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_ctx(p);
	struct tld_sched_stats *s = my_stats();
	u64 vtime = p->scx.dsq_vtime;

	STAT_INC(s, enqueues);
	if (!tctx) {
		scx_bpf_dsq_insert(p, SHARED_DSQ, slice_ns, enq_flags);
		return;
	}
	apply_hints(p, tctx, !(enq_flags & SCX_ENQ_WAKEUP));

	if (tctx->critical) {
		STAT_INC(s, critical);
		scx_bpf_dsq_insert(p, LAT_DSQ, tctx->slice, enq_flags);
		/* A task that was preempted still holding the hint gets a CPU
		 * at the next tick (tld_tick()), not by preempting one now: the
		 * CPU it just left is picking its next task anyway. */
		if (enq_flags & SCX_ENQ_WAKEUP)
			kick_for(p);
		return;
	}

	/* A task that slept is credited at most one slice of virtual time. */
	if (time_before(vtime, vtime_now - slice_ns))
		vtime = vtime_now - slice_ns;
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, tctx->slice, vtime, enq_flags);
}

void BPF_STRUCT_OPS(tld_dispatch, s32 cpu, struct task_struct *prev)
{
	if (!scx_bpf_dsq_move_to_local(LAT_DSQ, 0))
		scx_bpf_dsq_move_to_local(SHARED_DSQ, 0);
}

void BPF_STRUCT_OPS(tld_running, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_ctx(p);

	if (time_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
	if (tctx)
		tctx->started = bpf_ktime_get_ns();
}

void BPF_STRUCT_OPS(tld_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = lookup_ctx(p);
	u64 used;

	if (!tctx)
		return;
	used = bpf_ktime_get_ns() - tctx->started;
	p->scx.dsq_vtime += used * NICE_0_WEIGHT / (tctx->weight ?: 1);
	if (tctx->critical)
		tctx->critical_ns += used;
	/* It blocked: whatever it ran, it was not a hog. */
	if (!runnable)
		tctx->critical_ns = 0;
}

/*
 * At every tick, for the running task, while a critical task waits: it keeps
 * its CPU only if its hints, read now, make it critical too. This is the live
 * value: a worker thread of an async executor takes on the hints of each task
 * it polls, microseconds apart, with no system call and no scheduler event,
 * so what it was queued with says nothing about what it runs now.
 */
void BPF_STRUCT_OPS(tld_tick, struct task_struct *p)
{
	struct task_ctx *tctx;
	struct hints h;

	if (!use_hints || !scx_bpf_dsq_nr_queued(LAT_DSQ))
		return;
	tctx = lookup_ctx(p);
	if (tctx && read_hints(p, &h) && critical(tctx, &h))
		return;
	p->scx.slice = 0;
	STAT_INC(my_stats(), tick_preempts);
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
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(tld_init)
{
	s32 ret;

	ret = scx_bpf_create_dsq(SHARED_DSQ, -1);
	if (ret)
		return ret;
	return scx_bpf_create_dsq(LAT_DSQ, -1);
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
	       .enable		= (void *)tld_enable,
	       .init_task	= (void *)tld_init_task,
	       .init		= (void *)tld_init,
	       .exit		= (void *)tld_exit,
	       .name		= "tld");
