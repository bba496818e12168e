//! A program exec'd from a registered thread starts clean and registers its own hints.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use tld_tests::*;

const TEST: &str = "a_program_execd_from_a_registered_thread_starts_clean";

/// Before exec: set a hint, get registered through auto-connect, then exec this binary again.
fn before_exec() {
    VALUE1.set(111);
    tld_runtime::thread_init().expect("registered through TLD_MAP_PATH");
    println!("ready {}", gettid());
    wait_for_go();
    let err = rerun(TEST, "after-exec").exec();
    panic!("exec failed: {err}");
}

/// After exec: the new program sees initial values and registers its own page.
fn after_exec() {
    assert_eq!(
        VALUE1.get(),
        0,
        "the exec'd program must start from initial values"
    );
    VALUE1.set(222);
    tld_runtime::thread_init().expect("registered again after exec");
    println!("ready {}", gettid());
    wait_for_go();
}

fn wait_for_go() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("read stdin");
}

#[test]
fn a_program_execd_from_a_registered_thread_starts_clean() {
    match role().as_deref() {
        Some("before-exec") => return before_exec(),
        Some("after-exec") => return after_exec(),
        _ => {}
    }
    let Some(skel) = load(TEST) else {
        return;
    };
    let Some(pin) = PinnedMap::pin(skel.maps.tld_data_map.as_fd(), "exec") else {
        return;
    };
    let mut child = rerun(TEST, "before-exec")
        .env("TLD_MAP_PATH", pin.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_ready = || -> i32 {
        for line in lines.by_ref() {
            let line = line.expect("child output");
            // libtest may have written "test ... " on the same line first.
            if let Some((_, tid)) = line.split_once("ready ") {
                return tid.trim().parse().expect("a tid");
            }
        }
        panic!("the child ended early");
    };

    let tid = next_ready();
    let r = bpf_read_pid(&skel, tid);
    assert_eq!((r.init_ret, r.value1), (0, 111), "before exec");
    writeln!(stdin, "go").unwrap();

    // (If the test ran on a thread other than the leader, exec gives it the leader's id.)
    let tid_after = next_ready();
    let r = bpf_read_pid(&skel, tid_after);
    assert_eq!(
        (r.init_ret, r.value1),
        (0, 222),
        "after exec BPF must see the new program's page"
    );
    writeln!(stdin, "go").unwrap();
    assert!(child.wait().unwrap().success(), "the child failed");
}
