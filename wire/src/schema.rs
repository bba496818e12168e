//! A machine-readable description of the hints, for tools that decode pages without the Rust
//! types: the `tld` inspector's `--schema FILE`, a scheduler's own tooling, a tracer.
//!
//! tld-runtime's header generator writes it next to the header, as
//! `<header stem>.schema.json`, with [`Schema::to_json`]; tools read it with
//! [`Schema::parse`]. Both use the types of this module, so what one writes the other reads.
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
//!   `value[(seq >> 4) & 1]`; a reader that knows the protocol takes it when the word, loaded

use crate::format::{SEQ_OFFSET, SEQ_VALUE_OFFSET, VALUE_ALIGN};
use crate::json::Json;

/// The value of the schema's `format` member.
pub const FORMAT: &str = "tld-schema";
/// The value of the schema's `version` member.
pub const VERSION: u32 = 1;

/// The deepest nesting of arrays and structs a reader accepts.
pub const MAX_DEPTH: usize = 16;
/// The largest type a reader accepts, in bytes (a 64 KiB page's data area is smaller).
pub const MAX_SIZE: usize = 64 * 1024;

/// A schema document: the layout of the hints on pages of one size, and each key's type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// The page size the layout was computed for (`null` or absent: not said).
    pub page_size: Option<usize>,
    /// The data page's first `u64` in that layout.
    pub start: Option<usize>,
    /// The layout fingerprint at bytes 8..16, when `start` is 16.
    pub fingerprint: Option<u64>,
    /// The keys, in the document's order.
    pub keys: Vec<(String, Key)>,
}

/// One key of a [`Schema`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Its offset from the start of a thread's page, in the schema's layout.
    pub offset: Option<usize>,
    /// The Rust type of its value (of one copy, for a consistent key).
    pub rust_type: String,
    /// Where it was declared: `module::STATIC (file:line)`.
    pub declared_at: String,
    /// Whether it is a consistent key: its type is [`Type::consistent_entry`]'s.
    pub consistent: bool,
    /// The type of what the page holds at its offset.
    pub ty: Type,
}

/// A type, as far as decoding a page needs it and as the schema writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// An integer of 1, 2, 4 or 8 bytes (`__u8` ... `__s64`).
    Int {
        /// Bytes.
        size: usize,
        /// Signed or not.
        signed: bool,
    },
    /// An IEEE 754 float of 4 or 8 bytes (`float`, `double`).
    Float {
        /// Bytes.
        size: usize,
    },
    /// One byte (`_Bool`); any non-zero value is true.
    Bool,
    /// `len` elements.
    Array {
        /// The element type.
        elem: Box<Type>,
        /// The number of elements.
        len: usize,
    },
    /// A struct with named fields at offsets.
    Struct {
        /// Bytes.
        size: usize,
        /// Its C name (`struct <name>`); empty when the document did not say.
        name: String,
        /// Its Rust path; empty when the document did not say.
        rust_path: String,
        /// Its alignment; 0 when the document did not say.
        align: usize,
        /// The fields, in declaration order.
        fields: Vec<Field>,
    },
    /// Bytes without a known meaning.
    Opaque {
        /// Bytes.
        size: usize,
        /// Its C spelling.
        c_type: String,
    },
}

/// A field of a [`Type::Struct`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its offset in the struct.
    pub offset: usize,
    /// Its type.
    pub ty: Type,
}

impl Type {
    /// The size in bytes of a value of this type.
    pub fn size(&self) -> usize {
        match self {
            Type::Int { size, .. }
            | Type::Float { size }
            | Type::Opaque { size, .. }
            | Type::Struct { size, .. } => *size,
            Type::Bool => 1,
            Type::Array { elem, len } => elem.size().saturating_mul(*len),
        }
    }

    /// The C spelling of the type without a declarator: `__u32`, `struct S`, `__u16[4][2]`.
    pub fn c_type(&self) -> String {
        let mut dims = Vec::new();
        let mut base = self;
        while let Type::Array { elem, len } = base {
            dims.push(*len);
            base = elem;
        }
        let mut s = match base {
            Type::Int { size, signed } => {
                format!("__{}{}", if *signed { 's' } else { 'u' }, size * 8)
            }
            Type::Float { size: 4 } => "float".into(),
            Type::Float { .. } => "double".into(),
            Type::Bool => "_Bool".into(),
            Type::Struct { name, .. } => format!("struct {name}"),
            Type::Opaque { c_type, .. } => c_type.clone(),
            Type::Array { .. } => unreachable!("the loop strips every array level"),
        };
        for d in dims {
            s.push_str(&format!("[{d}]"));
        }
        s
    }

    /// The type of a consistent key's entry whose value has type `value`, for key `key` and
    /// an entry of `size` bytes ([`crate::format::consistent_size`]): a struct named
    /// `tld_consistent_<key>` of the sequence word `seq` and `value`, two copies of the value,
    /// as the generated header declares it. `rust_type` is the value's Rust type.
    pub fn consistent_entry(key: &str, rust_type: &str, value: Type, size: usize) -> Type {
        Type::Struct {
            size,
            name: format!("tld_consistent_{key}"),
            rust_path: format!("consistent {rust_type}"),
            align: VALUE_ALIGN,
            fields: vec![
                Field {
                    name: "seq".into(),
                    offset: SEQ_OFFSET,
                    ty: Type::Int {
                        size: 8,
                        signed: false,
                    },
                },
                Field {
                    name: "value".into(),
                    offset: SEQ_VALUE_OFFSET,
                    ty: Type::Array {
                        elem: Box::new(value),
                        len: 2,
                    },
                },
            ],
        }
    }

    /// The value's type of a consistent key whose entry has this type: a struct with `seq`, an
    /// 8-byte integer at offset 0, and `value`, an array of two copies of the value, at
    /// offset 8 ([`Type::consistent_entry`]).
    ///
    /// A schema of the first consistent format (one copy, `value` the value itself) is
    /// refused: its pages are not read the same way.
    pub fn consistent_value(&self) -> Result<Type, String> {
        let shape = || {
            format!(
                "a consistent key's type must be a struct of \"seq\" (an 8-byte integer at \
                 offset {SEQ_OFFSET}) and \"value\" (two copies of the value, an array of 2, at \
                 offset {SEQ_VALUE_OFFSET}); a schema written by a tld-runtime whose consistent \
                 hints had one copy describes pages of that format, which this reader does not \
                 read"
            )
        };
        let Type::Struct { fields, .. } = self else {
            return Err(shape());
        };
        match &fields[..] {
            [seq, value]
                if seq.name == "seq"
                    && seq.offset == SEQ_OFFSET
                    && matches!(seq.ty, Type::Int { size: 8, .. })
                    && value.name == "value"
                    && value.offset == SEQ_VALUE_OFFSET =>
            {
                match &value.ty {
                    Type::Array { elem, len: 2 } => Ok((**elem).clone()),
                    _ => Err(shape()),
                }
            }
            _ => Err(shape()),
        }
    }

    fn to_json(&self) -> Json {
        let mut members = vec![
            (
                "kind",
                Json::str(match self {
                    Type::Int { .. } => "int",
                    Type::Float { .. } => "float",
                    Type::Bool => "bool",
                    Type::Array { .. } => "array",
                    Type::Struct { .. } => "struct",
                    Type::Opaque { .. } => "opaque",
                }),
            ),
            ("c_type", Json::str(self.c_type())),
            ("size", Json::num(self.size())),
        ];
        match self {
            Type::Int { signed, .. } => members.push(("signed", Json::Bool(*signed))),
            Type::Array { elem, len } => {
                members.push(("len", Json::num(*len)));
                members.push(("elem", elem.to_json()));
            }
            Type::Struct {
                name,
                rust_path,
                align,
                fields,
                ..
            } => {
                members.push(("name", Json::str(name.as_str())));
                members.push(("rust_path", Json::str(rust_path.as_str())));
                members.push(("align", Json::num(*align)));
                let fields = fields
                    .iter()
                    .map(|f| {
                        Json::obj(vec![
                            ("name", Json::str(f.name.as_str())),
                            ("offset", Json::num(f.offset)),
                            ("type", f.ty.to_json()),
                        ])
                    })
                    .collect();
                members.push(("fields", Json::Arr(fields)));
            }
            Type::Float { .. } | Type::Bool | Type::Opaque { .. } => {}
        }
        Json::obj(members)
    }

    fn from_json(t: &Json, depth: usize) -> Result<Type, String> {
        if depth > MAX_DEPTH {
            return Err(format!("types nest more than {MAX_DEPTH} deep"));
        }
        let kind = t
            .get("kind")
            .and_then(Json::as_str)
            .ok_or("a type without \"kind\"")?;
        let size = num(t, "size")?;
        if size == 0 || size > MAX_SIZE {
            return Err(format!("a type of {size} bytes"));
        }
        let text = |member: &str| {
            t.get(member)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let ty = match kind {
            "int" => {
                if ![1, 2, 4, 8].contains(&size) {
                    return Err(format!("an integer of {size} bytes"));
                }
                // Signed unless the schema says otherwise.
                let signed = t.get("signed").and_then(Json::as_bool).unwrap_or(true);
                Type::Int { size, signed }
            }
            "float" => {
                if size != 4 && size != 8 {
                    return Err(format!("a float of {size} bytes"));
                }
                Type::Float { size }
            }
            "bool" => Type::Bool,
            "array" => {
                let len = num(t, "len")?;
                let elem =
                    Type::from_json(t.get("elem").ok_or("an array without \"elem\"")?, depth + 1)?;
                if len.checked_mul(elem.size()) != Some(size) {
                    return Err(format!(
                        "an array whose \"size\" is {size} but whose parts make {} elements of \
                         {} bytes",
                        len,
                        elem.size()
                    ));
                }
                Type::Array {
                    elem: Box::new(elem),
                    len,
                }
            }
            "struct" => {
                let list = t
                    .get("fields")
                    .and_then(Json::as_array)
                    .ok_or("a struct without \"fields\"")?;
                let mut fields = Vec::with_capacity(list.len());
                for f in list {
                    let name = f
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or("a field without \"name\"")?
                        .to_string();
                    let offset = num(f, "offset")?;
                    let ty = Type::from_json(
                        f.get("type").ok_or("a field without \"type\"")?,
                        depth + 1,
                    )
                    .map_err(|e| format!("field {name}: {e}"))?;
                    if offset.checked_add(ty.size()).is_none_or(|end| end > size) {
                        return Err(format!(
                            "field {name} ({} bytes at offset {offset}) does not fit in its \
                             {size}-byte struct",
                            ty.size()
                        ));
                    }
                    fields.push(Field { name, offset, ty });
                }
                Type::Struct {
                    size,
                    name: text("name"),
                    rust_path: text("rust_path"),
                    align: t
                        .get("align")
                        .and_then(Json::as_u64)
                        .and_then(|a| usize::try_from(a).ok())
                        .unwrap_or(0),
                    fields,
                }
            }
            _ => Type::Opaque {
                size,
                c_type: text("c_type"),
            },
        };
        if ty.size() != size {
            return Err(format!(
                "a {kind} whose \"size\" is {size} but whose parts make {} bytes",
                ty.size()
            ));
        }
        Ok(ty)
    }
}

fn num(t: &Json, member: &str) -> Result<usize, String> {
    t.get(member)
        .and_then(Json::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("\"{member}\" is missing or not a number"))
}

fn opt_num(doc: &Json, member: &str) -> Option<usize> {
    doc.get(member)
        .and_then(Json::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

impl Schema {
    /// The document as text: byte-for-byte deterministic, members in the order above, keys in
    /// [`Self::keys`]' order, two-space indentation, and a final newline.
    pub fn to_json(&self) -> String {
        let keys = self
            .keys
            .iter()
            .map(|(name, key)| {
                let mut members = vec![("size", Json::num(key.ty.size()))];
                if let Some(offset) = key.offset {
                    members.push(("offset", Json::num(offset)));
                }
                members.extend([
                    ("c_type", Json::str(key.ty.c_type())),
                    ("rust_type", Json::str(key.rust_type.as_str())),
                    ("declared_at", Json::str(key.declared_at.as_str())),
                    ("consistent", Json::Bool(key.consistent)),
                    ("type", key.ty.to_json()),
                ]);
                (name.clone(), Json::obj(members))
            })
            .collect();
        let opt = |n: Option<usize>| n.map_or(Json::Null, Json::num);
        let doc = Json::obj(vec![
            ("format", Json::str(FORMAT)),
            ("version", Json::num(VERSION as usize)),
            ("page_size", opt(self.page_size)),
            ("start", opt(self.start)),
            (
                "fingerprint",
                self.fingerprint
                    .map_or(Json::Null, |fp| Json::str(format!("{fp:#018x}"))),
            ),
            ("keys", Json::Obj(keys)),
        ]);
        let mut out = doc.pretty();
        out.push('\n');
        out
    }

    /// Reads a schema document, checking it: sizes add up, fields lie inside their struct,
    /// nesting is bounded, a consistent key's type has the entry's shape. Members it does not
    /// know are ignored. A key that appears twice takes the later description.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let doc = Json::parse(text)?;
        if doc.get("format").and_then(Json::as_str) != Some(FORMAT) {
            return Err(format!(
                "it is not a tld schema (its \"format\" is not \"{FORMAT}\")"
            ));
        }
        let keys = doc
            .get("keys")
            .and_then(Json::as_object)
            .ok_or("it has no \"keys\" object")?;
        let mut schema = Schema {
            page_size: opt_num(&doc, "page_size"),
            start: opt_num(&doc, "start"),
            fingerprint: doc
                .get("fingerprint")
                .and_then(Json::as_str)
                .and_then(|s| s.strip_prefix("0x"))
                .and_then(|s| u64::from_str_radix(s, 16).ok()),
            keys: Vec::with_capacity(keys.len()),
        };
        for (name, desc) in keys {
            let ty = desc
                .get("type")
                .ok_or_else(|| format!("key {name} has no \"type\""))
                .and_then(|t| Type::from_json(t, 0).map_err(|e| format!("key {name}: {e}")))?;
            if let Some(size) = desc.get("size").and_then(Json::as_u64) {
                if size != ty.size() as u64 {
                    return Err(format!(
                        "key {name} has size {size} but its type has {} bytes",
                        ty.size()
                    ));
                }
            }
            let consistent = desc.get("consistent").and_then(Json::as_bool) == Some(true);
            if consistent {
                ty.consistent_value()
                    .map_err(|e| format!("key {name}: {e}"))?;
            }
            let key = Key {
                offset: opt_num(desc, "offset"),
                rust_type: desc
                    .get("rust_type")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_string(),
                declared_at: desc
                    .get("declared_at")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_string(),
                consistent,
                ty,
            };
            schema.keys.retain(|(k, _)| k != name);
            schema.keys.push((name.clone(), key));
        }
        Ok(schema)
    }

    /// The key `name`, if the schema has it.
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, key)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> Type {
        Type::Struct {
            size: 8,
            name: "P".into(),
            rust_path: "m::P".into(),
            align: 4,
            fields: vec![
                Field {
                    name: "a".into(),
                    offset: 0,
                    ty: Type::Int {
                        size: 2,
                        signed: false,
                    },
                },
                Field {
                    name: "b".into(),
                    offset: 4,
                    ty: Type::Array {
                        elem: Box::new(Type::Bool),
                        len: 4,
                    },
                },
            ],
        }
    }

    fn schema() -> Schema {
        let key = |ty: Type, consistent| Key {
            offset: Some(16),
            rust_type: "T".into(),
            declared_at: "m::K (src/lib.rs:1)".into(),
            consistent,
            ty,
        };
        Schema {
            page_size: Some(4096),
            start: Some(16),
            fingerprint: Some(0x5d0c_5a2e_1b7a_3c41),
            keys: vec![
                ("pair".into(), key(pair(), false)),
                (
                    "guarded".into(),
                    key(Type::consistent_entry("guarded", "P", pair(), 24), true),
                ),
                (
                    "odd".into(),
                    key(
                        Type::Opaque {
                            size: 8,
                            c_type: "__u128_half".into(),
                        },
                        false,
                    ),
                ),
            ],
        }
    }

    #[test]
    fn what_is_written_is_read_back() {
        let s = schema();
        let text = s.to_json();
        assert!(text.ends_with("}\n"));
        assert!(
            text.contains("\"fingerprint\": \"0x5d0c5a2e1b7a3c41\""),
            "{text}"
        );
        assert!(text.contains("\"c_type\": \"struct tld_consistent_guarded\""));
        assert!(text.contains("\"c_type\": \"struct P[2]\""), "{text}");
        assert!(text.contains("\"c_type\": \"_Bool[4]\""), "{text}");
        assert_eq!(Schema::parse(&text), Ok(s));
    }

    #[test]
    fn c_spellings() {
        let arr = Type::Array {
            elem: Box::new(Type::Array {
                elem: Box::new(Type::Int {
                    size: 2,
                    signed: true,
                }),
                len: 4,
            }),
            len: 3,
        };
        assert_eq!(arr.c_type(), "__s16[3][4]");
        assert_eq!(arr.size(), 24);
        assert_eq!(Type::Float { size: 4 }.c_type(), "float");
        assert_eq!(Type::Float { size: 8 }.c_type(), "double");
        assert_eq!(
            Type::Int {
                size: 8,
                signed: false
            }
            .c_type(),
            "__u64"
        );
    }

    #[test]
    fn a_consistent_entry_gives_its_value_back() {
        let entry = Type::consistent_entry("k", "P", pair(), 24);
        assert_eq!(entry.consistent_value(), Ok(pair()));
        assert!(pair()
            .consistent_value()
            .unwrap_err()
            .starts_with("a consistent key's type must be a struct of \"seq\""));
    }

    const DOC: &str = r#"{
      "format": "tld-schema", "version": 1, "future_member": [1, 2],
      "keys": {
        "prio": {"size": 4, "type": {"kind": "int", "c_type": "__s32", "size": 4, "signed": true}},
        "pair": {"size": 8, "type": {"kind": "struct", "c_type": "struct P", "size": 8,
          "fields": [
            {"name": "a", "offset": 0, "type": {"kind": "int", "size": 2, "signed": false}},
            {"name": "b", "offset": 4, "type": {"kind": "array", "size": 4, "len": 4,
               "elem": {"kind": "bool", "size": 1}}}
          ]}}
      }
    }"#;

    #[test]
    fn reads_documents_with_members_left_out() {
        let s = Schema::parse(DOC).unwrap();
        assert_eq!(s.page_size, None);
        assert_eq!(s.fingerprint, None);
        assert_eq!(
            s.key("prio").map(|k| &k.ty),
            Some(&Type::Int {
                size: 4,
                signed: true
            })
        );
        let Some(Type::Struct {
            size: 8,
            fields,
            name,
            ..
        }) = s.key("pair").map(|k| &k.ty)
        else {
            panic!("{s:?}")
        };
        assert!(name.is_empty());
        assert_eq!(fields[1].offset, 4);
        assert_eq!(fields[1].ty.size(), 4);
        assert!(s.key("other").is_none());
    }

    #[test]
    fn refuses_inconsistent_schemas() {
        let bad = |from: &str, to: &str| {
            let text = DOC.replacen(from, to, 1);
            assert_ne!(text, DOC);
            Schema::parse(&text).unwrap_err()
        };
        assert!(bad("\"offset\": 4", "\"offset\": 6").contains("does not fit"));
        assert!(bad("\"len\": 4", "\"len\": 5").contains("make 5 elements"));
        assert!(bad("\"size\": 4, \"type\"", "\"size\": 5, \"type\"").contains("has size 5"));
        assert!(bad("tld-schema", "other").contains("not a tld schema"));
        assert!(bad("\"size\": 2, \"signed\"", "\"size\": 3, \"signed\"").contains("3 bytes"));
        assert!(Schema::parse("{").is_err());
        let consistent = DOC.replacen("\"prio\": {", "\"prio\": {\"consistent\": true, ", 1);
        assert!(Schema::parse(&consistent)
            .unwrap_err()
            .contains("key prio: a consistent key's type must be a struct of \"seq\""));
        let mut deep = String::from(r#"{"kind": "int", "size": 1}"#);
        for _ in 0..20 {
            deep = format!(r#"{{"kind": "array", "size": 1, "len": 1, "elem": {deep}}}"#);
        }
        let text = format!(r#"{{"format": "tld-schema", "keys": {{"k": {{"type": {deep}}}}}}}"#);
        assert!(Schema::parse(&text).unwrap_err().contains("nest"));
    }
}
