use tld_runtime::task_local_data;

#[task_local_data(key = "has-dash")]
static DASH: u32 = 0;

#[task_local_data(key = "9abc")]
static DIGIT: u32 = 0;

#[task_local_data(key = "")]
static EMPTY: u32 = 0;

#[task_local_data]
static ÜBER: u32 = 0;

fn main() {}
