//! Criterion benchmark of P4: registering one thread, the runtime's way
//! (`tld_runtime::thread_init()` on a fresh thread) against the bare `pidfd_open` plus pinning
//! map update of a page allocated in advance.
//!
//! Every iteration needs a fresh thread, and spawning one costs far more than what is measured,
//! so only the registration inside the thread is timed (`iter_custom`), and the group keeps its
//! sample count and time small. Needs the BPF object loaded (root, or CAP_BPF + CAP_PERFMON).

use std::time::Duration;

use criterion::Criterion;
use tld_bench::bpf::Bench;
use tld_bench::registration::{self, BarePages};

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let bench = match Bench::load() {
        Ok(bench) => bench,
        Err(e) => {
            eprintln!("P4 skipped: {e}");
            return;
        }
    };
    bench.connect().expect("connecting the runtime");

    let mut group = c.benchmark_group("P4");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(300));
    group.bench_function("thread_init on a fresh thread", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    std::thread::spawn(move || {
                        registration::prepare_task_storage(bench).expect("hint_value_map");
                        registration::time_ours()
                    })
                    .join()
                    .expect("registration thread")
                })
                .sum()
        })
    });
    group.bench_function("bare pidfd_open + pinning update", |b| {
        b.iter_custom(|iters| {
            // Fresh pages, never unmapped: the kernel may still hold them pinned.
            let pages: &'static BarePages =
                Box::leak(Box::new(BarePages::new(iters as usize).expect("mmap")));
            (0..iters)
                .map(|_| {
                    std::thread::spawn(move || {
                        registration::prepare_task_storage(bench).expect("hint_value_map");
                        registration::time_bare(bench, pages)
                    })
                    .join()
                    .expect("registration thread")
                })
                .sum()
        })
    });
    group.finish();
    c.final_summary();
}
