//! BPF compiled against the generated header reads a nested derived struct field by field, for
//! 32 threads, and writes one field back. This binary links exactly the hints the header was
//! generated from, so every page carries the header's layout fingerprint and BPF reads at
//! constant offsets.

#[test]
fn bpf_reads_a_nested_struct_at_constant_offsets_per_thread() {
    tld_tests::typed::check_typed_reads(
        "bpf_reads_a_nested_struct_at_constant_offsets_per_thread",
        true,
    );
}
