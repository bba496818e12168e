//! The same typed reads as `typed.rs`, in a binary with one more hint than the generated header
//! knows. The layout differs from the header's (the extra key sorts between others and moves
//! them), so the pages do not carry the header's fingerprint: BPF must notice, resolve every key
//! by name through its per-task cache, and read the same values.

use tld_runtime::task_local_data;

/// Not in the generated header. "extra" sorts between "dummy" and "hint_a".
#[task_local_data]
static EXTRA: u64 = 0;

#[test]
fn bpf_reads_the_same_values_when_the_layout_differs_from_the_header() {
    EXTRA.set(1);
    tld_tests::typed::check_typed_reads(
        "bpf_reads_the_same_values_when_the_layout_differs_from_the_header",
        false,
    );
    assert_eq!(EXTRA.get(), 1);
}
