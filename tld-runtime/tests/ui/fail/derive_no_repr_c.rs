use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
struct NoRepr {
    a: u64,
}

#[derive(TldType, Clone, Copy)]
#[repr(C, packed)]
struct Packed {
    a: u64,
}

#[derive(TldType, Clone, Copy)]
#[repr(C, align(8))]
struct Aligned {
    a: u64,
}

fn main() {}
