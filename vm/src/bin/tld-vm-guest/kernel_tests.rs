//! The kernel tests of `tests/tests/` that also run in the VM: each test binary runs with
//! `TLD_REQUIRE_BPF=1`, and its libtest summary becomes one result.
//!
//! `dynamic_keys` races threads for new keys in 100 fresh processes by default, each of which
//! loads its BPF object: about a second each under emulation. The VM runs 10 such rounds
//! (`TLD_RACE_ROUNDS`); the host's `cargo test` runs all 100.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tld_vm::guest::{bounded, report};

/// Rounds of `dynamic_keys`' race in the VM.
const RACE_ROUNDS: &str = "10";

/// Runs every test binary in `dir`.
pub fn run_all(dir: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return report("kernel-tests", false, &format!("no test directory {dir}"));
    };
    let mut tests: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    tests.sort();
    for test in tests {
        let name = test
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let log = format!("/tmp/{name}.log");
        let start = Instant::now();
        let child = std::fs::File::create(&log).and_then(|f| {
            let f2 = f.try_clone()?;
            // --nocapture: a passing test's report lines reach the log too.
            Command::new(&test)
                .arg("--nocapture")
                .env("TLD_REQUIRE_BPF", "1")
                .env("TLD_RACE_ROUNDS", RACE_ROUNDS)
                .stdin(Stdio::null())
                .stdout(f)
                .stderr(f2)
                .spawn()
        });
        // The guard's attacks on 1,000 threads take minutes under emulation.
        let limit = bounded(Duration::from_secs(if name == "guard" { 480 } else { 180 }));
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                report(&format!("kernel-tests/{name}"), false, &e.to_string());
                continue;
            }
        };
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break Some(s);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let summary: Vec<&str> = output
            .lines()
            .filter(|l| l.starts_with("test result:"))
            .collect();
        let passed = status.is_some_and(|s| s.success()) && !summary.is_empty();
        for line in output.lines() {
            if let Some(at) = line.find(tld_upstream::REPORT_PREFIX) {
                println!(
                    "{name}: {}",
                    &line[at + tld_upstream::REPORT_PREFIX.len()..]
                );
            }
        }
        if !passed {
            println!("--- {name} output (tail) ---");
            println!("{}", tld_vm::console::tail(&output, 40));
        }
        report(
            &format!("kernel-tests/{name}"),
            passed,
            &format!(
                "{}{} in {:.1} s{}",
                if name == "dynamic_keys" {
                    format!("(TLD_RACE_ROUNDS={RACE_ROUNDS}) ")
                } else {
                    String::new()
                },
                summary
                    .iter()
                    .map(|s| s.trim_start_matches("test result: "))
                    .collect::<Vec<_>>()
                    .join("; "),
                start.elapsed().as_secs_f64(),
                match status {
                    None => format!(" (killed after {} s)", limit.as_secs()),
                    Some(s) if !s.success() => format!(" ({s})"),
                    _ => String::new(),
                }
            ),
        );
    }
}
