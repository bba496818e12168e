//! One runtime for a C host and two Rust plugins: the host sets hints of its own through
//! libtld and loads two Rust cdylibs with `dlopen(RTLD_LOCAL)`, each with hints of its own and
//! its own copy of the runtime. In 32 threads, BPF reads every key of every part from the
//! thread's single element, and every part's `status()` reports the same runtime. After
//! `dlclose` of a plugin the others keep working and its keys stay; a second copy of a plugin
//! is refused as a duplicate; the plugin loaded again takes its keys back
//! (`tests/c/parts_host.c`).

use std::os::fd::AsFd;
use std::process::Command;

use tld_tests::c::{self, Compile};

#[test]
fn a_c_host_and_two_rust_plugins_share_one_runtime() {
    let test = "a_c_host_and_two_rust_plugins_share_one_runtime";
    let Some(skel) = c::load_c(test) else {
        return;
    };
    let artifacts = c::artifacts();
    let host = Compile::c("parts_host", &["parts_host.c"])
        .link_libtld()
        .build();
    let copy = c::copy(&artifacts.plugin_a, "libtld_test_plugin_a_copy.so");
    let map = skel.maps.tld_data_map.as_fd();
    let prog = skel.progs.tld_c_read.as_fd();
    let mut cmd = Command::new(&host);
    cmd.arg(&artifacts.plugin_a)
        .arg(&artifacts.plugin_b)
        .arg(&copy)
        .env("TLD_TEST_MAP_FD", c::fd_env(map))
        .env("TLD_TEST_PROG_FD", c::fd_env(prog))
        // Only the fd given: no pin to follow.
        .env("TLD_MAP_PATH", "");
    c::inherit(&mut cmd, &[map, prog]);
    let out = c::run_ok(&mut cmd, "parts_host");
    assert!(out.contains("one runtime") && out.contains("3 parts, 33 threads registered"));
    assert!(out.contains("0 failures"));
}
