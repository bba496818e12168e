//! Builds the tests' BPF fixture, `../bpf/tld_cli_fixture.bpf.c` (a `tld_data_map` of each
//! generation and programs that write into pages), into a libbpf-rs skeleton with
//! `tld-bpf-build`, against the inspector's own wire-format declarations (`src/bpf` of
//! tld-cli).
use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let include = tests.join("../src/bpf");
    let fixture = tests.join("bpf/tld_cli_fixture.bpf.c");
    if let Err(e) = tld_bpf_build::Builder::new(&fixture)
        .include_dir(&include)
        .generated_header(false)
        .skeleton(out.join("tld_cli_fixture.skel.rs"))
        .build()
    {
        panic!("{e}");
    }
    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-changed={}", fixture.display());
    println!("cargo:rerun-if-env-changed={}", tld_bpf_build::CLANG_ENV);
}
