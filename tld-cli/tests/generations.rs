//! The inspector reads both generations of the format: a map whose value holds `start` (Linux
//! 7.x), where the page's first word may be anything, and a map whose readers take `start` from
//! the page (Linux 6.18, scx). The same threads, registered in one map of each, decode the same;
//! and an application written on the kernel's own 7.x C library (fetched and built at test
//! time) decodes, with page-aligned blocks and with small ones inside a page.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tld_cli_test_support::{bpf::*, roles::*, run::*};

fn tasks(json: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(json).expect("one JSON document");
    doc["tasks"].as_array().expect("tasks").clone()
}

const BOTH: &str = "the_same_threads_decode_the_same_from_a_map_of_each_generation";

#[test]
fn the_same_threads_decode_the_same_from_a_map_of_each_generation() {
    if let Some(role) = role() {
        return play(&role);
    }
    let Some(fixture) = Fixture::load(BOTH) else {
        return;
    };
    let app = RoleChild::spawn(BOTH, "app-both", fixture.pin());
    let pid = app.pid.to_string();
    let seven = tasks(&tld_ok(&[
        "show",
        "--pin",
        fixture.pin().to_str().unwrap(),
        &pid,
        "--json",
    ]));
    let six = tasks(&tld_ok(&[
        "show",
        "--pin",
        fixture.pin_618().to_str().unwrap(),
        &pid,
        "--json",
    ]));
    assert_eq!(seven.len(), app.tids.len(), "{seven:?}");
    assert_eq!(seven, six, "the same keys and values from either map");
    for t in &seven {
        assert_eq!(t["keys"].as_array().unwrap().len(), 8, "{t}");
        assert!(t.get("error").is_none(), "{t}");
    }

    // `tld maps` says which generation each map speaks.
    let maps: Value = serde_json::from_str(&tld_ok(&["maps", "--json"])).unwrap();
    let format_of = |pin: &Path| {
        maps["maps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["pins"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p == pin.to_str().unwrap())
            })
            .map(|m| m["format"].clone())
    };
    assert_eq!(format_of(fixture.pin()), Some(Value::from("7.x")));
    assert_eq!(format_of(fixture.pin_618()), Some(Value::from("6.18")));
    app.finish();
}

/// Builds `tests/c/kernel_library_app.c` on the kernel's library, or `None` after saying why.
fn kernel_library_app(test: &str, name: &str, define: &str) -> Option<PathBuf> {
    let tests = match tld_upstream::selftests(&tld_upstream::cache_dir()) {
        Ok(t) => t,
        Err(e) => {
            skip(test, &e.to_string());
            return None;
        }
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/c/kernel_library_app.c");
    let dir = tld_upstream::build::scratch("cli").expect("a scratch directory");
    match tld_upstream::build::c_program(&tests, &source, &dir, name, &[define]) {
        Ok(p) => Some(p),
        Err(e) => {
            skip(test, &e.to_string());
            None
        }
    }
}

const KERNEL_LIB: &str = "an_application_on_the_kernels_7x_c_library_decodes";

#[test]
fn an_application_on_the_kernels_7x_c_library_decodes() {
    if let Some(role) = role() {
        return play(&role);
    }
    let Some(fixture) = Fixture::load(KERNEL_LIB) else {
        return;
    };
    for (kind, define) in [
        ("page", "TLD_DYN_DATA_SIZE=4000"),
        ("small", "TLD_DYN_DATA_SIZE=64"),
    ] {
        let Some(app) = kernel_library_app(KERNEL_LIB, &format!("cli_kernel_lib_{kind}"), define)
        else {
            return;
        };
        let mut child = Command::new(&app)
            .arg(fixture.pin())
            .arg("4")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the C application");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let tids: Vec<i64> = line
            .strip_prefix("TIDS")
            .unwrap_or_else(|| panic!("{kind}: {line:?}"))
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        let shown = tasks(&tld_ok(&[
            "show",
            "--pin",
            fixture.pin().to_str().unwrap(),
            &child.id().to_string(),
            "--json",
        ]));
        assert_eq!(shown.len(), tids.len(), "{kind}: {shown:?}");
        for t in &shown {
            let tid = t["tid"].as_i64().unwrap();
            assert!(t.get("error").is_none(), "{kind}: {t}");
            let keys = t["keys"].as_array().unwrap();
            let names: Vec<&str> = keys.iter().map(|k| k["key"].as_str().unwrap()).collect();
            assert_eq!(names, ["value0", "value1", "value2"], "{kind}: {t}");
            assert_eq!(keys[0]["value"], tid, "{kind}: value0 of {t}");
            assert_eq!(keys[1]["value"], tid + 1, "{kind}: value1 of {t}");
            let hex: String = [tid + 2, tid + 3, tid + 4, tid + 5]
                .iter()
                .flat_map(|v| (*v as u64).to_ne_bytes())
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(keys[2]["hex"], hex, "{kind}: value2 of {t}");
            let offset = keys[0]["offset"].as_u64().unwrap();
            match kind {
                "page" => assert_eq!(offset, 8, "{kind}: {t}"),
                _ => assert_eq!(offset % 16, 8, "{kind}: {t}"),
            }
        }
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
    }
}
