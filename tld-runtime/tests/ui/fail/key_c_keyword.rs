use tld_runtime::task_local_data;

#[task_local_data(key = "int")]
static EXPLICIT: u32 = 0;

// The default key, "struct", comes from the name.
#[task_local_data]
static STRUCT: u32 = 0;

fn main() {}
