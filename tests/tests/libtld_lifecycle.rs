//! A C host's life with libtld and a Rust plugin, as `fork.rs`, `exec.rs` and `restart.rs`
//! check a Rust program's: a forked child (of a process whose threads keep setting hints) has
//! its own registered page; an exec'd program starts clean and registers its own; a scheduler
//! restart (a connect to a new map under running threads) moves every thread with its values.
//! The C side is `tests/c/lifecycle.c`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use libbpf_rs::MapCore;
use tld_tests::c::{self, Compile};
use tld_tests::PinnedMap;

fn program() -> &'static PathBuf {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        Compile::c("lifecycle", &["lifecycle.c"])
            .link_libtld()
            .build()
    })
}

#[test]
fn a_forked_child_of_a_busy_c_host_registers_its_own_page() {
    let Some(skel) = c::load_c("a_forked_child_of_a_busy_c_host_registers_its_own_page") else {
        return;
    };
    let (map, prog) = (
        skel.maps.tld_data_map.as_fd(),
        skel.progs.tld_c_read.as_fd(),
    );
    let mut cmd = Command::new(program());
    cmd.arg("fork")
        .arg(&c::artifacts().plugin_a)
        .env("TLD_TEST_MAP_FD", c::fd_env(map))
        .env("TLD_TEST_PROG_FD", c::fd_env(prog))
        .env("TLD_MAP_PATH", "");
    c::inherit(&mut cmd, &[map, prog]);
    c::run_ok(&mut cmd, "lifecycle fork");
}

#[test]
fn a_program_execd_from_a_registered_c_thread_starts_clean() {
    let test = "a_program_execd_from_a_registered_c_thread_starts_clean";
    let Some(skel) = c::load_c(test) else {
        return;
    };
    let Some(pin) = PinnedMap::pin(skel.maps.tld_data_map.as_fd(), "libtld_exec") else {
        return;
    };
    let mut child = Command::new(program())
        .arg("exec-before")
        .env("TLD_MAP_PATH", pin.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the C program");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_ready = || -> i32 {
        for line in lines.by_ref() {
            let line = line.expect("the program's output");
            if let Some(tid) = line.strip_prefix("ready ") {
                return tid.trim().parse().expect("a tid");
            }
        }
        panic!("the program ended early");
    };

    let tid = next_ready();
    let r = c::bpf_read_c_pid(&skel, tid);
    assert_eq!((r.init_ret, r.host_value), (0, 111), "before exec");
    writeln!(stdin, "go").unwrap();

    let tid_after = next_ready();
    let r = c::bpf_read_c_pid(&skel, tid_after);
    assert_eq!(
        (r.init_ret, r.host_value),
        (0, 222),
        "after exec BPF must see the new program's page"
    );
    writeln!(stdin, "go").unwrap();
    assert!(child.wait().unwrap().success(), "the C program failed");
}

#[test]
fn a_c_host_moves_to_a_restarted_schedulers_map_with_its_values() {
    let test = "a_c_host_moves_to_a_restarted_schedulers_map_with_its_values";
    let Some(first) = c::load_c(test) else {
        return;
    };
    let second = c::load_c(test).expect("loaded once, loads twice");
    let second_id = second.maps.tld_data_map.info().expect("map info").info.id;
    let fds = [
        first.maps.tld_data_map.as_fd(),
        first.progs.tld_c_read.as_fd(),
        second.maps.tld_data_map.as_fd(),
        second.progs.tld_c_read.as_fd(),
    ];
    let mut cmd = Command::new(program());
    cmd.arg("restart")
        .arg(&c::artifacts().plugin_a)
        .env("TLD_TEST_MAP_FD", c::fd_env(fds[0]))
        .env("TLD_TEST_PROG_FD", c::fd_env(fds[1]))
        .env("TLD_TEST_MAP2_FD", c::fd_env(fds[2]))
        .env("TLD_TEST_PROG2_FD", c::fd_env(fds[3]))
        .env("TLD_TEST_MAP2_ID", second_id.to_string())
        .env("TLD_MAP_PATH", "");
    c::inherit(&mut cmd, &fds);
    c::run_ok(&mut cmd, "lifecycle restart");
}
