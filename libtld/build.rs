//! Compiles the thread-local that tld.h's fast path reads, and gives libtld.so its soname and
//! its exported thread-local.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/page.c");
    println!("cargo:rerun-if-changed=include/tld.h");
    cc::Build::new()
        .file("src/page.c")
        .include("include")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("tld_page");

    // rustc exports the C functions of a cdylib with a version script of its own; the
    // thread-local comes from C, so a second script exports it too.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = out.join("tld-exports.map");
    std::fs::write(&script, "{ global: __tld_thread_page; };\n").expect("write the version script");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        script.display()
    );
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtld.so.0");
    // For build scripts of crates that compile C against tld.h (links = "tld").
    let include = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("include");
    println!("cargo:include={}", include.display());
}
