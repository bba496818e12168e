//! Consistent hints in copied pages: a value is shown only when it was copied whole.
//!
//! A consistent hint (`#[task_local_data(consistent)]`; the schema marks it `"consistent":
//! true`) is a `u64` sequence word followed by two copies of its value. The word's version
//! names the copy that is whole; a writer fills the other one and then moves the version on.
//! The iterator copies pages while their threads run, so the copy it takes of the whole copy may
//! still be overtaken by a writer that starts on it (which takes two versions), and the word and
//! the value are copied at different moments. The inspector therefore takes two more copies when
//! a hint is consistent, and decodes the middle one: its value is whole if the word had the same
//! version in the first copy and no writer had started on that copy by the third
//! ([`Document::confirm_consistent`]).

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

    use tld_runtime::wire::{SEQ_CLAIM_BPF, SEQ_CLAIM_THREAD, SEQ_LATCH, SEQ_ONE};

    const SCHEMA: &str = r#"{"format": "tld-schema", "keys": {"w": {"size": 16, "consistent": true,
      "type": {"kind": "struct", "size": 16, "fields": [
        {"name": "seq", "offset": 0, "type": {"kind": "int", "size": 8, "signed": false}},
        {"name": "value", "offset": 8, "type": {"kind": "array", "size": 8, "len": 2,
          "elem": {"kind": "int", "size": 4, "signed": false}}}]}}}}"#;

    /// Thread 1's pages with the one key `w`: sequence word `seq`, copies `copies`.
    fn task(seq: u64, copies: [u32; 2]) -> RawTask {
        let mut data = vec![0u8; 4096];
        data[..8].copy_from_slice(&8u64.to_ne_bytes());
        data[8..16].copy_from_slice(&seq.to_ne_bytes());
        data[16..20].copy_from_slice(&copies[0].to_ne_bytes());
        data[20..24].copy_from_slice(&copies[1].to_ne_bytes());
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
    fn a_value_is_whole_only_if_no_writer_started_on_its_copy_between_the_copies() {
        let v2 = (2 * SEQ_ONE) | SEQ_LATCH; // copy 0 whole
        let t = |seq| task(seq, [7, 5]);
        assert_eq!(confirmed(&[t(v2)], t(v2), &[t(v2)]), (Value::UInt(7), true));
        // A writer busy with the other copy, before or after: the copy shown is whole.
        let bpf = v2 | SEQ_CLAIM_BPF;
        assert_eq!(
            confirmed(&[t(bpf)], t(bpf), &[t(v2 + SEQ_ONE)]),
            (Value::UInt(7), true)
        );
        let thread = v2 | SEQ_CLAIM_THREAD;
        assert_eq!(
            confirmed(&[t(thread)], t(thread), &[t(thread)]),
            (Value::UInt(7), true)
        );
        // The version was published after the first copy: its writer may have been writing.
        assert_eq!(
            confirmed(&[t(v2 - SEQ_ONE)], t(v2), &[t(v2)]),
            (Value::Null, false)
        );
        // A writer started on the copy shown before the last copy.
        assert_eq!(
            confirmed(&[t(v2)], t(v2), &[t((v2 + SEQ_ONE) | SEQ_CLAIM_BPF)]),
            (Value::Null, false)
        );
        assert_eq!(
            confirmed(&[t(v2)], t(v2), &[t(v2 + 2 * SEQ_ONE)]),
            (Value::Null, false)
        );
        // Not a word of this format.
        assert_eq!(confirmed(&[t(4)], t(4), &[t(4)]), (Value::Null, false));
        // The thread is missing from a copy: nothing confirms the value.
        assert_eq!(confirmed(&[], t(v2), &[t(v2)]), (Value::Null, false));
    }
}
