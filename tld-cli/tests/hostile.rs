//! Pages nobody should trust: hand-made corrupt pages from another writer, a metadata page that
//! BPF corrupted under a running application, and tasks that exit while the iterator runs. Each
//! bad task gets its own clear error; every other task still prints; nothing hangs (every run of
//! `tld` is bounded by a timeout).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tld_cli_test_support::{bpf::*, roles::*, run::*};

fn parse(json: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(json).expect("one JSON document");
    doc["tasks"].as_array().expect("tasks").clone()
}

fn by_tid(tasks: &[Value], tid: i32) -> &Value {
    tasks
        .iter()
        .find(|t| t["tid"] == tid)
        .unwrap_or_else(|| panic!("no task {tid} in {tasks:?}"))
}

const RAW: &str = "corrupt_pages_give_per_task_errors";

#[test]
fn corrupt_pages_give_per_task_errors() {
    if let Some(role) = role() {
        return play(&role);
    }
    let Some(fixture) = Fixture::load(RAW) else {
        return;
    };
    let pin = fixture.pin().to_str().unwrap().to_string();
    let app = RoleChild::spawn(RAW, "app", fixture.pin());
    let raw = RoleChild::spawn(RAW, "raw", fixture.pin());

    let out = tld(&["ps", "--pin", &pin, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tasks = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(tasks.len(), app.tids.len() + raw.tids.len(), "{tasks:?}");

    // The healthy application is unaffected.
    for &tid in &app.tids {
        let t = by_tid(&tasks, tid);
        assert_eq!(t["keys"].as_array().unwrap().len(), 8, "{t}");
        assert!(t.get("error").is_none(), "{t}");
    }

    // Each corrupt page: its own error, no keys.
    let expected = [
        (
            "raw-badcnt",
            "corrupt metadata page: cnt is 65535, but the page holds at most 63 entries",
        ),
        (
            "raw-noterm",
            "corrupt metadata page: entry 0's name is not NUL-terminated",
        ),
        (
            "raw-overflow",
            "corrupt metadata page: entry 1 (past_the_end) has 200 bytes at offset 4016, past \
             the end of the 4096-byte data page",
        ),
        ("raw-nodata", "the element has no data page"),
    ];
    for (tid, name) in raw.tids.iter().zip(RAW_THREADS) {
        let t = by_tid(&tasks, *tid);
        assert_eq!(t["comm"], name);
        if let Some((_, error)) = expected.iter().find(|(n, _)| *n == name) {
            assert_eq!(t["error"], *error, "{t}");
            assert_eq!(t["keys"], serde_json::json!([]), "{t}");
        }
    }

    // Another writer's valid page (a u8 count, start = 8) decodes like ours.
    let cstyle = by_tid(&tasks, raw.tids[4]);
    assert_eq!(
        cstyle["keys"],
        serde_json::from_str::<Value>(
            r#"[{"key":"prio","size":4,"offset":8,"value":7,"hex":"07000000"},{"key":"in_cs","size":1,"offset":16,"value":1,"hex":"01"},{"key":"tag","size":3,"offset":24,"value":null,"hex":"616263"}]"#
        )
        .unwrap()
    );

    // The kernel's 7.x library's small block: start is in the value (the page's first word is
    // someone else's bytes), and the keys decode from there.
    let block = by_tid(&tasks, raw.tids[5]);
    assert_eq!(
        block["keys"],
        serde_json::from_str::<Value>(
            r#"[{"key":"prio","size":4,"offset":1032,"value":9,"hex":"09000000"},{"key":"in_cs","size":1,"offset":1040,"value":1,"hex":"01"}]"#
        )
        .unwrap(),
        "{block}"
    );

    // The table marks them, and the reasons go to standard error.
    let out = tld(&["ps", "--pin", &pin]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout.clone()).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains("raw-badcnt"))
        .expect("a row");
    assert_eq!(row.split_whitespace().nth(3), Some("error"), "{table}");
    assert!(stderr(&out).contains(&format!(
        "tld: pid {} tid {} (raw-badcnt): corrupt metadata page: cnt is 65535",
        raw.pid, raw.tids[0]
    )));

    // show: every thread of the process, and exit status 1 because some cannot be decoded.
    let out = tld(&["show", "--pin", &pin, &raw.pid.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "tid {} (raw-noterm): cannot be decoded\n  error: corrupt metadata page: entry 0's \
             name is not NUL-terminated\n",
            raw.tids[1]
        )),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().eq(["prio", "4", "8", "7"])),
        "{text}"
    );
    // One healthy thread of it: status 0.
    let out = tld(&["show", "--pin", &pin, &raw.tids[4].to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // BPF corrupts the running application's metadata page: cnt = 0xffff. Both of its threads
    // share that page, so both now fail to decode, and nothing else changes.
    assert_eq!(fixture.write(app.tids[0], Page::Meta, 0, &[0xff, 0xff]), 0);
    let out = tld(&["show", "--pin", &pin, &app.pid.to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(shown.len(), 2);
    for t in &shown {
        assert_eq!(
            t["error"],
            "corrupt metadata page: cnt is 65535, but the page holds at most 63 entries"
        );
    }
    let out = tld(&["ps", "--pin", &pin, "--json"]);
    assert!(out.status.success());
    let after = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(by_tid(&after, raw.tids[4]), cstyle);

    app.finish();
    raw.finish();
}

const CHURN: &str = "tasks_that_exit_during_the_iteration_are_handled";

#[test]
fn tasks_that_exit_during_the_iteration_are_handled() {
    if let Some(role) = role() {
        return play(&role);
    }
    let Some(fixture) = Fixture::load(CHURN) else {
        return;
    };
    let pin = fixture.pin().to_str().unwrap().to_string();
    let app = RoleChild::spawn(CHURN, "app", fixture.pin());
    // Threads that register and exit as fast as they can...
    let churn = RoleChild::spawn(CHURN, "churn", fixture.pin());
    // ...and whole processes that register and are killed, one after the other.
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        let pin = fixture.pin().to_path_buf();
        std::thread::spawn(move || {
            let mut killed = 0;
            while !stop.load(Ordering::Relaxed) {
                RoleChild::spawn(CHURN, "app", &pin).kill();
                killed += 1;
            }
            killed
        })
    };

    let runs = 40;
    let mut churn_seen = 0;
    let start = Instant::now();
    for _ in 0..runs {
        let out = tld(&["ps", "--pin", &pin, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let tasks = parse(&String::from_utf8(out.stdout).unwrap());
        for &tid in &app.tids {
            let t = by_tid(&tasks, tid);
            assert_eq!(t["keys"].as_array().unwrap().len(), 8, "{t}");
        }
        // Every task shown decodes: a task that exits mid-run is either whole or absent.
        for t in &tasks {
            assert!(t.get("error").is_none(), "{t}");
        }
        churn_seen += tasks.iter().filter(|t| t["pid"] == churn.pid).count();
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killer.join().unwrap();
    eprintln!(
        "{runs} runs of tld ps in {:?}: saw {churn_seen} short-lived threads; {killed} \
         processes were killed meanwhile",
        start.elapsed()
    );
    assert!(killed > 0, "no process was killed during the runs");
    app.finish();
    churn.finish();
    // Nothing of the killed processes is left behind in the map.
    let tasks = parse(&tld_ok(&["ps", "--pin", &pin, "--json"]));
    assert!(tasks.is_empty(), "{tasks:?}");
}
