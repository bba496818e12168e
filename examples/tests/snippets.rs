//! Every BPF C snippet a user may copy, from the READMEs, the guides in docs/ and the rustdoc, compiles with clang-19
//! and loads into the running kernel, licence line included.
//!
//! The snippets are the ```` ```c ```` blocks of `README.md`, of the guides in `docs/`,
//! `bpf/README.md`, `bpf-build/README.md`, and of the doc comments of `tld-runtime`,
//! `tld-macros` and `tld-bpf-build` (```` ```c libtld ```` and ```` ```c fragment ```` blocks are
//! not BPF programs: see `tests/tests/docs.rs` for the convention). Each is compiled on its own, with the header generated from the demo's hints
//! crate on the include path (the demo's hints), and its object is loaded with libbpf: the
//! verifier must accept every program in it. Loading needs root (or CAP_BPF + CAP_PERFMON) on
//! Linux 6.13 or later; without them the loading part says SKIPPED, and under
//! `TLD_REQUIRE_BPF=1` it fails instead.

use std::path::{Path, PathBuf};

/// A C snippet and where it came from.
struct Snippet {
    origin: String,
    source: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The ```` ```c ```` blocks of a Markdown file.
fn markdown_blocks(path: &Path) -> Vec<Snippet> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    blocks(&text.lines().map(str::to_string).collect::<Vec<_>>(), path)
}

/// The ```` ```c ```` blocks in the doc comments (`//!` and `///`) of a Rust file.
fn rustdoc_blocks(path: &Path) -> Vec<Snippet> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let body = t
                .strip_prefix("//!")
                .or_else(|| t.strip_prefix("///"))
                .unwrap_or("\u{0}");
            body.strip_prefix(' ').unwrap_or(body).to_string()
        })
        .collect();
    blocks(&doc, path)
}

fn blocks(lines: &[String], path: &Path) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in lines.iter().enumerate() {
        match &mut current {
            None if line.trim() == "```c" => current = Some((i + 1, String::new())),
            None => {}
            Some(_) if line.trim() == "```" => {
                let (start, source) = current.take().unwrap();
                out.push(Snippet {
                    origin: format!("{}:{}", path.display(), start),
                    source,
                });
            }
            Some((_, source)) => {
                source.push_str(line);
                source.push('\n');
            }
        }
    }
    assert!(
        current.is_none(),
        "{}: a ```c block is not closed",
        path.display()
    );
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every snippet, with how many each Markdown file must have (so that a changed fence cannot
/// make this test check nothing).
fn snippets() -> Vec<Snippet> {
    let root = root();
    let mut all = Vec::new();
    let mut files = vec![
        ("README.md".to_string(), 1),
        ("bpf/README.md".to_string(), 1),
        ("bpf-build/README.md".to_string(), 1),
    ];
    // Every guide; the BPF guide has three programs.
    let mut guides: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| {
            e.expect("a docs/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .collect();
    guides.sort();
    for guide in guides {
        let at_least = if guide == "bpf.md" { 3 } else { 0 };
        files.push((format!("docs/{guide}"), at_least));
    }
    for (file, at_least) in files {
        let found = markdown_blocks(&root.join(&file));
        assert!(
            found.len() >= at_least,
            "{file}: expected at least {at_least} C snippet(s), found {}",
            found.len()
        );
        all.extend(found);
    }
    let mut files = Vec::new();
    for dir in ["tld-runtime/src", "tld-macros/src", "bpf-build/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let rustdoc: Vec<Snippet> = files.iter().flat_map(|f| rustdoc_blocks(f)).collect();
    assert!(
        !rustdoc.is_empty(),
        "the rustdoc has no C snippet; the header module's example is one"
    );
    all.extend(rustdoc);
    all
}

/// libbpf's messages (the verifier's log among them), kept for failure reports.
static LOG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn keep_log(_level: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut log) = LOG.lock() {
        log.push_str(&msg);
    }
}

fn bpf_required() -> bool {
    std::env::var_os("TLD_REQUIRE_BPF").is_some_and(|v| v == "1")
}

#[test]
fn every_bpf_snippet_compiles_and_loads() {
    let scratch = std::env::temp_dir().join(format!("tld-snippets-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // OUT_DIR holds the demo's tld_generated.h, with task_local_data.bpf.h and tld_vmlinux.h
    // next to it (see build.rs): what a user's build script writes.
    let out = Path::new(env!("OUT_DIR"));
    let snippets = snippets();

    let mut objects = Vec::new();
    for (i, s) in snippets.iter().enumerate() {
        let file = scratch.join(format!("snippet{i}.bpf.c"));
        std::fs::write(&file, &s.source).unwrap();
        let object = scratch.join(format!("snippet{i}.bpf.o"));
        if let Err(diagnostics) =
            tld_bpf_build::compile_object(&file, &[out], &scratch.join("libbpf"), &object)
        {
            panic!(
                "the snippet at {} does not compile:\n{diagnostics}",
                s.origin
            );
        }
        assert!(
            s.source.contains("SEC(\"license\")"),
            "the snippet at {} has no licence line; BPF programs that read task local data \
             need a GPL-compatible one",
            s.origin
        );
        objects.push((s, object));
    }

    let quiet = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, keep_log)));
    for (s, object) in &objects {
        LOG.lock().unwrap().clear();
        let loaded = libbpf_rs::ObjectBuilder::default()
            .open_file(object)
            .and_then(|open| open.load());
        match loaded {
            Ok(obj) => {
                assert!(
                    obj.progs().count() > 0,
                    "the snippet at {} has no program to load",
                    s.origin
                );
            }
            Err(e) if !bpf_required() => {
                eprintln!(
                    "SKIPPED loading the snippet at {}: {e}. Loading needs root (or \
                     CAP_BPF+CAP_PERFMON) on Linux >= 6.13; TLD_REQUIRE_BPF=1 makes this a \
                     failure.",
                    s.origin
                );
            }
            Err(e) => {
                libbpf_rs::set_print(quiet);
                let log = LOG.lock().unwrap().clone();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "the snippet at {} compiles but does not load: {e:#}\n{}",
                    s.origin,
                    tail.join("\n")
                );
            }
        }
    }
    libbpf_rs::set_print(quiet);
    std::fs::remove_dir_all(&scratch).ok();
}
