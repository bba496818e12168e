use tld_runtime::task_local_data;

// `consistent` is a flag: it takes no value.
#[task_local_data(consistent = true)]
static A: [u64; 4] = [0; 4];

// Given twice.
#[task_local_data(consistent, key = "b", consistent)]
static B: [u64; 4] = [0; 4];

// Misspelt: the message names the arguments there are.
#[task_local_data(consistnt)]
static C: [u64; 4] = [0; 4];

// No argument list of its own.
#[task_local_data(consistent(yes))]
static D: [u64; 4] = [0; 4];

fn main() {}
