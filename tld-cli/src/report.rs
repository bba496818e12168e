//! What the commands report: each task with its decoded keys, and the `--json` document.
//!
//! # The JSON document (stable)
//!
//! `tld ps --json` and `tld show --json` print one JSON document on one line:
//!
//! ```json
//! {"tasks":[{"pid":4242,"tid":4243,"comm":"worker","keys":[
//!   {"key":"priority","size":4,"offset":16,"value":90,"hex":"5a000000"}]}]}
//! ```
//!
//! - `tasks`: one object per task (thread) with an element in the map, sorted by `pid`, then
//!   `tid`.
//! - `pid`: the thread group id (the process); `tid`: the thread id; `comm`: the thread's name.
//! - `keys`: the published keys in metadata order, each with `key` (its name), `size` (bytes),
//!   `offset` (from the start of the thread's page), `value` and `hex`.
//! - `value`: the decoded value: a number (integers and floats), `true`/`false`, an array, or
//!   an object whose members are a struct's fields in declaration order. It is `null` when the
//!   type is unknown: without a schema, sizes other than 1, 2, 4 and 8 (which decode as signed
//!   integers); a NaN or infinite float is also `null`.
//! - `hex`: the value's raw bytes, always, as lower-case hex (two digits per byte, in memory
//!   order).
//! - `seq` and `whole`: present only on a consistent hint (`#[task_local_data(consistent)]`,
//!   known from a schema), whose bytes are a `u64` sequence word and then two copies of the
//!   value. `seq` is the word as copied (bit 1 set: the thread is writing, bit 2: a BPF program
//!   is writing, the version from bit 4); `value` is the copy the word names as whole, alone.
//!   `whole` says whether that copy was taken whole: the word had the same version in a copy of
//!   the page taken before the one decoded, and no writer had started on that copy by a copy
//!   taken after it. A write in progress on the other copy does not matter. When writers
//!   overtook the copy, or the word is not of this format, `whole` is `false` and `value` is
//!   `null`: the bytes in `hex` may be half of one write and half of another.
//! - `error`: present only on a task whose pages cannot be decoded (a corrupt metadata page,
//!   say); its `keys` is then empty. The other tasks are unaffected.
//!
//! Members are only ever added, never renamed or removed; consumers should ignore members they
//! do not know.

use serde::Serialize;
use tld_runtime::wire::{seq_copy_whole, SEQ_LATCH, SEQ_VERSION_SHIFT};

use crate::decode;
use crate::iter::RawTask;
use crate::schema::Schema;
use crate::value::{self, Value};

/// The `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    /// The tasks, sorted by pid then tid.
    pub tasks: Vec<Task>,
}

/// One task (thread) and its keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// Thread group id.
    pub pid: i32,
    /// Thread id.
    pub tid: i32,
    /// The thread's name.
    pub comm: String,
    /// The process's name (its main thread's), for the human output; not in the JSON.
    #[serde(skip)]
    pub process: String,
    /// The keys, in metadata order; empty when [`Self::error`] is set.
    pub keys: Vec<Key>,
    /// Why the task's pages cannot be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where a guard stamps the map's elements: `"own process"` if the element was registered
    /// by a task of the thread's own process, `"another process"` otherwise (readers built with
    /// the guard's check ignore those). Absent without a guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_by: Option<&'static str>,
}

/// One key of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Key {
    /// The key's name.
    pub key: String,
    /// The value's size in bytes.
    pub size: usize,
    /// The value's offset from the start of the thread's page.
    pub offset: usize,
    /// The decoded value.
    pub value: Value,
    /// The raw bytes, in hex.
    pub hex: String,
    /// For a consistent hint: its sequence word, as copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// For a consistent hint: whether [`Self::value`] is a whole value (else it is null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole: Option<bool>,
}

impl Key {
    /// Decodes a raw key with its type from `schema`.
    fn new(k: decode::RawKey, schema: &Schema) -> Key {
        let (value, seq) = match schema.consistent_value(&k.name) {
            Some(ty) => value::decode_consistent(&k.bytes, ty),
            None => (value::decode(&k.bytes, schema.get(&k.name)), None),
        };
        Key {
            value,
            hex: value::hex(&k.bytes),
            whole: seq.map(|s| s & SEQ_LATCH != 0),
            seq,
            key: k.name,
            size: k.size,
            offset: k.offset,
        }
    }

    /// Takes back the value of a consistent hint that was not copied whole.
    fn not_whole(&mut self) {
        if self.whole.is_some() {
            self.whole = Some(false);
            self.value = Value::Null;
        }
    }
}

impl Task {
    /// Decodes a task's record, with types from `schema`.
    pub fn from_raw(raw: &RawTask, schema: &Schema) -> Task {
        let (keys, error) = match decode::decode_task(raw) {
            Ok(keys) => (
                keys.into_iter().map(|k| Key::new(k, schema)).collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Task {
            pid: raw.pid,
            tid: raw.tid,
            comm: raw.comm.clone(),
            process: raw.process.clone(),
            keys,
            error,
            registered_by: raw
                .own
                .map(|own| if own { OWN_PROCESS } else { ANOTHER_PROCESS }),
        }
    }
}

/// [`Task::registered_by`] of an element registered by the thread's own process.
pub const OWN_PROCESS: &str = "own process";
/// [`Task::registered_by`] of an element registered by another process.
pub const ANOTHER_PROCESS: &str = "another process";

impl Document {
    /// Decodes records into a document, sorted by pid then tid.
    pub fn from_raw(raw: &[RawTask], schema: &Schema) -> Document {
        let mut tasks: Vec<Task> = raw.iter().map(|r| Task::from_raw(r, schema)).collect();
        tasks.sort_by_key(|t| (t.pid, t.tid));
        Document { tasks }
    }

    /// Whether a key of the document is a consistent hint.
    pub fn has_consistent(&self) -> bool {
        self.tasks
            .iter()
            .flat_map(|t| &t.keys)
            .any(|k| k.seq.is_some())
    }

    /// Confirms that the consistent hints of this document, decoded from one copy of the pages,
    /// were copied whole: the copy its word names was published before the copy taken `before`
    /// this one (the word had the same version there), and no writer had started on it by the
    /// copy taken `after` this one ([`seq_copy_whole`]). Values that fail are taken back (see
    /// [`Key::whole`]), as are those of a thread missing from either copy.
    pub fn confirm_consistent(&mut self, before: &[RawTask], after: &[RawTask]) {
        let seqs = |raw: &[RawTask], tid: i32| -> Option<Vec<decode::RawKey>> {
            let t = raw.iter().find(|t| t.tid == tid)?;
            decode::decode_task(t).ok()
        };
        for task in &mut self.tasks {
            let (b, a) = (seqs(before, task.tid), seqs(after, task.tid));
            for key in &mut task.keys {
                let Some(seq) = key.seq else { continue };
                // The word of the same key in another copy of the pages.
                let word = |keys: &Option<Vec<decode::RawKey>>| {
                    keys.as_ref()?
                        .iter()
                        .find(|k| k.name == key.key && k.offset == key.offset)
                        .and_then(|k| value::consistent_seq(&k.bytes))
                };
                let published_before =
                    word(&b).is_some_and(|w| w >> SEQ_VERSION_SHIFT == seq >> SEQ_VERSION_SHIFT);
                let untouched_after = word(&a).is_some_and(|w| seq_copy_whole(seq, w));
                if seq & SEQ_LATCH == 0 || !published_before || !untouched_after {
                    key.not_whole();
                }
            }
        }
    }

    /// The document as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a document always serializes")
    }
}
