//! Builds the test BPF programs, the way a scheduler's build script would:
//! 1. link the hints crates in, and generate `tld_generated.h` from their declarations;
//! 2. compile the BPF C against it into libbpf-rs skeletons.
use std::path::PathBuf;

// Name the hints crates, or linkme drops their hints from this build script.
use tld_test_hints_a as _;
use tld_test_hints_b as _;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    tld_runtime::header::write(out.join("tld_generated.h")).expect("generate tld_generated.h");

    let bpf = tld_bpf_build::bpf_dir();
    // Written against the raw API with a hand-written struct tld_offsets, as a BPF author
    // without a generated header (or with scx's header) would.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_test.bpf.c"),
        &out.join("tld_test.skel.rs"),
        &[],
    );
    // The same with the cache in its own map (TLD_SEPARATE_CACHE), for tests/tests/cache_home.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_test_separate.bpf.c"),
        &out.join("tld_test_separate.skel.rs"),
        &[],
    );
    // Looks keys up over hostile pages and caches, for tests/tests/hostile.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_fuzz.bpf.c"),
        &out.join("tld_fuzz.skel.rs"),
        &[],
    );
    // The same, with the cache in tld_data_map's element (the header's default).
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_fuzz_value.bpf.c"),
        &out.join("tld_fuzz_value.skel.rs"),
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
    // The BPF side of the kernel's selftest scenario against libtld.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_ktest.bpf.c"),
        &out.join("tld_ktest.skel.rs"),
        &[],
    );
    // Consistent hints read and written under their counter, for tests/tests/consistent.rs.
    tld_bpf_build::build_skeleton(
        &bpf.join("tld_consistent.bpf.c"),
        &out.join("tld_consistent.skel.rs"),
        &[&out],
    );
}
