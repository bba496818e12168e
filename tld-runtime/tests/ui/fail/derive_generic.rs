use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Generic<T> {
    a: T,
}

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Borrowed<'a> {
    a: &'a u64,
}

fn main() {}
