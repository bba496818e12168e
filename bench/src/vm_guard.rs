//! P4 with the guard, from the figures `tld-bench-vm` printed in the VM (`p4g.txt`, see
//! [`crate::vm_figures`]; the measurement is [`crate::guard_cost`]).

use crate::guard_cost::GOAL;
use crate::json::Entry;
use crate::vm_figures::{self, verdict, VmFigures};

/// The figures of one VM run.
#[derive(Clone, Debug, Default)]
pub struct VmGuardCost(VmFigures);

impl VmGuardCost {
    /// The figures of the last VM run, if there was one.
    pub fn load() -> Option<VmGuardCost> {
        VmFigures::load(&vm_figures::path("p4g")).map(VmGuardCost)
    }

    fn num(&self, name: &str) -> f64 {
        self.0.num(name)
    }

    /// Whether the goal is met.
    pub fn met(&self) -> bool {
        self.num("p4g_mean_ratio") <= GOAL
    }

    /// The report's table row.
    pub fn rows(&self) -> String {
        format!(
            "| P4, guard | registering a fresh thread (`thread_init()`) in a map the guard \
             guards (its `fexit` stamp, the runtime's check for it{}), {}; rounds alternate \
             between the two maps, {:.0} threads each | mean {:.2} µs, p50 {:.2} µs, p99 {:.2} \
             µs | the same in a map of the same value that the guard does not guard: mean \
             {:.2} µs, p50 {:.2} µs, p99 {:.2} µs | {:.3}× mean ({:.3}× p50) | ≤ {GOAL}× | {} \
             |\n",
            if self.num("p4g_lsm") == 1.0 {
                "; its `lsm/bpf` program ran too"
            } else {
                ""
            },
            self.0.context(),
            self.num("p4g_samples"),
            self.num("p4g_guarded_mean_us"),
            self.num("p4g_guarded_p50_us"),
            self.num("p4g_guarded_p99_us"),
            self.num("p4g_plain_mean_us"),
            self.num("p4g_plain_p50_us"),
            self.num("p4g_plain_p99_us"),
            self.num("p4g_mean_ratio"),
            self.num("p4g_p50_ratio"),
            verdict(self.met())
        )
    }

    /// The report's JSON member.
    pub fn json_members(&self) -> Vec<(&'static str, Entry)> {
        vec![(
            "P4, guard",
            Entry::new(
                self.num("p4g_guarded_mean_us"),
                self.num("p4g_plain_mean_us"),
                self.num("p4g_mean_ratio"),
                "us, mean thread_init() in a guarded map in the VM (floor: in an unguarded one)",
                format!("<= {GOAL}x"),
                self.met(),
            )
            .with("p50_ratio", self.num("p4g_p50_ratio"))
            .with("samples", self.num("p4g_samples")),
        )]
    }
}
