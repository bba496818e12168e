//! Criterion benchmarks of consistent hints, C1: `HINT.set(v)` of a 32-byte
//! `#[task_local_data(consistent)]` hint against `HINT.set(v)` of a plain hint of the same type,
//! and the same for `get`. (C2, the BPF side, is in the report: `tld-bench-report`.)
//!
//! The hints' page is registered with the kernel when the BPF object loads (root, or CAP_BPF +
//! CAP_PERFMON); without it the hints are plain thread-locals, on the same code path.

use std::hint::black_box;

use criterion::Criterion;
use tld_bench::bpf::Bench;
use tld_bench::consistent;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    match Bench::load() {
        Ok(bench) => bench.connect().expect("connecting the runtime"),
        Err(e) => eprintln!("running without a map: {e}"),
    }
    // Give this thread its page (and register it) before timing.
    consistent::set_plain(0);

    let mut set = c.benchmark_group("C1");
    set.bench_function("consistent set, 32 bytes", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v += 1;
            consistent::set_consistent(black_box(v))
        })
    });
    set.bench_function("plain set, 32 bytes", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v += 1;
            consistent::set_plain(black_box(v))
        })
    });
    set.bench_function("consistent get, 32 bytes", |b| {
        b.iter(consistent::get_consistent)
    });
    set.bench_function("plain get, 32 bytes", |b| b.iter(consistent::get_plain));
    set.finish();
    c.final_summary();
}
