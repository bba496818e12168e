// SPDX-License-Identifier: GPL-2.0-only
//! The scheduler's counters (`struct tld_sched_stats` in `src/bpf/intf.h`, one per CPU), how
//! they are served through `scx_stats` (the statistics socket every scx scheduler offers,
//! `/var/run/scx/root/stats`), and how they are printed.
//!
//! Monitoring is opt-in and costs nothing when nobody asks: the BPF side only increments
//! per-CPU counters; they are read when a client (`scx_tld --monitor`, `--stats`, or any
//! scx_stats client) requests them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use scx_stats::prelude::*;
use scx_stats_derive::Stats;
use scx_tld_intf::TldSchedStats;
use serde::{Deserialize, Serialize};

/// One CPU's counters since the scheduler was loaded: `struct tld_sched_stats` of `intf.h`
/// ([`TldSchedStats`], generated from it), described for `scx_stats` clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Stats)]
#[stat(desc = "one CPU's counters")]
pub struct CpuStats {
    /// `ops.enqueue` calls.
    #[stat(desc = "ops.enqueue calls")]
    pub enqueues: u64,
    /// Wake-ups placed directly on an idle CPU.
    #[stat(desc = "wake-ups placed directly on an idle CPU")]
    pub direct: u64,
    /// Enqueues of a task its hints make critical.
    #[stat(desc = "enqueues of a task its hints make critical")]
    pub critical: u64,
    /// ... that got the boost (budgets left).
    #[stat(desc = "critical enqueues that got the boost")]
    pub boosted: u64,
    /// ... that did not: the thread's or its process's budget was spent (a hog).
    #[stat(desc = "critical enqueues refused the boost: a budget was spent")]
    pub hogs: u64,
    /// Critical wake-ups that preempted a CPU (counted by the CPU that decided).
    #[stat(desc = "critical wake-ups that preempted a CPU")]
    pub preempt_kicks: u64,
    /// Times this CPU was preempted for a critical task.
    #[stat(desc = "times this CPU was preempted for a critical task")]
    pub preempted: u64,
    /// Boosted tasks stopped at a tick on this CPU (a budget or the CPU's boost share spent).
    #[stat(desc = "boosted tasks stopped at a tick")]
    pub tick_preempts: u64,
    /// Dispatches at which this CPU had used its boost share and served ordinary work first.
    #[stat(desc = "dispatches that served ordinary work first: boost share used")]
    pub capped: u64,
    /// Time this CPU ran boosted tasks, in nanoseconds.
    #[stat(desc = "time this CPU ran boosted tasks (ns)")]
    pub boosted_ns: u64,
    /// Hint reads of threads that have no hints (never touched one, or exec'd since).
    #[stat(desc = "hint reads of threads that have none")]
    pub no_hints: u64,
    /// Hint reads on the fast path (the page has the generated header's layout).
    #[stat(desc = "hint reads on the fast path")]
    pub fast_reads: u64,
    /// Hint reads through the per-task offset cache.
    #[stat(desc = "hint reads through the offset cache")]
    pub cached_reads: u64,
    /// `tld_data_map` elements deleted at exec.
    #[stat(desc = "tld_data_map elements deleted at exec")]
    pub exec_clears: u64,
}

/// Applies `f` to every pair of counters.
macro_rules! each_counter {
    ($a:expr, $b:expr, $f:expr) => {
        CpuStats {
            enqueues: $f($a.enqueues, $b.enqueues),
            direct: $f($a.direct, $b.direct),
            critical: $f($a.critical, $b.critical),
            boosted: $f($a.boosted, $b.boosted),
            hogs: $f($a.hogs, $b.hogs),
            preempt_kicks: $f($a.preempt_kicks, $b.preempt_kicks),
            preempted: $f($a.preempted, $b.preempted),
            tick_preempts: $f($a.tick_preempts, $b.tick_preempts),
            capped: $f($a.capped, $b.capped),
            boosted_ns: $f($a.boosted_ns, $b.boosted_ns),
            no_hints: $f($a.no_hints, $b.no_hints),
            fast_reads: $f($a.fast_reads, $b.fast_reads),
            cached_reads: $f($a.cached_reads, $b.cached_reads),
            exec_clears: $f($a.exec_clears, $b.exec_clears),
        }
    };
}

impl CpuStats {
    /// Parses one CPU's value, as the kernel returns it.
    pub fn from_bytes(bytes: &[u8]) -> Option<CpuStats> {
        TldSchedStats::from_bytes(bytes).map(CpuStats::from)
    }

    /// The sum of two sets of counters.
    pub fn add(&self, o: &CpuStats) -> CpuStats {
        each_counter!(self, o, |a: u64, b: u64| a.wrapping_add(b))
    }

    /// What changed since `earlier`.
    pub fn since(&self, earlier: &CpuStats) -> CpuStats {
        each_counter!(self, earlier, |a: u64, b: u64| a.wrapping_sub(b))
    }
}

impl From<TldSchedStats> for CpuStats {
    fn from(s: TldSchedStats) -> CpuStats {
        // Every field by name: a counter added to intf.h does not build until it is added here.
        let TldSchedStats {
            enqueues,
            direct,
            critical,
            boosted,
            hogs,
            preempt_kicks,
            preempted,
            tick_preempts,
            capped,
            boosted_ns,
            no_hints,
            fast_reads,
            cached_reads,
            exec_clears,
        } = s;
        CpuStats {
            enqueues,
            direct,
            critical,
            boosted,
            hogs,
            preempt_kicks,
            preempted,
            tick_preempts,
            capped,
            boosted_ns,
            no_hints,
            fast_reads,
            cached_reads,
            exec_clears,
        }
    }
}

/// What the statistics socket serves: the totals and every CPU's counters, cumulative since
/// the scheduler was loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Stats)]
#[stat(top, desc = "scx_tld's counters since it was loaded")]
pub struct Metrics {
    /// The sum over CPUs.
    #[stat(desc = "the sum over CPUs")]
    pub total: CpuStats,
    /// Each CPU's own, by CPU number.
    #[stat(desc = "each CPU's counters, by CPU number")]
    pub cpus: BTreeMap<u32, CpuStats>,
}

impl Metrics {
    /// Builds the metrics from each CPU's counters, in CPU order.
    pub fn from_cpus(per_cpu: impl IntoIterator<Item = CpuStats>) -> Metrics {
        let cpus: BTreeMap<u32, CpuStats> = (0u32..).zip(per_cpu).collect();
        let total = cpus.values().fold(CpuStats::default(), |a, b| a.add(b));
        Metrics { total, cpus }
    }

    /// What changed since `earlier`, per CPU and in total.
    pub fn since(&self, earlier: &Metrics) -> Metrics {
        let cpus = self
            .cpus
            .iter()
            .map(|(cpu, s)| {
                let before = earlier.cpus.get(cpu).copied().unwrap_or_default();
                (*cpu, s.since(&before))
            })
            .collect();
        Metrics {
            total: self.total.since(&earlier.total),
            cpus,
        }
    }
}

impl fmt::Display for CpuStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "enq {} direct {} critical {} boosted {} hogs {} preempt {} tick-stop {} capped {} \
             boosted-ms {:.1} exec-clears {} | hints: fast {} cached {} none {}",
            self.enqueues,
            self.direct,
            self.critical,
            self.boosted,
            self.hogs,
            self.preempt_kicks,
            self.tick_preempts,
            self.capped,
            self.boosted_ns as f64 / 1e6,
            self.exec_clears,
            self.fast_reads,
            self.cached_reads,
            self.no_hints
        )
    }
}

/// The statistics socket's data: `top` answers with the current [`Metrics`], which the main
/// loop reads from the BPF map when asked (a `()` request, a `Metrics` answer).
pub fn server_data() -> StatsServerData<(), Metrics> {
    let open: Box<dyn StatsOpener<(), Metrics>> = Box::new(move |(req_ch, res_ch)| {
        let read: Box<dyn StatsReader<(), Metrics>> = Box::new(move |_args, (req_ch, res_ch)| {
            req_ch.send(())?;
            res_ch.recv()?.to_json()
        });
        let _ = (req_ch, res_ch);
        Ok(read)
    });
    StatsServerData::new()
        .add_meta(CpuStats::meta())
        .add_meta(Metrics::meta())
        .add_ops("top", StatsOps { open, close: None })
}

/// Prints what changed every `interval`, from the statistics socket of the running scx_tld,
/// until `shutdown` is set.
pub fn monitor(interval: Duration, shutdown: Arc<AtomicBool>) -> Result<()> {
    let mut last: Option<Metrics> = None;
    scx_utils::monitor_stats::<Metrics>(
        &[],
        interval,
        || shutdown.load(Ordering::Relaxed),
        |now| {
            let shown = match &last {
                Some(before) => now.since(before).total,
                None => now.total,
            };
            last = Some(now);
            writeln!(std::io::stdout(), "scx_tld: {shown}")?;
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sums_and_subtracts() {
        let mut bytes = Vec::new();
        for v in 1..=14u64 {
            bytes.extend_from_slice(&v.to_ne_bytes());
        }
        let s = CpuStats::from_bytes(&bytes).unwrap();
        assert_eq!((s.enqueues, s.preempted, s.exec_clears), (1, 7, 14));
        let d = s.add(&s);
        assert_eq!(d.boosted_ns, 20);
        assert_eq!(d.since(&s), s);
        assert!(CpuStats::from_bytes(&bytes[..TldSchedStats::SIZE - 1]).is_none());

        let m = Metrics::from_cpus([s, d]);
        assert_eq!(m.total.enqueues, 3);
        assert_eq!(m.cpus[&1].enqueues, 2);
        assert_eq!(m.since(&m).total, CpuStats::default());
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["cpus"]["1"]["preempted"], 14);
    }
}
