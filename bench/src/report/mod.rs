//! The report of `tld-bench-report`: every measurement of the suite (P1–P6, G1, S1–S2, C1–C2,
//! L1–L2) run in one process, the ratio table as Markdown (`docs/performance.md`)
//! and the figures as JSON (`tld-bench.json`, one object per id).
//!
//! Its modules:
//! - `measuring`: each row's measurement;
//! - `goals`: what each row asks for, and whether a run met it;
//! - `markdown`: the table and the notes;
//! - `json`: the figures, serialized with serde in the shape of [`crate::json`].

use std::path::PathBuf;

use tld_bench_hints::H00;

use crate::bpf::{Bench, Bench618, BenchGuard, Prog};
use crate::consistent::ConsistentCost;
use crate::libtld::LibtldCost;
use crate::machine::Machine;
use crate::scoped::{self, Scoped};

mod goals;
mod json;
mod markdown;
mod measuring;

use measuring::*;

pub use measuring::p5_child;

/// What a report run does, from `tld-bench-report`'s command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to write the Markdown.
    pub out: PathBuf,
    /// Where to write the JSON.
    pub json: PathBuf,
    /// Fewer rounds, for a smoke run.
    pub quick: bool,
    /// Live threads for P5.
    pub threads: usize,
    /// Where to write each BPF program's JIT-compiled code, if anywhere.
    pub dump_jit: Option<PathBuf>,
}

/// Runs P4 alone and prints its figures, writing no report: for working on registration.
pub fn p4_only(quick: bool) -> Result<(), String> {
    let bench = setup()?;
    let p4 = p4(bench, quick);
    println!(
        "P4: {} threads; ours {}; bare {}; {}: {}",
        p4.samples,
        p4.ours.text(),
        p4.bare.text(),
        p4.result_text(),
        verdict(p4.met()),
    );
    Ok(())
}

/// Loads the BPF object, connects the runtime, and registers the calling thread.
pub(crate) fn setup() -> Result<&'static Bench, String> {
    let bench = Bench::load()?;
    bench
        .connect()
        .map_err(|e| format!("tld_runtime::connect: {e}"))?;
    H00.set(0);
    let status = tld_runtime::status();
    if !status.is_connected() || status.registered_threads == 0 {
        return Err(format!(
            "the runtime did not register this thread: {status}"
        ));
    }
    Ok(bench)
}

// ---------------------------------------------------------------------------------------------
// The report.

/// A goal's verdict, as the table shows it.
pub(crate) fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// Runs every measurement, prints the table, and writes the Markdown and the JSON.
pub fn run(opts: &Options) -> Result<(), String> {
    let machine = Machine::detect();
    eprintln!("tld-bench-report on {machine}");
    let bench = setup()?;

    eprintln!("P1: HINT.set vs a thread_local! Cell store ...");
    let p1 = p1(opts.quick);
    eprintln!("P2: HINT.set vs bpf_map_update_elem ...");
    let p2 = p2(bench, opts.quick)?;
    eprintln!("S1, S2: scoped hints: HINT.scoped vs HINT.set, a with_hint poll vs a bare poll ...");
    let scoped = scoped::measure(opts.quick);
    eprintln!("C1, C2: consistent hints: set vs a plain set, a BPF consistent read vs a copy ...");
    let consistent = ConsistentCost::measure(bench, opts.quick)?;
    eprintln!("L1, L2: libtld from C vs a C __thread store; a joined plugin vs a serving one ...");
    let libtld = LibtldCost::measure(opts.quick);
    eprintln!("P3: BPF lookups vs floor programs (test_run, repeat) ...");
    let p3_7 = p3(bench, opts.quick)?;
    eprintln!("P6: verified instructions and load times ...");
    let p6_7 = p6(&p3_7, opts.quick, true)?;
    eprintln!("P3, P6 with the 6.18 generation's value (TLD_GEN_6_18) ...");
    let bench_618 = Bench618::load()?;
    bench_618
        .connect_also()
        .map_err(|e| format!("tld_runtime::connect_also: {e}"))?;
    let p3_618 = p3(bench_618, opts.quick)?;
    let p6_618 = p6(&p3_618, opts.quick, false)?;
    eprintln!("G1: bpf_tld_init with the guard's check vs without ...");
    let g1 = g1(bench, BenchGuard::load_and_stamp()?, opts.quick)?;
    eprintln!("P4: registering fresh threads ...");
    let p4 = p4(bench, opts.quick);
    eprintln!(
        "P5: {} live threads (two child processes) ...",
        opts.threads
    );
    let p5 = run_p5_child("tld", opts.threads)?;
    let p5_base = run_p5_child("baseline", opts.threads)?;

    if let Some(dir) = &opts.dump_jit {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for p in Prog::ALL {
            let path = dir.join(format!("{}.bin", p.name()));
            std::fs::write(&path, bench.jited_code(p)?)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        eprintln!(
            "JIT code written to {}; disassemble with: objdump -D -b binary -m i386:x86-64 \
             FILE.bin",
            dir.display()
        );
    }

    let results = Results {
        machine: &machine,
        quick: opts.quick,
        p1: &p1,
        p2: &p2,
        p3: &p3_7,
        p4: &p4,
        p6: &p6_7,
        p3_618: &p3_618,
        p6_618: &p6_618,
        g1: &g1,
        p5: &p5,
        base: &p5_base,
        scoped: &scoped,
        consistent: &consistent,
        vm: crate::vm_latency::VmLatency::load(&crate::vm_latency::default_path()),
        vm_guard: crate::vm_guard::VmGuardCost::load(),
        libtld: &libtld,
    };
    let md = results.markdown();
    println!("{md}");
    if let Some(parent) = opts.out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&opts.out, &md).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    eprintln!("written to {}", opts.out.display());
    if let Some(parent) = opts.json.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&opts.json, results.json())
        .map_err(|e| format!("{}: {e}", opts.json.display()))?;
    eprintln!("written to {}", opts.json.display());
    Ok(())
}

/// Everything one run measured.
pub(crate) struct Results<'a> {
    pub(crate) machine: &'a Machine,
    pub(crate) quick: bool,
    pub(crate) p1: &'a P1,
    pub(crate) p2: &'a P2,
    /// P3 and P6 with the 7.x generation's value (the header's default): the goals.
    pub(crate) p3: &'a P3,
    pub(crate) p4: &'a P4,
    pub(crate) p6: &'a P6,
    /// P3 and P6 with the 6.18 generation's value (`TLD_GEN_6_18`).
    pub(crate) p3_618: &'a P3,
    pub(crate) p6_618: &'a P6,
    pub(crate) g1: &'a G1,
    pub(crate) p5: &'a P5Child,
    pub(crate) base: &'a P5Child,
    pub(crate) scoped: &'a Scoped,
    pub(crate) consistent: &'a ConsistentCost,
    /// P7, from the VM runner's figures, if a VM run wrote them.
    pub(crate) vm: Option<crate::vm_latency::VmLatency>,
    /// P4 with the guard, from the VM runner's figures, if a VM run wrote them.
    pub(crate) vm_guard: Option<crate::vm_guard::VmGuardCost>,
    pub(crate) libtld: &'a LibtldCost,
}

/// P5's memory figures, per live thread.
pub(crate) struct P5Memory {
    /// Resident bytes with hints.
    pub(crate) tld: f64,
    /// Resident bytes of the same threads without hints.
    pub(crate) base: f64,
    /// The difference.
    pub(crate) extra: f64,
    /// Whether the extra is at most a page and a quarter.
    pub(crate) met: bool,
}
