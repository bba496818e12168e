//! Consistent hints: every spelling the attribute accepts, and the API they share with plain
//! hints.
use tld_runtime::{task_local_data, ConsistentTaskLocal, Error, HintFutureExt, TldType};

#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Budget {
    pub slice_ns: u64,
    pub class: u32,
    pub weight: u32,
}

/// Documented, public, with a key.
#[task_local_data(key = "budget", consistent)]
pub static BUDGET: Budget = Budget { slice_ns: 1, class: 2, weight: 3 };

#[task_local_data(consistent, key = "window")]
static WINDOW: [u16; 3] = [0; 3];

#[task_local_data(consistent,)]
static FLAG: bool = false;

#[task_local_data]
static PLAIN: u32 = 0;

fn takes(_: &'static ConsistentTaskLocal<Budget>) {}

async fn work() {}

fn main() {
    takes(&BUDGET);
    BUDGET.set(Budget::default());
    let _: Budget = BUDGET.get();
    let _: Result<Budget, Error> = BUDGET.try_get();
    let _: Result<(), Error> = BUDGET.try_set(Budget::default());
    let _: Budget = BUDGET.replace(Budget::default());
    let _: u64 = BUDGET.update(|b| b.slice_ns);
    let _guard = WINDOW.set_scoped([1, 2, 3]);
    let _: bool = FLAG.scoped(true, || FLAG.get());
    let _ = work().with_hints((&BUDGET, Budget::default()));
    let _ = work().with_hints(((&BUDGET, Budget::default()), (&PLAIN, 5)));
    let _ = work().with_hint(&PLAIN, 5).with_hints((&WINDOW, [0; 3]));
    let _: &'static str = BUDGET.key();
    let _ = tld_runtime::consistent::retries().reads;
    let _ = tld_runtime::consistent::MAX_WAIT;
}
