use tld_runtime::TldType;

#[derive(Clone, Copy)]
#[repr(C)]
struct NotDerived {
    a: u64,
}

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Others {
    maybe: Option<u64>,
    wide: u128,
    pair: (u32, u32),
    plain: NotDerived,
}

fn main() {}
