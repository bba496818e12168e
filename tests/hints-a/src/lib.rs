//! Test fixture: the test hints, declared in a crate of their own and found through linkme. The
//! tests' build script generates `tld_generated.h` from this crate and `hints-b`, so a test
//! binary that links only these two has exactly the header's layout (and its fingerprint).
use tld_runtime::{task_local_data, TldType};

/// A hint from crate A.
#[task_local_data]
pub static HINT_A: u64 = 0xA0A0_A0A0;

/// A small struct nested in [`Nested`].
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Inner {
    /// An unsigned field.
    pub x: u32,
    /// A signed field.
    pub y: i32,
}

/// A struct with nested structs, arrays of structs, arrays and a float.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Nested {
    /// A plain 64-bit field.
    pub id: u64,
    /// A nested struct.
    pub inner: Inner,
    /// An array of structs.
    pub pair: [Inner; 2],
    /// An array of integers.
    pub weights: [u16; 4],
    /// A float.
    pub score: f64,
    /// Bytes, a NUL-terminated string.
    pub tag: [u8; 8],
}

/// Key "nested".
#[task_local_data]
pub static NESTED: Nested = Nested {
    id: 1,
    inner: Inner { x: 2, y: -3 },
    pair: [Inner { x: 0, y: 0 }; 2],
    weights: [0; 4],
    score: 0.5,
    tag: *b"initial\0",
};

/// The 32-byte struct of the wire-format tests, mirrored in `bpf/tld_test.bpf.c`.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct TestStruct {
    /// Word 0.
    pub a: u64,
    /// Word 1.
    pub b: u64,
    /// Word 2.
    pub c: u64,
    /// Word 3.
    pub d: u64,
}

/// Key "value1".
#[task_local_data]
pub static VALUE1: i32 = 0;

/// An explicit key.
#[task_local_data(key = "test_basic_value4")]
pub static VALUE4: TestStruct = TestStruct {
    a: 0,
    b: 0,
    c: 0,
    d: 0,
};

/// A large value: key "dummy".
#[task_local_data]
pub static DUMMY: [u8; 1000] = [0; 1000];

/// A consistent 32-byte struct: two copies under a sequence word, so BPF and Rust read
/// it whole (`tests/tests/consistent.rs`). Key "seq_value4".
#[task_local_data(consistent)]
pub static SEQ_VALUE4: TestStruct = TestStruct {
    a: 0,
    b: 0,
    c: 0,
    d: 0,
};

/// A consistent value whose size is not a multiple of 8 (its entry is padded). Key
/// "seq_small".
#[task_local_data(consistent)]
pub static SEQ_SMALL: [u16; 3] = [1, 2, 3];

/// A consistent value of 1024 bytes, the most BPF copies at once (`TLD_SEQ_MAX_SIZE`): too large
/// for a BPF program's stack, so `bpf/tld_consistent.bpf.c` copies it through a per-CPU map
/// value. Every writer writes 128 equal words. Key "seq_big".
#[task_local_data(consistent)]
pub static SEQ_BIG: [u64; 128] = [0; 128];
