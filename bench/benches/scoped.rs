//! Criterion benchmarks of scoped hints: S1 (`HINT.scoped(v, f)` against a bare `HINT.set(v)`)
//! and S2 (a poll of a future wrapped with `with_hint` against a poll of the same future
//! unwrapped), plus two hints per poll, in one tuple and through two chained wrappers.
//!
//! The hint's page is registered with the kernel when the BPF object loads (root, or CAP_BPF +
//! CAP_PERFMON); without it the hints are plain thread-locals, on the same code path.

use std::hint::black_box;
use std::task::Context;

use criterion::Criterion;
use tld_bench::bpf::Bench;
use tld_bench::scoped::{self, Spin};

fn main() {
    let mut c = Criterion::default().configure_from_args();
    match Bench::load() {
        Ok(bench) => bench.connect().expect("connecting the runtime"),
        Err(e) => eprintln!("running without a map: {e}"),
    }
    // Give this thread its page (and register it) before timing.
    scoped::bare_set(0);

    let mut s1 = c.benchmark_group("S1");
    s1.bench_function("HINT.scoped", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v += 1;
            scoped::scoped_set(black_box(v))
        })
    });
    s1.bench_function("HINT.set", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v += 1;
            scoped::bare_set(black_box(v))
        })
    });
    s1.finish();

    let waker = scoped::noop_waker();
    let mut s2 = c.benchmark_group("S2");
    s2.bench_function("poll with_hint", |b| {
        let mut fut = Box::pin(scoped::hinted_spin(7));
        let mut cx = Context::from_waker(&waker);
        b.iter(|| scoped::poll_hinted(fut.as_mut(), &mut cx))
    });
    s2.bench_function("poll unwrapped", |b| {
        let mut fut = Box::pin(Spin::default());
        let mut cx = Context::from_waker(&waker);
        b.iter(|| scoped::poll_plain(fut.as_mut(), &mut cx))
    });
    s2.bench_function("poll with_hints, 2 in a tuple", |b| {
        let mut fut = Box::pin(scoped::hinted_spin2(7));
        let mut cx = Context::from_waker(&waker);
        b.iter(|| scoped::poll_hinted2(fut.as_mut(), &mut cx))
    });
    s2.bench_function("poll with_hint, 2 chained", |b| {
        let mut fut = Box::pin(scoped::chained_spin2(7));
        let mut cx = Context::from_waker(&waker);
        b.iter(|| scoped::poll_chained2(fut.as_mut(), &mut cx))
    });
    s2.finish();
    c.final_summary();
}
