//! `tld` without privilege: a clear error that names what is missing, and exit status 77.
//!
//! The binary runs as `nobody` through `setpriv`: with no capabilities at all, and with only
//! CAP_BPF and CAP_PERFMON (ambient), which is enough for a pin the user may read. The binary is
//! copied to a private directory first, so that `nobody` can run it wherever the checkout is.
//! These tests need root (to drop to `nobody`) and `setpriv` (util-linux); without either they
//! are skipped, or fail under `TLD_REQUIRE_BPF=1`.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tld_cli_test_support::{bpf::*, roles::*, run::*};

/// Why this machine cannot run these tests, if it cannot.
fn unsupported() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("it must run as root, to drop to nobody".into());
    }
    let setpriv = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("setpriv").is_file()))
        .unwrap_or(false);
    if !setpriv {
        return Some("setpriv (util-linux) is not installed".into());
    }
    None
}

/// A copy of `tld` that `nobody` can run, in a directory of its own.
fn public_tld(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tld-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("tld");
    std::fs::copy(tld_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Runs `bin args` as nobody, with `caps` (setpriv's names, e.g. "bpf,perfmon") as its only
/// capabilities.
fn as_nobody(bin: &Path, caps: &[&str], args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    if caps.is_empty() {
        cmd.arg("--inh-caps=-all");
    } else {
        let list: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
        cmd.arg(format!("--inh-caps={}", list.join(",")))
            .arg(format!("--ambient-caps={}", list.join(",")));
    }
    cmd.arg(bin).args(args).env_remove("TLD_MAP_PATH");
    run_bounded(cmd)
}

/// Checks a refusal: status 77, nothing on stdout, and `needle` in the message.
fn refused(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(77), "{}", stderr(out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(out);
    assert!(err.starts_with("tld: permission denied: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

const NO_CAPS: &str = "without_capabilities_tld_names_the_ones_it_needs";

#[test]
fn without_capabilities_tld_names_the_ones_it_needs() {
    if role().is_some() {
        return;
    }
    if let Some(why) = unsupported() {
        return skip(NO_CAPS, &why);
    }
    let Some(fixture) = Fixture::load(NO_CAPS) else {
        return;
    };
    std::fs::set_permissions(fixture.pin(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let pin = fixture.pin().to_str().unwrap();
    let bin = public_tld(NO_CAPS);
    let lacks = "needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN; root has all three); this \
                 process lacks CAP_BPF and CAP_PERFMON";
    for args in [
        &["ps", "--pin", pin][..],
        &["ps"],
        &["show", "--pin", pin, "1"],
        &["show", "--map-id", "1", "1", "--json"],
        &["watch", "--pin", pin, "1"],
    ] {
        refused(&as_nobody(&bin, &[], args), lacks);
    }
    refused(
        &as_nobody(&bin, &[], &["maps"]),
        "listing BPF maps needs CAP_SYS_ADMIN (root has it); this process lacks it",
    );
}

const SOME_CAPS: &str = "cap_bpf_and_cap_perfmon_are_enough_for_a_readable_pin";

#[test]
fn cap_bpf_and_cap_perfmon_are_enough_for_a_readable_pin() {
    if let Some(role) = role() {
        return play(&role);
    }
    if let Some(why) = unsupported() {
        return skip(SOME_CAPS, &why);
    }
    let Some(fixture) = Fixture::load(SOME_CAPS) else {
        return;
    };
    let pin = fixture.pin().to_str().unwrap().to_string();
    let app = RoleChild::spawn(SOME_CAPS, "app", fixture.pin());
    let bin = public_tld(SOME_CAPS);
    let caps = ["bpf", "perfmon"];
    let pid = app.pid.to_string();

    // A pin only root may read: the message says so, with its owner and mode.
    std::fs::set_permissions(fixture.pin(), std::fs::Permissions::from_mode(0o600)).unwrap();
    refused(
        &as_nobody(&bin, &caps, &["show", "--pin", &pin, &pid]),
        &format!("opening the map pinned at {pin} needs read permission on the pin (owner uid 0"),
    );

    // A readable pin: nobody with the two capabilities sees what root sees. It cannot read the
    // map's BTF (that needs CAP_SYS_ADMIN) and uses the standard page sizes.
    std::fs::set_permissions(fixture.pin(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = as_nobody(&bin, &caps, &["show", "--pin", &pin, &pid, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let as_root = tld_ok(&["show", "--pin", &pin, &pid, "--json"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), as_root);

    // Maps by id still need CAP_SYS_ADMIN.
    let id = fixture.map_id().to_string();
    refused(
        &as_nobody(&bin, &caps, &["ps", "--map-id", &id]),
        "opening a map by id needs CAP_SYS_ADMIN",
    );
    app.finish();
}

/// The support crate finds the binary that cargo built for these tests.
#[test]
fn the_support_crate_runs_the_tld_under_test() {
    assert_eq!(tld_bin(), PathBuf::from(env!("CARGO_BIN_EXE_tld")));
}
