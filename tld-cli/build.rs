//! Compiles the inspector's BPF task iterator (`src/bpf/tld_iter.bpf.c`) into a libbpf-rs
//! skeleton, and, when the crate's tests are present, the BPF fixture they load.
//!
//! BPF C needs clang 19 or later: older clangs silently drop the `btf_type_tag("uptr")`
//! attribute. The compiler is `clang-19` unless `TLD_CLANG` names another.
use std::env;
use std::path::{Path, PathBuf};

/// Environment variable that overrides the clang binary.
const CLANG_ENV: &str = "TLD_CLANG";

fn clang() -> PathBuf {
    env::var_os(CLANG_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("clang-19"))
}

fn build(source: &Path, out: &Path) {
    let include = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("bpf");
    if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
        .source(source)
        .clang(clang())
        .clang_args([format!("-I{}", include.display()), "-Wall".into()])
        .build_and_generate(out)
    {
        panic!(
            "compiling {} with {} failed: {e:#}\n(install clang-19, or set {CLANG_ENV} to a clang \
             of version 19 or later)",
            source.display(),
            clang().display()
        );
    }
    println!("cargo:rerun-if-changed={}", source.display());
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-env-changed={CLANG_ENV}");
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("src/bpf/tld_cli_vmlinux.h").display()
    );
    build(
        &dir.join("src/bpf/tld_iter.bpf.c"),
        &out.join("tld_iter.skel.rs"),
    );
    // The tests' fixture: a tld_data_map of its own and programs that write into pages.
    let fixture = dir.join("tests/bpf/tld_cli_fixture.bpf.c");
    if fixture.exists() {
        build(&fixture, &out.join("tld_cli_fixture.skel.rs"));
    }
}
