//! Scoped hints (S1, S2): what `TaskLocal::scoped` adds to a bare `set`, and what the
//! `with_hint` wrapper adds to each poll of a future.
//!
//! Both sides of each comparison go through a function that is never inlined, so that neither
//! is optimized into the timing loop differently; the report takes the median of per-round
//! differences over interleaved rounds.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use tld_bench_hints::{H00, H01};
use tld_runtime::{HintFutureExt, Hinted, TaskLocal};

use crate::json::Entry;
use crate::measure::{interleaved_rounds, median};

/// `H00.scoped(v, f)` with an empty `f`, through a function that is never inlined (S1).
#[inline(never)]
pub fn scoped_set(v: u64) {
    H00.scoped(v, || black_box(()));
}

/// `H00.set(v)`, through a function that is never inlined: S1's baseline.
#[inline(never)]
pub fn bare_set(v: u64) {
    H00.set(v);
}

/// A future that is never ready: each poll counts itself and returns `Pending`. The cheapest
/// poll there is, so that what a wrapper adds is not hidden by the future's own work.
#[derive(Debug, Default)]
pub struct Spin {
    /// Polls so far.
    pub polls: u64,
}

impl Future for Spin {
    type Output = ();
    #[inline]
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // Opaque to the optimizer, so that no poll can be proven useless and removed.
        self.polls = black_box(self.polls) + 1;
        Poll::Pending
    }
}

/// [`Spin`] carrying one hint.
pub type HintedSpin = Hinted<Spin, (&'static TaskLocal<u64>, u64)>;

/// [`Spin`] carrying two hints in one tuple.
pub type HintedSpin2 = Hinted<
    Spin,
    (
        (&'static TaskLocal<u64>, u64),
        (&'static TaskLocal<u64>, u64),
    ),
>;

/// [`Spin`] carrying two hints through two chained wrappers.
pub type ChainedSpin2 = Hinted<HintedSpin, (&'static TaskLocal<u64>, u64)>;

/// `Spin` wrapped with `with_hint(&H00, value)`.
pub fn hinted_spin(value: u64) -> HintedSpin {
    Spin::default().with_hint(&H00, value)
}

/// `Spin` wrapped with `with_hints(((&H00, value), (&H01, value)))`.
pub fn hinted_spin2(value: u64) -> HintedSpin2 {
    Spin::default().with_hints(((&H00, value), (&H01, value)))
}

/// `Spin` wrapped with `with_hint(&H00, value).with_hint(&H01, value)`.
pub fn chained_spin2(value: u64) -> ChainedSpin2 {
    Spin::default()
        .with_hint(&H00, value)
        .with_hint(&H01, value)
}

/// One poll of a bare future, through a function that is never inlined: S2's baseline.
#[inline(never)]
pub fn poll_plain(fut: Pin<&mut Spin>, cx: &mut Context<'_>) -> Poll<()> {
    fut.poll(cx)
}

/// One poll of the same future with one hint (S2).
#[inline(never)]
pub fn poll_hinted(fut: Pin<&mut HintedSpin>, cx: &mut Context<'_>) -> Poll<()> {
    fut.poll(cx)
}

/// One poll with two hints in a tuple.
#[inline(never)]
pub fn poll_hinted2(fut: Pin<&mut HintedSpin2>, cx: &mut Context<'_>) -> Poll<()> {
    fut.poll(cx)
}

/// One poll with two chained wrappers.
#[inline(never)]
pub fn poll_chained2(fut: Pin<&mut ChainedSpin2>, cx: &mut Context<'_>) -> Poll<()> {
    fut.poll(cx)
}

struct NoopWake;
impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// A waker that does nothing: the benchmarks poll by hand.
pub fn noop_waker() -> Waker {
    Waker::from(Arc::new(NoopWake))
}

/// Nanoseconds per call of `f`, over `n` calls.
#[inline(always)]
fn ns_per(n: u64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// One scoped operation against its baseline.
#[derive(Debug, Clone, Copy)]
pub struct Added {
    /// Median ns per operation, with the scope or wrapper.
    pub ours: f64,
    /// Median ns per operation of the baseline.
    pub base: f64,
    /// Median of the per-round differences, in ns.
    pub added: f64,
    /// Median of the per-round ratios.
    pub ratio: f64,
}

/// Alternates batches of `a` and `b` (swapping their order every round) and takes the medians.
fn compare(rounds: usize, a: impl FnMut() -> f64, b: impl FnMut() -> f64) -> Added {
    let pairs = interleaved_rounds(rounds, a, b);
    let column = |f: fn(f64, f64) -> f64| {
        let mut v: Vec<f64> = pairs.iter().map(|&(x, y)| f(x, y)).collect();
        median(&mut v)
    };
    Added {
        ours: column(|x, _| x),
        base: column(|_, y| y),
        added: column(|x, y| x - y),
        ratio: column(|x, y| x / y),
    }
}

/// What the report measures: S1 and S2.
#[derive(Debug, Clone, Copy)]
pub struct Scoped {
    /// S1: `scoped` against a bare `set`.
    pub sync: Added,
    /// S2: a poll with `with_hint` against a poll of the bare future.
    pub poll: Added,
    /// For the record: a poll with two hints in one tuple, against the bare poll.
    pub poll2: Added,
    /// For the record: a poll through two chained wrappers, against the bare poll.
    pub chained2: Added,
}

/// S1's goal: the sync scope adds at most this many ns to a bare `set`.
pub const SYNC_GOAL_NS: f64 = 2.0;
/// S2's goal: the wrapper adds at most this many ns to a poll.
pub const POLL_GOAL_NS: f64 = 3.0;

/// Measures S1 and S2 on the calling thread (which should already have its page).
pub fn measure(quick: bool) -> Scoped {
    const CALLS: u64 = 1_000_000;
    let rounds = if quick { 11 } else { 41 };
    let waker = noop_waker();

    let mut v = 0u64;
    let mut scoped = || {
        ns_per(CALLS, || {
            v = v.wrapping_add(1);
            scoped_set(black_box(v))
        })
    };
    let mut w = 0u64;
    let mut bare = || {
        ns_per(CALLS, || {
            w = w.wrapping_add(1);
            bare_set(black_box(w))
        })
    };
    scoped();
    bare();
    let sync = compare(rounds, &mut scoped, &mut bare);
    bare_set(1);
    scoped_set(2);
    assert_eq!(H00.get(), 1, "the scope did not restore the hint");

    let mut plain = Box::pin(Spin::default());
    let mut hinted = Box::pin(hinted_spin(7));
    let mut hinted2 = Box::pin(hinted_spin2(7));
    let mut chained2 = Box::pin(chained_spin2(7));
    // Each batch polls one future CALLS times with a context of its own.
    macro_rules! batch {
        ($fut:ident, $poll:ident) => {
            || {
                let mut cx = Context::from_waker(&waker);
                ns_per(CALLS, || {
                    let _ = black_box($poll($fut.as_mut(), &mut cx));
                })
            }
        };
    }
    let mut base = batch!(plain, poll_plain);
    let mut one = batch!(hinted, poll_hinted);
    let mut two = batch!(hinted2, poll_hinted2);
    let mut two_chained = batch!(chained2, poll_chained2);
    one();
    base();
    let poll = compare(rounds, &mut one, &mut base);
    let poll2 = compare(rounds, &mut two, &mut base);
    let chained2 = compare(rounds, &mut two_chained, &mut base);
    assert_eq!(H00.get(), 1, "the wrapper did not restore the hint");
    Scoped {
        sync,
        poll,
        poll2,
        chained2,
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

impl Scoped {
    /// The report's table rows for S1 and S2.
    pub fn rows(&self) -> String {
        let (s, p) = (self.sync, self.poll);
        format!(
            "| S1 | sync scope: `HINT.scoped(v, f)` with an empty `f` (set, run, restore) \
             through a non-inlined function | {:.2} ns | bare `HINT.set(v)` through a \
             non-inlined function: {:.2} ns | +{:.2} ns ({:.2}×) | ≤ +{SYNC_GOAL_NS} ns | {} |\n\
             | S2 | async wrapper: one poll of a pending future wrapped with \
             `.with_hint(&HINT, v)` | {:.2} ns | one poll of the same future unwrapped: {:.2} ns \
             | +{:.2} ns per poll ({:.2}×) | ≤ +{POLL_GOAL_NS} ns | {} |\n",
            s.ours,
            s.base,
            s.added,
            s.ratio,
            verdict(s.added <= SYNC_GOAL_NS),
            p.ours,
            p.base,
            p.added,
            p.ratio,
            verdict(p.added <= POLL_GOAL_NS),
        )
    }

    /// The JSON members of S1 and S2 (`tld-bench.json`), as the report's other rows: ours, the
    /// floor, the ratio, the unit, the goal, whether it was met, and what the scope adds.
    pub fn json_members(&self) -> Vec<(&'static str, Entry)> {
        let entry = |a: &Added, unit: &str, goal: f64| {
            Entry::new(
                a.ours,
                a.base,
                a.ratio,
                unit,
                format!("<= +{goal} ns"),
                a.added <= goal,
            )
            .with("added_ns", a.added)
        };
        vec![
            (
                "S1",
                entry(
                    &self.sync,
                    "ns per HINT.scoped(v, f) with an empty f (floor: a bare HINT.set(v)); medians",
                    SYNC_GOAL_NS,
                ),
            ),
            (
                "S2",
                entry(
                    &self.poll,
                    "ns per poll of a pending future wrapped with .with_hint (floor: the bare \
                     future's poll); medians",
                    POLL_GOAL_NS,
                ),
            ),
        ]
    }

    /// A short section for after the table: the two-hint variants and the method.
    pub fn notes(&self) -> String {
        format!(
            "\n### Scoped hints\n\n\
             S1 and S2 time batches of 1,000,000 calls, alternating the two sides and their \
             order every round, and report the median of the per-round differences. S1's \
             scope reads the hint's previous value, stores the new one, calls the closure and \
             stores the previous value back. S2's wrapper does, per poll: read the thread's \
             value, store the task's, poll, read the task's value back (so that what the task \
             or a BPF program stored during the poll stays with the task), store the thread's; \
             the future is `Spin`, which counts its polls and returns `Pending`. Two hints per \
             poll: +{:.2} ns in one tuple (`with_hints(((&A, a), (&B, b)))`), +{:.2} ns through \
             two chained wrappers.\n",
            self.poll2.added, self.chained2.added
        )
    }
}
