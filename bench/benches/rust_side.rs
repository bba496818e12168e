//! Criterion benchmarks of the Rust side: P1 (a hint store against a raw thread-local store,
//! both through non-inlined functions) and P2 (a hint store against one
//! `bpf_map_update_elem` of the same value into a task storage map).
//!
//! P2 needs the BPF object loaded (root, or CAP_BPF + CAP_PERFMON); without it, P2 is skipped
//! and P1 runs with the runtime detached, where the hint store takes the same path.

use std::hint::black_box;

use criterion::Criterion;
use tld_bench::bpf::{Bench, Timed};
use tld_bench::rust_side::{self, SyscallHint};

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let bench = match Bench::load() {
        Ok(bench) => {
            bench.connect().expect("connecting the runtime");
            Some(bench)
        }
        Err(e) => {
            eprintln!("P2 skipped: {e}");
            None
        }
    };
    // Give this thread its page (and register it) before timing.
    rust_side::set_hint(0);

    let mut p1 = c.benchmark_group("P1");
    p1.bench_function("HINT.set", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v += 1;
            rust_side::set_hint(black_box(v))
        })
    });
    p1.bench_function("thread_local Cell store", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v += 1;
            rust_side::set_thread_local(black_box(v))
        })
    });
    p1.finish();

    if let Some(bench) = bench {
        let sys = SyscallHint::for_current_thread(bench.hint_value_map()).expect("pidfd_open");
        let mut p2 = c.benchmark_group("P2");
        p2.bench_function("HINT.set", |b| {
            let mut v = 0u64;
            b.iter(|| {
                v += 1;
                rust_side::set_hint(black_box(v))
            })
        });
        p2.bench_function("bpf_map_update_elem", |b| {
            let mut v = 0u64;
            b.iter(|| {
                v += 1;
                sys.set(black_box(v)).expect("bpf_map_update_elem")
            })
        });
        p2.finish();
    }
    c.final_summary();
}
