//! Test fixture: hints declared in a crate of their own, found through linkme, plus the nested
//! struct that the typed BPF test reads field by field through the generated header.
use tld_runtime::{task_local_data, TldType};

/// A hint from crate A.
#[task_local_data]
pub static HINT_A: u64 = 0xA0A0_A0A0;

/// A small struct nested in [`Nested`].
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Inner {
    pub x: u32,
    pub y: i32,
}

/// A struct with nested structs, arrays of structs, arrays and a float.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Nested {
    pub id: u64,
    pub inner: Inner,
    pub pair: [Inner; 2],
    pub weights: [u16; 4],
    pub score: f64,
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
