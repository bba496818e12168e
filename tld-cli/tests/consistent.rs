//! A consistent hint in `tld show`: with the schema, the whole copy of its value alone (not the
//! sequence word or the other copy), its word as `seq`, and `whole`; while a writer is stopped in
//! the middle of a write (as a BPF writer that crashed leaves it), still the whole copy, never
//! the half-written one; and no value at all for a word that is not of the two-copy format.
use serde_json::{json, Value};
use tld_cli_test_support::{bpf::*, roles::*, run::*};
use tld_runtime::task_local_data;
use tld_runtime::wire::{SEQ_CLAIM_BPF, SEQ_LATCH, SEQ_ONE};

/// A sequence word as the hex of its bytes.
fn word_hex(seq: u64) -> String {
    seq.to_ne_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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

    // With the schema: the whole copy alone, the word, and whole.
    let k = window(&pin, Some(schema), a);
    assert_eq!(k["size"], 40, "an 8-byte word and two copies of 16 bytes");
    assert_eq!(k["value"], json!([10, 20, 30, 40]));
    // One write so far, the thread's `set`: version 1 (copy 1 whole), nobody writing.
    let v1 = SEQ_LATCH + SEQ_ONE;
    assert_eq!((&k["seq"], &k["whole"]), (&json!(v1), &json!(true)), "{k}");
    let offset = k["offset"].as_u64().unwrap() as usize;

    // Without it, the bytes of the word and both copies, as for any unknown 40-byte key: copy 0
    // still holds the initial value.
    let k = window(&pin, None, a);
    assert_eq!(k["value"], Value::Null);
    assert!(k.get("seq").is_none() && k.get("whole").is_none(), "{k}");
    let hex = k["hex"].as_str().unwrap();
    assert!(
        hex.starts_with(&format!("{}{}0a000000", word_hex(v1), "00".repeat(16))),
        "{k}"
    );

    // A BPF writer claims the word and writes half a value into copy 0, then stops.
    let stuck = v1 | SEQ_CLAIM_BPF;
    assert_eq!(
        fixture.write(a, Page::Data, offset, &stuck.to_ne_bytes()),
        0
    );
    assert_eq!(
        fixture.write(a, Page::Data, offset + 8, &[7, 0, 0, 0, 7, 0, 0, 0]),
        0
    );
    let k = window(&pin, Some(schema), a);
    assert_eq!(
        k["value"],
        json!([10, 20, 30, 40]),
        "the whole copy, never the half-written one: {k}"
    );
    assert_eq!(
        (&k["seq"], &k["whole"]),
        (&json!(stuck), &json!(true)),
        "{k}"
    );

    // It finishes and publishes version 2: copy 0 is the whole one now.
    assert_eq!(
        fixture.write(a, Page::Data, offset + 16, &[7, 0, 0, 0, 7, 0, 0, 0]),
        0
    );
    let v2 = v1 + SEQ_ONE;
    assert_eq!(fixture.write(a, Page::Data, offset, &v2.to_ne_bytes()), 0);
    let k = window(&pin, Some(schema), a);
    assert_eq!(k["value"], json!([7, 7, 7, 7]));
    assert_eq!((&k["seq"], &k["whole"]), (&json!(v2), &json!(true)), "{k}");
    let table = tld_ok(&["show", "--pin", &pin, "--schema", schema, &a.to_string()]);
    assert!(table.contains("[7, 7, 7, 7]"), "{table}");

    // A word of the one-copy format (even at rest): no value, and the table says why.
    assert_eq!(fixture.write(a, Page::Data, offset, &4u64.to_ne_bytes()), 0);
    let k = window(&pin, Some(schema), a);
    assert_eq!(
        (&k["value"], &k["whole"]),
        (&Value::Null, &json!(false)),
        "{k}"
    );
    let table = tld_ok(&["show", "--pin", &pin, "--schema", schema, &a.to_string()]);
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("window"))
        .unwrap_or_else(|| panic!("no window line in:\n{table}"));
    assert!(
        line.ends_with("(not a consistent entry of this format: seq 0x4)"),
        "{table}"
    );

    app.finish();
    std::fs::remove_dir_all(&dir).ok();
}
