//! Builds the test BPF programs, the way a scheduler's build script would:
//! 1. link the hints crates in, and generate `tld_generated.h` from their declarations;
//! 2. compile the BPF C against it into libbpf-rs skeletons.
use std::path::{Path, PathBuf};

// Name the hints crates, or linkme drops their hints from this build script.
use tld_test_hints_a as _;
use tld_test_hints_b as _;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    tld_runtime::header::write(out.join("tld_generated.h")).expect("generate tld_generated.h");

    // The repository's BPF programs of the tests.
    let bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpf");
    // Written against the raw API with a hand-written struct tld_offsets, as a BPF author
    // without a generated header (or with scx's header) would.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_test.bpf.c"),
        &out.join("tld_test.skel.rs"),
        &[],
    );
    // The same for the 6.18 generation of the format (TLD_GEN_6_18: a 16-byte value, start
    // in the page), for tests/tests/generations.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_test_618.bpf.c"),
        &out.join("tld_test_618.skel.rs"),
        &[],
    );
    // Looks keys up over hostile pages and caches, for tests/tests/hostile.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_fuzz.bpf.c"),
        &out.join("tld_fuzz.skel.rs"),
        &[],
    );
    // The same for the 6.18 generation (start in the page rather than in the value).
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_fuzz_618.bpf.c"),
        &out.join("tld_fuzz_618.skel.rs"),
        &[],
    );
    // Our header reading the kernel's own C library and other foreign writers, in both
    // generations, for tests/tests/kernel_library.rs.
    for name in ["tld_kernel_lib", "tld_kernel_lib_618"] {
        tld_bpf_build::build_skeleton(
            &bpf.join(format!("{name}.bpf.c")),
            &out.join(format!("{name}.skel.rs")),
            &[],
        );
    }
    // A reader with the guard's check, for tests/tests/guard.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_guard_test.bpf.c"),
        &out.join("tld_guard_test.skel.rs"),
        &[],
    );
    // Stale writers and look-alike maps, for the isolation and connect tests.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_isolation.bpf.c"),
        &out.join("tld_isolation.skel.rs"),
        &[],
    );
    // Written against the generated header.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_typed.bpf.c"),
        &out.join("tld_typed.skel.rs"),
        &[&out],
    );
    // Every key that the C, C++, Python and plugin parts of the libtld tests set, read by name
    // from a thread's element (tests/tests/libtld_*.rs).
    tld_bpf_build::build_skeleton(&bpf.join("tld_c.bpf.c"), &out.join("tld_c.skel.rs"), &[]);
    // Consistent hints read and written under their counter, for tests/tests/consistent.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_consistent.bpf.c"),
        &out.join("tld_consistent.skel.rs"),
        &[&out],
    );
    // The common ways of calling the consistent API, for tests/tests/consistent_patterns.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_consistent_patterns.bpf.c"),
        &out.join("tld_consistent_patterns.skel.rs"),
        &[&out],
    );
}
