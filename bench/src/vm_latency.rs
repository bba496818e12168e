//! P7: what the hints change under a real scheduler, measured in the VM.
//!
//! The host has no sched_ext, so the report does not measure this itself: `make demo-sched`
//! (and `make vm-test`) run `scx_tld` in a Linux 7.x VM and write the figures the guest
//! measured to `p7.txt` in the VM runner's cache (`$TLD_VM_CACHE`, else `target/tld-vm/`),
//! one `name value` per line. The report reads that file when it exists and adds its rows,
//! saying when and on what the figures were taken.
//!
//! The goals are strict, a benchmark's figures: the VM suite itself checks the same effects
//! with a margin that survives a busy host, and fails only when the effect is gone.

use std::path::{Path, PathBuf};

use crate::json::Entry;
use crate::vm_figures::{self, verdict, VmFigures};

/// P7's goals: the unhinted and control medians at least this many times the hinted one...
pub const RATIO_GOAL: f64 = 20.0;
/// ... and the hinted median under load within this factor of the idle one.
pub const IDLE_GOAL: f64 = 2.0;
/// P7 (tokio): the unhinted requests' median at least this many times the hinted ones'...
pub const TOKIO_GOAL: f64 = 2.0;
/// ... while in the control (hints ignored) the two kinds stay within this factor.
pub const TOKIO_CONTROL_GOAL: f64 = 1.25;

/// The latency figures of one VM run.
#[derive(Clone, Debug, Default)]
pub struct VmLatency(VmFigures);

/// Where the VM runner writes the figures.
pub fn default_path() -> PathBuf {
    vm_figures::path("p7")
}

impl VmLatency {
    /// Reads the figures at `path`; `None` if no VM run wrote them.
    pub fn load(path: &Path) -> Option<VmLatency> {
        VmFigures::load(path).map(VmLatency)
    }

    /// Parses `name value` lines.
    pub fn parse(text: &str) -> VmLatency {
        VmLatency(VmFigures::parse(text))
    }

    fn num(&self, name: &str) -> f64 {
        self.0.num(name)
    }

    /// Whether the latency goals are met.
    pub fn met(&self) -> bool {
        self.num("p7_vs_unhinted") >= RATIO_GOAL
            && self.num("p7_vs_control") >= RATIO_GOAL
            && self.num("p7_vs_idle") <= IDLE_GOAL
    }

    fn has_tokio(&self) -> bool {
        self.0.has("p7_tokio_ratio")
    }

    /// Whether the tokio goals are met.
    pub fn tokio_met(&self) -> bool {
        let control = self.num("p7_tokio_control_ratio");
        self.num("p7_tokio_ratio") >= TOKIO_GOAL
            && (1.0 / TOKIO_CONTROL_GOAL..=TOKIO_CONTROL_GOAL).contains(&control)
    }

    /// The report's table rows (Markdown, one per line).
    pub fn rows(&self) -> String {
        let us = |v: f64| {
            if v >= 1000.0 {
                format!("{:.1} ms", v / 1000.0)
            } else {
                format!("{v:.0} µs")
            }
        };
        let mut out = format!(
            "| P7 | scx_tld, {}: p50 wake-up delay of a thread sleeping 1 ms beside {:.0} CPU \
             hogs, with `LatencyHint::interactive(500)` ({:.0} samples per case, {:.0} rounds, \
             {:.0} on a disturbed host) | {} | the same thread without the hint: {}; with the \
             hint under `scx_tld --no-hints`: {}; alone on the idle VM: {} | {:.0}× / {:.0}× \
             faster; {:.2}× idle | ≥ {RATIO_GOAL}× / ≥ {RATIO_GOAL}×; ≤ {IDLE_GOAL}× idle | {} |\n",
            self.0.context(),
            self.num("p7_hogs"),
            self.num("p7_samples_per_case"),
            self.num("p7_rounds"),
            self.num("p7_disturbed_rounds"),
            us(self.num("p7_hinted_p50_us")),
            us(self.num("p7_unhinted_p50_us")),
            us(self.num("p7_control_p50_us")),
            us(self.num("p7_idle_p50_us")),
            self.num("p7_vs_unhinted"),
            self.num("p7_vs_control"),
            self.num("p7_vs_idle"),
            verdict(self.met())
        );
        if self.has_tokio() {
            out.push_str(&format!(
                "| P7, tokio | the tokio server's requests under CPU hogs, {}: p50 of the \
                 requests polled `with_hints` (interactive) | {} | its unhinted (batch) \
                 requests: {}; under `scx_tld --no-hints`: interactive {}, batch {} | batch \
                 {:.2}× interactive; control {:.2}× | ≥ {TOKIO_GOAL}×; control within \
                 {TOKIO_CONTROL_GOAL}× | {} |\n",
                self.0.context(),
                us(self.num("p7_tokio_interactive_p50_us")),
                us(self.num("p7_tokio_batch_p50_us")),
                us(self.num("p7_tokio_control_interactive_p50_us")),
                us(self.num("p7_tokio_control_batch_p50_us")),
                self.num("p7_tokio_ratio"),
                self.num("p7_tokio_control_ratio"),
                verdict(self.tokio_met())
            ));
        }
        out
    }

    /// The report's JSON members, in its per-id format.
    pub fn json_members(&self) -> Vec<(&'static str, Entry)> {
        let mut out = vec![(
            "P7",
            Entry::new(
                self.num("p7_hinted_p50_us"),
                self.num("p7_unhinted_p50_us"),
                self.num("p7_vs_unhinted"),
                "us, p50 wake-up delay of a hinted thread under CPU hogs in the VM (floor: the \
                 same thread without the hint)",
                format!(">= {RATIO_GOAL}x vs no hint and vs the control, <= {IDLE_GOAL}x idle"),
                self.met(),
            )
            .with("control", self.num("p7_control_p50_us"))
            .with("control_ratio", self.num("p7_vs_control"))
            .with("idle", self.num("p7_idle_p50_us"))
            .with("vs_idle", self.num("p7_vs_idle"))
            .with("kernel", self.0.text("kernel").to_string())
            .with("vcpus", self.num("vcpus"))
            .with("host_load", self.num("host_load"))
            .with("when_unix", self.num("when_unix")),
        )];
        if self.has_tokio() {
            out.push((
                "P7, tokio",
                Entry::new(
                    self.num("p7_tokio_interactive_p50_us"),
                    self.num("p7_tokio_batch_p50_us"),
                    self.num("p7_tokio_ratio"),
                    "us, p50 of the tokio server's hinted requests (floor: its unhinted ones)",
                    format!(">= {TOKIO_GOAL}x, control within {TOKIO_CONTROL_GOAL}x"),
                    self.tokio_met(),
                )
                .with("control_ratio", self.num("p7_tokio_control_ratio")),
            ));
        }
        out
    }
}
