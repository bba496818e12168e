//! Scoped hints on the real kernel: a BPF program run from inside each poll (or scope) sees the
//! hint of the task being polled, and nothing of it once the poll has returned.
//!
//! `tld_read` is a `SEC("syscall")` program; `BPF_PROG_TEST_RUN` runs it as the calling thread,
//! so run from inside a poll it reads, by key, exactly what a scheduler would read for the
//! worker thread at that moment.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use tld_runtime::HintFutureExt;
use tld_tests::*;

const WORKERS: usize = 4;
const TASKS: u64 = 1_000;
const YIELDS: u32 = 100;
/// Tasks that panic in the middle of a hinted poll, on top of [`TASKS`].
const PANICKING: u64 = 40;

/// What a worker thread holds when no hinted task is being polled on it: values derived from its
/// thread id, so a check can tell which thread's value it sees.
fn worker_values(tid: i32) -> (i32, TestStruct) {
    let v4 = TestStruct {
        a: tid as u64,
        b: 0xB0B0,
        c: 0,
        d: 0,
    };
    (-tid, v4)
}

/// A hinted task's values: positive, so they are never a worker's.
fn task_values(i: u64) -> (i32, TestStruct) {
    let v4 = TestStruct {
        a: 1 << 40 | i,
        b: i * 3,
        c: !i,
        d: 0x5C09ED,
    };
    (1_000_000 + i as i32, v4)
}

fn v4_of(r: &ReadCtx) -> TestStruct {
    TestStruct {
        a: r.v4_a,
        b: r.v4_b,
        c: r.v4_c,
        d: r.v4_d,
    }
}

/// Checks one BPF read made from a poll: the task's values if `expect` is given, else the
/// polling worker's own.
fn check(r: &ReadCtx, expect: Option<(i32, TestStruct)>, what: &str) -> Result<(), String> {
    if r.init_ret != 0 || r.found & (found::VALUE1 | found::VALUE4) != found::VALUE1 | found::VALUE4
    {
        return Err(format!(
            "{what}: BPF found no hints (init {}, found {:#x})",
            r.init_ret, r.found
        ));
    }
    if r.tid != gettid() {
        return Err(format!("{what}: BPF ran as thread {}", r.tid));
    }
    let want = expect.unwrap_or_else(|| worker_values(r.tid));
    let got = (r.value1 as i32, v4_of(r));
    if got != want {
        return Err(format!(
            "{what} on thread {}: BPF saw {got:?}, expected {want:?}",
            r.tid
        ));
    }
    Ok(())
}

/// Silences the panic messages of the panics these tests cause on purpose.
fn quiet_planned_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.starts_with("planned"));
            if !planned {
                default(info);
            }
        }));
    });
}

/// What one task saw.
struct Outcome {
    hinted: bool,
    polls: u32,
    threads: usize,
}

/// The body of task `i`: reads its hints through BPF at every poll, yields [`YIELDS`] times,
/// and exercises nested scopes in some tasks. `expect` is what BPF must see in its polls.
async fn task_body(
    skel: &'static TldTestSkel<'static>,
    i: u64,
    expect: Option<(i32, TestStruct)>,
) -> Result<Outcome, String> {
    let mut threads = HashSet::new();
    let mut polls = 0;
    for y in 0..YIELDS {
        let r = bpf_read(skel);
        check(&r, expect, &format!("task {i}, poll {y}"))?;
        threads.insert(r.tid);
        polls += 1;
        if y == YIELDS / 2 && i % 5 < 2 {
            // A sync scope and a guard nested in the poll: BPF sees the innermost value, and
            // the task's (or worker's) value once each is gone.
            let inner = task_values(i + 500_000);
            let r = VALUE1.scoped(inner.0, || {
                let _g = VALUE4.set_scoped(inner.1);
                bpf_read(skel)
            });
            check(&r, Some(inner), &format!("task {i}, nested sync scope"))?;
            check(
                &bpf_read(skel),
                expect,
                &format!("task {i}, after the scope"),
            )?;

            // A hinted future awaited inside the task: its value during its own polls, the
            // task's again afterwards.
            let inner = task_values(i + 700_000);
            let what = format!("task {i}, nested future");
            async {
                check(&bpf_read(skel), Some(inner), &what)?;
                tokio::task::yield_now().await;
                check(&bpf_read(skel), Some(inner), &what)
            }
            .with_hints(((&VALUE1, inner.0), (&VALUE4, inner.1)))
            .await?;
            check(&bpf_read(skel), expect, &format!("task {i}, after it"))?;
        }
        tokio::task::yield_now().await;
    }
    Ok(Outcome {
        hinted: expect.is_some(),
        polls,
        threads: threads.len(),
    })
}

#[test]
fn tokio_tasks_carry_their_hints_into_every_poll() {
    let Some(skel) = shared("tokio_tasks_carry_their_hints_into_every_poll") else {
        return;
    };
    quiet_planned_panics();

    // Each worker's own values, and BPF checks of them whenever a worker parks and as it stops:
    // whatever hinted, nested or panicking tasks did on the worker, its values are as it set
    // them.
    let park_checks = Arc::new(AtomicU64::new(0));
    let worker_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let stopped = Arc::new(Mutex::new(Vec::<i32>::new()));
    let rt = {
        let (park_checks, park_errors) = (park_checks.clone(), worker_errors.clone());
        let (stop_errors, stopped) = (worker_errors.clone(), stopped.clone());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .on_thread_start(|| {
                let (v1, v4) = worker_values(gettid());
                VALUE1.set(v1);
                VALUE4.set(v4);
            })
            .on_thread_park(move || {
                park_checks.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = check(&bpf_read(skel), None, "worker parking") {
                    park_errors.lock().unwrap().push(e);
                }
            })
            .on_thread_stop(move || {
                if let Err(e) = check(&bpf_read(skel), None, "worker stopping") {
                    stop_errors.lock().unwrap().push(e);
                }
                stopped.lock().unwrap().push(gettid());
            })
            .build()
            .expect("tokio runtime")
    };

    // Half hinted (by chaining, or with one tuple), half not; spawned from outside the runtime,
    // so that they are spread over the workers and stolen between them.
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let handle = match i % 4 {
            0 => {
                let (v1, v4) = task_values(i);
                rt.spawn(
                    task_body(skel, i, Some((v1, v4)))
                        .with_hint(&VALUE1, v1)
                        .with_hint(&VALUE4, v4),
                )
            }
            2 => {
                let (v1, v4) = task_values(i);
                rt.spawn(
                    task_body(skel, i, Some((v1, v4))).with_hints(((&VALUE1, v1), (&VALUE4, v4))),
                )
            }
            _ => rt.spawn(task_body(skel, i, None)),
        };
        handles.push(handle);
    }
    // Hinted tasks that panic in the middle of a poll, half of them inside a nested scope.
    let mut panicking = Vec::new();
    for i in TASKS..TASKS + PANICKING {
        let (v1, v4) = task_values(i);
        panicking.push(
            rt.spawn(
                async move {
                    for y in 0..YIELDS {
                        if y == 10 {
                            // A wrong hint ends the task without the panic, failing the test
                            // below with this error.
                            check(&bpf_read(skel), Some((v1, v4)), "panicking task")?;
                            if i % 2 == 0 {
                                panic!("planned panic in a hinted poll");
                            }
                            VALUE1.scoped(-1, || panic!("planned panic in a nested scope"));
                        }
                        tokio::task::yield_now().await;
                    }
                    Ok::<(), String>(())
                }
                .with_hints(((&VALUE1, v1), (&VALUE4, v4))),
            ),
        );
    }

    let outcomes: Vec<Outcome> = rt.block_on(async {
        let mut outcomes = Vec::new();
        for h in handles {
            match h.await {
                Ok(Ok(o)) => outcomes.push(o),
                Ok(Err(e)) => panic!("{e}"),
                Err(e) => panic!("a task failed: {e}"),
            }
        }
        for h in panicking {
            let e = h.await.expect_err("the task was meant to panic");
            assert!(e.is_panic(), "{e}");
        }
        outcomes
    });
    // Every task is done: an idle worker parks, and checks its values as it does. The workers
    // may all have parked already, so wake one with an empty task and wait for it to park again.
    let parked_after_the_tasks = (0..20).any(|_| {
        let parks = park_checks.load(Ordering::Relaxed);
        rt.block_on(rt.spawn(async {})).expect("an empty task");
        wait_for(std::time::Duration::from_millis(500), || {
            park_checks.load(Ordering::Relaxed) > parks
        })
    });
    assert!(
        parked_after_the_tasks,
        "no worker parked once the tasks were done"
    );
    // Stops the workers: each checks its values one last time.
    rt.shutdown_timeout(std::time::Duration::from_secs(30));

    let errors = worker_errors.lock().unwrap();
    assert!(errors.is_empty(), "worker values disturbed: {errors:#?}");
    let stopped = stopped.lock().unwrap();
    assert!(
        stopped.len() >= WORKERS,
        "only {} worker threads checked their values as they stopped",
        stopped.len()
    );

    let hinted = outcomes.iter().filter(|o| o.hinted).count();
    assert_eq!(
        (outcomes.len(), hinted),
        (TASKS as usize, TASKS as usize / 2)
    );
    assert!(outcomes.iter().all(|o| o.polls == YIELDS));
    let moved = outcomes
        .iter()
        .filter(|o| o.hinted && o.threads > 1)
        .count();
    let moved_unhinted = outcomes
        .iter()
        .filter(|o| !o.hinted && o.threads > 1)
        .count();
    eprintln!(
        "{TASKS} tasks x {YIELDS} polls on {WORKERS} workers: {moved} hinted and \
         {moved_unhinted} unhinted tasks were polled on more than one worker; {} park checks",
        park_checks.load(Ordering::Relaxed)
    );
    // The point of the wrapper is a task that moves: make sure some did.
    assert!(moved > 0, "no hinted task moved between workers");
}

#[test]
fn a_threads_first_hint_access_may_be_a_hinted_poll() {
    let Some(skel) = shared("a_threads_first_hint_access_may_be_a_hinted_poll") else {
        return;
    };
    thread::spawn(move || {
        // Not registered: this thread has not touched a hint.
        let r = bpf_read(skel);
        assert_eq!(r.init_ret, -i64::from(libc::ENODATA));

        // Building and dropping a hinted future touches nothing.
        drop(async {}.with_hint(&VALUE1, 5));
        let r = bpf_read(skel);
        assert_eq!(
            r.init_ret,
            -i64::from(libc::ENODATA),
            "a dropped future touched a hint"
        );

        // The first access is the poll's: the thread gets its page, registered, with the hint.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime");
        let inside = rt.block_on(async { bpf_read(skel) }.with_hint(&VALUE1, 123));
        assert_eq!(inside.init_ret, 0);
        assert_eq!(inside.tid, gettid());
        assert_eq!(inside.value1, 123);
        // After the poll: the initial value.
        let after = bpf_read(skel);
        assert_eq!((after.init_ret, after.value1), (0, 0));
        assert_eq!(v4_of(&after), VALUE4.initial_value());
    })
    .join()
    .unwrap();
}

#[test]
fn sync_scopes_restore_what_bpf_sees() {
    let Some(skel) = shared("sync_scopes_restore_what_bpf_sees") else {
        return;
    };
    quiet_planned_panics();
    thread::spawn(move || {
        let (v1, v4) = worker_values(gettid());
        VALUE1.set(v1);
        VALUE4.set(v4);
        let outer = task_values(1);
        let inner = task_values(2);
        VALUE1.scoped(outer.0, || {
            let _g = VALUE4.set_scoped(outer.1);
            check(&bpf_read(skel), Some(outer), "outer scope").unwrap();
            {
                let _a = VALUE1.set_scoped(inner.0);
                let _b = VALUE4.set_scoped(inner.1);
                check(&bpf_read(skel), Some(inner), "inner scope").unwrap();
            }
            check(&bpf_read(skel), Some(outer), "outer scope again").unwrap();
        });
        check(&bpf_read(skel), None, "after the scopes").unwrap();

        let caught = catch_unwind(AssertUnwindSafe(|| {
            VALUE4.scoped(outer.1, || {
                VALUE1.scoped(outer.0, || panic!("planned panic in a scope"))
            })
        }));
        assert!(caught.is_err());
        check(&bpf_read(skel), None, "after a panic in a scope").unwrap();

        // A BPF write during a scope is undone by the restore, like a Rust store would be.
        VALUE1.scoped(7, || {
            let w = bpf_write(skel, 99, VALUE4.get());
            assert_eq!((w.init_ret, w.ret), (0, 0));
            assert_eq!(VALUE1.get(), 99);
        });
        check(&bpf_read(skel), None, "after a BPF write in a scope").unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn a_bpf_write_during_a_poll_stays_with_the_task() {
    let Some(skel) = shared("a_bpf_write_during_a_poll_stays_with_the_task") else {
        return;
    };
    thread::spawn(move || {
        let (v1, v4) = worker_values(gettid());
        VALUE1.set(v1);
        VALUE4.set(v4);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime");
        let (start, after_yield) = rt.block_on(
            async {
                let start = bpf_read(skel).value1;
                // A BPF program (a scheduler, say) writes the task's hint during a poll.
                let w = bpf_write(skel, 4242, VALUE4.get());
                assert_eq!((w.init_ret, w.ret), (0, 0));
                tokio::task::yield_now().await;
                (start, bpf_read(skel).value1)
            }
            .with_hint(&VALUE1, 10),
        );
        assert_eq!((start, after_yield), (10, 4242));
        check(&bpf_read(skel), None, "the thread after the task").unwrap();
    })
    .join()
    .unwrap();
}

/// Hinted futures joined inside a spawned task (what `tokio::join!` and `tokio::select!` do with
/// instrumented futures): each one's polls see its own hints, whichever worker polls the task,
/// and the worker's own values are back between them.
#[test]
fn joined_hinted_futures_each_see_their_own_hints() {
    let Some(skel) = shared("joined_hinted_futures_each_see_their_own_hints") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(|| {
            let (v1, v4) = worker_values(gettid());
            VALUE1.set(v1);
            VALUE4.set(v4);
        })
        .build()
        .expect("tokio runtime");
    async fn part(
        skel: &'static TldTestSkel<'static>,
        i: u64,
        polls: &'static AtomicU64,
    ) -> Result<u64, String> {
        for y in 0..20 {
            check(
                &bpf_read(skel),
                Some(task_values(i)),
                &format!("part {i}, poll {y}"),
            )?;
            polls.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        Ok(i)
    }
    static POLLS: AtomicU64 = AtomicU64::new(0);
    let result: Result<(), String> = rt.block_on(async move {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            tasks.push(tokio::spawn(async move {
                let (a, b) = (task_values(10 * t + 1), task_values(10 * t + 2));
                let joined = tokio::join!(
                    part(skel, 10 * t + 1, &POLLS)
                        .with_hint(&VALUE1, a.0)
                        .with_hint(&VALUE4, a.1),
                    part(skel, 10 * t + 2, &POLLS)
                        .with_hints(((&VALUE1, b.0), (&VALUE4, b.1))),
                );
                assert_eq!((joined.0?, joined.1?), (10 * t + 1, 10 * t + 2));
                check(&bpf_read(skel), None, "the worker after join!")?;
                let c = task_values(10 * t + 3);
                tokio::select! {
                    r = part(skel, 10 * t + 3, &POLLS).with_hints(((&VALUE1, c.0), (&VALUE4, c.1))) => r?,
                    _ = std::future::pending::<()>() => unreachable!(),
                };
                check(&bpf_read(skel), None, "the worker after select!")
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    });
    result.unwrap();
    assert_eq!(POLLS.load(Ordering::Relaxed), 8 * 3 * 20);
}
