//! Hinted futures compose with what async code does to futures: `tokio::join!`, `tokio::select!`,
//! `FuturesUnordered` and `tokio::spawn`, each with `with_hint`, a chain of `with_hint`s,
//! `with_hints` with a pair and with a tuple, and a consistent hint through either.
//!
//! Inside `tokio::spawn`, rustc proves the spawned future `Send` with every lifetime in the types
//! it holds across an `.await` erased; a hint pair that is a `HintSet` only for `'static`
//! references fails that proof ("implementation of `HintSet` is not general enough").
use futures_util::stream::{FuturesUnordered, StreamExt};
use tld_runtime::{task_local_data, HintFutureExt, TldType};

#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Budget {
    pub slice_ns: u64,
    pub class: u32,
    pub weight: u32,
}

#[task_local_data]
static PRIORITY: i32 = 0;

#[task_local_data]
static FLAG: bool = false;

#[task_local_data(consistent)]
static BUDGET: Budget = Budget { slice_ns: 0, class: 0, weight: 100 };

async fn part() -> i32 {
    tokio::task::yield_now().await;
    PRIORITY.get()
}

fn budget(class: u32) -> Budget {
    Budget { slice_ns: 1_000, class, weight: 100 }
}

/// Every combinator, inside a spawned task, with one way of carrying hints.
macro_rules! compose {
    ($rt:expr, |$n:ident| $hinted:expr) => {{
        $rt.block_on(async {
            tokio::spawn(async {
                // join!
                let joined = {
                    let $n = 10;
                    let a = $hinted;
                    let $n = 20;
                    let b = $hinted;
                    tokio::join!(a, b)
                };
                assert_eq!(joined, (10, 20));

                // select!
                let selected = {
                    let $n = 30;
                    let a = $hinted;
                    let $n = 40;
                    let b = $hinted;
                    tokio::select! {
                        v = a => v,
                        v = b => v,
                    }
                };
                assert!(selected == 30 || selected == 40);

                // FuturesUnordered
                let mut all = FuturesUnordered::new();
                for $n in 50..54 {
                    all.push($hinted);
                }
                let mut sum = 0;
                while let Some(v) = all.next().await {
                    sum += v;
                }
                assert_eq!(sum, 50 + 51 + 52 + 53);

                // spawn inside spawn
                let $n = 60;
                tokio::spawn($hinted).await.unwrap()
            })
            .await
            .unwrap()
        })
    }};
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();

    // with_hint
    assert_eq!(compose!(rt, |n| part().with_hint(&PRIORITY, n)), 60);
    // a chain of with_hint
    assert_eq!(
        compose!(rt, |n| part().with_hint(&PRIORITY, n).with_hint(&FLAG, true)),
        60
    );
    // a consistent hint through with_hint, alone and in a chain
    assert_eq!(
        compose!(rt, |n| async move { part().await + BUDGET.get().class as i32 }
            .with_hint(&BUDGET, budget(1))
            .with_hint(&PRIORITY, n - 1)),
        60
    );
    // with_hints: a pair, a consistent pair, a tuple, a tuple with a consistent hint
    assert_eq!(compose!(rt, |n| part().with_hints((&PRIORITY, n))), 60);
    assert_eq!(
        compose!(rt, |n| async move { n - 2 + BUDGET.get().class as i32 }
            .with_hints((&BUDGET, budget(2)))),
        60
    );
    assert_eq!(
        compose!(rt, |n| part().with_hints(((&PRIORITY, n), (&FLAG, true)))),
        60
    );
    assert_eq!(
        compose!(rt, |n| async move { part().await + BUDGET.get().class as i32 }
            .with_hints(((&PRIORITY, n - 3), (&BUDGET, budget(3)), (&FLAG, true)))),
        60
    );
    // a tuple inside a chain
    assert_eq!(
        compose!(rt, |n| part()
            .with_hints(((&PRIORITY, n), (&FLAG, true)))
            .with_hint(&BUDGET, budget(4))),
        60
    );

    // Outside the task, the thread has its own values back.
    assert_eq!((PRIORITY.get(), FLAG.get(), BUDGET.get()), (0, false, Budget { slice_ns: 0, class: 0, weight: 100 }));
}
