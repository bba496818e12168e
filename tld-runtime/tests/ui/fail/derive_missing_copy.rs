use tld_runtime::TldType;

#[derive(TldType)]
#[repr(C)]
struct NotCopy {
    a: u64,
}

fn main() {}
