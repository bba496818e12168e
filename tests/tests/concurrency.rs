//! Concurrency: 1,000 threads live at once, each setting distinct values and verifying through
//! BPF that it sees only its own.

use std::sync::Mutex;
use std::thread;

use tld_tests::*;

const TEST: &str = "a_thousand_live_threads_each_see_only_their_own_values";
const THREADS: usize = 1000;
/// 1,000 threads with 64 KiB stacks: 64 MiB of address space, little of it touched.
const STACK: usize = 64 * 1024;

/// Thread `i`'s values in `round`: every field differs between threads and between rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Values {
    value1: i32,
    value4: TestStruct,
    hint_a: u64,
    hint_b: u32,
}

fn values_for(i: usize, round: u64) -> Values {
    let i = i as u64;
    let base = round << 32 | i << 8;
    Values {
        value1: (round as i32) * 1_000_000 + i as i32 + 1,
        value4: TestStruct {
            a: base | 0xa,
            b: base | 0xb,
            c: !(base | 0xc),
            d: i * 7919 + round,
        },
        hint_a: 0xA << 60 | base | 0x1,
        hint_b: (round as u32) << 16 | i as u32,
    }
}

fn set_all(v: &Values) {
    VALUE1.set(v.value1);
    VALUE4.set(v.value4);
    HINT_A.set(v.hint_a);
    HINT_B.set(v.hint_b);
}

/// What is wrong with what BPF sees for the calling thread (thread `i`), if anything.
fn check_bpf(skel: &TldTestSkel<'_>, i: usize, round: u64, v: &Values) -> Option<String> {
    let r = bpf_read(skel);
    let wanted = found::VALUE1 | found::VALUE4 | found::HINT_A | found::HINT_B;
    let seen = Values {
        value1: r.value1 as i32,
        value4: TestStruct {
            a: r.v4_a,
            b: r.v4_b,
            c: r.v4_c,
            d: r.v4_d,
        },
        hint_a: r.hint_a,
        hint_b: r.hint_b as u32,
    };
    if r.init_ret != 0 || r.found & wanted != wanted || r.tid != gettid() {
        Some(format!(
            "thread {i}, round {round}: bpf_tld_init {} found {:#x}, BPF ran as tid {} on tid {}",
            r.init_ret,
            r.found,
            r.tid,
            gettid()
        ))
    } else if seen != *v || r.value1 != i64::from(v.value1) || r.hint_b != u64::from(v.hint_b) {
        Some(format!(
            "thread {i}, round {round}: BPF sees {seen:?} instead of {v:?}"
        ))
    } else {
        None
    }
}

fn check_rust(i: usize, round: u64, v: &Values) -> Option<String> {
    let seen = Values {
        value1: VALUE1.get(),
        value4: VALUE4.get(),
        hint_a: HINT_A.get(),
        hint_b: HINT_B.get(),
    };
    (seen != *v).then(|| format!("thread {i}, round {round}: Rust reads {seen:?} instead of {v:?}"))
}

#[test]
fn a_thousand_live_threads_each_see_only_their_own_values() {
    let Some(skel) = shared(TEST) else {
        return;
    };
    // The main thread takes part in every barrier: it checks the runtime's view in between.
    let barrier = Rendezvous::new(THREADS + 1);
    // Failures are collected rather than panicking, so that no thread leaves the others waiting
    // at a barrier.
    let errors = Mutex::new(Vec::<String>::new());
    let tids = Mutex::new(Vec::<(usize, i32)>::new());
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, errors, tids) = (&barrier, &errors, &tids);
                thread::Builder::new()
                    .stack_size(STACK)
                    .spawn_scoped(s, move || {
                        let fail = |e: Option<String>| {
                            if let Some(e) = e {
                                errors.lock().unwrap().push(e);
                            }
                        };
                        let first = values_for(i, 1);
                        set_all(&first);
                        tids.lock().unwrap().push((i, gettid()));
                        // 1: every thread is live, with its values set, before any checks.
                        barrier.wait();
                        // 2: the main thread has looked at the runtime's status.
                        barrier.wait();
                        fail(check_bpf(skel, i, 1, &first));
                        fail(check_rust(i, 1, &first));

                        let second = values_for(i, 2);
                        set_all(&second);
                        fail(check_bpf(skel, i, 2, &second));
                        // 3: every thread has changed its values.
                        barrier.wait();
                        // 4: the main thread has read every thread's values from outside.
                        barrier.wait();
                        fail(check_bpf(skel, i, 2, &second));
                        fail(check_rust(i, 2, &second));
                    })
                    .expect("spawn a thread")
            })
            .collect();

        // The main thread must reach every barrier too: it does not panic before the last.
        let mut outside = Vec::new();
        barrier.wait(); // 1
        let status = tld_runtime::status();
        barrier.wait(); // 2
        if !status.is_connected()
            || status.live_threads < THREADS
            || status.registered_threads < THREADS
        {
            outside.push(format!(
                "with {THREADS} threads live and their values set, the runtime says: {status}"
            ));
        }

        barrier.wait(); // 3
                        // From this thread, BPF reads each of the others by tid and finds that thread's values.
        for &(i, tid) in tids.lock().unwrap().iter() {
            let r = bpf_read_pid(skel, tid);
            let v = values_for(i, 2);
            if (r.init_ret, r.value1, r.hint_a) != (0, i64::from(v.value1), v.hint_a) {
                outside.push(format!(
                    "thread {i} (tid {tid}) read from outside: bpf_tld_init {}, value1 {}, \
                     hint_a {:#x}; expected value1 {}, hint_a {:#x}",
                    r.init_ret, r.value1, r.hint_a, v.value1, v.hint_a
                ));
            }
        }
        barrier.wait(); // 4
        for h in handles {
            h.join().expect("a thread panicked");
        }
        errors.lock().unwrap().extend(outside);
    });

    let tids = tids.into_inner().unwrap();
    assert_eq!(tids.len(), THREADS);
    let errors = errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} failures, the first ones:\n{}",
        errors.len(),
        errors[..errors.len().min(20)].join("\n")
    );
}
