//! Compiles the test BPF programs into a skeleton.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = tld_bpf_build::bpf_dir().join("tld_test.bpf.c");
    tld_bpf_build::build_skeleton(&source, &out.join("tld_test.skel.rs"), &[]);
}
