// Derived structs nest, go in arrays, and may be repr(transparent) or tuple structs.
use tld_runtime::{task_local_data, CType, TldType};

#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Inner {
    pub x: u32,
    pub y: u32,
}

#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Outer {
    pub inner: Inner,
    pub many: [Inner; 3],
    pub flags: u8,
    pub _pad: [u8; 7],
    pub r#type: u64,
}

/// A newtype shares its field's layout.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(transparent)]
pub struct Nanos(pub u64);

#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Pair(pub Nanos, pub u32, pub [u16; 2]);

#[task_local_data]
static OUTER: Outer = Outer {
    inner: Inner { x: 1, y: 2 },
    many: [Inner { x: 0, y: 0 }; 3],
    flags: 0,
    _pad: [0; 7],
    r#type: 0,
};

#[task_local_data]
static INNERS: [Inner; 4] = [Inner { x: 0, y: 0 }; 4];

#[task_local_data]
static DEADLINE: Nanos = Nanos(0);

#[task_local_data]
static PAIR: Pair = Pair(Nanos(0), 0, [0; 2]);

fn main() {
    let CType::Struct(outer) = Outer::C_TYPE else {
        panic!("not a struct")
    };
    assert_eq!(outer.name, "Outer");
    assert!(outer.rust_path.ends_with("::Outer"));
    assert_eq!(outer.size, 8 + 24 + 1 + 7 + 8);
    let names: Vec<&str> = outer.fields.iter().map(|f| f.name).collect();
    assert_eq!(names, ["inner", "many", "flags", "_pad", "type"]);
    assert_eq!(outer.fields[4].offset, 40);
    assert_eq!(outer.fields[1].ty, <[Inner; 3]>::C_TYPE);

    let CType::Struct(pair) = Pair::C_TYPE else {
        panic!("not a struct")
    };
    let names: Vec<&str> = pair.fields.iter().map(|f| f.name).collect();
    assert_eq!(names, ["_0", "_1", "_2"]);

    assert_eq!(Nanos(5).into_raw(), Nanos(5));
    let _ = (&OUTER, &INNERS, &DEADLINE, &PAIR);
}
