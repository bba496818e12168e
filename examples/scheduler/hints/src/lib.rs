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
//! // A background thread would rather give way to the others.
//! PRIORITY.set(10);
//! ```
//!
//! The scheduler's build script links this crate too and generates the C header its BPF code
//! reads the hints through, so the key names and the C layout cannot drift from these
//! declarations. The scheduler reads a thread's hints every time the thread is queued, and the
//! running thread's at every tick while a critical thread waits: a store takes effect at its
//! next wake-up, preemption or tick, with no system call. The hints may therefore describe the
//! work a thread is doing right now, such as the request an async executor's worker is polling
//! (`tld_runtime::HintFutureExt::with_hint`).
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
    /// Work a user waits on: with a budget, a thread goes ahead of all ordinary work whenever
    /// it is queued, a waking one preempts a CPU if none is idle, and a running thread without
    /// this hint gives way to it at the next tick. A thread that runs with it for four default
    /// slices (80 ms) without blocking is a CPU hog and loses the boost until it blocks or
    /// drops the hint.
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

/// The thread's priority, nice-like: -20 (the largest CPU share) to 19 (the smallest); 0 is the
/// default weight. Values outside the range are clamped. It sets the thread's weight in the
/// scheduler's virtual time exactly as a nice value would, but per thread, with a plain store,
/// and without privileges for negative values. BPF key: `priority`.
#[task_local_data]
pub static PRIORITY: i32 = 0;

/// The thread's latency needs. BPF key: `latency`.
#[task_local_data]
pub static LATENCY: LatencyHint = LatencyHint {
    budget_us: 0,
    class: LatencyHint::CLASS_NORMAL,
};
