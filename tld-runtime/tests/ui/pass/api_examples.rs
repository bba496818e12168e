// The examples of the public API contract (API.md).
use tld_runtime::{task_local_data, TldType};

#[derive(TldType, Clone, Copy, Default)]
#[repr(C)]
pub struct TestStruct {
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub d: u64,
}

#[task_local_data] // key "value1": the static's name in lower case
pub static VALUE1: i32 = 0; // the initializer is every thread's starting value

#[task_local_data(key = "test_basic_value4")] // explicit key
pub static VALUE4: TestStruct = TestStruct {
    a: 0,
    b: 0,
    c: 0,
    d: 0,
};

#[task_local_data]
pub static DUMMY: [u8; 1000] = [0; 1000];

fn main() {
    assert_eq!(VALUE1.key(), "value1");
    assert_eq!(VALUE4.key(), "test_basic_value4");
    assert_eq!(DUMMY.key(), "dummy");

    VALUE1.set(5);
    assert_eq!(VALUE1.get(), 5);
    VALUE4.update(|v| v.b = 7);
    let _: TestStruct = VALUE4.get();
    let _: [u8; 1000] = DUMMY.get();
    let _: &'static str = VALUE1.key();
}
