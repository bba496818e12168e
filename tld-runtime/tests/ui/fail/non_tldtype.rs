use tld_runtime::task_local_data;

#[derive(Clone, Copy)]
#[repr(C)]
struct NotDerived {
    a: u64,
}

#[task_local_data]
static NAME: String = String::new();

#[task_local_data]
static PLAIN: NotDerived = NotDerived { a: 0 };

fn main() {}
