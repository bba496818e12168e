// The registry's `Hint` trait is sealed: no type outside the runtime can claim to be a hint
// (and so choose its own offset into a thread's page).
use tld_runtime::__private::{Hint, Site};
use tld_runtime::CType;

struct Fake;

unsafe impl Hint for Fake {
    fn site(&self) -> &Site {
        unimplemented!()
    }
    fn size(&self) -> usize {
        8
    }
    fn align(&self) -> usize {
        8
    }
    fn c_type(&self) -> &'static CType {
        <u64 as tld_runtime::TldType>::C_TYPE
    }
    fn init_bytes(&self) -> &[u8] {
        &[0; 8]
    }
}

fn main() {}
