use tld_runtime::task_local_data;

// 62 bytes: one more than the metadata name field holds.
#[task_local_data(key = "k123456789_123456789_123456789_123456789_123456789_123456789_1")]
static LONG: u32 = 0;

fn main() {}
