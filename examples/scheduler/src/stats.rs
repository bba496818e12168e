//! The scheduler's per-CPU counters (`struct tld_sched_stats` in `src/bpf/intf.h`), summed over
//! CPUs, and how they are printed.

use std::fmt;

/// Mirror of `struct tld_sched_stats`: counters since the scheduler was loaded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `ops.enqueue` calls.
    pub enqueues: u64,
    /// Wake-ups placed directly on an idle CPU.
    pub direct: u64,
    /// Enqueues as a critical (latency-hinted) task.
    pub critical: u64,
    /// CPUs told to preempt for a critical task.
    pub preempt_kicks: u64,
    /// Hint reads of threads that have no hints (never touched one).
    pub no_hints: u64,
    /// Hint reads (at enqueues and ticks) on the fast path (the page has the generated header's
    /// layout).
    pub fast_reads: u64,
    /// Hint reads through the per-task offset cache.
    pub cached_reads: u64,
    /// Running tasks preempted at a tick because a critical task waited and their own hints,
    /// read then, did not make them critical.
    pub tick_preempts: u64,
    /// Reads of an interactive hint of a hog (a task that had already run as critical for four
    /// default slices without blocking): it was queued as ordinary work.
    pub hogs: u64,
}

const _: () = assert!(
    std::mem::size_of::<Stats>() == 72,
    "mirror of tld_sched_stats"
);

impl Stats {
    /// Parses one CPU's value, as the kernel returns it.
    pub fn from_bytes(bytes: &[u8]) -> Option<Stats> {
        if bytes.len() < std::mem::size_of::<Stats>() {
            return None;
        }
        let field = |i: usize| {
            let start = i * 8;
            u64::from_ne_bytes(bytes[start..start + 8].try_into().expect("8 bytes"))
        };
        Some(Stats {
            enqueues: field(0),
            direct: field(1),
            critical: field(2),
            preempt_kicks: field(3),
            no_hints: field(4),
            fast_reads: field(5),
            cached_reads: field(6),
            tick_preempts: field(7),
            hogs: field(8),
        })
    }

    /// The sum of two sets of counters.
    pub fn add(&self, o: &Stats) -> Stats {
        Stats {
            enqueues: self.enqueues + o.enqueues,
            direct: self.direct + o.direct,
            critical: self.critical + o.critical,
            preempt_kicks: self.preempt_kicks + o.preempt_kicks,
            no_hints: self.no_hints + o.no_hints,
            fast_reads: self.fast_reads + o.fast_reads,
            cached_reads: self.cached_reads + o.cached_reads,
            tick_preempts: self.tick_preempts + o.tick_preempts,
            hogs: self.hogs + o.hogs,
        }
    }

    /// What changed since `earlier`.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            enqueues: self.enqueues.wrapping_sub(earlier.enqueues),
            direct: self.direct.wrapping_sub(earlier.direct),
            critical: self.critical.wrapping_sub(earlier.critical),
            preempt_kicks: self.preempt_kicks.wrapping_sub(earlier.preempt_kicks),
            no_hints: self.no_hints.wrapping_sub(earlier.no_hints),
            fast_reads: self.fast_reads.wrapping_sub(earlier.fast_reads),
            cached_reads: self.cached_reads.wrapping_sub(earlier.cached_reads),
            tick_preempts: self.tick_preempts.wrapping_sub(earlier.tick_preempts),
            hogs: self.hogs.wrapping_sub(earlier.hogs),
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "enq {} direct {} critical {} hogs {} preempt {} tick-preempt {} | hints: fast {} \
             cached {} none {}",
            self.enqueues,
            self.direct,
            self.critical,
            self.hogs,
            self.preempt_kicks,
            self.tick_preempts,
            self.fast_reads,
            self.cached_reads,
            self.no_hints
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sums_and_subtracts() {
        let mut bytes = Vec::new();
        for v in 1..=9u64 {
            bytes.extend_from_slice(&v.to_ne_bytes());
        }
        let s = Stats::from_bytes(&bytes).unwrap();
        assert_eq!((s.enqueues, s.cached_reads, s.hogs), (1, 7, 9));
        let d = s.add(&s);
        assert_eq!(d.fast_reads, 12);
        assert_eq!(d.since(&s), s);
        assert!(Stats::from_bytes(&bytes[..71]).is_none());
    }
}
