//! The generated header: deterministic, complete, accepted by clang-19, a layout that drifts
//! from the Rust declaration fails the BPF build on a `_Static_assert`, and a missing
//! prerequisite (kernel types, libbpf's headers) stops the build with one `#error` that names
//! the include to add. (`header_matrix.rs` compiles it in every kind of build.)

use std::path::{Path, PathBuf};
use std::process::Command;

// Link the test hints in (linkme drops the hints of crates nothing names).
use tld_tests as _;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tld-header-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles a BPF C file that includes the header text given, as a scheduler would.
fn compile(dir: &Path, header: &str) -> Result<(), String> {
    compile_body(
        dir,
        header,
        "\tstruct Nested *n;\n\n\
         \tif (bpf_tld_init(bpf_get_current_task_btf(), &tld))\n\t\treturn 0;\n\
         \tn = bpf_tld_get(&tld, nested);\n\treturn n ? n->pair[1].x : 0;\n",
    )
}

/// Compiles a program whose body (after `struct bpf_tld tld;`) is `body`.
fn compile_body(dir: &Path, header: &str, body: &str) -> Result<(), String> {
    std::fs::write(dir.join("tld_generated.h"), header).unwrap();
    let source = dir.join("use_header.bpf.c");
    std::fs::write(
        &source,
        format!(
            "#include \"tld_vmlinux.h\"\n#include \"tld_generated.h\"\n\
             char LICENSE[] SEC(\"license\") = \"GPL\";\n\
             SEC(\"syscall\") int prog(void *ctx)\n{{\n\
             \tstruct bpf_tld tld;\n{body}}}\n"
        ),
    )
    .unwrap();
    tld_bpf_build::compile_check(&source, &[dir], &dir.join("libbpf"))
}

#[test]
fn the_header_is_deterministic_and_complete() {
    let text = tld_runtime::header::generate();
    assert_eq!(text, tld_runtime::header::generate(), "two runs differ");

    // Every key of this binary, in key order, in the offsets struct.
    let keys = [
        "dummy",
        "hint_a",
        "hint_b",
        "nested",
        "seq_big",
        "seq_small",
        "seq_value4",
        "test_basic_value4",
        "value1",
    ];
    let body: String = keys.iter().map(|k| format!("\t__s16 {k};\n")).collect();
    assert!(
        text.contains(&format!("struct tld_offsets {{\n{body}}};")),
        "{text}"
    );

    // The C types of the Rust types.
    for line in [
        "typedef __s32 __tld_type_value1;",
        "typedef __u64 __tld_type_hint_a;",
        "typedef __u32 __tld_type_hint_b;",
        "typedef __u8 __tld_type_dummy[1000];",
        "typedef struct TestStruct __tld_type_test_basic_value4;",
        "typedef struct Nested __tld_type_nested;",
        "#define TLD_KEY_nested \"nested\"",
        "#define TLD_SIZE_dummy 1000",
        "\tstruct Inner pair[2];",
        "\t__u16 weights[4];",
        "\tdouble score;",
        "#include \"task_local_data.bpf.h\"",
        // A consistent key: its entry is the sequence word and then two copies of the value,
        // pinned by asserts.
        "#define TLD_CONSISTENT_seq_value4 1",
        "#define TLD_CONSISTENT_nested 0",
        "#define TLD_SIZE_seq_value4 72",
        "typedef struct TestStruct __tld_value_type_seq_value4;",
        "struct tld_consistent_seq_value4 {\n\t__u64 seq;",
        "\t__tld_value_type_seq_value4 value[2];\n};",
        "typedef struct tld_consistent_seq_value4 __tld_type_seq_value4;",
        "_Static_assert(__builtin_offsetof(struct tld_consistent_seq_value4, value) == 8,",
        "_Static_assert(__builtin_offsetof(struct tld_consistent_seq_value4, value[1]) == 40,",
        "_Static_assert(sizeof(__tld_type_seq_value4) == 72,",
        "#define TLD_SIZE_seq_small 24",
        "typedef __u16 __tld_value_type_seq_small[3];",
        "_Static_assert(sizeof(__tld_value_type_seq_small) == 6,",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    // Nested structs come before the structs that use them.
    let inner = text.find("struct Inner {").expect("struct Inner");
    let nested = text.find("struct Nested {").expect("struct Nested");
    assert!(inner < nested, "struct Inner must precede struct Nested");
    assert!(text.contains(
        "_Static_assert(__builtin_offsetof(struct Nested, score) == 40, \"tld: Nested.score"
    ));
}

#[test]
fn the_header_compiles_with_clang_19_and_catches_layout_drift() {
    let dir = scratch("drift");
    let text = tld_runtime::header::generate();
    compile(&dir, &text).expect("the generated header must compile");

    // A struct changed on one side only: C now has a wider field.
    let drifted = text.replacen("\t__u32 x;", "\t__u64 x;", 1);
    assert_ne!(drifted, text);
    let err = compile(&dir, &drifted).expect_err("a drifted layout must not compile");
    assert!(
        err.contains("tld: struct Inner is not the size of tld_test_hints_a::Inner")
            && err.contains("tld: Inner.y is not where tld_test_hints_a::Inner has it"),
        "clang did not report the drift:\n{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `bpf_tld_read_consistent()` and `bpf_tld_write_consistent()` take consistent keys only, and
/// only pointers to the key's value type; a consistent entry whose layout drifts fails the build.
#[test]
fn consistent_accesses_are_checked_when_the_bpf_program_compiles() {
    let dir = scratch("consistent");
    let text = tld_runtime::header::generate();
    let init = "\tif (bpf_tld_init(bpf_get_current_task_btf(), &tld))\n\t\treturn 0;\n";
    let good = format!(
        "\tstruct TestStruct v = {{}};\n\t__u16 small[3] = {{}};\n{init}\
         \tif (bpf_tld_read_consistent(&tld, seq_value4, &v))\n\t\treturn 1;\n\
         \tif (bpf_tld_read_consistent(&tld, seq_small, &small))\n\t\treturn 1;\n\
         \treturn bpf_tld_write_consistent(&tld, seq_value4, &v);\n"
    );
    compile_body(&dir, &text, &good).expect("consistent reads and writes must compile");

    let plain_key = format!(
        "\tstruct TestStruct v = {{}};\n{init}\
         \treturn bpf_tld_read_consistent(&tld, test_basic_value4, &v);\n"
    );
    let err = compile_body(&dir, &text, &plain_key).expect_err("a plain key must be refused");
    assert!(
        err.contains("tld: key test_basic_value4 is not a consistent hint"),
        "{err}"
    );

    let wrong_type = format!(
        "\t__u64 v[4] = {{}};\n{init}\treturn bpf_tld_write_consistent(&tld, seq_value4, &v);\n"
    );
    let err = compile_body(&dir, &text, &wrong_type).expect_err("a wrong type must be refused");
    assert!(
        err.contains("must point to the key's value type, __tld_value_type_seq_value4"),
        "{err}"
    );

    // The value type drifts on the C side: the entry's size no longer matches the runtime's.
    let drifted = text.replacen(
        "typedef __u16 __tld_value_type_seq_small[3];",
        "typedef __u16 __tld_value_type_seq_small[5];",
        1,
    );
    assert_ne!(drifted, text);
    let err = compile_body(&dir, &drifted, "\treturn 0;\n").expect_err("drift must not compile");
    assert!(
        err.contains("tld: the C type of key seq_small does not match [u16; 3]"),
        "{err}"
    );

    // Without a generated header: the program declares the key and its value type.
    tld_runtime::header::write(dir.join("tld_generated.h")).unwrap();
    let source = dir.join("headerless.bpf.c");
    std::fs::write(
        &source,
        "#include \"tld_vmlinux.h\"\n\
         struct tld_offsets { __s16 budget; __s16 big; };\n\
         struct Budget { __u64 slice_ns; __u32 weight; __u32 class; };\n\
         typedef struct Budget __tld_value_type_budget;\n\
         typedef __u64 __tld_value_type_big[128];\n\
         #include \"task_local_data.bpf.h\"\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n\
         __u64 big[128];\n\
         SEC(\"syscall\") int prog(void *ctx)\n{\n\
         \tstruct bpf_tld tld;\n\tstruct Budget b = {};\n\
         \tif (bpf_tld_init(bpf_get_current_task_btf(), &tld))\n\t\treturn 0;\n\
         \tif (bpf_tld_read_consistent(&tld, budget, &b))\n\t\treturn 0;\n\
         \t/* 1024 bytes, TLD_SEQ_MAX_SIZE: copied in pieces of 64 */\n\
         \tif (bpf_tld_read_consistent(&tld, big, &big))\n\t\treturn 0;\n\
         \tbpf_tld_write_consistent(&tld, big, &big);\n\
         \tb.weight++;\n\treturn bpf_tld_write_consistent(&tld, budget, &b);\n}\n",
    )
    .unwrap();
    tld_bpf_build::compile_check(&source, &[&dir], &dir.join("libbpf"))
        .expect("consistent access without a generated header must compile");
    // One element more than BPF copies: refused with the limit's name.
    let text = std::fs::read_to_string(&source)
        .unwrap()
        .replace("[128]", "[129]");
    std::fs::write(&source, text).unwrap();
    let err = tld_bpf_build::compile_check(&source, &[&dir], &dir.join("libbpf"))
        .expect_err("a value over TLD_SEQ_MAX_SIZE must be refused");
    assert!(
        err.contains("copy values of up to TLD_SEQ_MAX_SIZE (1024) bytes; big is larger"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn header_write_only_rewrites_changed_files() {
    let dir = scratch("write");
    let path = dir.join("tld_generated.h");
    tld_runtime::header::write(&path).unwrap();
    let first = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    tld_runtime::header::write(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), first);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        tld_runtime::header::generate()
    );
    // The headers it builds on are written next to it, so one -I is enough.
    assert_eq!(
        std::fs::read_to_string(dir.join("task_local_data.bpf.h")).unwrap(),
        tld_runtime::header::BPF_HEADER
    );
    assert!(dir.join("tld_vmlinux.h").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// The generated header and the library header, copied into `dir` (with `tld_vmlinux.h` only
/// when `with_subset`), as `tld_runtime::header::write` leaves them.
fn generated_headers(dir: &Path, with_subset: bool) {
    std::fs::create_dir_all(dir).unwrap();
    tld_runtime::header::write(dir.join("tld_generated.h")).unwrap();
    if !with_subset {
        std::fs::remove_file(dir.join("tld_vmlinux.h")).unwrap();
    }
}

/// Compiles `source` with plain clang-19 and the given include directories, expecting failure;
/// returns the diagnostics.
fn expect_error(root: &Path, name: &str, source: &str, dirs: &[&Path]) -> String {
    let file = root.join(format!("{name}.bpf.c"));
    std::fs::write(&file, source).unwrap();
    let out = Command::new(tld_bpf_build::clang())
        .args([
            "-g",
            "-O2",
            "-target",
            "bpf",
            "-mcpu=v4",
            "-c",
            "-o",
            "/dev/null",
        ])
        .args(dirs.iter().map(|d| format!("-I{}", d.display())))
        .arg(&file)
        .output()
        .expect("running clang");
    assert!(
        !out.status.success(),
        "{name}: compiled, but a prerequisite is missing"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The errors clang reported, one per line that says `error:`.
fn errors(diagnostics: &str) -> Vec<&str> {
    diagnostics
        .lines()
        .filter(|l| l.contains("error:"))
        .collect()
}

#[test]
fn a_missing_prerequisite_stops_the_build_with_one_error_naming_the_include() {
    let root = std::env::temp_dir().join(format!("tld-header-prereq-{}", std::process::id()));
    let source = "#include \"tld_generated.h\"\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n";

    // No kernel types anywhere: the header names vmlinux.h and tld_vmlinux.h, and the build
    // stops there (the only other line is the fatal include that stops it).
    let bare = root.join("bare");
    generated_headers(&bare, false);
    let libbpf = tld_bpf_build::write_libbpf_headers(&root.join("libbpf")).unwrap();
    let diagnostics = expect_error(&root, "no_types", source, &[&bare, &libbpf]);
    let errs = errors(&diagnostics);
    assert!(
        errs.len() == 2
            && errs[0].contains("tld: no kernel types")
            && errs[0].contains("vmlinux.h")
            && errs[0].contains("tld_vmlinux.h")
            && errs[1].contains("fatal error")
            && errs[1].contains("'vmlinux.h' file not found"),
        "expected one #error naming the include, then a stop:\n{diagnostics}"
    );
    assert!(
        !diagnostics.contains("_Static_assert") && !diagnostics.contains("unknown type name"),
        "errors after the #error would read like a layout drift:\n{diagnostics}"
    );

    // Kernel types but no libbpf headers.
    let with_types = root.join("types");
    generated_headers(&with_types, true);
    let diagnostics = expect_error(&root, "no_helpers", source, &[&with_types]);
    let errs = errors(&diagnostics);
    // Where the system has libbpf headers of its own (Debian's libbpf-dev), older than 1.2,
    // they are found instead, and the header says they are too old.
    assert!(
        errs.len() == 2
            && (errs[0].contains("tld: <bpf/bpf_helpers.h> not found")
                || errs[0].contains("tld: the <bpf/bpf_helpers.h> found is older than libbpf 1.2"))
            && errs[1].contains("fatal error"),
        "expected one #error naming bpf_helpers.h, then a stop:\n{diagnostics}"
    );

    // scx's task_local_data.bpf.h and ours in one program: said plainly.
    let scx = "#define __TASK_LOCAL_DATA_BPF_H\n#include \"tld_generated.h\"\n";
    let diagnostics = expect_error(&root, "two_headers", scx, &[&with_types, &libbpf]);
    assert!(
        errors(&diagnostics)
            .first()
            .is_some_and(|e| e.contains("task_local_data.bpf.h is already included")),
        "{diagnostics}"
    );
    std::fs::remove_dir_all(&root).ok();
}
