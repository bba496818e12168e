//! The Linux kernel's own 7.x BPF test program for task local data
//! (`progs/test_task_local_data.c`, with its `task_local_data.bpf.h`), fetched and compiled at
//! test time and never modified or copied here, reads the hints that tld-runtime publishes.
//! So does the same program compiled against scx's `scx/task_local_data.bpf.h` (the 6.18
//! generation, from the scx_cargo crate), at the same time, from a map of its own: the runtime
//! registers every thread in both (`connect`, then `connect_also`).
//!
//! As in the kernel's own test: `value0` is declared statically (here a `#[task_local_data]`
//! static), `value1` and `value2` are created at run time, and 16 threads each set their own
//! values and run the program, twice, under a lock (its results are global variables). The
//! program returns 0 only if it found all three keys and did not find `value_not_exist`.
//!
//! This binary declares only these hints (it does not link the other tests' hint crates), so
//! that the process's keys are the kernel test's.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex};

use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore, ObjectBuilder};
use tld_runtime::{task_local_data, DynamicKey, Generation};

#[task_local_data]
static VALUE0: i32 = 0;

/// The kernel test's `struct test_tld_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct TestTldStruct {
    a: u64,
    b: u64,
    c: u64,
    d: u64,
}

fn required() -> bool {
    std::env::var("TLD_REQUIRE_BPF").is_ok_and(|v| v == "1")
}

fn unavailable(test: &str, e: &tld_upstream::Error) {
    match e {
        tld_upstream::Error::Unavailable(why) if !required() => {
            eprintln!("SKIPPED {test}: {why} (set TLD_REQUIRE_BPF=1 to make this a failure)")
        }
        e => panic!("{test}: {e}"),
    }
}

/// Runs the `SEC("syscall")` program `prog` as the calling thread; returns its return value.
fn test_run(prog: RawFd) -> i32 {
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        ..Default::default()
    };
    // SAFETY: `opts` is a sized, zeroed options struct with no buffers, live for the call; the
    // fd is a loaded program's.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog, &mut opts) };
    assert_eq!(rc, 0, "BPF_PROG_TEST_RUN");
    opts.retval as i32
}

/// The program's global variables, from its `.bss`: test_value0, test_value1, test_value2.
fn results(bss: RawFd, size: usize) -> (i32, i32, TestTldStruct) {
    let mut bytes = vec![0u8; size.max(40)];
    let key = 0u32;
    // SAFETY: the key is a live u32 (an array map's key) and `bytes` holds at least the map's
    // value size.
    let rc = unsafe {
        libbpf_sys::bpf_map_lookup_elem(bss, (&key as *const u32).cast(), bytes.as_mut_ptr().cast())
    };
    assert_eq!(rc, 0, "reading .bss");
    let i32_at = |at: usize| i32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap());
    // `int test_value0; int test_value1; struct test_tld_struct test_value2;`
    (
        i32_at(0),
        i32_at(4),
        TestTldStruct {
            a: u64_at(8),
            b: u64_at(16),
            c: u64_at(24),
            d: u64_at(32),
        },
    )
}

/// One build of the kernel's test program, loaded: its program and its `.bss`.
struct Loaded {
    _obj: &'static libbpf_rs::Object,
    /// Raw fds: the object is leaked, so they stay open for the process.
    prog: RawFd,
    bss: RawFd,
    bss_size: usize,
    map: RawFd,
    map_value_size: u32,
}

/// Compiles the kernel's test program (against `header`'s `task_local_data.bpf.h` if given) and
/// loads it; `None` after saying why it cannot be had.
fn load(
    test: &str,
    tests: &tld_upstream::Selftests,
    name: &str,
    header: Option<&Path>,
) -> Option<Loaded> {
    let dir = tld_upstream::build::scratch(name).expect("a scratch directory");
    let object = match tld_upstream::build::kernel_bpf_program(tests, &dir, header) {
        Ok(o) => o,
        Err(e) => {
            unavailable(test, &e);
            return None;
        }
    };
    let quiet = libbpf_rs::set_print(None);
    let loaded = ObjectBuilder::default()
        .open_file(&object)
        .and_then(|o| o.load());
    libbpf_rs::set_print(quiet);
    let obj: &'static libbpf_rs::Object = match loaded {
        Ok(obj) => Box::leak(Box::new(obj)),
        Err(e) if !required() => {
            eprintln!("SKIPPED {test}: cannot load the kernel's test program: {e}");
            return None;
        }
        Err(e) => panic!("{test}: TLD_REQUIRE_BPF=1 but the {name} program does not load: {e:#}"),
    };
    let map = obj
        .maps()
        .find(|m| m.name() == "tld_data_map")
        .expect("the program's tld_data_map");
    let bss = obj
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(".bss"))
        .expect("the program's .bss");
    let prog = obj
        .progs()
        .find(|p| p.name() == "task_main")
        .expect("task_main");
    Some(Loaded {
        _obj: obj,
        prog: prog.as_fd().as_raw_fd(),
        bss: bss.as_fd().as_raw_fd(),
        bss_size: bss.value_size() as usize,
        map: map.as_fd().as_raw_fd(),
        map_value_size: map.value_size(),
    })
}

/// scx's headers, as the scx_cargo crate unpacks them for a build: the directory that holds
/// `task_local_data.bpf.h`.
fn scx_header_dir() -> PathBuf {
    let out = tld_upstream::build::scratch("scx_cargo").expect("a scratch directory");
    if std::env::var_os("BPF_CLANG").is_none() {
        std::env::set_var("BPF_CLANG", tld_bpf_build::clang());
    }
    // scx_cargo unpacks its headers into OUT_DIR. This binary has one test, so nothing else
    // reads the environment meanwhile.
    std::env::set_var("OUT_DIR", &out);
    scx_cargo::BpfBuilder::new().expect("scx_cargo::BpfBuilder::new (is clang-19 installed?)");
    let dir = out.join("scx_utils-bpf_h").join("scx");
    assert!(
        dir.join("task_local_data.bpf.h").is_file(),
        "scx_cargo did not unpack scx/task_local_data.bpf.h"
    );
    dir
}

#[test]
fn the_kernels_own_bpf_test_program_reads_what_tld_runtime_publishes() {
    let test = "the_kernels_own_bpf_test_program_reads_what_tld_runtime_publishes";
    let tests = match tld_upstream::selftests(&tld_upstream::cache_dir()) {
        Ok(t) => t,
        Err(e) => return unavailable(test, &e),
    };
    let Some(seven) = load(test, &tests, "kernel_bpf_7x", None) else {
        return;
    };
    let scx = load(test, &tests, "kernel_bpf_scx", Some(&scx_header_dir()))
        .expect("the 7.x build loads, so this one must");
    assert_eq!(seven.map_value_size, 24, "the kernel's 7.x value");
    assert_eq!(scx.map_value_size, 16, "scx's 6.18 value");
    // SAFETY: both objects are leaked: their map fds stay open for the process.
    let (seven_map, scx_map) = unsafe {
        (
            BorrowedFd::borrow_raw(seven.map),
            BorrowedFd::borrow_raw(scx.map),
        )
    };
    tld_runtime::connect(seven_map).expect("connect to the kernel test's map");
    tld_runtime::connect_also(scx_map).expect("connect_also to the scx build's map");
    let status = tld_runtime::status();
    assert_eq!(status.generation, Some(Generation::Linux7), "{status}");
    assert_eq!(
        status.additional_maps.first().map(|m| m.generation),
        Some(Generation::Linux6_18),
        "{status}"
    );

    let value1 = DynamicKey::create("value1", 4).expect("create value1");
    let value2 = DynamicKey::create("value2", 32).expect("create value2");

    const THREADS: usize = 16;
    let lock = Mutex::new(());
    let gate = Barrier::new(THREADS);
    let checks = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (lock, gate, checks) = (&lock, &gate, &checks);
            let (value1, value2, seven, scx) = (&value1, &value2, &seven, &scx);
            s.spawn(move || {
                // SAFETY: gettid cannot fail.
                let tid = unsafe { libc::gettid() };
                for round in 0..2 {
                    let base = tid + 100 * round;
                    let v2 = TestTldStruct {
                        a: base as u64 + 2,
                        b: base as u64 + 3,
                        c: base as u64 + 4,
                        d: base as u64 + 5,
                    };
                    VALUE0.set(base);
                    value1.write(&(base + 1).to_ne_bytes());
                    let bytes: Vec<u8> = [v2.a, v2.b, v2.c, v2.d]
                        .iter()
                        .flat_map(|v| v.to_ne_bytes())
                        .collect();
                    value2.write(&bytes);
                    gate.wait();
                    let _held = lock.lock().unwrap();
                    for (header, obj) in [("7.x", seven), ("scx", scx)] {
                        let what = format!("{header} header, thread {tid}, round {round}");
                        assert_eq!(
                            test_run(obj.prog),
                            0,
                            "{what}: task_main (1: no element, 2..4: a key not found, 5: \
                             value_not_exist found)"
                        );
                        assert_eq!(
                            results(obj.bss, obj.bss_size),
                            (base, base + 1, v2),
                            "{what}: what the program read"
                        );
                        checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(checks.into_inner(), 2 * 2 * THREADS);
    eprintln!(
        "the kernel's test program ({}), built on its own header and on scx's, read 3 keys \
         right in {THREADS} threads, twice each",
        tests.package
    );
}
