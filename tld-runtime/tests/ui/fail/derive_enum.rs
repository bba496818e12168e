use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
#[repr(u8)]
enum Mode {
    Idle,
    Busy,
}

#[derive(TldType, Clone, Copy)]
#[repr(C)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
