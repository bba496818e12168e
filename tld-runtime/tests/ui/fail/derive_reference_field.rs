use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Refs {
    name: &'static str,
    bytes: &'static [u8],
}

fn main() {}
