//! The user documentation (`README.md` and the guides in `docs/`) says only what is true of this
//! repository: every snippet is checked by a test, every relative link resolves, and every
//! command it names exists.
//!
//! The convention, by the info string of a fenced block:
//!
//! | info string | what it is | checked by |
//! |---|---|---|
//! | `rust` | a Rust program | compiled and run as a doctest of this crate (`src/docs.rs`) |
//! | `rust,no_run` | a Rust program that needs a BPF kernel, or a build script | compiled as a doctest |
//! | `c` | a whole BPF program | compiled with clang-19 and loaded (`tld-examples`' `snippets` test) |
//! | `c libtld` | a user-space C file | compiled with gcc against `tld.h` (`libtld_header` test) |
//! | `c fragment` | C declarations shown for reading | nothing |
//! | `sh`, `console` | shell commands | here: each `make` target and `cargo` package and binary exists |
//! | `text` | anything else | nothing |
//!
//! Any other info string (`rust,ignore` among them, and a fence without one, which rustdoc
//! would compile as Rust) fails this test. The test also checks that every file with a Rust
//! block is included in `src/docs.rs`, so that no guide's Rust goes uncompiled.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The info strings a fence may carry.
const KNOWN: &[&str] = &[
    "rust",
    "rust,no_run",
    "c",
    "c libtld",
    "c fragment",
    "sh",
    "console",
    "text",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `README.md` and every Markdown file of `docs/`, relative to the repository's root.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut guides: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| Path::new("docs").join(p.file_name().unwrap()))
        .collect();
    guides.sort();
    assert!(
        guides.len() >= 8,
        "docs/ has {} guides, expected the eight the README links to",
        guides.len()
    );
    files.extend(guides);
    files
}

fn read(rel: &Path) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{}: {e}", rel.display()))
}

/// A fenced block: its info string, its first line's number (1-based) and its lines.
struct Block {
    info: String,
    line: usize,
    body: Vec<String>,
}

/// The fenced blocks of a Markdown text, and its lines outside them (with their numbers).
fn split(text: &str, file: &Path) -> (Vec<Block>, Vec<(usize, String)>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut open, fence) {
            (None, true) => {
                open = Some(Block {
                    info: line.trim().trim_start_matches('`').trim().to_string(),
                    line: i + 1,
                    body: Vec::new(),
                })
            }
            (None, false) => prose.push((i + 1, line.to_string())),
            (Some(_), true) => {
                assert!(
                    line.trim() == "```",
                    "{}:{}: a fence opens inside another block",
                    file.display(),
                    i + 1
                );
                blocks.push(open.take().unwrap());
            }
            (Some(b), false) => b.body.push(line.to_string()),
        }
    }
    if let Some(b) = open {
        panic!("{}:{}: the block is not closed", file.display(), b.line);
    }
    (blocks, prose)
}

#[test]
fn every_block_says_how_it_is_checked() {
    let mut rust_files = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for file in documents() {
        let (blocks, _) = split(&read(&file), &file);
        for b in &blocks {
            assert!(
                KNOWN.contains(&b.info.as_str()),
                "{}:{}: the info string {:?} is none of {KNOWN:?} (see this test's \
                 documentation for what each means)",
                file.display(),
                b.line,
                b.info
            );
            *counts.entry(b.info.clone()).or_default() += 1;
        }
        if blocks.iter().any(|b| b.info.starts_with("rust")) {
            rust_files.push(file);
        }
    }
    // A changed convention must not leave this test (or the ones it relies on) checking
    // nothing.
    for (info, at_least) in [("rust", 5), ("rust,no_run", 2), ("c", 4), ("c libtld", 1)] {
        let found = counts.get(info).copied().unwrap_or(0);
        assert!(
            found >= at_least,
            "expected at least {at_least} ```{info} blocks in the documentation, found {found}"
        );
    }
    let harness = read(Path::new("tests/src/docs.rs"));
    for file in rust_files {
        let include = format!("include_str!(\"../../{}\")", file.display());
        assert!(
            harness.contains(&include),
            "{} has Rust blocks, but tests/src/docs.rs does not include it ({include}), so \
             they are never compiled",
            file.display()
        );
    }
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(rel: &Path) -> BTreeSet<String> {
    let text = read(rel);
    let (_, prose) = split(&text, rel);
    prose
        .iter()
        .filter_map(|(_, l)| {
            let t = l.trim_start();
            let hashes = t.chars().take_while(|&c| c == '#').count();
            (hashes > 0 && t[hashes..].starts_with(' ')).then(|| slug(&t[hashes..]))
        })
        .collect()
}

/// The targets of the inline links `[text](target)` of a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
            rest = &rest[end + 1..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut checked = 0;
    for file in documents() {
        let (_, prose) = split(&read(&file), &file);
        let dir = file.parent().unwrap_or(Path::new(""));
        for (line, text) in &prose {
            for target in link_targets(text) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                let on_disk = root().join(&resolved);
                assert!(
                    on_disk.exists(),
                    "{}:{line}: the link {target:?} points at {}, which does not exist",
                    file.display(),
                    resolved.display()
                );
                if let Some(anchor) = anchor {
                    assert!(
                        resolved.extension().is_some_and(|e| e == "md"),
                        "{}:{line}: the link {target:?} has an anchor into a file that is not \
                         Markdown",
                        file.display()
                    );
                    // Normalise docs/../README.md to README.md.
                    let canonical = on_disk.canonicalize().unwrap();
                    let rel = canonical
                        .strip_prefix(root().canonicalize().unwrap())
                        .unwrap()
                        .to_path_buf();
                    assert!(
                        anchors(&rel).contains(anchor),
                        "{}:{line}: the link {target:?}: {} has no heading with the anchor \
                         #{anchor}",
                        file.display(),
                        rel.display()
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} relative links were found");
}

/// The workspace's packages: name, directory and binaries.
fn packages() -> Vec<(String, PathBuf, BTreeSet<String>)> {
    let manifest = read(Path::new("Cargo.toml"));
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("the workspace's members")
        .0;
    let mut out = Vec::new();
    for member in members.split(',') {
        let member = member.trim().trim_matches('"');
        if member.is_empty() {
            continue;
        }
        let dir = root().join(member);
        let toml = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a member's manifest");
        let mut name = None;
        let mut bins = BTreeSet::new();
        let mut section = String::new();
        for line in toml.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_string();
            } else if let Some(value) = line
                .strip_prefix("name")
                .and_then(|v| v.trim_start().strip_prefix('='))
            {
                let value = value.trim().trim_matches('"').to_string();
                match section.as_str() {
                    "[package]" => name = Some(value),
                    "[[bin]]" => {
                        bins.insert(value);
                    }
                    _ => {}
                }
            }
        }
        let name = name.expect("a package name");
        if dir.join("src/main.rs").exists() {
            bins.insert(name.clone());
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("src/bin")) {
            for e in entries {
                let path = e.unwrap().path();
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                if path.is_dir() && path.join("main.rs").exists()
                    || path.extension().is_some_and(|e| e == "rs")
                {
                    bins.insert(stem);
                }
            }
        }
        out.push((name, dir, bins));
    }
    out
}

/// The Makefile's targets.
fn make_targets() -> BTreeSet<String> {
    read(Path::new("Makefile"))
        .lines()
        .filter_map(|l| {
            let (target, _) = l.split_once(':')?;
            let ok = !target.is_empty()
                && !l.starts_with(['\t', '#', ' ', '.'])
                && !l.contains(":=")
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            ok.then(|| target.to_string())
        })
        .collect()
}

/// The commands a document names: the lines of its shell blocks, and its inline code spans
/// that start with `make ` or `cargo `.
fn commands(file: &Path) -> Vec<(usize, String)> {
    let (blocks, prose) = split(&read(file), file);
    let mut out = Vec::new();
    for b in blocks
        .iter()
        .filter(|b| b.info == "sh" || b.info == "console")
    {
        for (i, l) in b.body.iter().enumerate() {
            let l = l.trim_start().trim_start_matches(['#', '$']).trim_start();
            let l = l.split(" #").next().unwrap_or(l);
            out.push((b.line + 1 + i, l.to_string()));
        }
    }
    // Code spans may wrap across lines: scan the prose as one text.
    let numbers: Vec<usize> = prose.iter().map(|(n, _)| *n).collect();
    let text: Vec<String> = prose.into_iter().map(|(_, l)| l).collect();
    for (offset, span) in code_spans(&text.join("\n")) {
        let span = span.replace('\n', " ");
        if span.starts_with("make ") || span.starts_with("cargo ") {
            out.push((numbers[offset], span));
        }
    }
    out
}

/// The code spans of Markdown prose, with the number of lines before each: a run of n
/// backticks opens a span that the next run of exactly n backticks closes.
fn code_spans(text: &str) -> Vec<(usize, String)> {
    let bytes = text.as_bytes();
    let run = |at: usize| bytes[at..].iter().take_while(|&&b| b == b'`').count();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run(i);
        let start = i + n;
        let mut j = start;
        let mut end = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let m = run(j);
                if m == n {
                    end = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match end {
            Some(end) => {
                let lines = text[..i].matches('\n').count();
                out.push((lines, text[start..end].trim().to_string()));
                i = end + n;
            }
            None => i = start,
        }
    }
    out
}

#[test]
fn every_command_names_a_real_target_package_and_binary() {
    let targets = make_targets();
    assert!(
        targets.contains("demo") && targets.contains("test"),
        "the Makefile's targets were not found: {targets:?}"
    );
    let packages = packages();
    let (mut makes, mut cargos) = (0, 0);
    for file in documents() {
        for (line, command) in commands(&file) {
            let words: Vec<&str> = command.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                let where_ = format!("{}:{line}: `{command}`", file.display());
                if *w == "make" {
                    // Options and VAR=value are not targets; the first other word is.
                    if let Some(target) = words[i + 1..]
                        .iter()
                        .find(|a| !a.starts_with('-') && !a.contains('='))
                    {
                        let target = target.trim_end_matches([';', ')', ',']);
                        assert!(
                            targets.contains(target),
                            "{where_}: the Makefile has no target {target:?}"
                        );
                        makes += 1;
                    }
                }
                if *w == "cargo" {
                    let arg = |flag: &str| {
                        words[i..]
                            .iter()
                            .position(|a| *a == flag)
                            .and_then(|p| words.get(i + p + 1))
                            .map(|a| a.to_string())
                    };
                    if let Some(package) = arg("-p") {
                        let found = packages.iter().find(|(name, _, _)| *name == package);
                        let Some((_, _, bins)) = found else {
                            panic!("{where_}: the workspace has no package {package:?}");
                        };
                        if let Some(bin) = arg("--bin") {
                            assert!(
                                bins.contains(&bin),
                                "{where_}: {package} has no binary {bin:?} (it has {bins:?})"
                            );
                        }
                        cargos += 1;
                    }
                    if let Some(path) = arg("--path") {
                        assert!(
                            root().join(&path).join("Cargo.toml").exists(),
                            "{where_}: {path} is not a package"
                        );
                        cargos += 1;
                    }
                }
            }
        }
    }
    assert!(makes >= 5, "only {makes} make commands were found");
    assert!(cargos >= 5, "only {cargos} cargo commands were found");
}

#[test]
fn code_spans_are_found_as_markdown_finds_them() {
    let spans = code_spans("a `make demo` b ` ```rust ` c `cargo run\n-p x`");
    let texts: Vec<&str> = spans.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(texts, ["make demo", "```rust", "cargo run\n-p x"]);
    assert_eq!(spans[2].0, 0);
}

#[test]
fn the_slugs_are_githubs() {
    assert_eq!(
        slug(" Consistent hints: BPF never sees half of an update"),
        "consistent-hints-bpf-never-sees-half-of-an-update"
    );
    assert_eq!(
        slug(" `fork`, `exec` and thread exit"),
        "fork-exec-and-thread-exit"
    );
    assert_eq!(
        slug(" Wake-up latency: `make demo-sched`"),
        "wake-up-latency-make-demo-sched"
    );
}
