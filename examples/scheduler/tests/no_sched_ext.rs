//! scx_tld on a kernel without sched_ext (such as this project's build machines): it says so,
//! names what it needs, and exits non-zero. On a kernel with sched_ext the VM suite
//! (`make vm-test`) runs it for real.

use std::path::Path;
use std::process::Command;

#[test]
fn without_sched_ext_it_says_so_and_exits_non_zero() {
    if Path::new("/sys/kernel/sched_ext").exists() {
        eprintln!(
            "SKIPPED: this kernel has sched_ext, so scx_tld would really attach; `make vm-test` \
             runs it in a VM"
        );
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_scx_tld"))
        .output()
        .expect("run scx_tld");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "scx_tld succeeded: {stderr}");
    assert!(
        stderr.contains("has no sched_ext") && stderr.contains("CONFIG_SCHED_CLASS_EXT=y"),
        "unclear message: {stderr}"
    );
}

#[test]
fn a_bad_option_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_scx_tld"))
        .args(["--slice-us", "5"])
        .output()
        .expect("run scx_tld");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--slice-us"), "{stderr}");
}

#[test]
fn a_bad_pin_mode_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_scx_tld"))
        .args(["--data-map-mode", "0999"])
        .output()
        .expect("run scx_tld");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("octal"), "{stderr}");
}
