//! The hints that `scx_tld`, the example sched_ext scheduler in `examples/scheduler`, reads.
//!
//! An application depends on this crate, names it (`use tld_sched_hints as _;` or any `use` of
//! an item) and sets the hints from any thread:
//!
//! ```
//! use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};
//!
//! // This thread handles audio: it wakes often, runs briefly and must not wait.
//! LATENCY.set(LatencyHint::interactive(500));
//! // A background thread would rather give way to the others: 10 nice levels below its own.
//! PRIORITY.set(10);
//! ```
//!
//! The scheduler's build script links this crate too and generates the C header its BPF code
//! reads the hints through, so the key names and the C layout cannot drift from these
//! declarations. The scheduler reads a thread's hints every time the thread is queued: a store
//! takes effect at its next wake-up or preemption, with no system call. The hints may
//! therefore describe the work a thread is doing right now, such as the request an async
//! executor's worker is polling (`tld_runtime::HintFutureExt::with_hint`).
//!
//! Every hint's initial value means "no change": a thread that never sets a hint, or sets only
//! one of them, is scheduled by its nice value as before. What the hints can buy is bounded
//! (see the scheduler's README section): a priority hint moves a thread at most a few nice
//! levels up, and the boost of an interactive hint is budgeted per thread, per process and per
//! CPU.
//!
//! This crate is licensed like the rest of tld (MIT or Apache-2.0) so that any application can
//! link it; the scheduler itself is GPL-2.0-only.
#![warn(missing_docs)]

use tld_runtime::{task_local_data, TldType};

/// How soon a thread needs the CPU when it wakes, and what kind of work it does.
///
/// BPF reads it as `struct LatencyHint`, defined in the generated header, whose
/// `_Static_assert`s check that the C layout is this one. The all-zero value (the initial one)
/// means "no latency needs": the scheduler's default behaviour.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct LatencyHint {
    /// How long the thread may wait for a CPU after waking, in microseconds; 0 means no budget.
    /// With a budget, the thread's time slice is the budget (at least 50 µs, at most the
    /// scheduler's default slice).
    pub budget_us: u32,
    /// The kind of work: one of the `CLASS_*` constants. Other values count as
    /// [`CLASS_NORMAL`](Self::CLASS_NORMAL).
    pub class: u32,
}

impl LatencyHint {
    /// Ordinary work: default placement; a budget only shortens the time slice.
    pub const CLASS_NORMAL: u32 = 0;
    /// Work a user waits on. With a budget, the thread is *critical*: while its budgets last,
    /// a waking one that finds no idle CPU preempts one CPU running ordinary work, and a queued
    /// one goes ahead of ordinary work. The boost is bounded whatever the thread does: half of
    /// its own wall time (bursts of 80 ms), one CPU's worth for all threads of its process, and
    /// half of any CPU. A thread or process past its budget is a hog: it runs as ordinary work
    /// until the budget refills. Boosted time counts against the thread's fair share.
    pub const CLASS_INTERACTIVE: u32 = 1;
    /// Throughput work that may wait: twice the default slice, never a wake-up boost.
    pub const CLASS_BATCH: u32 = 2;

    /// An interactive hint with a budget of `budget_us` microseconds.
    pub const fn interactive(budget_us: u32) -> Self {
        LatencyHint {
            budget_us,
            class: Self::CLASS_INTERACTIVE,
        }
    }

    /// A batch hint.
    pub const fn batch() -> Self {
        LatencyHint {
            budget_us: 0,
            class: Self::CLASS_BATCH,
        }
    }

    /// The name of [`Self::class`], for display.
    pub fn class_name(&self) -> &'static str {
        match self.class {
            Self::CLASS_INTERACTIVE => "interactive",
            Self::CLASS_BATCH => "batch",
            _ => "normal",
        }
    }
}

/// The thread's priority, relative to its own nice value: the scheduler weighs the thread as if
/// its nice were `nice + priority`, per thread and with a plain store. 0, the initial value,
/// changes nothing. Positive values (up to 39) give way to others; negative ones ask for more
/// CPU and are capped (by default at 5 levels, `scx_tld --max-boost`), since any registered
/// thread may set them without privileges. The result is clamped to the nice range (-20 ..=
/// 19). BPF key: `priority`.
#[task_local_data]
pub static PRIORITY: i32 = 0;

/// The thread's latency needs. BPF key: `latency`.
#[task_local_data]
pub static LATENCY: LatencyHint = LATENCY_INIT;

/// The initial value of [`LATENCY`]: no budget, ordinary work.
const LATENCY_INIT: LatencyHint = LatencyHint {
    budget_us: 0,
    class: LatencyHint::CLASS_NORMAL,
};

#[cfg(test)]
mod tests {
    use super::LatencyHint;

    /// The classes are part of what applications and BPF programs agree on: a C application
    /// stores these numbers, and the all-zero initial value must mean "ordinary work".
    #[test]
    fn class_values_are_pinned() {
        assert_eq!(LatencyHint::CLASS_NORMAL, 0);
        assert_eq!(LatencyHint::CLASS_INTERACTIVE, 1);
        assert_eq!(LatencyHint::CLASS_BATCH, 2);
        assert_eq!(LatencyHint::default().class, LatencyHint::CLASS_NORMAL);
        assert_eq!(super::LATENCY_INIT.class, LatencyHint::CLASS_NORMAL);
        assert_eq!(LatencyHint::interactive(7).class_name(), "interactive");
        assert_eq!(LatencyHint::batch().class_name(), "batch");
        assert_eq!(LatencyHint::default().class_name(), "normal");
        assert_eq!(
            LatencyHint {
                budget_us: 0,
                class: 99
            }
            .class_name(),
            "normal"
        );
    }
}
