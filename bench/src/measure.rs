//! Measuring helpers: timed batches, interleaved A/B rounds, medians.
//!
//! A/B comparisons alternate short batches of both sides for many rounds and take the median
//! of the per-round ratios, so that a burst of load from another process lands on both sides
//! of a ratio instead of skewing one of them.

use std::hint::black_box;
use std::time::Instant;

/// The median of `v` (which it sorts); NaN for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `q` quantile (0 to 1) of `v` (which it sorts), the nearest rank; NaN for an empty slice.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The arithmetic mean of `v`; NaN for an empty slice.
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Calls `f(i)` for `i` in `0..n` and returns the nanoseconds per call.
#[inline(always)]
pub fn ns_per_call(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(black_box(i));
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The result of an interleaved comparison of `a` with `b`.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    /// Median of `a`'s per-round figures.
    pub a: f64,
    /// Median of `b`'s per-round figures.
    pub b: f64,
    /// Median of the per-round ratios `a / b`.
    pub ratio: f64,
    /// Rounds taken.
    pub rounds: usize,
}

/// Runs `rounds` rounds of `a()` and `b()`, swapping their order every round, where each
/// returns one figure (e.g. nanoseconds per operation of a batch): each round's two figures.
pub fn interleaved_rounds(
    rounds: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> Vec<(f64, f64)> {
    (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let x = a();
                (x, b())
            } else {
                let y = b();
                (a(), y)
            }
        })
        .collect()
}

/// Compares `a` with `b` over [`interleaved_rounds`]: the medians of each side's figures and
/// of the per-round ratios `a / b`.
pub fn interleave(rounds: usize, a: impl FnMut() -> f64, b: impl FnMut() -> f64) -> Comparison {
    let pairs = interleaved_rounds(rounds, a, b);
    let mut xs: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let mut ys: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let mut ratios: Vec<f64> = pairs.iter().map(|(x, y)| x / y).collect();
    Comparison {
        a: median(&mut xs),
        b: median(&mut ys),
        ratio: median(&mut ratios),
        rounds,
    }
}

/// Least-squares slope of `ys` over `xs`: the marginal cost per unit of `x`.
pub fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let mx = mean(xs);
    let my = mean(ys);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    num / den
}

/// Resident memory of the calling process from `/proc/self/status`: (VmRSS, RssAnon) in bytes.
pub fn rss_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("RssAnon:"))
}
