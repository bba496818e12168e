#[allow(clippy::all, missing_docs, dead_code)]
mod fuzz_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_fuzz.skel.rs"));
}
#[test]
fn x() {}
