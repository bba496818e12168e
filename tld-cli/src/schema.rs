//! Hint types from schema files (`--schema FILE`), as `tld_runtime::header::write` writes them
//! next to the generated header (`tld_generated.schema.json`). The format, its types and its
//! reader are `tld-wire`'s ([`tld_wire::schema`]), the same that the runtime writes with.
//!
//! A schema file is input like any other: it is checked (sizes add up, fields lie inside their
//! struct, nesting is bounded) and a file that fails a check is refused with the reason.

use std::collections::BTreeMap;
use std::path::Path;

pub use tld_wire::schema::{Field, Type};

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

    /// Parses one schema document ([`tld_wire::schema::Schema::parse`]).
    pub fn parse(text: &str) -> Result<Schema, String> {
        let doc = tld_wire::schema::Schema::parse(text)?;
        let mut schema = Schema::empty();
        for (key, desc) in doc.keys {
            if desc.consistent {
                schema
                    .consistent
                    .insert(key.clone(), desc.ty.consistent_value()?);
            }
            schema.keys.insert(key, desc.ty);
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

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
      "format": "tld-schema", "version": 1,
      "keys": {
        "prio": {"size": 4, "type": {"kind": "int", "c_type": "__s32", "size": 4, "signed": true}},
        "guarded": {"size": 24, "consistent": true, "type": {"kind": "struct", "size": 24,
          "fields": [
            {"name": "seq", "offset": 0, "type": {"kind": "int", "size": 8, "signed": false}},
            {"name": "value", "offset": 8, "type": {"kind": "array", "size": 16, "len": 2,
               "elem": {"kind": "int", "size": 8, "signed": false}}}
          ]}}
      }
    }"#;

    #[test]
    fn parses_types_and_consistent_values() {
        let s = Schema::parse(DOC).unwrap();
        let prio = Type::Int {
            size: 4,
            signed: true,
        };
        assert_eq!(s.get("prio"), Some(&prio));
        assert_eq!(s.consistent_value("prio"), None);
        assert!(matches!(
            s.get("guarded"),
            Some(Type::Struct { size: 24, .. })
        ));
        assert_eq!(
            s.consistent_value("guarded"),
            Some(&Type::Int {
                size: 8,
                signed: false
            })
        );
        assert!(s.has_consistent());
        assert_eq!(s.get("other"), None);
        assert!(Schema::parse("{").is_err());
        assert!(Schema::parse(&DOC.replacen("\"len\": 2", "\"len\": 1", 1)).is_err());
    }
}
