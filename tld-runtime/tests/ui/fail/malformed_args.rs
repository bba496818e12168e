use tld_runtime::task_local_data;

#[task_local_data(key)]
static A: u32 = 0;

#[task_local_data(key = 5)]
static B: u32 = 0;

#[task_local_data(key = "c" "d")]
static C: u32 = 0;

#[task_local_data("e")]
static E: u32 = 0;

fn main() {}
