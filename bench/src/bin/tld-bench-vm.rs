//! `tld-bench-vm`: the benchmarks that only run in the VM (the host refuses the guard's
//! `fexit` programs). It prints its figures on stdout, one `name value` per line; the VM
//! suite's guest passes them to the VM runner, which writes them to `p4g.txt` in its cache
//! for `tld-bench-report`.
//!
//! ```text
//! tld-bench-vm [--quick]
//! ```
//!
//! Exit status: 0 with the figures; 1 when a measurement fails; 2 when the guard cannot run
//! here (the message says why).

use std::process::ExitCode;

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    if let Err(e) = tld_guard::probe() {
        eprintln!("tld-bench-vm: the guard cannot run here: {e}");
        return ExitCode::from(2);
    }
    match tld_bench::guard_cost::measure(quick) {
        Ok(cost) => {
            for (name, value) in cost.figures() {
                println!("{name} {value}");
            }
            eprintln!(
                "tld-bench-vm: P4 with the guard: {:.3}× mean, {:.3}× p50 ({} threads per map)",
                cost.mean_ratio(),
                cost.p50_ratio(),
                cost.samples
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tld-bench-vm: {e}");
            ExitCode::FAILURE
        }
    }
}
