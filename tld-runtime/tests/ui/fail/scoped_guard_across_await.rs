use tld_runtime::task_local_data;

#[task_local_data]
static PRIORITY: i32 = 0;

fn spawn<F: std::future::Future + Send + 'static>(_: F) {}

// A guard held across an `.await` makes the future `!Send`, so a multi-threaded executor
// refuses it: the next poll could run on another thread. `with_hint` is the async form.
fn main() {
    spawn(async {
        let _guard = PRIORITY.set_scoped(2);
        std::future::ready(()).await;
    });
}
