use tld_runtime::task_local_data;

#[task_local_data(key = "first", key = "second")]
static A: u32 = 0;

fn main() {}
