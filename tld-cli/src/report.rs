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
//! - `error`: present only on a task whose pages cannot be decoded (a corrupt metadata page,
//!   say); its `keys` is then empty. The other tasks are unaffected.
//!
//! Members are only ever added, never renamed or removed; consumers should ignore members they
//! do not know.

use serde::Serialize;

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
}

impl Task {
    /// Decodes a task's record, with types from `schema`.
    pub fn from_raw(raw: &RawTask, schema: &Schema) -> Task {
        let (keys, error) = match decode::decode(raw.data.as_deref(), raw.meta.as_deref()) {
            Ok(keys) => (
                keys.into_iter()
                    .map(|k| Key {
                        value: value::decode(&k.bytes, schema.get(&k.name)),
                        hex: value::hex(&k.bytes),
                        key: k.name,
                        size: k.size,
                        offset: k.offset,
                    })
                    .collect(),
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
        }
    }
}

impl Document {
    /// Decodes records into a document, sorted by pid then tid.
    pub fn from_raw(raw: &[RawTask], schema: &Schema) -> Document {
        let mut tasks: Vec<Task> = raw.iter().map(|r| Task::from_raw(r, schema)).collect();
        tasks.sort_by_key(|t| (t.pid, t.tid));
        Document { tasks }
    }

    /// The document as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a document always serializes")
    }
}
