use tld_runtime::task_local_data;

// 4088 bytes fit a plain hint, but a consistent one needs 8 more for its counter.
#[task_local_data]
static PLAIN: [u8; 4088] = [0; 4088];

#[task_local_data(consistent)]
static GUARDED: [u8; 4088] = [0; 4088];

fn main() {}
