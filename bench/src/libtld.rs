//! Rows L1 and L2 of the report: what hints cost through libtld, and in a part of a process
//! that joined another part's runtime.
//!
//! - **L1**: from C, `tld_get_data()` (tld.h's inline fast path: a thread-local load, a test
//!   and an add) and a store, against a store to a C `__thread` variable, both through a
//!   function the compiler may not inline (`bench/c/libtld_bench.c`), called from a Rust loop
//!   as P1 calls its sides. libtld is linked into the report binary.
//! - **L2**: `HINT.set(v)` through a non-inlined function in a Rust plugin (a cdylib) that
//!   joined the runtime another plugin serves, against the same in the plugin that serves. The
//!   two plugins differ only in their hint's key. They run in a process of their own
//!   (`tld-bench-joined`), where nothing else uses tld, so that one of them serves.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::json::Entry;
use crate::measure::{interleave, ns_per_call, Comparison};

extern "C" {
    fn tld_bench_c_set_hint(v: u64);
    fn tld_bench_c_set_tls(v: u64);
    fn tld_bench_c_hint() -> u64;
    fn tld_bench_c_tls() -> u64;
}

/// L1's goal: at most this many times a C `__thread` store.
pub const C_GOAL: f64 = 1.1;
/// L2's goal: a joined part's store costs what a serving part's does, within the noise.
pub const JOINED_GOAL: f64 = 1.05;

/// L2, as `tld-bench-joined` measured it.
#[derive(Debug, Clone, Copy)]
pub struct Joined {
    /// The serving plugin's set, median ns.
    pub serving: f64,
    /// The joined plugin's set, median ns.
    pub joined: f64,
    /// Median of the per-round ratios joined / serving.
    pub ratio: f64,
    /// The ratio of each side's least disturbed batch.
    pub best_ratio: f64,
    /// Rounds.
    pub rounds: usize,
}

/// L1 and L2.
#[derive(Debug, Clone)]
pub struct LibtldCost {
    /// L1: a = tld_get_data + store, b = `__thread` store.
    pub c: Comparison,
    /// L2, or why it was not measured.
    pub joined: Result<Joined, String>,
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// Runs `tld-bench-joined` next to this binary, with the plugins built next to it.
fn measure_joined(rounds: usize) -> Result<Joined, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let helper = dir.join("tld-bench-joined");
    let plugins = ["a", "b"].map(|x| dir.join(format!("libtld_bench_plugin_{x}.so")));
    for path in std::iter::once(&helper).chain(&plugins) {
        if !path.exists() {
            return Err(format!(
                "{} is not built (make bench builds it, and the plugins: cargo build --release -p \
                 tld-bench-plugin-a -p tld-bench-plugin-b)",
                path.display()
            ));
        }
    }
    let out = std::process::Command::new(&helper)
        .args(&plugins)
        .arg(rounds.to_string())
        .output()
        .map_err(|e| format!("running {}: {e}", helper.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "tld-bench-joined failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("L2 "))
        .ok_or_else(|| format!("tld-bench-joined printed no result: {stdout}"))?;
    let get = |key: &str| -> f64 {
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    Ok(Joined {
        serving: get("serving"),
        joined: get("joined"),
        ratio: get("ratio"),
        best_ratio: get("best_ratio"),
        rounds: get("rounds") as usize,
    })
}

impl LibtldCost {
    /// Measures L1 in this process and L2 in a child.
    pub fn measure(quick: bool) -> LibtldCost {
        const CALLS: u64 = 1_000_000;
        let rounds = if quick { 11 } else { 41 };
        // SAFETY: the C functions take a value and store it in the calling thread's own memory.
        let hint = |v| unsafe { tld_bench_c_set_hint(v) };
        // SAFETY: as above.
        let tls = |v| unsafe { tld_bench_c_set_tls(v) };
        ns_per_call(CALLS, hint);
        ns_per_call(CALLS, tls);
        let c = interleave(
            rounds,
            || ns_per_call(CALLS, hint),
            || ns_per_call(CALLS, tls),
        );
        // SAFETY: plain reads of the calling thread's values.
        let (stored, tls_stored) = unsafe { (tld_bench_c_hint(), tld_bench_c_tls()) };
        assert_eq!(stored, CALLS - 1, "the C hint store did not happen");
        assert_eq!(tls_stored, CALLS - 1);
        LibtldCost {
            c,
            joined: measure_joined(rounds),
        }
    }

    fn c_met(&self) -> bool {
        self.c.ratio <= C_GOAL
    }

    /// The report's table rows for L1 and L2.
    pub fn rows(&self) -> String {
        let mut s = format!(
            "| L1 | C: `tld_get_data(-1, key)` and a store, through a non-inlined function \
             (libtld linked in) | {:.2} ns | a store to a C `__thread` variable through a \
             non-inlined function: {:.2} ns | {:.2}× | ≤ {C_GOAL}× | {} |\n",
            self.c.a,
            self.c.b,
            self.c.ratio,
            verdict(self.c_met())
        );
        match &self.joined {
            Ok(j) => {
                let _ = writeln!(
                    s,
                    "| L2 | a Rust plugin that joined another plugin's runtime: `HINT.set(v)` \
                     through a non-inlined function | {:.2} ns | the same in the plugin that \
                     serves the process: {:.2} ns | {:.2}× (least disturbed batches: {:.2}×) | \
                     ≤ {JOINED_GOAL}× | {} |",
                    j.joined,
                    j.serving,
                    j.ratio,
                    j.best_ratio,
                    verdict(j.ratio <= JOINED_GOAL)
                );
            }
            Err(why) => {
                let _ = writeln!(
                    s,
                    "| L2 | a Rust plugin that joined another plugin's runtime | not measured: \
                     {} | | | ≤ {JOINED_GOAL}× | |",
                    why.replace('|', "/")
                );
            }
        }
        s
    }

    /// A short section for after the table.
    pub fn notes(&self) -> String {
        format!(
            "\n### libtld and joined parts\n\n\
             L1 and L2 time batches of 1,000,000 calls of each side, alternating them and their \
             order over {} rounds, and report the median of the per-round ratios. In L1 both \
             sides are C functions the compiler may not inline, called from the same Rust loop; \
             `tld_get_data()` is the inline function of `tld.h`: a load of libtld's thread-local \
             page pointer, a test of it and of the key, and the address, then the store. In L2 \
             both sides are the same code in two copies of a plugin (a Rust cdylib loaded with \
             `dlopen(RTLD_LOCAL)`), in a process of their own: the first one used serves the \
             process's runtime, the other joined it. A joined part's hints run exactly the code \
             of a serving part's (its own thread-local page pointer, the offset, the store), so \
             L2 shows the noise of the measurement.\n",
            self.c.rounds
        )
    }

    /// `tld-bench.json` members for L1 and L2.
    pub fn json_members(&self) -> Vec<(&'static str, Entry)> {
        let mut members = vec![(
            "L1",
            Entry::new(
                self.c.a,
                self.c.b,
                self.c.ratio,
                "ns per tld_get_data and store from C (floor: a C __thread store)",
                format!("<= {C_GOAL}x"),
                self.c_met(),
            ),
        )];
        if let Ok(j) = &self.joined {
            members.push((
                "L2",
                Entry::new(
                    j.joined,
                    j.serving,
                    j.ratio,
                    "ns per set in a plugin that joined (floor: the same in the plugin that \
                     serves)",
                    format!("<= {JOINED_GOAL}x"),
                    j.ratio <= JOINED_GOAL,
                )
                .with("best_ratio", j.best_ratio),
            ));
        }
        members
    }
}
