// `TaskLocal::__new` refuses, at compile time, a type the format cannot hold, even when it is
// called directly rather than through the attribute.
use tld_runtime::__private::Site;
use tld_runtime::{CType, TaskLocal, TldType};

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Wide {
    a: [u64; 8],
}

unsafe impl TldType for Wide {
    type Raw = [u64; 8];
    const C_TYPE: &'static CType = <[u64; 8]>::C_TYPE;
    fn into_raw(self) -> Self::Raw {
        self.a
    }
    fn from_raw(raw: Self::Raw) -> Self {
        Wide { a: raw }
    }
}

static WIDE: TaskLocal<Wide> = TaskLocal::__new(
    Site {
        key: "wide",
        rust_name: "WIDE",
        type_name: "Wide",
        module_path: "m",
        file: "f",
        line: 1,
        column: 1,
    },
    Wide { a: [0; 8] },
);

fn main() {
    WIDE.set(Wide { a: [1; 8] });
}
