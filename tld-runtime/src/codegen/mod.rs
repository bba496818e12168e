//! What build scripts generate: the C header that BPF programs include, and the schema that
//! tools decode pages with.

pub mod header;
pub mod schema;
