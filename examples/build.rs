//! Builds the demo's BPF program against a header generated from the hints crate.
//!
//! This is the whole recipe for a BPF program that reads Rust hints:
//! 1. depend on the hints crate as a build-dependency, and name it so it is linked in;
//! 2. write the header for the hints linked into this build script;
//! 3. compile the BPF C with `OUT_DIR` on its include path.

// Without this line the hints crate is not linked, and the header has no keys.
use tld_example_hints as _;

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    // `tld_generated.h`: the keys, C types and layout checks of every hint linked in here.
    tld_runtime::header::write(out.join("tld_generated.h")).expect("write tld_generated.h");

    // `demo.bpf.c` includes "tld_generated.h", found through OUT_DIR; the skeleton it becomes
    // is `include!`d by src/bin/demo.rs.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpf/demo.bpf.c");
    tld_bpf_build::build_skeleton(&source, &out.join("demo.skel.rs"), &[out.as_path()]);
}
