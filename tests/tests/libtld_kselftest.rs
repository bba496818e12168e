//! The kernel's own scenario, against libtld: the user-space test of Linux 7.x's task local
//! data library (`prog_tests/test_task_local_data.c`, fetched from Debian's
//! `linux-source-7.N` at test time) built against `tld.h` and libtld instead of the kernel's
//! library, with the kernel's own BPF test program (`progs/test_task_local_data.c`, built
//! unmodified against the kernel's 7.x `task_local_data.bpf.h`) checking what every thread set.
//! Its subtests:
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
use std::path::{Path, PathBuf};

use libbpf_rs::{MapCore, ObjectBuilder};
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

/// The kernel's selftests, or `None` after saying why they cannot be fetched.
fn kernel_sources(test: &str) -> Option<tld_upstream::Selftests> {
    match tld_upstream::selftests(&tld_upstream::cache_dir()) {
        Ok(sources) => {
            println!("the kernel's selftests from {}", sources.package);
            Some(sources)
        }
        Err(tld_upstream::Error::Unavailable(why)) if !tld_tests::bpf_required() => {
            eprintln!(
                "SKIPPED {test}: the kernel's task local data selftests cannot be fetched \
                 ({why}); set TLD_REQUIRE_BPF=1 to make this a failure"
            );
            None
        }
        Err(e) => panic!("{test}: the kernel's task local data selftests cannot be fetched: {e}"),
    }
}

/// The kernel's BPF test program, built unmodified.
fn kernel_program(test: &str, sources: &tld_upstream::Selftests) -> PathBuf {
    let dir = tld_upstream::build::scratch("libtld-kselftest").expect("a scratch directory");
    tld_upstream::build::kernel_bpf_program(sources, &dir, None)
        .unwrap_or_else(|e| panic!("{test}: building the kernel's BPF test program: {e}"))
}

/// The kernel's program, loaded (a fresh object, and so a fresh map, each time).
fn load_kernel_program(object: &Path) -> libbpf_rs::Object {
    let quiet = libbpf_rs::set_print(None);
    let loaded = ObjectBuilder::default()
        .open_file(object)
        .and_then(|o| o.load());
    libbpf_rs::set_print(quiet);
    loaded.unwrap_or_else(|e| {
        panic!("TLD_REQUIRE_BPF=1 or not, the kernel's program must load here: {e:#}")
    })
}

#[test]
fn the_kernels_selftest_passes_against_libtld() {
    let test = "the_kernels_selftest_passes_against_libtld";
    // BPF at all, then the kernel's sources.
    let Some(first) = c::load_c(test) else {
        return;
    };
    drop(first);
    let Some(sources) = kernel_sources(test) else {
        return;
    };
    let object = kernel_program(test, &sources);
    let kernel = std::fs::read_to_string(sources.c_test()).expect("read the kernel's test");
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
        let obj = load_kernel_program(&object);
        let map = obj
            .maps()
            .find(|m| m.name() == "tld_data_map")
            .expect("the kernel's program has tld_data_map");
        let bss = obj
            .maps()
            .find(|m| m.name().to_string_lossy().ends_with(".bss"))
            .expect("the kernel's program has a .bss");
        let prog = obj
            .progs()
            .find(|p| p.name() == "task_main")
            .expect("the kernel's program has task_main");
        let (map, prog, bss) = (map.as_fd(), prog.as_fd(), bss.as_fd());
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
