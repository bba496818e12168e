//! Hints set from Rust are what BPF reads, per thread, on the real kernel.

use std::thread;

use tld_tests::*;

const THREADS: u64 = 32;

fn values_for(i: u64, round: u64) -> (i32, TestStruct, [u8; 1000], u64, u32) {
    let base = i * 1000 + round * 100_000;
    let v4 = TestStruct {
        a: base + 1,
        b: base + 2,
        c: base + 3,
        d: u64::MAX - base,
    };
    let mut dummy = [0u8; 1000];
    for (j, b) in dummy.iter_mut().enumerate() {
        *b = (j as u64 * 7 + i * 13 + round) as u8;
    }
    (
        -(base as i32) - 5,
        v4,
        dummy,
        (i << 40) | round,
        (i as u32) << 8 | round as u32,
    )
}

fn set_all(v: &(i32, TestStruct, [u8; 1000], u64, u32)) {
    VALUE1.set(v.0);
    VALUE4.set(v.1);
    DUMMY.set(v.2);
    HINT_A.set(v.3);
    HINT_B.set(v.4);
}

fn assert_bpf_sees(r: &ReadCtx, v: &(i32, TestStruct, [u8; 1000], u64, u32)) {
    assert_eq!(r.init_ret, 0, "bpf_tld_init failed");
    assert_eq!(r.found, found::ALL, "not every key was found");
    assert_eq!(r.tid, gettid(), "BPF ran as another thread");
    assert_eq!(r.value1, i64::from(v.0));
    assert_eq!(
        (r.v4_a, r.v4_b, r.v4_c, r.v4_d),
        (v.1.a, v.1.b, v.1.c, v.1.d)
    );
    assert_eq!(r.dummy_sum, byte_sum(&v.2));
    assert_eq!((r.dummy_first, r.dummy_last), (v.2[0], v.2[999]));
    assert_eq!(r.hint_a, v.3);
    assert_eq!(r.hint_b, u64::from(v.4));
}

#[test]
fn each_thread_sees_its_own_values_in_bpf() {
    let Some(skel) = shared("each_thread_sees_its_own_values_in_bpf") else {
        return;
    };
    let barrier = Rendezvous::new(THREADS as usize);
    thread::scope(|s| {
        for i in 0..THREADS {
            let barrier = &barrier;
            s.spawn(move || {
                let first = values_for(i, 1);
                set_all(&first);
                // Every thread is live and registered before any of them checks.
                barrier.wait();
                assert_bpf_sees(&bpf_read(skel), &first);

                let second = values_for(i, 2);
                set_all(&second);
                assert_bpf_sees(&bpf_read(skel), &second);
                barrier.wait();

                // Rust reads show only this thread's values.
                assert_eq!(VALUE1.get(), second.0);
                assert_eq!(VALUE4.get(), second.1);
                assert_eq!(DUMMY.get(), second.2);
                assert_eq!(HINT_A.get(), second.3);
                assert_eq!(HINT_B.get(), second.4);
            });
        }
    });
}

#[test]
fn bpf_writes_are_what_rust_reads() {
    let Some(skel) = shared("bpf_writes_are_what_rust_reads") else {
        return;
    };
    thread::scope(|s| {
        for i in 0..4i32 {
            s.spawn(move || {
                VALUE1.set(1);
                let v4 = TestStruct {
                    a: 10 + i as u64,
                    b: 20,
                    c: 30,
                    d: 40,
                };
                let w = bpf_write(skel, 4242 + i, v4);
                assert_eq!((w.init_ret, w.ret), (0, 0));
                assert_eq!(VALUE1.get(), 4242 + i);
                assert_eq!(VALUE4.get(), v4);
                assert_eq!(VALUE1.update(|v| std::mem::replace(v, 7)), 4242 + i);
                assert_eq!(bpf_read(skel).value1, 7);
            });
        }
    });
}

#[test]
fn lookups_that_must_fail_return_null() {
    let Some(skel) = shared("lookups_that_must_fail_return_null") else {
        return;
    };
    thread::spawn(move || {
        VALUE1.set(3);
        let n = bpf_negative(skel);
        assert_eq!(n.init_ret, 0);
        assert_eq!(n.undeclared_is_null, 1, "an undeclared key was found");
        assert_eq!(
            n.oversize_is_null, 1,
            "a lookup larger than declared succeeded"
        );
        assert_eq!(
            n.oversize_after_cache_is_null, 1,
            "a cached lookup larger than declared succeeded"
        );
        assert_eq!(n.exact_is_nonnull, 1, "the declared size was refused");
    })
    .join()
    .unwrap();
}

#[test]
fn a_thread_that_never_touched_a_hint_is_not_registered() {
    let Some(skel) = shared("a_thread_that_never_touched_a_hint_is_not_registered") else {
        return;
    };
    thread::spawn(move || {
        let r = bpf_read(skel);
        assert_eq!(r.init_ret, -i64::from(libc::ENODATA));
        assert_eq!(r.found, 0);
    })
    .join()
    .unwrap();
}

#[test]
fn hints_from_two_crates_are_published() {
    let Some(skel) = shared("hints_from_two_crates_are_published") else {
        return;
    };
    thread::spawn(move || {
        HINT_A.set(0xAAAA);
        HINT_B.set(0xBBBB);
        let r = bpf_read(skel);
        assert_eq!(
            r.found & (found::HINT_A | found::HINT_B),
            found::HINT_A | found::HINT_B
        );
        assert_eq!((r.hint_a, r.hint_b), (0xAAAA, 0xBBBB));
        // Values not set on this thread are the declared initial values.
        assert_eq!(r.value1, 0);
    })
    .join()
    .unwrap();
    let status = tld_runtime::status();
    assert!(status.is_connected(), "{status}");
    assert_eq!((status.hints, status.published_keys), (9, 9), "{status}");
}

thread_local! {
    /// Set on a thread before its first hint access: its destructor runs while the thread
    /// exits, before the runtime releases the thread's page.
    static LAST_WORDS: LastWords = const { LastWords(std::cell::Cell::new(None)) };
}

/// What a thread saw while it exited, for the test to check.
#[derive(Debug, PartialEq)]
struct Exit {
    /// In a `thread_local!` destructor: what BPF read after the destructor set `HINT_A`.
    in_destructor: (i64, u64),
    /// In the `at_thread_exit` hook: whether the thread was still registered, and what
    /// `bpf_tld_init` returned.
    after_release: (bool, i64),
}

/// Where the destructor reads from, and where it reports what BPF read.
type Report = (
    &'static TldTestSkel<'static>,
    std::sync::mpsc::Sender<(i64, u64)>,
);

struct LastWords(std::cell::Cell<Option<Report>>);

impl Drop for LastWords {
    fn drop(&mut self) {
        let Some((skel, tx)) = self.0.take() else {
            return;
        };
        HINT_A.set(0xdead_0001);
        let r = bpf_read(skel);
        let _ = tx.send((r.init_ret, r.hint_a));
    }
}

#[test]
fn thread_local_destructors_still_reach_bpf_and_the_exit_hook_runs_after_the_release() {
    let Some(skel) = shared("thread_local_destructors_still_reach_bpf") else {
        return;
    };
    let (dtor_tx, dtor_rx) = std::sync::mpsc::channel();
    let (hook_tx, hook_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        LAST_WORDS.with(|w| w.0.set(Some((skel, dtor_tx))));
        tld_runtime::at_thread_exit(move || {
            let registered = tld_runtime::thread_init().is_ok();
            let _ = hook_tx.send((registered, bpf_read(skel).init_ret));
        })
        .expect("an exit hook");
        HINT_A.set(1);
        assert_eq!(bpf_read(skel).hint_a, 1);
    })
    .join()
    .expect("the thread panicked");
    let exit = Exit {
        in_destructor: dtor_rx.recv().expect("the destructor ran"),
        after_release: hook_rx.recv().expect("the exit hook ran"),
    };
    // The destructor's store reached the registered page; after the release the element is
    // gone and the thread is exiting.
    assert_eq!(exit.in_destructor, (0, 0xdead_0001), "{exit:?}");
    assert!(!exit.after_release.0, "{exit:?}");
    assert_ne!(
        exit.after_release.1, 0,
        "BPF still found the page: {exit:?}"
    );
}
