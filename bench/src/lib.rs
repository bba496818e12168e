//! The benchmark suite of tld: the measured operations, the BPF harness, and the measuring
//! helpers shared by the criterion benchmarks (`benches/`) and the report binary
//! (`tld-bench-report`), which runs everything and prints the ratio table.
//!
//! Every figure is a ratio of two things measured side by side in one process run, because the
//! machines this runs on are shared and noisy.
#![warn(missing_docs)]

pub mod bpf;
pub mod consistent;
pub mod guard_cost;
pub mod json;
pub mod libtld;
pub mod machine;
pub mod measure;
pub mod registration;
pub mod report;
pub mod rust_side;
pub mod scoped;
pub mod vm_figures;
pub mod vm_guard;
pub mod vm_latency;

// The C ABI that row L1's C code calls, linked in.
use tld as _;

/// The generated libbpf-rs skeleton of `bpf/bench_tld.bpf.c` (the 7.x generation's value).
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
pub mod skel {
    include!(concat!(env!("OUT_DIR"), "/bench_tld.skel.rs"));
}

/// The same with the guard's check compiled in (`bpf/bench_tld_guard.bpf.c`).
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
pub mod skel_guard {
    include!(concat!(env!("OUT_DIR"), "/bench_tld_guard.skel.rs"));
}

/// The same for the 6.18 generation's value (`bpf/bench_tld_618.bpf.c`).
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
pub mod skel_618 {
    include!(concat!(env!("OUT_DIR"), "/bench_tld_618.skel.rs"));
}
