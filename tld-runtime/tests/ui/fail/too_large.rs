use tld_runtime::task_local_data;

#[task_local_data]
static BIG: [u8; 5000] = [0; 5000];

fn main() {}
