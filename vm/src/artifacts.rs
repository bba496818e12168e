//! Builds the programs the guest runs, with the same cargo and profile as everything else, and
//! finds them from cargo's JSON messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// The kernel tests (`tests/tests/*.rs`) that also run in the VM, so that every change is tested
/// on the host's kernel and on the VM's.
pub const KERNEL_TESTS: [&str; 10] = [
    "per_thread",
    "typed",
    "typed_other_layout",
    "fork",
    "exec",
    "late_connect",
    "dynamic_keys",
    "restart",
    "generations",
    "guard",
];

/// The programs the guest runs.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// `scx_tld`.
    pub scheduler: PathBuf,
    /// `tld-vm-guest`, which runs the tests.
    pub guest: PathBuf,
    /// `tld-vm-other-layout`, a program with more hints than the scheduler was built for.
    pub other_layout: PathBuf,
    /// `tokio_server`, the example tokio server that marks its latency-critical requests with
    /// the scheduler's hints.
    pub tokio_server: PathBuf,
    /// `tld-bench-vm`, the benchmarks that only run in the VM.
    pub bench_vm: PathBuf,
    /// The kernel tests, by name.
    pub kernel_tests: Vec<(String, PathBuf)>,
    /// `tests/c/kernel_library_sched_app.c`, an application that sets the scheduler's hints
    /// through the kernel's own 7.x C library, built against the fetched selftests; or why it
    /// could not be built.
    pub kernel_c_app: std::result::Result<PathBuf, String>,
}

/// Builds everything; `with_tests` adds the kernel tests.
pub fn build(workspace: &Path, with_tests: bool) -> Result<Artifacts> {
    let bins = cargo_executables(
        workspace,
        &["build", "-p", "scx_tld", "-p", "tld-vm", "--bins"],
    )?;
    let find = |name: &str| {
        bins.iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| Error::Failed(format!("cargo built no {name}")))
    };
    // A cargo invocation of its own: `--bins` above would build every example program.
    let examples = cargo_executables(
        workspace,
        &["build", "-p", "tld-examples", "--bin", "tokio_server"],
    )?;
    let tokio_server = examples
        .into_iter()
        .find(|(n, _)| n == "tokio_server")
        .map(|(_, p)| p)
        .ok_or_else(|| Error::Failed("cargo built no tokio_server".into()))?;
    let bench_vm = cargo_executables(
        workspace,
        &["build", "-p", "tld-bench", "--bin", "tld-bench-vm"],
    )?
    .into_iter()
    .find(|(n, _)| n == "tld-bench-vm")
    .map(|(_, p)| p)
    .ok_or_else(|| Error::Failed("cargo built no tld-bench-vm".into()))?;
    let mut artifacts = Artifacts {
        scheduler: find("scx_tld")?,
        guest: find("tld-vm-guest")?,
        other_layout: find("tld-vm-other-layout")?,
        tokio_server,
        bench_vm,
        kernel_tests: Vec::new(),
        kernel_c_app: kernel_c_app(workspace).map_err(|e| e.to_string()),
    };
    if with_tests {
        let mut args = vec!["test", "-p", "tld-tests", "--no-run"];
        for t in KERNEL_TESTS {
            args.extend(["--test", t]);
        }
        let tests = cargo_executables(workspace, &args)?;
        for t in KERNEL_TESTS {
            let path = tests
                .iter()
                .find(|(n, _)| n == t)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| Error::Failed(format!("cargo built no test {t}")))?;
            artifacts.kernel_tests.push((t.to_string(), path));
        }
    }
    Ok(artifacts)
}

/// Builds the C application on the kernel's library (fetched, or found in the cache).
fn kernel_c_app(workspace: &Path) -> Result<PathBuf> {
    let tests = tld_upstream::selftests(&crate::cache_dir())?;
    let dir = tld_upstream::build::scratch("vm-c")?;
    let source = workspace.join("tests/c/kernel_library_sched_app.c");
    Ok(tld_upstream::build::c_program(
        &tests,
        &source,
        &dir,
        "tld-kernel-c-app",
        &[],
    )?)
}

/// Runs a cargo command and returns the (target name, executable) pairs it reports.
fn cargo_executables(workspace: &Path, args: &[&str]) -> Result<Vec<(String, PathBuf)>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Failed(format!("running cargo: {e}")))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "cargo {} failed ({})",
            args.join(" "),
            out.status
        )));
    }
    Ok(parse_executables(&String::from_utf8_lossy(&out.stdout)))
}

/// The executables in cargo's JSON messages, by target name.
pub fn parse_executables(json_lines: &str) -> Vec<(String, PathBuf)> {
    json_lines
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| {
            let exe = m["executable"].as_str()?;
            let name = m["target"]["name"].as_str()?;
            Some((name.to_string(), PathBuf::from(exe)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_cargo_messages() {
        let lines = r#"{"reason":"compiler-artifact","target":{"name":"fork","kind":["test"]},"executable":"/t/fork-1"}
{"reason":"compiler-artifact","target":{"name":"libc","kind":["lib"]},"executable":null}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            super::parse_executables(lines),
            vec![("fork".to_string(), std::path::PathBuf::from("/t/fork-1"))]
        );
    }
}
