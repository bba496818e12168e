//! Compile-time behavior of `#[task_local_data]` and `#[derive(TldType)]`: what they accept, and
//! the errors they give for what they reject.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p tld-runtime --test ui`,
//! then read every changed `.stderr`: each error must point at the offending token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
