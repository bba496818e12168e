use tld_runtime::task_local_data;

#[task_local_data(name = "x")]
static A: u32 = 0;

#[task_local_data(key = "b", size = 4, crate)]
static B: u32 = 0;

fn main() {}
