use tld_runtime::task_local_data;

#[task_local_data]
static PRIORITY: i32 = 0;

// A guard restores the thread it was made on: it cannot move to another thread.
fn main() {
    let guard = PRIORITY.set_scoped(1);
    std::thread::spawn(move || drop(guard));
}
