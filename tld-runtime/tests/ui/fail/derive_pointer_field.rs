use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Pointers {
    read: *const u8,
    write: *mut u64,
    call: fn(),
}

fn main() {}
