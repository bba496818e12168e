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
use crate::schema::Schema;

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
    use crate::value::Value;

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
            value_start: None,
            own: None,
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
}
