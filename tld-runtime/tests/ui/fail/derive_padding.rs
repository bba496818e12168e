use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Gap {
    small: u8,
    big: u64,
}

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Tail {
    big: u64,
    small: u8,
}

fn main() {}
