use tld_runtime::task_local_data;

#[task_local_data]
static NOTHING: [u8; 0] = [];

fn main() {}
