//! What each row asks for, and whether a run met it.

use super::measuring::*;
use super::{verdict, P5Memory, Results};
use crate::bpf::Prog;
use crate::registration;

/// The kernel reports whole nanoseconds per run, so a marginal cost fitted over K = 1, 4, 16
/// moves in steps: one tick between the runs fits to at most 9 / 126 ns per lookup (a step
/// between K = 4 and K = 16). Fixed-offset reads overlap in the pipeline and cost less than
/// that, so differences below it are not resolved.
pub(crate) const RESOLUTION: f64 = 9.0 / 126.0;

/// A floor marginal cost this many ticks or more is resolved well enough for a ratio.
pub(crate) const RESOLVED_TICKS: f64 = 5.0;

/// What P3 asks of one lookup path.
#[derive(Clone, Copy)]
pub(crate) struct PathGoals {
    /// P3a: init + 1 lookup at most this many times the floor's storage get + read.
    pub(crate) p3a_ratio: f64,
    /// P3b: each further lookup.
    pub(crate) p3b: MarginalGoal,
}

/// P3b's goal for a path's cost per further lookup.
#[derive(Clone, Copy)]
pub(crate) enum MarginalGoal {
    /// At most this many times the floor's fixed-offset read (where the kernel's whole-ns timer
    /// can resolve the floor's; else at most one tick above it).
    Ratio(f64),
    /// At most this many ns above the floor's fixed-offset read.
    PlusNs(f64),
}

impl PathGoals {
    /// The fast path (the page carries the generated header's fingerprint).
    pub(crate) const FAST: PathGoals = PathGoals {
        p3a_ratio: 1.1,
        p3b: MarginalGoal::Ratio(1.2),
    };
    /// The cached path.
    pub(crate) const CACHED: PathGoals = PathGoals {
        p3a_ratio: 1.2,
        p3b: MarginalGoal::PlusNs(0.5),
    };

    pub(crate) fn p3a_text(self) -> String {
        format!("≤ {}×", self.p3a_ratio)
    }

    pub(crate) fn p3b_text(self) -> String {
        match self.p3b {
            MarginalGoal::Ratio(r) => format!("≤ {r}× marginal"),
            MarginalGoal::PlusNs(ns) => format!("≤ +{ns} ns per lookup"),
        }
    }
}

/// One of our lookup paths against the floor: P3a (K = 1) and P3b (marginal).
pub(crate) struct PathVsFloor {
    pub(crate) progs: [Prog; 3],
    pub(crate) goals: PathGoals,
    /// Fitted ns per further lookup above the floor's per further read.
    pub(crate) extra: f64,
    /// K = 1 against the floor's K = 1.
    pub(crate) raw: f64,
    /// The same, each less the empty program.
    pub(crate) net: f64,
    /// Fitted ns per further lookup.
    pub(crate) marginal: f64,
    /// The marginal comparison as the table shows it.
    pub(crate) marginal_text: String,
    pub(crate) p3a_met: bool,
    /// `Some(true)` met, `Some(false)` missed, `None` met within the resolution.
    pub(crate) p3b_met: Option<bool>,
}

impl PathVsFloor {
    pub(crate) fn new(p3: &P3, progs: [Prog; 3], goals: PathGoals) -> PathVsFloor {
        // P3a from the 16-pair programs, which the timer resolves 16 times finer.
        let pair = pair_prog(progs);
        let raw = p3.ns(pair) / p3.ns(Prog::FloorX16);
        let net = p3.net(pair) / p3.net(Prog::FloorX16);
        let marginal = p3.slope(progs);
        let m_floor = p3.slope(FLOOR);
        let extra = marginal - m_floor;
        let (marginal_text, p3b_met) = if let MarginalGoal::PlusNs(limit) = goals.p3b {
            (
                format!("{extra:+.2} ns per lookup over the floor"),
                Some(extra <= limit),
            )
        } else if m_floor >= RESOLVED_TICKS * RESOLUTION {
            let r = marginal / m_floor;
            let limit = match goals.p3b {
                MarginalGoal::Ratio(r) => r,
                MarginalGoal::PlusNs(_) => unreachable!("handled above"),
            };
            (format!("{r:.2}×"), Some(r <= limit))
        } else {
            // The floor's marginal cost is within a few ticks, so a ratio means nothing: ours
            // meets the goal if it rises by no more than one tick beyond the floor.
            let extra = marginal - m_floor;
            if extra <= RESOLUTION + 1e-9 {
                (
                    format!("{extra:+.2} ns per lookup against the floor: within the resolution"),
                    None,
                )
            } else {
                (
                    format!("{extra:+.2} ns per lookup over the floor"),
                    Some(false),
                )
            }
        };
        PathVsFloor {
            progs,
            goals,
            extra,
            raw,
            net,
            marginal,
            marginal_text,
            p3a_met: raw <= goals.p3a_ratio,
            p3b_met,
        }
    }

    pub(crate) fn p3b_verdict(&self) -> &'static str {
        match self.p3b_met {
            Some(met) => verdict(met),
            None => "met within the resolution",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// G1: what the guard's check adds to bpf_tld_init.

/// Goal: the check adds at most this many ns to `bpf_tld_init`, on either path.
pub(crate) const G1_GOAL_NS: f64 = 3.0;

impl G1 {
    pub(crate) fn added(&self) -> (f64, f64) {
        (self.fast.1 - self.fast.0, self.cached.1 - self.cached.0)
    }

    pub(crate) fn met(&self) -> bool {
        let (f, c) = self.added();
        f <= G1_GOAL_NS && c <= G1_GOAL_NS
    }
}

// ---------------------------------------------------------------------------------------------
// P6: what the verifier pays for lookups, and what loading costs.

/// Goal: verified instructions per additional key on the fast path.
pub(crate) const P6_FAST_GOAL: f64 = 40.0;
/// Goal: verified instructions per additional key on the cached path.
pub(crate) const P6_CACHED_GOAL: f64 = 40.0;

impl P6 {
    pub(crate) fn met(&self) -> bool {
        self.fast_per_key <= P6_FAST_GOAL && self.cached_per_key <= P6_CACHED_GOAL
    }
}

/// The goals of P4.
pub(crate) const P4_MEAN_GOAL: f64 = 1.3;
pub(crate) const P4_P99_GOAL: f64 = 2.0;
pub(crate) const P4_MAX_GOAL_US: f64 = 1000.0;
pub(crate) const P4_POOL_SLACK: usize = 64;

impl P4 {
    pub(crate) fn mean_ratio(&self) -> f64 {
        self.ours.mean / self.bare.mean
    }
    pub(crate) fn p99_ratio(&self) -> f64 {
        self.ours.p99 / self.bare.p99
    }
    pub(crate) fn pool_bound(&self) -> usize {
        self.peak_live + P4_POOL_SLACK
    }
    pub(crate) fn mean_met(&self) -> bool {
        self.mean_ratio() <= P4_MEAN_GOAL
    }
    pub(crate) fn p99_met(&self) -> bool {
        self.p99_ratio() <= P4_P99_GOAL
    }
    /// The slowest registration, judged without the time its thread waited for a CPU (when
    /// the kernel accounts it): on a machine with hundreds of runnable threads per CPU, that
    /// wait is the scheduler's, and the bare registration's own wall-time max is many
    /// milliseconds too. The wall-time max is reported beside it.
    pub(crate) fn judged_max(&self) -> f64 {
        self.off_run_queue_max
            .map_or(self.ours.max, |(ours, _)| ours)
    }
    pub(crate) fn max_met(&self) -> bool {
        self.judged_max() <= P4_MAX_GOAL_US
    }
    pub(crate) fn pool_met(&self) -> bool {
        self.pool_pages <= self.pool_bound()
    }
    pub(crate) fn met(&self) -> bool {
        self.mean_met() && self.p99_met() && self.max_met() && self.pool_met()
    }
}

impl Results<'_> {
    pub(crate) fn p5_memory(&self) -> P5Memory {
        let n = self.p5.threads as f64;
        let tld = self.p5.anon_delta / n;
        let base = self.base.anon_delta / n;
        let extra = tld - base;
        let page = registration::page_size() as f64;
        P5Memory {
            tld,
            base,
            extra,
            met: extra <= page * 1.25,
        }
    }
}
