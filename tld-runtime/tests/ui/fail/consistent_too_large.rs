use tld_runtime::task_local_data;

// 4088 bytes fit a plain hint, and 2040 a consistent one (two copies and its sequence word),
// but not 2041.
#[task_local_data]
static PLAIN: [u8; 4088] = [0; 4088];

#[task_local_data(consistent)]
static FITS: [u8; 2040] = [0; 2040];

#[task_local_data(consistent)]
static GUARDED: [u8; 2041] = [0; 2041];

fn main() {}
