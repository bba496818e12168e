//! Our BPF header reads what other writers register: the Linux kernel's own 7.x task local data
//! C library (fetched and built at test time, never copied here), with page-aligned blocks and
//! with small ones, and writers that send exactly their generation's value from a buffer that
//! ends at the edge of a mapping.
//!
//! The writers are child processes (`tests/c/`) that open the map through a pin; the BPF
//! programs (`bpf/tld_kernel_lib.bpf.c`, for both generations) read their threads by id.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject, ProgramMut};
use tld_tests::{bpf_required, kernel_selftests, run, upstream_unavailable, Child, PinnedMap};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
mod skel_7 {
    include!(concat!(env!("OUT_DIR"), "/tld_kernel_lib.skel.rs"));
}
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
mod skel_618 {
    include!(concat!(env!("OUT_DIR"), "/tld_kernel_lib_618.skel.rs"));
}

/// Mirror of `struct read_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ReadCtx {
    tid: i32,
    found: u32,
    init_ret: i64,
    value0: i64,
    value1: i64,
    value2: [u64; 4],
    value0_off: i64,
    edge: i64,
}

const FOUND_VALUE0: u32 = 1;
const FOUND_VALUE1: u32 = 2;
const FOUND_VALUE2: u32 = 4;
const FOUND_NOT_EXIST: u32 = 8;
const FOUND_EDGE: u32 = 16;

/// Mirror of `struct value_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ValueCtx {
    tid: i32,
    ret: i32,
    /// Bytes 16..24 of a 7.x value: `start`, then padding.
    tail: [u8; 8],
}

/// Opens and loads a skeleton, leaked for the test's life; `None` (after saying why) when BPF is
/// unavailable and not required.
macro_rules! load {
    ($builder:expr) => {{
        let storage: &'static mut std::mem::MaybeUninit<OpenObject> =
            Box::leak(Box::new(std::mem::MaybeUninit::uninit()));
        match $builder.open(storage).and_then(|o| o.load()) {
            Ok(skel) => Some(&*Box::leak(Box::new(skel))),
            Err(e) if !bpf_required() => {
                eprintln!("SKIPPED: cannot load BPF programs ({e}); set TLD_REQUIRE_BPF=1 to fail");
                None
            }
            Err(e) => panic!("TLD_REQUIRE_BPF=1 but the BPF programs do not load: {e:#}"),
        }
    }};
}

fn read_keys(prog: &ProgramMut<'_>, tid: i32) -> ReadCtx {
    run(
        prog,
        ReadCtx {
            tid,
            ..ReadCtx::default()
        },
    )
}

fn read_value(prog: &ProgramMut<'_>, tid: i32) -> ValueCtx {
    run(
        prog,
        ValueCtx {
            tid,
            ..ValueCtx::default()
        },
    )
}

/// `tests/c/<name>.c`.
fn c_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("c")
        .join(format!("{name}.c"))
}

/// Builds a C program of `tests/c/` against the kernel's library, or `None` after saying why.
fn build(test: &str, name: &str, out: &str, defines: &[&str]) -> Option<PathBuf> {
    let tests = kernel_selftests(test)?;
    let dir = tld_upstream::build::scratch("c").expect("a scratch directory");
    match tld_upstream::build::c_program(&tests, &c_source(name), &dir, out, defines) {
        Ok(path) => Some(path),
        Err(e) => {
            upstream_unavailable(test, &e);
            None
        }
    }
}

#[test]
fn our_header_reads_the_kernel_7x_c_library_with_both_kinds_of_allocation() {
    let test = "our_header_reads_the_kernel_7x_c_library_with_both_kinds_of_allocation";
    let Some(skel) = load!(skel_7::TldKernelLibSkelBuilder::default()) else {
        return;
    };
    let Some(pin) = PinnedMap::pin(skel.maps.tld_data_map.as_fd(), "kernel_lib") else {
        return;
    };
    // Page-aligned blocks: the data area is a whole page, start 8. Small blocks: 64 bytes of
    // dynamic data, a block of 128 bytes anywhere in a page, start = its offset + 8.
    let builds = [
        ("page-aligned", "TLD_DYN_DATA_SIZE=4000", true),
        ("small", "TLD_DYN_DATA_SIZE=64", false),
    ];
    const THREADS: usize = 16;
    for (kind, define, aligned) in builds {
        let Some(app) = build(
            test,
            "kernel_library_app",
            &format!("kernel_lib_{kind}"),
            &[define],
        ) else {
            return;
        };
        let mut cmd = Command::new(&app);
        cmd.arg(pin.path()).arg(THREADS.to_string());
        let mut child = Child::spawn(cmd);
        let tids: Vec<i32> = child
            .line("TIDS")
            .split_whitespace()
            .map(|t| t.parse().expect("a tid"))
            .collect();
        assert_eq!(tids.len(), THREADS, "{kind}");
        let mut starts = Vec::new();
        for round in 0..2 {
            for &tid in &tids {
                let r = read_keys(&skel.progs.read_keys, tid);
                let what = format!("{kind}, round {round}, thread {tid}");
                assert_eq!(r.init_ret, 0, "{what}: bpf_tld_init");
                assert_eq!(
                    r.found & FOUND_NOT_EXIST,
                    0,
                    "{what}: value_not_exist found"
                );
                assert_eq!(
                    r.found,
                    FOUND_VALUE0 | FOUND_VALUE1 | FOUND_VALUE2,
                    "{what}: keys found"
                );
                assert_eq!(r.value0, i64::from(tid), "{what}: value0");
                assert_eq!(r.value1, i64::from(tid) + 1, "{what}: value1");
                let t = tid as u64;
                assert_eq!(r.value2, [t + 2, t + 3, t + 4, t + 5], "{what}: value2");
                // value0 is the library's first key: at start.
                starts.push(r.value0_off);
                // The value's start is where the library put the block.
                let v = read_value(&skel.progs.read_value, tid);
                assert_eq!(v.ret, 0);
                let start = i64::from(u16::from_ne_bytes([v.tail[0], v.tail[1]]));
                assert_eq!(start, r.value0_off, "{what}: the value's start");
            }
        }
        if aligned {
            assert!(starts.iter().all(|&s| s == 8), "{kind}: {starts:?}");
        } else {
            // Small blocks lie anywhere in a page, 8 past a multiple of their power-of-two size.
            assert!(starts.iter().all(|&s| s % 16 == 8), "{kind}: {starts:?}");
            assert!(
                starts.iter().any(|&s| s != 8),
                "{kind}: no thread's block is inside a page: {starts:?}"
            );
        }
        eprintln!(
            "{kind} blocks: {} threads read twice, every key right; starts {:?}",
            THREADS,
            starts.iter().take(THREADS).collect::<Vec<_>>()
        );
        child.finish();
    }
    let _ = skel.maps.tld_data_map.value_size();
}

/// One registration by `edge_writer` sending `size` bytes, with its buffer at the edge of a
/// mapping (`edge`) or followed by 8 bytes of 0xa5: the errno it got, and its thread id, with
/// the child kept alive.
fn edge_writer(writer: &Path, pin: &Path, size: usize, edge: bool) -> (Child, i32, i32) {
    let mut cmd = Command::new(writer);
    cmd.arg(pin)
        .arg(size.to_string())
        .arg(if edge { "edge" } else { "inner" });
    let mut child = Child::spawn(cmd);
    let line = child.line("TID");
    let mut words = line.split_whitespace();
    let tid = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("ERRNO"));
    let errno = words.next().unwrap().parse().unwrap();
    (child, tid, errno)
}

#[test]
fn a_foreign_writer_given_its_own_shape_sends_nothing_past_its_buffer() {
    let test = "a_foreign_writer_given_its_own_shape_sends_nothing_past_its_buffer";
    let Some(seven) = load!(skel_7::TldKernelLibSkelBuilder::default()) else {
        return;
    };
    let six = load!(skel_618::TldKernelLib618SkelBuilder::default()).expect("loads twice");
    let Some(pin7) = PinnedMap::pin(seven.maps.tld_data_map.as_fd(), "edge_7") else {
        return;
    };
    let pin6 = PinnedMap::pin(six.maps.tld_data_map.as_fd(), "edge_618").expect("pinned once");
    let Some(writer) = build(test, "edge_writer", "edge_writer", &[]) else {
        return;
    };

    // Each generation's writer, given its own shape, at the edge: registered, and BPF sees
    // exactly its buffer.
    for (pin, size, read_keys_prog, read_value_prog) in [
        (&pin7, 24, &seven.progs.read_keys, &seven.progs.read_value),
        (&pin6, 16, &six.progs.read_keys, &six.progs.read_value),
    ] {
        let (child, tid, errno) = edge_writer(&writer, pin.path(), size, true);
        assert_eq!(errno, 0, "a {size}-byte writer in a {size}-byte map");
        let r = read_keys(read_keys_prog, tid);
        assert_eq!(r.init_ret, 0);
        assert_eq!(r.found, FOUND_EDGE, "{size}: only its key");
        assert_eq!(r.edge, 0x0dd1e, "{size}: its value");
        let v = read_value(read_value_prog, tid);
        assert_eq!(v.ret, 0);
        if size == 24 {
            assert_eq!(v.tail[..2], 16u16.to_ne_bytes(), "the value's start");
            assert_eq!(
                v.tail[2..],
                [0; 6],
                "padding: the writer's zeros, nothing else"
            );
        }
        child.finish();
    }

    // A 16-byte writer given a 24-byte map: the kernel reads 8 bytes past its buffer. At a
    // mapping's edge that fails; inside one, the bytes after the buffer reach BPF. This is why a
    // map's value must be no longer than its writers send.
    let (child, _, errno) = edge_writer(&writer, pin7.path(), 16, true);
    assert_eq!(
        errno,
        libc::EFAULT,
        "the kernel reads past the buffer's mapping"
    );
    child.finish();
    let (child, tid, errno) = edge_writer(&writer, pin7.path(), 16, false);
    assert_eq!(errno, 0);
    let v = read_value(&seven.progs.read_value, tid);
    assert_eq!(v.tail, [0xa5; 8], "the bytes after the writer's buffer");
    child.finish();
}
