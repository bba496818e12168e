//! A machine-readable description of the hints, for tools that decode pages without the Rust
//! types: the `tld` inspector's `--schema FILE`, a scheduler's own tooling, a tracer.
//!
//! [`crate::header::write`] writes it next to the header it generates, as
//! `<header stem>.schema.json` ([`path_for`]); [`generate`] returns it as a string.
//!
//! # Format
//!
//! One JSON object, byte-for-byte deterministic: keys sorted, struct fields in declaration
//! order, two-space indentation (the example below puts small objects on one line):
//!
//! ```json
//! {
//!   "format": "tld-schema",
//!   "version": 1,
//!   "page_size": 4096,
//!   "start": 16,
//!   "fingerprint": "0x5d0c5a2e1b7a3c41",
//!   "keys": {
//!     "latency_hint": {
//!       "size": 8,
//!       "offset": 16,
//!       "c_type": "struct LatencyHint",
//!       "rust_type": "LatencyHint",
//!       "declared_at": "my_hints::LATENCY (src/lib.rs:30)",
//!       "consistent": false,
//!       "type": {
//!         "kind": "struct",
//!         "c_type": "struct LatencyHint",
//!         "size": 8,
//!         "name": "LatencyHint",
//!         "rust_path": "my_hints::LatencyHint",
//!         "align": 4,
//!         "fields": [
//!           { "name": "budget_us", "offset": 0,
//!             "type": { "kind": "int", "c_type": "__u32", "size": 4, "signed": false } },
//!           { "name": "class", "offset": 4,
//!             "type": { "kind": "int", "c_type": "__u32", "size": 4, "signed": false } }
//!         ]
//!       }
//!     },
//!     "priority": {
//!       "size": 4,
//!       "offset": 24,
//!       "c_type": "__s32",
//!       "rust_type": "i32",
//!       "declared_at": "my_hints::PRIORITY (src/lib.rs:26)",
//!       "consistent": false,
//!       "type": { "kind": "int", "c_type": "__s32", "size": 4, "signed": true }
//!     }
//!   }
//! }
//! ```
//!
//! - `format` is always `"tld-schema"`; `version` changes only if a field changes meaning.
//!   Readers ignore members they do not know.
//! - `page_size`, `start` and `fingerprint` describe the layout these hints get on pages of that
//!   size: `start` is the data page's first u64 and `fingerprint` the u64 at bytes 8..16 when
//!   `start` is 16 (written as a hex string, as JSON numbers lose u64 precision), else `null`.
//! - `keys` maps each key to its value's `size` in bytes, its `offset` from the start of a
//!   thread's page in that layout, its C and Rust type names, where it was declared, whether it
//!   is `consistent`, and its `type`. A process that also creates keys at run time publishes them after these; readers
//!   should take offsets from the metadata page and use the schema for types.
//! - A `type` is one of
//!   - `{"kind": "int", "c_type", "size", "signed"}`: an integer of 1, 2, 4 or 8 bytes;
//!   - `{"kind": "float", "c_type", "size"}`: an IEEE 754 float of 4 or 8 bytes;
//!   - `{"kind": "bool", "c_type", "size"}`: one byte, any non-zero value is true;
//!   - `{"kind": "array", "c_type", "size", "len", "elem"}`: `len` elements of type `elem`;
//!   - `{"kind": "struct", "c_type", "size", "name", "rust_path", "align", "fields"}`: a
//!     `#[derive(TldType)]` struct, whose `fields` are `{"name", "offset", "type"}` in
//!     declaration order, each `type` described the same way (structs nest);
//!   - `{"kind": "opaque", "c_type", "size"}`: any other scalar.
//!
//!   All multi-byte values are in the machine's byte order.
//! - A `consistent` key (`#[task_local_data(consistent)]`) holds a sequence word and then two
//!   copies of its value. Its `type` describes them, so that a reader that does not know the
//!   protocol still decodes it: a struct named `tld_consistent_<key>` (its `c_type` in the
//!   generated header) with the fields `seq` (a `__u64` at offset 0) and `value` (an array of
//!   two of the value's type, at offset 8); its `rust_type` is the value's. The whole copy is
//!   `value[(seq >> 3) & 1]`; a reader that knows the protocol takes it when the word, loaded
//!   again after the copy, is at most one version further and unclaimed
//!   (`docs/wire-format.md`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::c_type::CType;
use crate::error::Error;
use crate::layout;
use crate::registry::{self, Hint};
use crate::sys;
use crate::wire;

/// The value of the schema's `format` member.
pub const FORMAT: &str = "tld-schema";
/// The value of the schema's `version` member.
pub const VERSION: u32 = 1;

/// The schema of every hint linked into the calling binary, or why they cannot be published
/// (the same reasons as [`crate::header::try_generate`]).
pub fn generate() -> Result<String, Error> {
    render(&registry::collect(), sys::page_size())
}

/// Where [`crate::header::write`] puts the schema for a header at `header`:
/// `tld_generated.h` gives `tld_generated.schema.json`, in the same directory.
pub fn path_for(header: &Path) -> PathBuf {
    header.with_extension("schema.json")
}

/// A JSON value, kept in the order it is built.
enum Json {
    Str(String),
    Num(u64),
    Bool(bool),
    Null,
    Obj(Vec<(&'static str, Json)>),
    /// An object whose member names are data (the keys).
    Map(Vec<(String, Json)>),
    Arr(Vec<Json>),
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
            let (c_type, ty) = if h.consistent() {
                consistent_entry(site.key, site.type_name, h.c_type(), h.size())
            } else {
                (c_spelling(h.c_type()), describe(h.c_type()))
            };
            let key = Json::Obj(vec![
                ("size", Json::Num(h.size() as u64)),
                ("offset", Json::Num(offset as u64)),
                ("c_type", Json::Str(c_type)),
                ("rust_type", Json::Str(site.type_name.to_string())),
                (
                    "declared_at",
                    Json::Str(format!(
                        "{}::{} ({}:{})",
                        site.module_path, site.rust_name, site.file, site.line
                    )),
                ),
                ("consistent", Json::Bool(h.consistent())),
                ("type", ty),
            ]);
            (site.key.to_string(), key)
        })
        .collect();
    let doc = Json::Obj(vec![
        ("format", Json::Str(FORMAT.into())),
        ("version", Json::Num(VERSION.into())),
        ("page_size", Json::Num(page_size as u64)),
        ("start", Json::Num(plan.start as u64)),
        (
            "fingerprint",
            plan.fingerprint
                .map_or(Json::Null, |fp| Json::Str(format!("{fp:#018x}"))),
        ),
        ("keys", Json::Map(keys)),
    ]);
    let mut out = String::new();
    write_json(&mut out, &doc, 0);
    out.push('\n');
    Ok(out)
}

/// The C spelling and `type` of a consistent key's entry: a struct of the sequence word and two
/// copies of the value, as the generated header declares it.
fn consistent_entry(
    key: &str,
    rust_type: &str,
    value: &'static CType,
    size: usize,
) -> (String, Json) {
    let c_type = format!("struct tld_consistent_{key}");
    let ty = Json::Obj(vec![
        ("kind", Json::Str("struct".into())),
        ("c_type", Json::Str(c_type.clone())),
        ("size", Json::Num(size as u64)),
        ("name", Json::Str(format!("tld_consistent_{key}"))),
        ("rust_path", Json::Str(format!("consistent {rust_type}"))),
        ("align", Json::Num(wire::VALUE_ALIGN as u64)),
        (
            "fields",
            Json::Arr(vec![
                Json::Obj(vec![
                    ("name", Json::Str("seq".into())),
                    ("offset", Json::Num(wire::SEQ_OFFSET as u64)),
                    ("type", describe(<u64 as crate::TldType>::C_TYPE)),
                ]),
                Json::Obj(vec![
                    ("name", Json::Str("value".into())),
                    ("offset", Json::Num(wire::SEQ_VALUE_OFFSET as u64)),
                    ("type", describe_copies(value)),
                ]),
            ]),
        ),
    ]);
    (c_type, ty)
}

/// The `type` description of the two copies of a consistent value of type `value`: an array of
/// two.
fn describe_copies(value: &'static CType) -> Json {
    let (_, dims) = value.split_array();
    let mut c_type = format!("{}[2]", value.base_spelling());
    for d in dims {
        let _ = write!(c_type, "[{d}]");
    }
    Json::Obj(vec![
        ("kind", Json::Str("array".into())),
        ("c_type", Json::Str(c_type)),
        ("size", Json::Num(2 * value.size() as u64)),
        ("len", Json::Num(2)),
        ("elem", describe(value)),
    ])
}

/// The C spelling of a type without a declarator: `__u32`, `struct S`, `__u16[4]`.
fn c_spelling(ty: &'static CType) -> String {
    let (_, dims) = ty.split_array();
    let mut s = ty.base_spelling();
    for d in dims {
        let _ = write!(s, "[{d}]");
    }
    s
}

/// The `type` description of `ty`.
fn describe(ty: &'static CType) -> Json {
    let common = |kind: &'static str| {
        vec![
            ("kind", Json::Str(kind.into())),
            ("c_type", Json::Str(c_spelling(ty))),
            ("size", Json::Num(ty.size() as u64)),
        ]
    };
    match ty {
        CType::Scalar { name, .. } => {
            let (kind, signed) = match *name {
                "__u8" | "__u16" | "__u32" | "__u64" => ("int", Some(false)),
                "__s8" | "__s16" | "__s32" | "__s64" => ("int", Some(true)),
                "float" | "double" => ("float", None),
                "_Bool" => ("bool", None),
                _ => ("opaque", None),
            };
            let mut obj = common(kind);
            if let Some(signed) = signed {
                obj.push(("signed", Json::Bool(signed)));
            }
            Json::Obj(obj)
        }
        CType::Array { elem, len } => {
            let mut obj = common("array");
            obj.push(("len", Json::Num(*len as u64)));
            obj.push(("elem", describe(elem)));
            Json::Obj(obj)
        }
        CType::Struct(s) => {
            let mut obj = common("struct");
            obj.push(("name", Json::Str(s.name.into())));
            obj.push(("rust_path", Json::Str(s.rust_path.into())));
            obj.push(("align", Json::Num(s.align as u64)));
            let fields = s
                .fields
                .iter()
                .map(|f| {
                    Json::Obj(vec![
                        ("name", Json::Str(f.name.into())),
                        ("offset", Json::Num(f.offset as u64)),
                        ("type", describe(f.ty)),
                    ])
                })
                .collect();
            obj.push(("fields", Json::Arr(fields)));
            Json::Obj(obj)
        }
    }
}

/// Writes `s` as a JSON string literal.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `v` pretty-printed, nested `depth` levels deep.
fn write_json(out: &mut String, v: &Json, depth: usize) {
    let indent = |out: &mut String, depth: usize| {
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let members = |out: &mut String, items: Vec<(&str, &Json)>| {
        if items.is_empty() {
            out.push_str("{}");
            return;
        }
        out.push_str("{\n");
        let n = items.len();
        for (i, (name, value)) in items.into_iter().enumerate() {
            indent(out, depth + 1);
            write_str(out, name);
            out.push_str(": ");
            write_json(out, value, depth + 1);
            out.push_str(if i + 1 < n { ",\n" } else { "\n" });
        }
        indent(out, depth);
        out.push('}');
    };
    match v {
        Json::Str(s) => write_str(out, s),
        Json::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Null => out.push_str("null"),
        Json::Obj(items) => members(out, items.iter().map(|(k, v)| (*k, v)).collect()),
        Json::Map(items) => members(out, items.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        Json::Arr(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_json(out, item, depth + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TldType;

    fn json(v: &Json) -> String {
        let mut out = String::new();
        write_json(&mut out, v, 0);
        out
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}e\u{7f}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001e\u007fé""#);
    }

    #[test]
    fn nesting_is_indented() {
        let v = Json::Obj(vec![
            ("a", Json::Arr(vec![Json::Num(1), Json::Null])),
            ("b", Json::Map(vec![])),
            ("c", Json::Arr(vec![])),
            ("d", Json::Bool(false)),
        ]);
        assert_eq!(
            json(&v),
            "{\n  \"a\": [\n    1,\n    null\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": false\n}"
        );
    }

    #[test]
    fn types_are_described() {
        let t = describe(<[i16; 3]>::C_TYPE);
        assert_eq!(
            json(&t),
            "{\n  \"kind\": \"array\",\n  \"c_type\": \"__s16[3]\",\n  \"size\": 6,\n  \
             \"len\": 3,\n  \"elem\": {\n    \"kind\": \"int\",\n    \"c_type\": \"__s16\",\n    \
             \"size\": 2,\n    \"signed\": true\n  }\n}"
        );
        assert!(json(&describe(<f64>::C_TYPE)).contains("\"kind\": \"float\""));
        assert!(json(&describe(<bool>::C_TYPE)).contains("\"kind\": \"bool\""));
    }
}
