//! `tld show` and `tld ps` against real processes registered in a real map, with values that
//! Rust set and a value that BPF wrote; the JSON is checked byte for byte.
use std::collections::BTreeSet;

use tld_cli_test_support::{bpf::*, hints::*, roles::*, run::*};

/// What BPF writes into the first app thread's `bpf_counter`: the high bit is set, so that its
/// signed (no schema) and unsigned (schema) readings differ.
const BPF_VALUE: u64 = 0x8877_6655_4433_2211;

/// The bytes of a [`Latency`] as Rust lays it out.
fn latency_bytes(l: &Latency) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&l.budget_us.to_ne_bytes());
    b.extend_from_slice(&l.class.to_ne_bytes());
    b.extend_from_slice(&[l.urgent, l.tier]);
    for w in &l.windows {
        b.extend_from_slice(&w.start_us.to_ne_bytes());
        b.extend_from_slice(&w.len_us.to_ne_bytes());
    }
    b.extend_from_slice(&l.weight.to_ne_bytes());
    assert_eq!(b.len(), 32);
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key(name: &str, size: usize, offset: usize, value: String, bytes: &[u8]) -> String {
    format!(
        r#"{{"key":"{name}","size":{size},"offset":{offset},"value":{value},"hex":"{}"}}"#,
        hex(bytes)
    )
}

/// The JSON of one app thread, as `tld show --json` must print it; `typed` with the schema.
fn expected_task(pid: i32, tid: i32, t: &AppThread, counter: u64, typed: bool) -> String {
    let l = &t.latency;
    let array = |b: &[u8]| {
        let items: Vec<String> = b.iter().map(u8::to_string).collect();
        format!("[{}]", items.join(","))
    };
    let keys = [
        key(
            "active",
            1,
            offsets::ACTIVE,
            if typed {
                t.active.to_string()
            } else {
                u8::from(t.active).to_string()
            },
            &[u8::from(t.active)],
        ),
        key(
            "blob",
            12,
            offsets::BLOB,
            if typed { array(&t.blob) } else { "null".into() },
            &t.blob,
        ),
        key(
            "bpf_counter",
            8,
            offsets::BPF_COUNTER,
            if typed {
                counter.to_string()
            } else {
                (counter as i64).to_string()
            },
            &counter.to_ne_bytes(),
        ),
        key(
            "flags",
            2,
            offsets::FLAGS,
            if typed {
                t.flags.to_string()
            } else {
                (t.flags as i16).to_string()
            },
            &t.flags.to_ne_bytes(),
        ),
        key(
            "latency",
            32,
            offsets::LATENCY,
            if typed {
                format!(
                    r#"{{"budget_us":{},"class":{},"urgent":{},"tier":{},"windows":[{{"start_us":{},"len_us":{}}},{{"start_us":{},"len_us":{}}}],"weight":{}}}"#,
                    l.budget_us,
                    l.class,
                    l.urgent,
                    l.tier,
                    l.windows[0].start_us,
                    l.windows[0].len_us,
                    l.windows[1].start_us,
                    l.windows[1].len_us,
                    serde_json::to_string(&l.weight).unwrap()
                )
            } else {
                "null".into()
            },
            &latency_bytes(l),
        ),
        key(
            "priority",
            4,
            offsets::PRIORITY,
            t.priority.to_string(),
            &t.priority.to_ne_bytes(),
        ),
        // Dynamic keys are not in the schema: the default rule applies either way.
        key(
            "dyn_budget_ns",
            8,
            offsets::DYN_BUDGET_NS,
            (t.budget_ns as i64).to_string(),
            &t.budget_ns.to_ne_bytes(),
        ),
        key("dyn_raw", 3, offsets::DYN_RAW, "null".into(), &t.raw),
    ];
    format!(
        r#"{{"pid":{pid},"tid":{tid},"comm":"{}","keys":[{}]}}"#,
        t.name,
        keys.join(",")
    )
}

fn document(tasks: &[String]) -> String {
    format!("{{\"tasks\":[{}]}}\n", tasks.join(","))
}

/// Writes the schema of this binary's hints, as a build script would, and returns its path.
fn write_schema(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tld-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    tld_runtime::header::write(dir.join("tld_generated.h")).expect("write the header");
    let schema = dir.join("tld_generated.schema.json");
    assert!(
        schema.exists(),
        "header::write writes the schema next to the header"
    );
    schema
}

const SHOW: &str = "show_json_is_exact_with_and_without_a_schema";

#[test]
fn show_json_is_exact_with_and_without_a_schema() {
    if let Some(role) = role() {
        return play(&role);
    }
    let Some(fixture) = Fixture::load(SHOW) else {
        return;
    };
    let pin = fixture.pin().to_str().unwrap().to_string();
    let app = RoleChild::spawn(SHOW, "app", fixture.pin());
    let [a, b] = app.tids[..] else {
        panic!("two app threads: {:?}", app.tids)
    };
    // BPF writes the first thread's counter.
    assert_eq!(
        fixture.write(
            a,
            Page::Data,
            offsets::BPF_COUNTER,
            &BPF_VALUE.to_ne_bytes()
        ),
        0
    );
    let pid = app.pid.to_string();
    let task_a = |typed| expected_task(app.pid, a, &APP_THREADS[0], BPF_VALUE, typed);
    let task_b = |typed| expected_task(app.pid, b, &APP_THREADS[1], 0, typed);

    // The process: both threads.
    let got = tld_ok(&["show", "--pin", &pin, &pid, "--json"]);
    assert_eq!(got, document(&[task_a(false), task_b(false)]));

    // One thread, by tid.
    let got = tld_ok(&["show", "--pin", &pin, &b.to_string(), "--json"]);
    assert_eq!(got, document(&[task_b(false)]));

    // With the schema that header::write put next to the header: typed values.
    let schema = write_schema(SHOW);
    let schema = schema.to_str().unwrap();
    let got = tld_ok(&["show", "--pin", &pin, "--schema", schema, &pid, "--json"]);
    assert_eq!(got, document(&[task_a(true), task_b(true)]));

    // The same map by id, and through TLD_MAP_PATH: the same document.
    let id = fixture.map_id().to_string();
    let by_id = tld_ok(&["show", "--map-id", &id, &pid, "--json"]);
    assert_eq!(by_id, document(&[task_a(false), task_b(false)]));
    let mut cmd = std::process::Command::new(tld_bin());
    cmd.args(["show", &pid, "--json"]).env("TLD_MAP_PATH", &pin);
    let out = run_bounded(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        document(&[task_a(false), task_b(false)])
    );

    // The process's main thread did not register: --thread finds nothing, and says so.
    let out = tld(&["show", "--pin", &pin, "--thread", &pid]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("neither a process nor a thread with id {pid}")),
        "{}",
        stderr(&out)
    );
    app.finish();

    // Once the process has exited, it is gone from the map.
    let out = tld(&["show", "--pin", &pin, &pid]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

const PS: &str = "ps_lists_exactly_the_registered_threads";

#[test]
fn ps_lists_exactly_the_registered_threads() {
    if let Some(role) = role() {
        return play(&role);
    }
    let Some(fixture) = Fixture::load(PS) else {
        return;
    };
    let pin = fixture.pin().to_str().unwrap().to_string();
    let one = RoleChild::spawn(PS, "app", fixture.pin());
    let two = RoleChild::spawn(PS, "app", fixture.pin());
    let tasks = |json: &str| -> BTreeSet<(i64, i64, String, usize)> {
        let doc: serde_json::Value = serde_json::from_str(json).expect("one JSON document");
        doc["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| {
                (
                    t["pid"].as_i64().unwrap(),
                    t["tid"].as_i64().unwrap(),
                    t["comm"].as_str().unwrap().to_string(),
                    t["keys"].as_array().unwrap().len(),
                )
            })
            .collect()
    };
    let expect = |children: &[&RoleChild], only: Option<&str>| -> BTreeSet<_> {
        children
            .iter()
            .flat_map(|c| {
                c.tids
                    .iter()
                    .zip(APP_THREADS.iter())
                    .map(|(&tid, t)| (i64::from(c.pid), i64::from(tid), t.name.to_string(), 8))
            })
            .filter(|t| only.is_none_or(|name| t.2 == name))
            .collect()
    };

    // The whole map: exactly the two processes' registered threads.
    let all = tld_ok(&["ps", "--pin", &pin, "--json"]);
    assert_eq!(tasks(&all), expect(&[&one, &two], None));

    // --pid and --comm.
    let only = tld_ok(&["ps", "--pin", &pin, "--pid", &two.pid.to_string(), "--json"]);
    assert_eq!(tasks(&only), expect(&[&two], None));
    let named = tld_ok(&["ps", "--pin", &pin, "--comm", "tld-app-b", "--json"]);
    assert_eq!(tasks(&named), expect(&[&one, &two], Some("tld-app-b")));

    // A thread id is not a process id for --pid.
    let out = tld(&["ps", "--pin", &pin, "--pid", &one.tids[1].to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no registered thread matches"));

    // The table has the same rows.
    let table = tld_ok(&["ps", "--pin", &pin]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 5, "{table}");
    let header: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(header, ["PID", "TID", "COMM", "KEYS", "MAP"], "{table}");
    let label = format!("{}:tld_data_map", fixture.map_id());
    for c in [&one, &two] {
        for (tid, t) in c.tids.iter().zip(APP_THREADS.iter()) {
            let row = rows
                .iter()
                .find(|r| r.split_whitespace().nth(1) == Some(&tid.to_string()))
                .unwrap_or_else(|| panic!("no row for tid {tid}:\n{table}"));
            let words: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(
                words,
                [&c.pid.to_string(), &tid.to_string(), t.name, "8", &label],
                "{table}"
            );
        }
    }
    one.finish();
    two.finish();
}

#[test]
fn a_missing_or_wrong_map_is_a_clear_error() {
    if role().is_some() {
        return;
    }
    let Some(fixture) = Fixture::load("a_missing_or_wrong_map_is_a_clear_error") else {
        return;
    };
    let out = tld(&["ps", "--pin", "/sys/fs/bpf/tld_cli_no_such_pin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no BPF object is pinned at /sys/fs/bpf/tld_cli_no_such_pin"),
        "{}",
        stderr(&out)
    );

    let out = tld(&["ps", "--map-id", "4000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no BPF map has id 4000000000"),
        "{}",
        stderr(&out)
    );

    // A map that is not a task local data map: the fixture's .bss array.
    let bss = fixture.other_map_id();
    let out = tld(&["ps", "--map-id", &bss.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a task local data map: its type is 2, not task storage"),
        "{}",
        stderr(&out)
    );

    // The default: TLD_MAP_PATH, else /sys/fs/bpf/tld_data_map (an empty TLD_MAP_PATH counts
    // as unset).
    let mut cmd = std::process::Command::new(tld_bin());
    cmd.args(["ps"])
        .env("TLD_MAP_PATH", "/sys/fs/bpf/tld_cli_no_such_pin_either");
    let out = run_bounded(cmd);
    assert!(
        stderr(&out).contains(
            "no BPF object is pinned at /sys/fs/bpf/tld_cli_no_such_pin_either (from TLD_MAP_PATH)"
        ),
        "{}",
        stderr(&out)
    );
    if std::path::Path::new("/sys/fs/bpf/tld_data_map").exists() {
        eprintln!("not checking the default path: a map is pinned there on this machine");
    } else {
        let mut cmd = std::process::Command::new(tld_bin());
        cmd.args(["ps"]).env("TLD_MAP_PATH", "");
        let out = run_bounded(cmd);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(
                "no BPF object is pinned at /sys/fs/bpf/tld_data_map (the default, as \
                 TLD_MAP_PATH is unset or empty)"
            ),
            "{}",
            stderr(&out)
        );
    }

    // --pin and --map-id exclude each other.
    let out = tld(&["ps", "--pin", "/x", "--map-id", "1"]);
    assert_eq!(out.status.code(), Some(2));
}
