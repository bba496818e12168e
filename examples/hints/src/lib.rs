//! The hints of the `tld` demo, kept in a crate of their own as a team would keep them.
//!
//! Both sides depend on this crate: the application sets and reads the hints, and the BPF
//! build script links it to generate `tld_generated.h` (see `examples/build.rs`). One
//! declaration therefore gives the Rust static, the key BPF looks up, and the C type BPF reads.
//!
//! The priority and latency hints are those of `tld-sched-hints`, the hints the example
//! scheduler reads, re-exported here: one [`LatencyHint`] type with one set of `CLASS_*`
//! values for every program in this repository. This crate adds the demo's own hints.
//!
//! Every binary that uses these hints must name this crate (`use tld_example_hints as _;` or any
//! `use` of an item), or its hints are not linked in and BPF cannot find them.
#![warn(missing_docs)]

use tld_runtime::{task_local_data, TldType};

pub use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};

/// Written by BPF, not Rust: the demo's BPF program adds one each time the thread is switched
/// out, and the thread reads the count back. BPF key: `switches_seen`.
#[task_local_data]
pub static SWITCHES_SEEN: u64 = 0;

/// A thread's CPU budget: several fields that a scheduler must read together, never half of an
/// update. Read by BPF as `struct Budget` with `bpf_tld_read_consistent()`.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Budget {
    /// How long the thread may run before it yields, in nanoseconds.
    pub slice_ns: u64,
    /// When its current piece of work is due, in nanoseconds of `CLOCK_MONOTONIC`.
    pub deadline_ns: u64,
    /// Its share of the CPU relative to others (100: an ordinary thread).
    pub weight: u32,
    /// A [`LatencyHint`] class (`LatencyHint::CLASS_*`).
    pub class: u32,
    /// Which request the budget belongs to, for tracing.
    pub request_id: u64,
}

/// Key "budget": a consistent hint, two copies under a sequence word in the page, so that BPF
/// never sees one field of a new budget with another of the old one.
#[task_local_data(consistent)]
pub static BUDGET: Budget = Budget {
    slice_ns: 0,
    deadline_ns: 0,
    weight: 100,
    class: LatencyHint::CLASS_NORMAL,
    request_id: 0,
};
