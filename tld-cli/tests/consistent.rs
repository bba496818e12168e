//! A consistent hint in `tld show`: with the schema, its value alone (not the counter), its
//! counter as `seq`, and `whole`; caught in the middle of a write (its counter odd, as a BPF
//! writer that stopped midway leaves it), no value at all rather than half of one.
mod common;

use common::*;
use serde_json::{json, Value};
use tld_runtime::task_local_data;

/// In this binary only: key "window".
#[task_local_data(consistent)]
static WINDOW: [u32; 4] = [0; 4];

const TEST: &str = "a_consistent_hint_shows_a_whole_value_or_none";

/// The role of this test's child: one thread sets `window` and registers.
const ROLE: &str = "consistent";

fn play_consistent() {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        WINDOW.set([10, 20, 30, 40]);
        tld_runtime::thread_init().expect("the thread registers");
        // SAFETY: gettid cannot fail.
        tx.send(unsafe { libc::gettid() }).unwrap();
        wait_for_parent();
    });
    ready_line(&[rx.recv().expect("the thread is ready")]);
    thread.join().unwrap();
}

/// The key `window` of thread `tid`, from `tld show --json`.
fn window(pin: &str, schema: Option<&str>, tid: i32) -> Value {
    let tid = tid.to_string();
    let mut args = vec!["show", "--pin", pin, &tid, "--json"];
    if let Some(schema) = schema {
        args.extend(["--schema", schema]);
    }
    let doc: Value = serde_json::from_str(&tld_ok(&args)).expect("JSON");
    doc["tasks"][0]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["key"] == "window")
        .cloned()
        .expect("the key window")
}

#[test]
fn a_consistent_hint_shows_a_whole_value_or_none() {
    match role().as_deref() {
        Some(ROLE) => return play_consistent(),
        Some(other) => return play(other),
        None => {}
    }
    let Some(fixture) = Fixture::load(TEST) else {
        return;
    };
    let pin = fixture.pin().to_str().unwrap().to_string();
    let app = RoleChild::spawn(TEST, ROLE, fixture.pin());
    let a = app.tids[0];

    let dir = std::env::temp_dir().join(format!("tld-cli-{TEST}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    tld_runtime::header::write(dir.join("tld_generated.h")).expect("write the header");
    let schema = dir.join("tld_generated.schema.json");
    let schema = schema.to_str().unwrap();

    // With the schema: the value alone, the counter, and whole.
    let k = window(&pin, Some(schema), a);
    assert_eq!(k["size"], 24, "an 8-byte counter and 16 bytes of value");
    assert_eq!(k["value"], json!([10, 20, 30, 40]));
    // One write so far, the thread's `set`: the counter went 0, 1, 2.
    assert_eq!((&k["seq"], &k["whole"]), (&json!(2), &json!(true)), "{k}");
    let offset = k["offset"].as_u64().unwrap() as usize;

    // Without it, the bytes of the counter and the value, as for any unknown 24-byte key.
    let k = window(&pin, None, a);
    assert_eq!(k["value"], Value::Null);
    assert!(k.get("seq").is_none() && k.get("whole").is_none(), "{k}");
    assert!(
        k["hex"]
            .as_str()
            .unwrap()
            .starts_with("02000000000000000a000000"),
        "{k}"
    );

    // A writer claims the counter and writes half a value, then stops.
    assert_eq!(fixture.write(a, Page::Data, offset, &3u64.to_ne_bytes()), 0);
    assert_eq!(
        fixture.write(a, Page::Data, offset + 8, &[7, 0, 0, 0, 7, 0, 0, 0]),
        0
    );
    let k = window(&pin, Some(schema), a);
    assert_eq!(
        k["value"],
        Value::Null,
        "half a value must not be shown: {k}"
    );
    assert_eq!((&k["seq"], &k["whole"]), (&json!(3), &json!(false)), "{k}");
    let table = tld_ok(&["show", "--pin", &pin, "--schema", schema, &a.to_string()]);
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("window"))
        .unwrap_or_else(|| panic!("no window line in:\n{table}"));
    assert!(line.ends_with("(being written: seq 3)"), "{table}");

    // It finishes: the whole new value.
    assert_eq!(
        fixture.write(a, Page::Data, offset + 16, &[7, 0, 0, 0, 7, 0, 0, 0]),
        0
    );
    assert_eq!(fixture.write(a, Page::Data, offset, &4u64.to_ne_bytes()), 0);
    let k = window(&pin, Some(schema), a);
    assert_eq!(k["value"], json!([7, 7, 7, 7]));
    assert_eq!((&k["seq"], &k["whole"]), (&json!(4), &json!(true)), "{k}");
    let table = tld_ok(&["show", "--pin", &pin, "--schema", schema, &a.to_string()]);
    assert!(table.contains("[7, 7, 7, 7]"), "{table}");

    app.finish();
    std::fs::remove_dir_all(&dir).ok();
}
