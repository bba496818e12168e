// A hint may be declared inside a function body.
use tld_runtime::task_local_data;

fn bump() -> u32 {
    #[task_local_data(key = "calls")]
    static CALLS: u32 = 0;

    CALLS.update(|c| {
        *c += 1;
        *c
    })
}

fn main() {
    bump();
    bump();
}
