//! Python through libtld, with ctypes and no compiled extension: threads set a hint and BPF
//! reads it from each thread's element (`tests/python/bpf_reads_a_hint.py`), alone and next to
//! two Rust extensions loaded as Python loads PyO3 modules (one runtime for the three); and the
//! example of `examples/python/` runs.

use std::os::fd::AsFd;
use std::process::Command;

use tld_tests::c;

/// `python3`, or `None` (and SKIPPED, unless `TLD_REQUIRE_BPF=1`) without one.
fn python(test: &str) -> Option<Command> {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ if !tld_tests::bpf_required() => {
            eprintln!("SKIPPED {test}: no python3");
            return None;
        }
        _ => panic!("{test}: TLD_REQUIRE_BPF=1 but there is no python3"),
    }
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", c::workspace().join("examples/python"))
        .env("TLD_LIBRARY", c::artifacts().lib_dir.join("libtld.so.0"))
        .env("TLD_MAP_PATH", "");
    Some(cmd)
}

#[test]
fn python_threads_set_a_hint_that_bpf_reads() {
    let test = "python_threads_set_a_hint_that_bpf_reads";
    let Some(skel) = c::load_c(test) else {
        return;
    };
    let Some(mut cmd) = python(test) else {
        return;
    };
    let (map, prog) = (
        skel.maps.tld_data_map.as_fd(),
        skel.progs.tld_c_read.as_fd(),
    );
    cmd.arg(c::workspace().join("tests/python/bpf_reads_a_hint.py"))
        .env("TLD_TEST_MAP_FD", c::fd_env(map))
        .env("TLD_TEST_PROG_FD", c::fd_env(prog));
    c::inherit(&mut cmd, &[map, prog]);
    let out = c::run_ok(&mut cmd, "bpf_reads_a_hint.py");
    assert!(out.contains("0 failures") && out.contains("connected to map"));
}

#[test]
fn python_and_two_rust_extensions_share_one_runtime() {
    let test = "python_and_two_rust_extensions_share_one_runtime";
    let Some(skel) = c::load_c(test) else {
        return;
    };
    let Some(mut cmd) = python(test) else {
        return;
    };
    let a = c::artifacts();
    let (map, prog) = (
        skel.maps.tld_data_map.as_fd(),
        skel.progs.tld_c_read.as_fd(),
    );
    cmd.arg(c::workspace().join("tests/python/bpf_reads_a_hint.py"))
        .env("TLD_TEST_MAP_FD", c::fd_env(map))
        .env("TLD_TEST_PROG_FD", c::fd_env(prog))
        .env(
            "TLD_TEST_PLUGINS",
            format!("{}:{}", a.plugin_a.display(), a.plugin_b.display()),
        );
    c::inherit(&mut cmd, &[map, prog]);
    let out = c::run_ok(&mut cmd, "bpf_reads_a_hint.py with two Rust extensions");
    assert!(out.contains("0 failures") && out.contains("3 parts (serving)"));
}

#[test]
fn the_python_example_runs() {
    let Some(mut cmd) = python("the_python_example_runs") else {
        return;
    };
    cmd.arg(c::workspace().join("examples/python/example.py"));
    let out = c::run_ok(&mut cmd, "example.py");
    assert!(out.contains("interactive requests ran with (priority, latency budget) [(-5, 500)]"));
    assert!(out.contains("batch requests ran with (priority, latency budget) [(10, 0)]"));
    // Without a map it says why.
    assert!(out.contains("not connected: not connected to a tld_data_map"));
}
