use tld_runtime::task_local_data;

#[task_local_data]
const LIMIT: u32 = 0;

#[task_local_data]
fn helper() {}

#[task_local_data]
struct Wrapper;

fn main() {}
