//! `tld.h` under strict C and C++ compilers, and what `make install` puts in place: a program
//! built from the installed header, library and pkg-config file, linked with `libtld.so` or
//! `libtld.a`, runs (`tests/c/header_check.c`, `tests/c/header_check.cpp`). No BPF map is
//! needed: hints work as thread-locals, and the status says why. And every user-space C snippet
//! of the documentation (```` ```c libtld ```` blocks of `README.md`, of the guides in `docs/`
//! and of libtld's crate documentation) compiles against `tld.h`.

use std::path::Path;
use std::process::Command;

use tld_tests::c::{self, Compile};

fn run(program: &Path, what: &str) -> String {
    let mut cmd = Command::new(program);
    // No auto-connect, whatever is pinned on this machine.
    cmd.env("TLD_MAP_PATH", "");
    c::run_ok(&mut cmd, what)
}

#[test]
fn tld_h_builds_as_strict_c_and_its_api_works_without_a_map() {
    let program = Compile::c("header_check", &["header_check.c"])
        .args(&["-std=c11", "-pedantic"])
        .link_libtld()
        .build();
    let out = run(&program, "header_check (C)");
    assert!(out.contains("0 failures"));
}

#[test]
fn tld_h_builds_as_strict_cxx_with_its_typed_hints() {
    let program = Compile::cxx("header_check_cxx", &["header_check.cpp"])
        .args(&["-pedantic"])
        .link_libtld()
        .build();
    let out = run(&program, "header_check (C++)");
    assert!(out.contains("0 failures"));
}

/// The ```` ```c libtld ```` blocks of `text` (Markdown, or doc comments once their `//!` is
/// stripped), with the line each starts at.
fn snippets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        let line = line
            .strip_prefix("//!")
            .map_or(line, |l| l.strip_prefix(' ').unwrap_or(l));
        match &mut current {
            None if line.trim() == "```c libtld" => current = Some((i + 1, String::new())),
            None => {}
            Some(_) if line.trim() == "```" => out.push(current.take().unwrap()),
            Some((_, source)) => {
                source.push_str(line);
                source.push('\n');
            }
        }
    }
    out
}

#[test]
fn the_c_snippets_of_the_documentation_compile_against_tld_h() {
    let mut count = 0;
    let mut files = vec!["README.md".to_string(), "libtld/src/lib.rs".to_string()];
    let mut guides: Vec<String> = std::fs::read_dir(c::workspace().join("docs"))
        .expect("read docs/")
        .map(|e| {
            e.expect("a docs/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    guides.sort();
    files.extend(guides);
    for file in &files {
        let path = c::workspace().join(file);
        let text = std::fs::read_to_string(&path).expect("read the documentation");
        for (line, source) in snippets(&text) {
            let name = format!("snippet_{}_{line}", file.replace(['/', '.'], "_"));
            let c_file = c::artifacts().work.join(format!("{name}.c"));
            std::fs::write(&c_file, source).expect("write the snippet");
            let mut gcc = Command::new("gcc");
            gcc.args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-c"])
                .arg(format!("-I{}", c::include_dir().display()))
                .arg(&c_file)
                .arg("-o")
                .arg(c_file.with_extension("o"));
            c::run_ok(&mut gcc, &format!("{file}:{line}"));
            count += 1;
        }
    }
    assert!(count >= 2, "the snippets were found ({count})");
}

#[test]
fn make_install_installs_what_pkg_config_builds_against() {
    let artifacts = c::artifacts();
    let prefix = artifacts
        .work
        .join(format!("install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    // The profile of this test build: the install reuses what cargo built for it.
    let profile = artifacts
        .libtld_so
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|p| p.to_str())
        .map(|p| if p == "debug" { "dev" } else { p })
        .unwrap_or("dev");
    let make = Command::new("make")
        .current_dir(c::workspace())
        .args(["-s", "install"])
        .arg(format!("LIBTLD_PROFILE={profile}"))
        .arg(format!("PREFIX={}", prefix.display()))
        .output()
        .expect("run make");
    assert!(
        make.status.success(),
        "make install failed:\n{}",
        String::from_utf8_lossy(&make.stderr)
    );
    let lib = prefix.join("lib");
    for file in [
        "include/tld.h",
        "lib/libtld.so",
        "lib/libtld.so.0",
        "lib/libtld.a",
        "lib/pkgconfig/tld.pc",
    ] {
        assert!(prefix.join(file).exists(), "make install left out {file}");
    }
    let soname = Command::new("readelf")
        .arg("-d")
        .arg(lib.join("libtld.so"))
        .output()
        .expect("run readelf");
    assert!(String::from_utf8_lossy(&soname.stdout).contains("Library soname: [libtld.so.0]"));

    let pkg_config = |args: &[&str]| -> Vec<String> {
        let out = Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
            .args(args)
            .arg("tld")
            .output()
            .expect("run pkg-config");
        assert!(out.status.success(), "pkg-config {args:?} tld failed");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let source = c::workspace().join("tests/c/header_check.c");
    // Shared, through the soname.
    let shared = lib.parent().unwrap().join("header_check_shared");
    let mut gcc = Command::new("gcc");
    gcc.args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg(&source)
        .arg("-o")
        .arg(&shared)
        .args(pkg_config(&["--cflags", "--libs"]))
        .arg(format!("-Wl,-rpath,{}", lib.display()));
    c::run_ok(&mut gcc, "gcc with pkg-config (shared)");
    assert!(run(&shared, "header_check, linked with libtld.so").contains("0 failures"));
    // Static: libtld.a and what it needs (pkg-config --static).
    let fixed = lib.parent().unwrap().join("header_check_static");
    let mut gcc = Command::new("gcc");
    gcc.args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg(&source)
        .arg("-o")
        .arg(&fixed)
        .args(pkg_config(&["--cflags"]))
        .arg(lib.join("libtld.a"))
        .args(
            pkg_config(&["--libs", "--static"])
                .into_iter()
                .filter(|a| a != "-ltld"),
        );
    c::run_ok(&mut gcc, "gcc with pkg-config (static)");
    let ldd = Command::new("ldd").arg(&fixed).output().expect("run ldd");
    assert!(!String::from_utf8_lossy(&ldd.stdout).contains("libtld"));
    assert!(run(&fixed, "header_check, linked with libtld.a").contains("0 failures"));
    let _ = std::fs::remove_dir_all(&prefix);
}
