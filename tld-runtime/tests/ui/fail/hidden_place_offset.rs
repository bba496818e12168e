// Only the layout can place a hint: the method takes a token that nothing outside the runtime
// can make or name.
use tld_runtime::__private::Hint;
use tld_runtime::task_local_data;

#[task_local_data]
static VALUE: u64 = 0;

fn main() {
    let hint: &dyn Hint = &VALUE;
    hint.place(Default::default(), 1 << 20);
    let _token = tld_runtime::registry::LayoutToken;
}
