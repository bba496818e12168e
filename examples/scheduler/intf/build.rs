// SPDX-License-Identifier: GPL-2.0-only
//! Generates `$OUT_DIR/intf.rs` from the scheduler's `src/bpf/intf.h`: its `#define`d integer
//! constants, its structs (with their C layout checked) and their `_Static_assert`ed sizes.
//!
//! The parser knows only what the header uses, and fails the build on anything else, so that a
//! change to the header either shows up in Rust or stops the build; it never goes unnoticed.

#[path = "build/parse.rs"]
mod parse;

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let header = manifest.join("../src/bpf/intf.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=build/parse.rs");
    let text = std::fs::read_to_string(&header)
        .unwrap_or_else(|e| panic!("reading {}: {e}", header.display()));
    let items = match parse::parse(&text) {
        Ok(items) => items,
        Err(e) => panic!("{}: {e}", header.display()),
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rust = parse::to_rust(&items);
    std::fs::write(out.join("intf.rs"), rust).expect("write OUT_DIR/intf.rs");
}
