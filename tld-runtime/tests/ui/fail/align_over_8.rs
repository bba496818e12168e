use tld_runtime::{task_local_data, CType, TldType};

#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Wide {
    a: [u64; 2],
}

// A hand-written impl that the derive would have refused: the attribute still catches the
// alignment.
unsafe impl TldType for Wide {
    type Raw = [u64; 2];
    const C_TYPE: &'static CType = <[u64; 2]>::C_TYPE;
    fn into_raw(self) -> Self::Raw {
        self.a
    }
    fn from_raw(raw: Self::Raw) -> Self {
        Wide { a: raw }
    }
}

#[task_local_data]
static WIDE: Wide = Wide { a: [0; 2] };

fn main() {}
