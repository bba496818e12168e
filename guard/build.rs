//! Compiles the guard's BPF object (`src/bpf/tld_guard.bpf.c`) into a libbpf-rs skeleton with
//! `tld-bpf-build` (clang 19 or later). It builds on `task_local_data.bpf.h` and
//! `tld_guard.bpf.h`, which `tld-bpf-build` puts on the include path.
use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bpf/tld_guard.bpf.c");
    if let Err(e) = tld_bpf_build::Builder::new(&source)
        .generated_header(false)
        .skeleton(out.join("tld_guard.skel.rs"))
        .build()
    {
        panic!("{e}");
    }
}
