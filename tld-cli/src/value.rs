//! Decoded values: the bytes of a hint read with its type.
//!
//! With a type from a schema, a value decodes field by field. Without one, sizes 1, 2, 4 and 8
//! decode as signed integers and every other size has no decoded value (JSON `null`; the raw
//! bytes are always available as hex). Values are in the machine's byte order.

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use tld_runtime::wire::{seq_copy, seq_copy_offset, SEQ_LATCH};

use crate::schema::Type;

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A bool.
    Bool(bool),
    /// An array.
    Array(Vec<Value>),
    /// A struct's fields, in declaration order.
    Struct(Vec<(String, Value)>),
    /// No decoded value: the type is unknown.
    Null,
}

/// Reads `size` bytes at `at` as a native-endian integer; `None` when out of bounds.
fn int_at(bytes: &[u8], at: usize, size: usize, signed: bool) -> Option<Value> {
    let b = bytes.get(at..at.checked_add(size)?)?;
    Some(match (size, signed) {
        (1, true) => Value::Int(i8::from_ne_bytes([b[0]]).into()),
        (1, false) => Value::UInt(b[0].into()),
        (2, true) => Value::Int(i16::from_ne_bytes(b.try_into().ok()?).into()),
        (2, false) => Value::UInt(u16::from_ne_bytes(b.try_into().ok()?).into()),
        (4, true) => Value::Int(i32::from_ne_bytes(b.try_into().ok()?).into()),
        (4, false) => Value::UInt(u32::from_ne_bytes(b.try_into().ok()?).into()),
        (8, true) => Value::Int(i64::from_ne_bytes(b.try_into().ok()?)),
        (8, false) => Value::UInt(u64::from_ne_bytes(b.try_into().ok()?)),
        _ => return None,
    })
}

fn decode_at(bytes: &[u8], at: usize, ty: &Type) -> Value {
    let value = match ty {
        Type::Int { size, signed } => int_at(bytes, at, *size, *signed),
        Type::Float { size: 4 } => bytes
            .get(at..at + 4)
            .map(|b| Value::Float(f32::from_ne_bytes(b.try_into().expect("4 bytes")).into())),
        Type::Float { size: 8 } => bytes
            .get(at..at + 8)
            .map(|b| Value::Float(f64::from_ne_bytes(b.try_into().expect("8 bytes")))),
        Type::Float { .. } | Type::Opaque { .. } => None,
        Type::Bool => bytes.get(at).map(|&b| Value::Bool(b != 0)),
        Type::Array { elem, len } => Some(Value::Array(
            (0..*len)
                .map(|i| decode_at(bytes, at + i * elem.size(), elem))
                .collect(),
        )),
        Type::Struct { fields, .. } => Some(Value::Struct(
            fields
                .iter()
                .map(|f| (f.name.clone(), decode_at(bytes, at + f.offset, &f.ty)))
                .collect(),
        )),
    };
    value.unwrap_or(Value::Null)
}

/// Decodes `bytes` with `ty`, or with the default rule when `ty` is `None` or does not have
/// exactly `bytes.len()` bytes.
pub fn decode(bytes: &[u8], ty: Option<&Type>) -> Value {
    match ty {
        Some(ty) if ty.size() == bytes.len() => decode_at(bytes, 0, ty),
        _ => int_at(bytes, 0, bytes.len(), true).unwrap_or(Value::Null),
    }
}

/// The sequence word of a consistent hint's entry (a `u64`, then two copies of the value), if
/// the bytes hold one.
pub fn consistent_seq(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Decodes a consistent entry's bytes: the copy of the value that its sequence word names as
/// whole, and the word. The value is null if the word is not one of the two-copy format (its
/// bit 0 is clear), or if the bytes are too short for two copies of `value_type`. Whether the
/// copy was taken whole is for the caller to confirm ([`crate::report::Document`]).
pub fn decode_consistent(bytes: &[u8], value_type: &Type) -> (Value, Option<u64>) {
    let Some(seq) = consistent_seq(bytes) else {
        return (decode(bytes, None), None);
    };
    let size = value_type.size();
    let at = seq_copy_offset(size, seq_copy(seq));
    let value = match bytes.get(at..at + size) {
        Some(v) if seq & SEQ_LATCH != 0 && bytes.len() >= seq_copy_offset(size, 2) => {
            decode(v, Some(value_type))
        }
        _ => Value::Null,
    };
    (value, Some(seq))
}

/// Lower-case hex of `bytes`, two digits per byte, no separators.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(v) => s.serialize_i64(*v),
            Value::UInt(v) => s.serialize_u64(*v),
            // NaN and infinities have no JSON spelling: serde_json writes them as null.
            Value::Float(v) => s.serialize_f64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Struct(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            Value::Null => s.serialize_unit(),
        }
    }
}

impl fmt::Display for Value {
    /// The human form: `42`, `true`, `[1, 2]`, `{x: 1, y: -3}`, `?` for no value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Struct(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {value}")?;
                }
                f.write_str("}")
            }
            Value::Null => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Field;

    #[test]
    fn default_rule() {
        assert_eq!(decode(&(-5i32).to_ne_bytes(), None), Value::Int(-5));
        assert_eq!(decode(&[0xff], None), Value::Int(-1));
        assert_eq!(decode(&u64::MAX.to_ne_bytes(), None), Value::Int(-1));
        assert_eq!(decode(&[1, 2, 3], None), Value::Null);
        assert_eq!(decode(&[0; 16], None), Value::Null);
        assert_eq!(hex(&[0, 0xab, 7]), "00ab07");
    }

    #[test]
    fn typed_values() {
        let ty = Type::Struct {
            size: 16,
            name: "S".into(),
            rust_path: String::new(),
            align: 8,
            fields: vec![
                Field {
                    name: "id".into(),
                    offset: 0,
                    ty: Type::Int {
                        size: 4,
                        signed: false,
                    },
                },
                Field {
                    name: "flags".into(),
                    offset: 4,
                    ty: Type::Array {
                        elem: Box::new(Type::Bool),
                        len: 2,
                    },
                },
                Field {
                    name: "score".into(),
                    offset: 8,
                    ty: Type::Float { size: 8 },
                },
            ],
        };
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::MAX.to_ne_bytes());
        bytes.extend_from_slice(&[0, 9, 0, 0]);
        bytes.extend_from_slice(&0.5f64.to_ne_bytes());
        let v = decode(&bytes, Some(&ty));
        assert_eq!(
            v.to_string(),
            "{id: 4294967295, flags: [false, true], score: 0.5}"
        );
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"id":4294967295,"flags":[false,true],"score":0.5}"#
        );
        // A type of the wrong size is not used.
        assert_eq!(
            decode(&bytes[..8], Some(&ty)),
            Value::Int(i64::from_ne_bytes(bytes[..8].try_into().unwrap()))
        );
        assert_eq!(
            serde_json::to_string(&Value::Float(f64::NAN)).unwrap(),
            "null"
        );
    }

    #[test]
    fn the_word_names_the_copy_to_show() {
        use tld_runtime::wire::{SEQ_CLAIM_BPF, SEQ_ONE};
        let ty = Type::Int {
            size: 4,
            signed: false,
        };
        // Version 3 (copy 1 whole), a BPF program writing copy 0.
        let seq = (3 * SEQ_ONE) | SEQ_LATCH | SEQ_CLAIM_BPF;
        let mut bytes = seq.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&9u32.to_ne_bytes()); // copy 0, half written
        bytes.extend_from_slice(&7u32.to_ne_bytes()); // copy 1
        assert_eq!(decode_consistent(&bytes, &ty), (Value::UInt(7), Some(seq)));
        // Version 4: copy 0.
        let seq = (4 * SEQ_ONE) | SEQ_LATCH;
        bytes[..8].copy_from_slice(&seq.to_ne_bytes());
        assert_eq!(decode_consistent(&bytes, &ty), (Value::UInt(9), Some(seq)));
        // A word of the one-copy format (even at rest), or bytes too short for two copies.
        bytes[..8].copy_from_slice(&4u64.to_ne_bytes());
        assert_eq!(decode_consistent(&bytes, &ty), (Value::Null, Some(4)));
        bytes[..8].copy_from_slice(&seq.to_ne_bytes());
        assert_eq!(decode_consistent(&bytes[..3], &ty), (Value::Null, None));
        assert_eq!(
            decode_consistent(&bytes[..12], &ty),
            (Value::Null, Some(seq))
        );
    }
}
