//! The shape of `tld-bench.json`, the report's figures: one object per row id, in the table's
//! order, each with `ours`, `floor`, `ratio`, `unit`, `goal` and `met`, then a few fields of
//! its own. Serialized with serde_json; a number that is not finite (a figure that could not be
//! measured) is `null`.

use serde::ser::{Serialize, SerializeMap, Serializer};

/// One row's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// Our figure.
    pub ours: f64,
    /// The figure it is compared with.
    pub floor: f64,
    /// How the two compare (the row's unit says which way).
    pub ratio: f64,
    /// What the figures measure.
    pub unit: String,
    /// The row's goal, in words.
    pub goal: String,
    /// Whether the run met it.
    pub met: bool,
    /// The row's own further fields, in order, after the common ones.
    #[serde(flatten)]
    pub extra: Ordered<Extra>,
}

impl Entry {
    /// An entry with no further fields.
    pub fn new(
        ours: f64,
        floor: f64,
        ratio: f64,
        unit: impl Into<String>,
        goal: impl Into<String>,
        met: bool,
    ) -> Entry {
        Entry {
            ours,
            floor,
            ratio,
            unit: unit.into(),
            goal: goal.into(),
            met,
            extra: Ordered::default(),
        }
    }

    /// Adds a further field.
    pub fn with(mut self, name: &str, value: impl Into<Extra>) -> Entry {
        self.extra.0.push((name.to_string(), value.into()));
        self
    }
}

/// The value of a further field.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Extra {
    /// A measured number (`null` if not finite).
    Num(f64),
    /// A count.
    Count(u64),
    /// Text.
    Text(String),
    /// Numbers by name, in order.
    Nums(Ordered<f64>),
}

impl From<f64> for Extra {
    fn from(x: f64) -> Extra {
        Extra::Num(x)
    }
}

impl From<usize> for Extra {
    fn from(n: usize) -> Extra {
        Extra::Count(n as u64)
    }
}

impl From<String> for Extra {
    fn from(s: String) -> Extra {
        Extra::Text(s)
    }
}

impl From<Ordered<f64>> for Extra {
    fn from(m: Ordered<f64>) -> Extra {
        Extra::Nums(m)
    }
}

/// A JSON object whose members keep the order they were pushed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The whole document: `{`, then one row per line, `"id": {...}`, in order, then `}` and a
/// newline, with a space after each `:` and `,` inside a row.
pub fn document(rows: Vec<(String, Entry)>) -> String {
    let mut out = String::from("{\n");
    for (i, (id, entry)) in rows.iter().enumerate() {
        let mut line = Vec::new();
        id.serialize(&mut serde_json::Serializer::with_formatter(
            &mut line, Spaced,
        ))
        .expect("serializing a string into memory cannot fail");
        line.extend_from_slice(b": ");
        entry
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut line, Spaced,
            ))
            .expect("serializing plain numbers, strings and booleans into memory cannot fail");
        out.push_str("  ");
        out.push_str(&String::from_utf8(line).expect("serde_json writes UTF-8"));
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("}\n");
    out
}

/// serde_json's compact layout with a space after each `:` and `,`.
struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
}
