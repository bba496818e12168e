//! The BPF header and the runtime agree on every number of the wire format: a C file that
//! includes `task_local_data.bpf.h` asserts each of `tld_runtime::wire`'s constants, and
//! clang-19 must accept it. A header edited on one side only fails here.

use tld_runtime::wire;

// Link the test hints in (the header is generated for them).
use tld_tests as _;

#[test]
fn the_bpf_header_has_the_runtime_s_wire_numbers() {
    let dir = std::env::temp_dir().join(format!("tld-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The generated header, with the library headers next to it, as a BPF build gets them.
    tld_runtime::header::write(dir.join("tld_generated.h")).expect("write the header");

    let page = 4096;
    let checks = [
        ("TLD_NAME_LEN", wire::NAME_LEN),
        ("TLD_MAX_ENTRIES", wire::max_entries(page)),
        ("sizeof(struct tld_metadata)", wire::META_ENTRY_SIZE),
        (
            "__builtin_offsetof(struct tld_metadata, size)",
            wire::ENTRY_SIZE_OFFSET,
        ),
        (
            "__builtin_offsetof(struct tld_meta_u, cnt)",
            wire::META_CNT_OFFSET,
        ),
        (
            "__builtin_offsetof(struct tld_meta_u, size)",
            wire::META_SIZE_OFFSET,
        ),
        (
            "__builtin_offsetof(struct tld_meta_u, metadata)",
            wire::META_ENTRIES_OFFSET,
        ),
        ("sizeof(struct tld_meta_u)", wire::meta_bytes(page)),
        (
            "__builtin_offsetof(struct tld_data_u, start)",
            wire::DATA_START_FIELD,
        ),
        (
            "__builtin_offsetof(struct tld_data_u, data)",
            wire::DATA_START,
        ),
        ("sizeof(struct tld_data_u)", page),
        ("sizeof(struct tld_map_value)", wire::MAP_VALUE_SIZE_7),
        (
            "__builtin_offsetof(struct tld_map_value, start)",
            wire::MAP_VALUE_START_OFFSET,
        ),
        ("TLD_LAYOUT_PAGE_SIZE", page),
        ("TLD_SEQ_VALUE_OFFSET", wire::SEQ_VALUE_OFFSET),
        (
            "__builtin_offsetof(struct tld_consistent_seq_value4, seq)",
            wire::SEQ_OFFSET,
        ),
        (
            "__builtin_offsetof(struct tld_consistent_seq_value4, value)",
            wire::SEQ_VALUE_OFFSET,
        ),
        (
            "__builtin_offsetof(struct tld_consistent_seq_value4, value[1])",
            wire::seq_copy_offset(32, 1),
        ),
        ("TLD_SEQ_LATCH", wire::SEQ_LATCH as usize),
        ("TLD_SEQ_CLAIM_THREAD", wire::SEQ_CLAIM_THREAD as usize),
        ("TLD_SEQ_CLAIM_BPF", wire::SEQ_CLAIM_BPF as usize),
        ("TLD_SEQ_CLAIMS", wire::SEQ_CLAIMS as usize),
        ("TLD_SEQ_WANT", wire::SEQ_WANT as usize),
        ("TLD_SEQ_ONE", wire::SEQ_ONE as usize),
        ("TLD_SEQ_COPY(0x35ULL)", wire::seq_copy(0x35)),
        ("TLD_SEQ_COPY(0x21ULL)", wire::seq_copy(0x21)),
        (
            "TLD_SEQ_COPY_WHOLE(0x35ULL, 0x49ULL)",
            usize::from(wire::seq_copy_whole(0x35, 0x49)),
        ),
        (
            "TLD_SEQ_COPY_WHOLE(0x35ULL, 0x41ULL)",
            usize::from(wire::seq_copy_whole(0x35, 0x41)),
        ),
        (
            "TLD_SEQ_COPY_WHOLE(0x35ULL, 0x43ULL)",
            usize::from(wire::seq_copy_whole(0x35, 0x43)),
        ),
        ("TLD_SIZE_seq_value4", wire::consistent_size(32)),
        (
            "sizeof(struct tld_consistent_seq_small)",
            wire::consistent_size(6),
        ),
    ];
    let mut source = String::from(
        "#include \"tld_vmlinux.h\"\n#include \"tld_generated.h\"\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n",
    );
    for (c, value) in checks {
        source.push_str(&format!(
            "_Static_assert({c} == {value}, \"{c} is not {value}, as tld_runtime::wire says\");\n"
        ));
    }
    // The fingerprint sits where the runtime writes it, and the data area starts after it.
    source.push_str(&format!(
        "_Static_assert(TLD_LAYOUT_START == {}, \"TLD_LAYOUT_START\");\n",
        wire::FINGERPRINT_START
    ));
    let file = dir.join("wire_check.bpf.c");
    std::fs::write(&file, source).unwrap();
    if let Err(diagnostics) = tld_bpf_build::compile_check(&file, &[&dir], &dir.join("libbpf")) {
        panic!("the BPF header disagrees with tld_runtime::wire:\n{diagnostics}");
    }
    // The 6.18 generation's value, for maps shared with scx's header.
    let six = dir.join("wire_check_618.bpf.c");
    std::fs::write(
        &six,
        format!(
            "#define TLD_GEN_6_18
#include \"tld_vmlinux.h\"
#include \"tld_generated.h\"
\
             _Static_assert(sizeof(struct tld_map_value) == {}, \"6.18's value\");
\
             _Static_assert(TLD_GENERATION == 618, \"the generation\");
",
            wire::MAP_VALUE_SIZE
        ),
    )
    .unwrap();
    if let Err(diagnostics) = tld_bpf_build::compile_check(&six, &[&dir], &dir.join("libbpf")) {
        panic!("the BPF header's 6.18 value disagrees with tld_runtime::wire:\n{diagnostics}");
    }
    // And the check can fail: a wrong number is caught.
    let wrong = dir.join("wire_wrong.bpf.c");
    std::fs::write(
        &wrong,
        format!(
            "#include \"tld_vmlinux.h\"\n#include \"tld_generated.h\"\n\
             _Static_assert(TLD_NAME_LEN == {}, \"off by one\");\n",
            wire::NAME_LEN + 1
        ),
    )
    .unwrap();
    let err = tld_bpf_build::compile_check(&wrong, &[&dir], &dir.join("libbpf")).unwrap_err();
    assert!(err.contains("off by one"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
