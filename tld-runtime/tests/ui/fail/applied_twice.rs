use tld_runtime::task_local_data;

#[task_local_data]
#[task_local_data]
static VALUE: u32 = 0;

fn main() {}
