use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Keywords {
    int: u32,
    r#struct: u32,
}

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Empty {}

fn main() {}
