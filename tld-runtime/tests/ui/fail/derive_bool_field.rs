use tld_runtime::TldType;

#[derive(TldType, Clone, Copy)]
#[repr(C)]
struct Flags {
    enabled: bool,
    many: [bool; 7],
    letter: char,
}

fn main() {}
