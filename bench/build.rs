//! Builds the benchmark's BPF object: the header for the bench hints, then
//! `bpf/bench_tld.bpf.c` (our lookups and the floor programs, side by side) into a skeleton.
//! Compiles the C side of row L1. Also records the rustc version, which the report prints with the machine.
use std::path::{Path, PathBuf};

// Name the hints crate, or linkme drops its hints from this build script and the header.
use tld_bench_hints as _;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    tld_runtime::header::write(out.join("tld_generated.h")).expect("write tld_generated.h");
    // The 7.x generation of the format (the header's default), and the 6.18 one.
    for name in ["bench_tld", "bench_tld_618", "bench_tld_guard"] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../bpf/{name}.bpf.c"));
        tld_bpf_build::build_skeleton(
            &source,
            &out.join(format!("{name}.skel.rs")),
            &[out.as_path()],
        );
    }

    // Row L1: C that calls libtld through tld.h (libtld's build script says where it is).
    let include = std::env::var_os("DEP_TLD_INCLUDE").expect("libtld exports its include dir");
    println!("cargo:rerun-if-changed=c/libtld_bench.c");
    cc::Build::new()
        .file("c/libtld_bench.c")
        .include(include)
        .opt_level(2)
        .warnings_into_errors(true)
        .compile("tld_libtld_bench");

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(
            || "rustc (unknown version)".into(),
            |s| s.trim().to_string(),
        );
    println!("cargo:rustc-env=TLD_BENCH_RUSTC={version}");
}
