//! Builds the scheduler's BPF side the way sched_ext schedulers in Rust are built, with
//! `scx_cargo::BpfBuilder` (scx's headers and `vmlinux.h`), against a header generated from the
//! hints crate that applications link:
//! 1. link `tld-sched-hints` into this build script (the `use` below);
//! 2. write `tld_generated.h` for exactly those hints, with `task_local_data.bpf.h` next to it;
//! 3. compile `src/bpf/main.bpf.c` with that directory first on the include path.

// Without this line the hints crate is not linked, and the header has no keys.
use tld_sched_hints as _;

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let generated = out.join("tld");
    std::fs::create_dir_all(&generated).expect("create OUT_DIR/tld");
    tld_runtime::header::write(generated.join("tld_generated.h")).expect("write tld_generated.h");

    // scx_cargo runs `$BPF_CLANG`, or `clang`, which on Debian is clang 14: it drops the uptr type
    // tag, and the verifier then rejects every access to a hint. The workspace's
    // .cargo/config.toml sets BPF_CLANG=clang-19; TLD_CLANG, as for the other BPF builds of
    // this repository, takes precedence.
    let clang_env = tld_wire::paths::CLANG_ENV;
    println!("cargo:rerun-if-env-changed={clang_env}");
    if let Some(clang) = std::env::var_os(clang_env) {
        std::env::set_var("BPF_CLANG", clang);
    } else if std::env::var_os("BPF_CLANG").is_none() {
        std::env::set_var("BPF_CLANG", "clang-19");
    }

    let mut builder = scx_cargo::BpfBuilder::new()
        .expect("set up the BPF build (is clang-19 installed? `make deps` installs it)");
    builder
        .add_include_path(generated.to_str().expect("OUT_DIR is UTF-8"))
        .enable_skel("src/bpf/main.bpf.c", "bpf");
    if let Err(e) = builder.build() {
        panic!("building src/bpf/main.bpf.c failed: {e:#}");
    }
    println!("cargo:rerun-if-changed={}", generated.display());
}
