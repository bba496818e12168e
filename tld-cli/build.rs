//! Compiles the inspector's BPF task iterator (`src/bpf/tld_iter.bpf.c`) into a BPF object,
//! and, when the crate's tests are present, the guard tests' BPF fixture into a libbpf-rs
//! skeleton, with `tld-bpf-build` (clang 19 or later: `clang-19`, or whatever `TLD_CLANG`
//! names).
//!
//! The iterator is loaded from its object, not through a skeleton: it reuses the inspected
//! map's fd, and libbpf then renames its map after the inspected one, which a skeleton does not
//! expect.
//!
//! The iterator reads pages of any writer, so it is built without a generated header: it
//! declares the few wire-format structs and kernel types it needs itself.
use std::path::{Path, PathBuf};

fn build(source: &Path, skeleton: &Path) {
    let include = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("bpf");
    if let Err(e) = tld_bpf_build::Builder::new(source)
        .include_dir(&include)
        .generated_header(false)
        .skeleton(skeleton)
        .build()
    {
        panic!("{e}");
    }
    println!("cargo:rerun-if-changed={}", include.display());
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let include = dir.join("src").join("bpf");
    if let Err(e) = tld_bpf_build::compile_object(
        &include.join("tld_iter.bpf.c"),
        &[&include],
        &out.join("tld-iter-libbpf"),
        &out.join("tld_iter.bpf.o"),
    ) {
        panic!(
            "compiling src/bpf/tld_iter.bpf.c with {} failed:\n{e}\n(is clang-19 installed? \
             set TLD_CLANG to use another clang >= 19)",
            tld_bpf_build::clang().display()
        );
    }
    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-env-changed={}", tld_bpf_build::CLANG_ENV);
    // The guard tests' fixture: a guarded map, with a stand-in for the guard's program. (The
    // other tests' fixture is built by their support crate, tests/support.)
    let guarded = dir.join("tests/bpf/tld_cli_guard_fixture.bpf.c");
    if guarded.exists() {
        build(&guarded, &out.join("tld_cli_guard_fixture.skel.rs"));
        println!("cargo:rerun-if-changed={}", guarded.display());
    }
}
