//! A machine-readable description of the hints, for tools that decode pages without the Rust
//! types: the `tld` inspector's `--schema FILE`, a scheduler's own tooling, a tracer.
//!
//! [`crate::codegen::header::write`] writes it next to the header it generates, as
//! `<header stem>.schema.json` ([`path_for`]); [`generate`] returns it as a string.
//!
//! The format, and the types that write and read it, are `tld-wire`'s: see
//! [`tld_wire::schema`], which documents every member. A tool reads a schema file with
//! [`tld_wire::schema::Schema::parse`].

use std::path::{Path, PathBuf};

use tld_wire::schema::{Field, Key, Schema, Type};

use crate::declare::c_type::CType;
use crate::declare::registry::{self, Hint};
use crate::error::Error;
use crate::kernel::sys;
use crate::page::layout;

pub use tld_wire::schema::{FORMAT, VERSION};

/// The schema of every hint linked into the calling binary, or why they cannot be published
/// (the same reasons as [`crate::codegen::header::try_generate`]).
pub fn generate() -> Result<String, Error> {
    render(&registry::collect(), sys::page_size())
}

/// Where [`crate::codegen::header::write`] puts the schema for a header at `header`:
/// `tld_generated.h` gives `tld_generated.schema.json`, in the same directory.
pub fn path_for(header: &Path) -> PathBuf {
    header.with_extension("schema.json")
}

fn render(hints: &[&'static dyn Hint], page_size: usize) -> Result<String, Error> {
    if let Some(problem) = layout::check(hints, page_size) {
        return Err(problem);
    }
    let plan = layout::Plan::new(hints, page_size);
    let keys = hints
        .iter()
        .zip(&plan.offsets)
        .map(|(h, &offset)| {
            let site = h.site();
            let ty = if h.consistent() {
                Type::consistent_entry(site.key, site.type_name, describe(h.c_type()), h.size())
            } else {
                describe(h.c_type())
            };
            let key = Key {
                offset: Some(offset),
                rust_type: site.type_name.to_string(),
                declared_at: format!(
                    "{}::{} ({}:{})",
                    site.module_path, site.rust_name, site.file, site.line
                ),
                consistent: h.consistent(),
                ty,
            };
            (site.key.to_string(), key)
        })
        .collect();
    let schema = Schema {
        page_size: Some(page_size),
        start: Some(plan.start),
        fingerprint: plan.fingerprint,
        keys,
    };
    Ok(schema.to_json())
}

/// The schema's description of `ty`.
fn describe(ty: &'static CType) -> Type {
    match ty {
        CType::Scalar { name, size } => match *name {
            "__u8" | "__u16" | "__u32" | "__u64" => Type::Int {
                size: *size,
                signed: false,
            },
            "__s8" | "__s16" | "__s32" | "__s64" => Type::Int {
                size: *size,
                signed: true,
            },
            "float" | "double" => Type::Float { size: *size },
            "_Bool" if *size == 1 => Type::Bool,
            _ => Type::Opaque {
                size: *size,
                c_type: (*name).to_string(),
            },
        },
        CType::Array { elem, len } => Type::Array {
            elem: Box::new(describe(elem)),
            len: *len,
        },
        CType::Struct(s) => Type::Struct {
            size: s.size,
            name: s.name.to_string(),
            rust_path: s.rust_path.to_string(),
            align: s.align,
            fields: s
                .fields
                .iter()
                .map(|f| Field {
                    name: f.name.to_string(),
                    offset: f.offset,
                    ty: describe(f.ty),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::types::TldType;

    #[test]
    fn types_are_described() {
        let t = describe(<[i16; 3]>::C_TYPE);
        assert_eq!(
            t,
            Type::Array {
                elem: Box::new(Type::Int {
                    size: 2,
                    signed: true
                }),
                len: 3
            }
        );
        assert_eq!(t.c_type(), "__s16[3]");
        assert_eq!(describe(<f64>::C_TYPE), Type::Float { size: 8 });
        assert_eq!(describe(<bool>::C_TYPE), Type::Bool);
        assert_eq!(describe(<u32>::C_TYPE).c_type(), "__u32");
    }
}
