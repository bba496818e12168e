//! tmp
#[allow(clippy::all, missing_docs, dead_code)]
pub mod skel {
    include!(concat!(env!("OUT_DIR"), "/bench_tld.skel.rs"));
}
