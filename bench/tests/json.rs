//! `tld-bench.json`'s serialization: field names, order and types as its readers expect.

use tld_bench::json::{document, Entry, Ordered};

/// The fields, their order and their types, as the readers of `tld-bench.json` expect.
#[test]
fn rows_serialize_as_before() {
    let rows = vec![
        (
            "P1".to_string(),
            Entry::new(1.5, 1.25, 1.2, "ns per set", "<= 1.3x", true),
        ),
        (
            "P6".to_string(),
            Entry::new(f64::NAN, 2.0, f64::INFINITY, "u \"q\"", "g", false)
                .with("cached", 3.0)
                .with("pool_pages", 12usize)
                .with("kernel", "7.0.1".to_string())
                .with(
                    "load_us",
                    Ordered(vec![("b".to_string(), 2.5), ("a".to_string(), f64::NAN)]),
                ),
        ),
    ];
    let text = document(rows);
    assert!(
        text.starts_with("{\n  \"P1\": {\"ours\": 1.5, \"floor\": 1.25, "),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
    // One row per line.
    assert_eq!(text.lines().count(), 4, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "P1": {"ours": 1.5, "floor": 1.25, "ratio": 1.2, "unit": "ns per set",
                   "goal": "<= 1.3x", "met": true},
            "P6": {"ours": null, "floor": 2.0, "ratio": null, "unit": "u \"q\"",
                   "goal": "g", "met": false, "cached": 3.0, "pool_pages": 12,
                   "kernel": "7.0.1", "load_us": {"b": 2.5, "a": null}},
        })
    );
    // Ids, and each row's fields, in the order they were given.
    let at = |s: &str| text.find(s).unwrap();
    assert!(at("\"P1\"") < at("\"P6\""));
    assert!(at("\"met\": false") < at("\"cached\"") && at("\"cached\"") < at("\"load_us\""));
    assert!(at("\"b\": 2.5") < at("\"a\": null"));
}
