//! `tld-bench-report`: runs every measurement of the benchmark suite (P1–P6, S1–S2, C1–C2, L1–L2) in one
//! process run, prints the ratio table, and writes it as Markdown (the README's Performance
//! section) and as JSON. The report itself is `tld_bench::report`.
//!
//! ```text
//! tld-bench-report [--out PATH] [--quick] [--threads N] [--dump-jit DIR] [--p4-only]
//! ```
//! - `--out PATH`: where to write the Markdown (default: `target/tld-bench.md` of the workspace);
//! - `--json PATH`: where to write the figures as JSON, one object per id (default:
//!   `target/tld-bench.json` of the workspace);
//! - `--quick`: fewer rounds, for a smoke run;
//! - `--threads N`: live threads for P5 (default 10000);
//! - `--dump-jit DIR`: also write each BPF program's JIT-compiled code to `DIR/NAME.bin`;
//! - `--p4-only`: run P4 alone and print its figures, writing nothing.
//!
//! P5 runs in two child processes (this binary again, with `--p5-child tld|baseline`), so that
//! each starts from a clean address space and its memory figures are its own.

use std::path::PathBuf;
use std::process::ExitCode;

use tld_bench::report::{self, Options};

/// What the command line asks for.
enum Mode {
    /// The whole report.
    Report(Options),
    /// P4 alone (`--p4-only`), quick or not.
    P4Only(bool),
    /// A P5 child (`--p5-child MODE`), with this many threads.
    P5Child(String, usize),
}

fn parse() -> Result<Mode, String> {
    let mut o = Options {
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tld-bench.md"),
        json: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tld-bench.json"),
        quick: false,
        threads: 10_000,
        dump_jit: None,
    };
    let mut p5_child = None;
    let mut p4_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--out" => o.out = PathBuf::from(value()?),
            "--json" => o.json = PathBuf::from(value()?),
            "--quick" => o.quick = true,
            "--threads" => o.threads = value()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--dump-jit" => o.dump_jit = Some(PathBuf::from(value()?)),
            "--p5-child" => p5_child = Some(value()?),
            "--p4-only" => p4_only = true,
            "-h" | "--help" => {
                println!(
                    "usage: tld-bench-report [--out PATH] [--json PATH] [--quick] \
                     [--threads N] [--dump-jit DIR] [--p4-only]"
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a:?} (try --help)")),
        }
    }
    Ok(match p5_child {
        Some(mode) => Mode::P5Child(mode, o.threads),
        None if p4_only => Mode::P4Only(o.quick),
        None => Mode::Report(o),
    })
}

fn main() -> ExitCode {
    let mode = match parse() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("tld-bench-report: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match mode {
        Mode::P5Child(mode, threads) => report::p5_child(&mode, threads),
        Mode::P4Only(quick) => report::p4_only(quick),
        Mode::Report(opts) => report::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tld-bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}
