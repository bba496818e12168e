//! The kernel's own scenario, against libtld: the user-space test of Linux 7.x's task local
//! data library (`prog_tests/test_task_local_data.c`, fetched from Debian's
//! `linux-source-7.N` at test time) built against `tld.h` and libtld instead of the kernel's
//! library, with BPF checking what every thread set (`bpf/tld_ktest.bpf.c`). Its subtests:
//!
//! - `task_local_data_basic`: a key defined with `TLD_DEFINE_KEY`, keys created at run time,
//!   `-E2BIG` for a value that no longer fits a page, `-EEXIST`, `-ENOSPC` past the last
//!   metadata entry, then 32 threads whose values BPF reads back twice;
//! - `task_local_data_race`: 60 threads creating keys at once (each of two names created
//!   exactly once, `-E2BIG` on the way), then one value per key, none overlapping, and BPF
//!   finding no key that must not exist. Built with one round of its loop, and run in many
//!   processes: between rounds the kernel's test resets its library's internals, which libtld
//!   keeps to itself.
//!
//! The `dyn_size` subtests are not run: they set the selftests library's budget for keys
//! created at run time (`TLD_DYN_DATA_SIZE`), which libtld does not have (every thread gets a
//! whole page, and every key may use what is left of it).
//!
//! The shims the test includes in place of the kernel's harness are in `tests/c/kselftest/`.
//! Without the kernel's sources (no network, no apt) the test says SKIPPED, and fails under
//! `TLD_REQUIRE_BPF=1`.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use tld_tests::c::{self, Compile};

/// The race subtest's processes.
const RACE_RUNS: usize = 25;

/// The selftest's source, adapted for libtld: where its harness resets the library between
/// rounds of the race subtest, one round.
fn adapted_source(kernel: &str) -> String {
    let round = "for (j = 0; j < 100; j++)";
    assert_eq!(
        kernel.matches(round).count(),
        1,
        "the kernel's test_task_local_data.c changed: its race loop `{round}` is not there once"
    );
    assert!(
        kernel.contains("static void reset_tld(") && kernel.contains("tld_meta_p"),
        "the kernel's test_task_local_data.c changed: reset_tld() is not what the shims expect"
    );
    kernel.replace(round, "for (j = 0; j < 1; j++)")
}

fn kernel_test() -> Option<PathBuf> {
    match tld_vm::sources::selftests(&tld_vm::cache_dir()) {
        Ok(sources) => {
            println!("the kernel's selftests from {}", sources.package);
            Some(sources.c_test())
        }
        Err(tld_vm::Error::Unavailable(why)) if !tld_tests::bpf_required() => {
            eprintln!(
                "SKIPPED the kernel's task local data selftest: its sources cannot be fetched \
                 ({why}); set TLD_REQUIRE_BPF=1 to make this a failure"
            );
            None
        }
        Err(e) => panic!("the kernel's task local data selftest cannot be fetched: {e}"),
    }
}

#[test]
fn the_kernels_selftest_passes_against_libtld() {
    let test = "the_kernels_selftest_passes_against_libtld";
    let Some(first) = c::load_ktest(test) else {
        return;
    };
    drop(first);
    let Some(source) = kernel_test() else {
        return;
    };
    let kernel = std::fs::read_to_string(&source).expect("read the kernel's test");
    let work = &c::artifacts().work;
    let adapted = work.join("test_task_local_data.c");
    std::fs::write(&adapted, adapted_source(&kernel)).expect("write the adapted test");
    let shims = c::workspace().join("tests/c/kselftest");
    // The kernel's code, built as the kernel builds it: warnings are its own business.
    let program = Compile::c(
        "kselftest_task_local_data",
        &[adapted.to_str().unwrap(), "kselftest/main.c"],
    )
    .args(&["-Wno-error", "-Wno-sign-compare", "-Wno-unused-parameter"])
    .args(&[&format!("-I{}", shims.display())])
    .link_libtld()
    .build();

    let subtests = std::iter::once("task_local_data_basic")
        .chain(std::iter::repeat_n("task_local_data_race", RACE_RUNS));
    for subtest in subtests {
        // A fresh BPF object, and so a fresh map, for each run, as each subtest of the
        // kernel's harness opens its own skeleton.
        let skel = c::load_ktest(test).expect("loaded once, loads again");
        let map = skel.maps.tld_data_map.as_fd();
        let prog = skel.progs.task_main.as_fd();
        let bss = skel.maps.bss.as_fd();
        let mut cmd = Command::new(&program);
        cmd.env("TLD_KSELFTEST_SUBTEST", subtest)
            .env("TLD_KSELFTEST_MAP_FD", c::fd_env(map))
            .env("TLD_KSELFTEST_PROG_FD", c::fd_env(prog))
            .env("TLD_KSELFTEST_BSS_FD", c::fd_env(bss))
            // The map given to tld_get_data(), and no other.
            .env("TLD_MAP_PATH", "");
        c::inherit(&mut cmd, &[map, prog, bss]);
        let out = c::run_ok(&mut cmd, subtest);
        assert!(
            out.contains("1 subtests run, 0 failures"),
            "{subtest}: {out}"
        );
    }
    println!(
        "the kernel's selftest against libtld: task_local_data_basic once, \
         task_local_data_race {RACE_RUNS} times (one round each); the dyn_size subtests do \
         not apply (libtld has no separate budget for keys created at run time)"
    );
}
