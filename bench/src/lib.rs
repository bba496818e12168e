//! The benchmark suite of tld: the measured operations, the BPF harness, and the measuring
//! helpers shared by the criterion benchmarks (`benches/`) and the report binary
//! (`tld-bench-report`), which runs everything and prints the ratio table.
//!
//! Every figure is a ratio of two things measured side by side in one process run, because the
//! machines this runs on are shared and noisy.
#![warn(missing_docs)]

pub mod bpf;
pub mod consistent;
pub mod libtld;
pub mod machine;
pub mod measure;
pub mod registration;
pub mod rust_side;
pub mod scoped;

// The C ABI that row L1's C code calls, linked in.
use tld as _;

/// The generated libbpf-rs skeleton of `bpf/bench_tld.bpf.c`.
#[allow(clippy::all, missing_docs, dead_code)]
pub mod skel {
    include!(concat!(env!("OUT_DIR"), "/bench_tld.skel.rs"));
}
