//! Running the `tld` binary under test, with a time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `tld` binary under test. Cargo builds it before tld-cli's integration tests, in the
/// directory above the `deps` directory that holds the test binaries (where
/// `CARGO_BIN_EXE_tld` points, which only the test crates themselves can read).
pub fn tld_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let bin = dir.join("tld");
    assert!(
        bin.is_file(),
        "no tld binary at {}: run tld-cli's tests with cargo",
        bin.display()
    );
    bin
}

/// How long one run of `tld` may take before the test calls it hung.
pub const TLD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion, killing it and failing the test if it takes longer than
/// [`TLD_TIMEOUT`].
pub fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tld");
    // Read the pipes on threads so that a full pipe cannot stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TLD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tld did not finish within {TLD_TIMEOUT:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// Runs `tld` with `args`, with `TLD_MAP_PATH` unset.
pub fn tld(args: &[&str]) -> Output {
    let mut cmd = Command::new(tld_bin());
    cmd.args(args).env_remove("TLD_MAP_PATH");
    run_bounded(cmd)
}

/// Runs `tld` with `args` and expects success; returns its standard output.
pub fn tld_ok(args: &[&str]) -> String {
    let out = tld(args);
    assert!(
        out.status.success(),
        "tld {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Standard error of a run, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
