//! The schema that `tld_runtime::header::write` writes next to the header: deterministic, the
//! same as `tld_runtime::schema::generate()`, consistent with the header's layout, and read
//! back by `tld --schema` with every type.
use tld_cli::schema::{Schema, Type};
// Links the `app` hints (among them the `Latency` struct) that the schema is checked against.
use tld_cli_test_support as _;

#[test]
fn header_write_puts_the_schema_next_to_the_header() {
    let dir = std::env::temp_dir().join(format!("tld-cli-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = dir.join("tld_generated.h");
    tld_runtime::header::write(&header).expect("write");
    let path = dir.join("tld_generated.schema.json");
    assert_eq!(tld_runtime::schema::path_for(&header), path);
    let text = std::fs::read_to_string(&path).expect("the schema is written");
    assert_eq!(text, tld_runtime::schema::generate().unwrap());
    assert_eq!(
        text,
        tld_runtime::schema::generate().unwrap(),
        "two runs differ"
    );

    // The layout members agree with the header.
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(doc["format"], "tld-schema");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["start"], 16);
    let h = std::fs::read_to_string(&header).unwrap();
    let fp = doc["fingerprint"].as_str().expect("a fingerprint");
    assert!(
        h.contains(&format!("#define TLD_LAYOUT_FP {fp}ULL")),
        "{fp}\n{h}"
    );
    for (key, offset) in [("latency", 56), ("priority", 88), ("active", 16)] {
        assert_eq!(doc["keys"][key]["offset"], offset);
        assert!(h.contains(&format!("#define TLD_OFF_{key} {offset}\n")));
    }
    let keys: Vec<&String> = doc["keys"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "active",
            "blob",
            "bpf_counter",
            "flags",
            "latency",
            "priority"
        ]
    );
    assert_eq!(doc["keys"]["latency"]["c_type"], "struct Latency");
    assert_eq!(doc["keys"]["latency"]["rust_type"], "Latency");
    assert_eq!(doc["keys"]["blob"]["c_type"], "__u8[12]");

    // tld reads every type back.
    let schema = Schema::load(&[&path]).expect("tld reads it");
    assert_eq!(schema.get("active"), Some(&Type::Bool));
    assert_eq!(
        schema.get("flags"),
        Some(&Type::Int {
            size: 2,
            signed: false
        })
    );
    assert_eq!(
        schema.get("priority"),
        Some(&Type::Int {
            size: 4,
            signed: true
        })
    );
    assert_eq!(
        schema.get("blob"),
        Some(&Type::Array {
            elem: Box::new(Type::Int {
                size: 1,
                signed: false
            }),
            len: 12
        })
    );
    let Some(Type::Struct {
        size: 32, fields, ..
    }) = schema.get("latency")
    else {
        panic!("{schema:?}")
    };
    let layout: Vec<(&str, usize, usize)> = fields
        .iter()
        .map(|f| (f.name.as_str(), f.offset, f.ty.size()))
        .collect();
    assert_eq!(
        layout,
        [
            ("budget_us", 0, 4),
            ("class", 4, 2),
            ("urgent", 6, 1),
            ("tier", 7, 1),
            ("windows", 8, 16),
            ("weight", 24, 8)
        ]
    );
    let Type::Array { elem, len: 2 } = &fields[4].ty else {
        panic!("{fields:?}")
    };
    assert!(matches!(**elem, Type::Struct { size: 8, .. }));
    assert_eq!(fields[5].ty, Type::Float { size: 8 });
}
