//! Hint types from schema files (`--schema FILE`), as `tld_runtime::header::write` writes them
//! next to the generated header (`tld_generated.schema.json`; the format is documented in
//! `tld_runtime::schema`).
//!
//! A schema file is input like any other: it is checked (sizes add up, fields lie inside their
//! struct, nesting is bounded) and a file that fails a check is refused with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;

/// The deepest nesting of arrays and structs accepted.
const MAX_DEPTH: usize = 16;
/// The largest value a hint can have (a 64 KiB page's data area).
const MAX_SIZE: usize = 64 * 1024;

/// A hint's type, as far as decoding needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// An integer of 1, 2, 4 or 8 bytes.
    Int {
        /// Bytes.
        size: usize,
        /// Signed or not.
        signed: bool,
    },
    /// An IEEE 754 float of 4 or 8 bytes.
    Float {
        /// Bytes.
        size: usize,
    },
    /// One byte; any non-zero value is true.
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
        /// The fields, in declaration order.
        fields: Vec<Field>,
    },
    /// Bytes without a known meaning.
    Opaque {
        /// Bytes.
        size: usize,
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
            Type::Int { size, .. } | Type::Float { size } | Type::Opaque { size } => *size,
            Type::Bool => 1,
            Type::Array { elem, len } => elem.size() * len,
            Type::Struct { size, .. } => *size,
        }
    }
}

/// The types of the keys that the loaded schema files describe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    keys: BTreeMap<String, Type>,
    /// The consistent keys (`"consistent": true`): each entry is a `u64` sequence word and then
    /// two copies of the value, whose type is given here.
    consistent: BTreeMap<String, Type>,
}

impl Schema {
    /// A schema that knows no key.
    pub fn empty() -> Schema {
        Schema::default()
    }

    /// Reads and merges schema files; a key in a later file replaces the same key in an
    /// earlier one.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Schema, String> {
        let mut schema = Schema::empty();
        for path in paths {
            let path = path.as_ref();
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading the schema {}: {e}", path.display()))?;
            let more = Schema::parse(&text)
                .map_err(|e| format!("the schema {} is invalid: {e}", path.display()))?;
            for key in more.keys.keys() {
                schema.consistent.remove(key);
            }
            schema.keys.extend(more.keys);
            schema.consistent.extend(more.consistent);
        }
        Ok(schema)
    }

    /// Parses one schema document.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let doc: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if doc.get("format").and_then(Json::as_str) != Some("tld-schema") {
            return Err("it is not a tld schema (its \"format\" is not \"tld-schema\")".into());
        }
        let keys = doc
            .get("keys")
            .and_then(Json::as_object)
            .ok_or("it has no \"keys\" object")?;
        let mut schema = Schema::empty();
        for (key, desc) in keys {
            let ty = desc
                .get("type")
                .ok_or_else(|| format!("key {key} has no \"type\""))
                .and_then(|t| parse_type(t, 0).map_err(|e| format!("key {key}: {e}")))?;
            if let Some(size) = desc.get("size").and_then(Json::as_u64) {
                if size != ty.size() as u64 {
                    return Err(format!(
                        "key {key} has size {size} but its type has {} bytes",
                        ty.size()
                    ));
                }
            }
            if desc.get("consistent").and_then(Json::as_bool) == Some(true) {
                let value = consistent_value(&ty).map_err(|e| format!("key {key}: {e}"))?;
                schema.consistent.insert(key.clone(), value);
            }
            schema.keys.insert(key.clone(), ty);
        }
        Ok(schema)
    }

    /// The type of `key`, if the schema knows it.
    pub fn get(&self, key: &str) -> Option<&Type> {
        self.keys.get(key)
    }

    /// The value's type of `key`, if the schema says it is a consistent hint: its entry is a
    /// `u64` sequence word, then two copies of this value from byte
    /// [`SEQ_VALUE_OFFSET`](tld_runtime::wire::SEQ_VALUE_OFFSET).
    pub fn consistent_value(&self, key: &str) -> Option<&Type> {
        self.consistent.get(key)
    }

    /// Whether any key of the schema is a consistent hint.
    pub fn has_consistent(&self) -> bool {
        !self.consistent.is_empty()
    }

    /// Whether the schema knows no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The value's type of a consistent key whose entry type is `ty`: a struct with `seq`, an
/// 8-byte integer at offset 0, and `value`, an array of two copies of the value, at offset 8.
///
/// A schema of the first consistent format (one copy, `value` the value itself) is refused: its
/// pages are not read the same way.
fn consistent_value(ty: &Type) -> Result<Type, String> {
    use tld_runtime::wire::{SEQ_OFFSET, SEQ_VALUE_OFFSET};
    let shape = || {
        format!(
            "a consistent key's type must be a struct of \"seq\" (an 8-byte integer at offset \
             {SEQ_OFFSET}) and \"value\" (two copies of the value, an array of 2, at offset \
             {SEQ_VALUE_OFFSET}); a schema written by a tld-runtime whose consistent hints had \
             one copy describes pages of that format, which this inspector does not read"
        )
    };
    let Type::Struct { fields, .. } = ty else {
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

fn num(t: &Json, member: &str) -> Result<usize, String> {
    t.get(member)
        .and_then(Json::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("\"{member}\" is missing or not a number"))
}

fn parse_type(t: &Json, depth: usize) -> Result<Type, String> {
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
            let elem = parse_type(t.get("elem").ok_or("an array without \"elem\"")?, depth + 1)?;
            if len.checked_mul(elem.size()) != Some(size) {
                return Err(format!(
                    "an array whose \"size\" is {size} but whose parts make {} elements of {} \
                     bytes",
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
                let ty = parse_type(f.get("type").ok_or("a field without \"type\"")?, depth + 1)
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
            Type::Struct { size, fields }
        }
        _ => Type::Opaque { size },
    };
    if ty.size() != size {
        return Err(format!(
            "a {kind} whose \"size\" is {size} but whose parts make {} bytes",
            ty.size()
        ));
    }
    Ok(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parses_types() {
        let s = Schema::parse(DOC).unwrap();
        assert_eq!(
            s.get("prio"),
            Some(&Type::Int {
                size: 4,
                signed: true
            })
        );
        let Some(Type::Struct { size: 8, fields }) = s.get("pair") else {
            panic!("{s:?}")
        };
        assert_eq!(fields[1].offset, 4);
        assert_eq!(fields[1].ty.size(), 4);
        assert_eq!(s.get("other"), None);
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
