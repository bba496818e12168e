use tld_runtime::{task_local_data, HintFutureExt, TaskLocal};

#[task_local_data(consistent)]
static BUDGET: [u64; 4] = [0; 4];

fn takes_plain(_: &'static TaskLocal<[u64; 4]>) {}

async fn work() {}

fn main() {
    // A consistent hint is not a plain `TaskLocal`: its accesses go through its sequence word.
    takes_plain(&BUDGET);
    // `with_hint` takes plain and consistent hints, each with a value of its own type.
    let _ = work().with_hint(&BUDGET, [1; 4]);
    let _ = work().with_hint(&BUDGET, 5u32);
    let _ = work().with_hints((&BUDGET, [1; 4]));
}
