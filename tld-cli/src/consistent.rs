//! Consistent hints in copied pages: a value is shown only when it was copied whole.
//!
//! A consistent hint (`#[task_local_data(consistent)]`; the schema marks it `"consistent":
//! true`) is a `u64` sequence counter followed by its value. Writers make the counter odd, write
//! the value, and make it even again, adding 2 per write. The iterator copies pages while their
//! threads run, so one copy of a value may catch a write half done, even with an even counter
//! (the counter and the value are copied at different moments). The inspector therefore takes
//! two more copies when a hint is consistent, and decodes the middle one: its value is whole if
//! the counter is even and the same in all three copies ([`Document::confirm_consistent`]).

use crate::error::Error;
use crate::iter::{Inspector, RawTask};
use crate::report::Document;
use crate::schema::{Schema, Type};
use crate::value::{self, Value};

use tld_runtime::wire::SEQ_VALUE_OFFSET;

/// The counter of a consistent entry's bytes, if they hold one.
pub fn seq(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Decodes a consistent entry's bytes: its value (null while the counter is odd, or if the
/// bytes are too short for `value_type`) and its counter.
pub fn decode(bytes: &[u8], value_type: &Type) -> (Value, Option<u64>) {
    let Some(seq) = seq(bytes) else {
        return (value::decode(bytes, None), None);
    };
    let end = SEQ_VALUE_OFFSET + value_type.size();
    let value = match bytes.get(SEQ_VALUE_OFFSET..end) {
        Some(v) if seq % 2 == 0 => value::decode(v, Some(value_type)),
        _ => Value::Null,
    };
    (value, Some(seq))
}

/// The document for the tasks in `first`, a copy that `pick` selected from the inspector's
/// snapshot. When a task has a consistent hint, two more copies are taken (each selected by
/// `pick`), and the document is decoded from the second, confirmed against the first and the
/// third.
pub fn document(
    inspector: &Inspector,
    schema: &Schema,
    first: Vec<RawTask>,
    pick: impl Fn(Vec<RawTask>) -> Vec<RawTask>,
) -> Result<Document, Error> {
    let doc = Document::from_raw(&first, schema);
    if !schema.has_consistent() || !doc.has_consistent() {
        return Ok(doc);
    }
    let middle = pick(inspector.snapshot()?);
    let last = pick(inspector.snapshot()?);
    let mut doc = Document::from_raw(&middle, schema);
    doc.confirm_consistent(&first, &last);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"format": "tld-schema", "keys": {"w": {"size": 16, "consistent": true,
      "type": {"kind": "struct", "size": 16, "fields": [
        {"name": "seq", "offset": 0, "type": {"kind": "int", "size": 8, "signed": false}},
        {"name": "value", "offset": 8, "type": {"kind": "int", "size": 4, "signed": false}}]}}}}"#;

    /// Thread 1's pages with the one key `w`: counter `seq` and value `v`.
    fn task(seq: u64, v: u32) -> RawTask {
        let mut data = vec![0u8; 4096];
        data[..8].copy_from_slice(&8u64.to_ne_bytes());
        data[8..16].copy_from_slice(&seq.to_ne_bytes());
        data[16..20].copy_from_slice(&v.to_ne_bytes());
        let mut meta = vec![0u8; 4036];
        meta[..2].copy_from_slice(&1u16.to_ne_bytes());
        meta[4] = b'w';
        meta[4 + 62..4 + 64].copy_from_slice(&16u16.to_ne_bytes());
        RawTask {
            pid: 1,
            tid: 1,
            comm: "t".into(),
            process: "p".into(),
            data: Some(data),
            meta: Some(meta),
        }
    }

    fn confirmed(before: &[RawTask], middle: RawTask, after: &[RawTask]) -> (Value, bool) {
        let schema = Schema::parse(SCHEMA).unwrap();
        let mut doc = Document::from_raw(&[middle], &schema);
        doc.confirm_consistent(before, after);
        let k = &doc.tasks[0].keys[0];
        assert_eq!(k.key, "w");
        (k.value.clone(), k.whole.expect("a consistent key"))
    }

    #[test]
    fn a_value_is_whole_only_if_no_write_touched_it_between_the_copies() {
        let t = || task(2, 7);
        assert_eq!(confirmed(&[t()], t(), &[t()]), (Value::UInt(7), true));
        // A write finished between the copies, or started before the last one.
        assert_eq!(confirmed(&[task(0, 5)], t(), &[t()]), (Value::Null, false));
        assert_eq!(confirmed(&[t()], t(), &[task(3, 7)]), (Value::Null, false));
        // In the middle of a write in the decoded copy.
        assert_eq!(
            confirmed(&[task(3, 7)], task(3, 7), &[task(3, 7)]),
            (Value::Null, false)
        );
        // The thread is missing from a copy: nothing confirms the value.
        assert_eq!(confirmed(&[], t(), &[t()]), (Value::Null, false));
    }

    #[test]
    fn an_odd_counter_gives_no_value() {
        let ty = Type::Int {
            size: 4,
            signed: false,
        };
        let mut bytes = 4u64.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&7u32.to_ne_bytes());
        bytes.extend_from_slice(&[0; 4]);
        assert_eq!(decode(&bytes, &ty), (Value::UInt(7), Some(4)));
        bytes[..8].copy_from_slice(&5u64.to_ne_bytes());
        assert_eq!(decode(&bytes, &ty), (Value::Null, Some(5)));
        assert_eq!(decode(&bytes[..3], &ty), (Value::Null, None));
        assert_eq!(decode(&bytes[..10], &ty), (Value::Null, Some(5)));
    }
}
