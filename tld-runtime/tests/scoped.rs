//! Scoped hints without the kernel: what `scoped`, `set_scoped` and `with_hint` leave on the
//! thread, for plain values and derived structs, through nesting, early returns, panics, guards
//! dropped out of order, futures polled on several threads and futures never polled.
//!
//! `tests/tests/scoped.rs` (in the `tld-tests` crate) checks the same with a BPF program reading
//! the hints from inside each poll on a multi-threaded tokio runtime.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use tld_runtime::{task_local_data, HintFutureExt, TldType};

#[derive(TldType, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Latency {
    budget_us: u32,
    class: u32,
}

#[task_local_data(key = "scoped_test_priority")]
static PRIORITY: i32 = -1;

#[task_local_data(key = "scoped_test_latency")]
static LATENCY: Latency = Latency {
    budget_us: 0,
    class: 1,
};

#[task_local_data(key = "scoped_test_flag")]
static FLAG: bool = false;

/// Runs `f` on a fresh thread, whose hints start at their initial values.
fn on_fresh_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::spawn(f).join().expect("test thread panicked")
}

/// Silences the panic messages of the panics these tests cause on purpose.
fn quiet_panics() {
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

#[test]
fn scoped_sets_and_restores_and_nests() {
    on_fresh_thread(|| {
        assert_eq!(PRIORITY.get(), -1);
        let r = PRIORITY.scoped(10, || {
            assert_eq!(PRIORITY.get(), 10);
            let inner = PRIORITY.scoped(20, || {
                assert_eq!(PRIORITY.get(), 20);
                PRIORITY.scoped(30, || PRIORITY.get())
            });
            assert_eq!(
                PRIORITY.get(),
                10,
                "the inner scope restores the outer value"
            );
            inner
        });
        assert_eq!(r, 30);
        assert_eq!(PRIORITY.get(), -1);
    });
}

#[test]
fn a_value_set_inside_a_scope_is_replaced_by_the_restore() {
    on_fresh_thread(|| {
        PRIORITY.set(3);
        PRIORITY.scoped(4, || PRIORITY.set(99));
        assert_eq!(PRIORITY.get(), 3);
    });
}

#[test]
fn scoped_restores_on_panic() {
    quiet_panics();
    on_fresh_thread(|| {
        PRIORITY.set(5);
        let caught = catch_unwind(|| {
            PRIORITY.scoped(6, || {
                let _g = LATENCY.set_scoped(Latency {
                    budget_us: 1,
                    class: 3,
                });
                PRIORITY.scoped(7, || panic!("planned panic in a scope"))
            })
        });
        assert!(caught.is_err());
        assert_eq!(PRIORITY.get(), 5, "every scope restored while unwinding");
        assert_eq!(LATENCY.get(), LATENCY.initial_value());
    });
}

#[test]
fn guards_restore_on_early_return_and_question_mark() {
    fn handle(fail: bool) -> Result<i32, &'static str> {
        let _g = PRIORITY.set_scoped(40);
        let step = |ok: bool| if ok { Ok(()) } else { Err("failed") };
        step(!fail)?;
        if PRIORITY.get() == 40 {
            return Ok(PRIORITY.get());
        }
        unreachable!()
    }
    on_fresh_thread(|| {
        assert_eq!(handle(false), Ok(40));
        assert_eq!(PRIORITY.get(), -1);
        assert_eq!(handle(true), Err("failed"));
        assert_eq!(PRIORITY.get(), -1);
    });
}

#[test]
fn guards_nest_in_declaration_order() {
    on_fresh_thread(|| {
        let a = PRIORITY.set_scoped(1);
        let b = PRIORITY.set_scoped(2);
        let c = LATENCY.set_scoped(Latency {
            budget_us: 9,
            class: 2,
        });
        assert_eq!((a.previous(), b.previous()), (-1, 1));
        assert_eq!(PRIORITY.get(), 2);
        assert_eq!(c.previous(), LATENCY.initial_value());
        drop(c);
        drop(b);
        assert_eq!(PRIORITY.get(), 1);
        drop(a);
        assert_eq!(PRIORITY.get(), -1);
    });
}

#[test]
fn guards_dropped_out_of_order_end_at_the_last_dropped_guards_saved_value() {
    on_fresh_thread(|| {
        let outer = PRIORITY.set_scoped(1); // saves -1
        let inner = PRIORITY.set_scoped(2); // saves 1
        drop(outer); // restores -1 although `inner` is alive
        assert_eq!(PRIORITY.get(), -1);
        drop(inner); // restores 1: the value it saved
        assert_eq!(PRIORITY.get(), 1);
    });
    on_fresh_thread(|| {
        std::mem::forget(PRIORITY.set_scoped(8));
        assert_eq!(PRIORITY.get(), 8, "a forgotten guard restores nothing");
    });
}

#[test]
fn derived_structs_and_bools_scope_like_plain_values() {
    on_fresh_thread(|| {
        let urgent = Latency {
            budget_us: 500,
            class: 2,
        };
        let seen = LATENCY.scoped(urgent, || (LATENCY.get(), FLAG.scoped(true, || FLAG.get())));
        assert_eq!(seen, (urgent, true));
        assert_eq!(LATENCY.get(), LATENCY.initial_value());
        assert!(!FLAG.get());
    });
}

#[test]
fn a_threads_first_access_may_be_a_scope() {
    // The first hint access of the thread: it gets its page (and is registered if a map is
    // connected), and the restore puts back the initial value.
    on_fresh_thread(|| {
        let g = PRIORITY.set_scoped(12);
        assert_eq!(g.previous(), -1);
        assert_eq!(PRIORITY.get(), 12);
        drop(g);
        assert_eq!(PRIORITY.get(), -1);
    });
}

// ---------------------------------------------------------------------------------------------
// Futures, polled by hand.

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    fut.poll(&mut Context::from_waker(&waker))
}

/// A future that records `PRIORITY` and `LATENCY` at each of its polls and is ready after
/// `polls` of them. With `set_to`, it also stores into `PRIORITY` at its first poll.
struct Probe {
    polls: usize,
    seen: Vec<(i32, Latency)>,
    set_to: Option<i32>,
}

impl Probe {
    fn new(polls: usize) -> Probe {
        Probe {
            polls,
            seen: Vec::new(),
            set_to: None,
        }
    }
}

impl Future for Probe {
    type Output = Vec<(i32, Latency)>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.seen.push((PRIORITY.get(), LATENCY.get()));
        if let Some(v) = self.set_to.take() {
            PRIORITY.set(v);
        }
        if self.seen.len() == self.polls {
            Poll::Ready(std::mem::take(&mut self.seen))
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn with_hint_sets_the_hint_for_each_poll_only() {
    on_fresh_thread(|| {
        let mut fut = pin!(Probe::new(3).with_hint(&PRIORITY, 10));
        PRIORITY.set(1);
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(
            PRIORITY.get(),
            1,
            "the thread's value is back after the poll"
        );
        PRIORITY.set(2); // the thread changes its own value between polls
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(PRIORITY.get(), 2);
        let Poll::Ready(seen) = poll_once(fut.as_mut()) else {
            panic!("not ready after 3 polls")
        };
        assert_eq!(PRIORITY.get(), 2);
        let latency = LATENCY.initial_value();
        assert_eq!(seen, vec![(10, latency); 3]);
    });
}

#[test]
fn a_hinted_future_carries_its_hint_between_threads() {
    // One future polled on three threads in turn (as a work-stealing executor would): each poll
    // sees the hint, and each thread keeps its own value.
    let fut = Box::pin(Probe::new(3).with_hint(&PRIORITY, 77));
    let (fut, a) = on_fresh_thread(move || {
        let mut fut = fut;
        PRIORITY.set(100);
        assert!(poll_once(fut.as_mut()).is_pending());
        (fut, PRIORITY.get())
    });
    let (fut, b) = on_fresh_thread(move || {
        let mut fut = fut;
        assert!(poll_once(fut.as_mut()).is_pending());
        (fut, PRIORITY.get())
    });
    let (seen, c) = on_fresh_thread(move || {
        let mut fut = fut;
        PRIORITY.set(300);
        let Poll::Ready(seen) = poll_once(fut.as_mut()) else {
            panic!("not ready after 3 polls")
        };
        (seen, PRIORITY.get())
    });
    assert_eq!((a, b, c), (100, -1, 300));
    assert!(seen.iter().all(|&(p, _)| p == 77), "{seen:?}");
}

#[test]
fn what_the_task_stores_in_its_hint_stays_with_the_task() {
    on_fresh_thread(|| {
        let mut probe = Probe::new(3);
        probe.set_to = Some(55); // the task raises its own priority during its first poll
        let mut fut = pin!(probe.with_hint(&PRIORITY, 10));
        PRIORITY.set(1);
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(
            PRIORITY.get(),
            1,
            "the task's store did not leak to the thread"
        );
        assert!(poll_once(fut.as_mut()).is_pending());
        let Poll::Ready(seen) = poll_once(fut.as_mut()) else {
            panic!("not ready after 3 polls")
        };
        let p: Vec<i32> = seen.iter().map(|s| s.0).collect();
        assert_eq!(p, [10, 55, 55]);
        assert_eq!(PRIORITY.get(), 1);
    });
}

#[test]
fn several_hints_by_chaining_and_by_tuple() {
    let urgent = Latency {
        budget_us: 250,
        class: 3,
    };
    on_fresh_thread(move || {
        let chained = pin!(Probe::new(1)
            .with_hint(&PRIORITY, 10)
            .with_hint(&LATENCY, urgent));
        let Poll::Ready(seen) = poll_once(chained) else {
            panic!("not ready")
        };
        assert_eq!(seen, [(10, urgent)]);

        let tupled = pin!(Probe::new(1).with_hints(((&PRIORITY, 11), (&LATENCY, urgent))));
        let Poll::Ready(seen) = poll_once(tupled) else {
            panic!("not ready")
        };
        assert_eq!(seen, [(11, urgent)]);

        // Nested tuples and a hint that appears twice: the later value wins, and the thread's
        // value comes back.
        let nested = pin!(Probe::new(1).with_hints((
            (&PRIORITY, 1),
            ((&LATENCY, urgent), (&FLAG, true)),
            (&PRIORITY, 2),
        )));
        let Poll::Ready(seen) = poll_once(nested) else {
            panic!("not ready")
        };
        assert_eq!(seen, [(2, urgent)]);
        assert_eq!(
            (PRIORITY.get(), LATENCY.get(), FLAG.get()),
            (-1, LATENCY.initial_value(), false)
        );
    });
}

#[test]
fn an_inner_hinted_future_wins_during_its_polls() {
    on_fresh_thread(|| {
        let task = async {
            let before = PRIORITY.get();
            let inner = Probe::new(2).with_hint(&PRIORITY, 20).await;
            let scoped = PRIORITY.scoped(30, || PRIORITY.get());
            (before, inner, scoped, PRIORITY.get())
        };
        let mut task = pin!(task.with_hint(&PRIORITY, 10));
        assert!(poll_once(task.as_mut()).is_pending());
        assert_eq!(PRIORITY.get(), -1);
        let Poll::Ready((before, inner, scoped, after)) = poll_once(task.as_mut()) else {
            panic!("not ready after 2 polls")
        };
        assert_eq!(before, 10);
        assert!(inner.iter().all(|&(p, _)| p == 20), "{inner:?}");
        assert_eq!((scoped, after), (30, 10));
        assert_eq!(PRIORITY.get(), -1);
    });
}

#[test]
fn a_panicking_poll_restores_the_threads_value() {
    quiet_panics();
    on_fresh_thread(|| {
        PRIORITY.set(4);
        let task = async {
            assert_eq!(PRIORITY.get(), 10);
            panic!("planned panic in a poll");
        };
        let mut task = Box::pin(task.with_hint(&PRIORITY, 10));
        let caught = catch_unwind(AssertUnwindSafe(|| poll_once(task.as_mut())));
        assert!(caught.is_err());
        assert_eq!(PRIORITY.get(), 4);
    });
}

#[test]
fn a_hinted_future_that_is_never_polled_touches_no_hint() {
    on_fresh_thread(|| {
        PRIORITY.set(6);
        let task = async { PRIORITY.set(1000) }.with_hint(&PRIORITY, 10);
        drop(task);
        assert_eq!(PRIORITY.get(), 6);
        // The inner future can be taken back out; it no longer sets the hint.
        let inner = Probe::new(1).with_hint(&PRIORITY, 10).into_inner();
        let Poll::Ready(seen) = poll_once(pin!(inner)) else {
            panic!("not ready")
        };
        assert_eq!(seen[0].0, 6);
    });
}

#[test]
fn hinted_futures_are_send_when_their_parts_are() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Sync>(_: &T) {}
    let fut = async {}.with_hints(((&PRIORITY, 1), (&LATENCY, Latency::default())));
    assert_send(&fut);
    assert_sync(&fut);
    // And `Unpin` when the inner future is, so it can be polled without pinning.
    let mut unpin = Probe::new(1).with_hint(&PRIORITY, 3);
    let r = on_fresh_thread(move || poll_once(Pin::new(&mut unpin)));
    assert!(matches!(r, Poll::Ready(ref s) if s[0].0 == 3));
}
