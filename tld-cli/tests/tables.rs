//! Snapshot tests (insta) of the human tables of `ps` and `show`, made from a real run: real
//! processes, the real iterator and decoder. Process and thread ids, and the process name (the
//! test binary's, with a hash in it), change from run to run, so they are replaced (pid 4200,
//! tids 4201...) before rendering; nothing else is touched.
use tld_cli::iter::Inspector;
use tld_cli::map::{Choice, TldMap};
use tld_cli::render;
use tld_cli::report::{Document, Task};
use tld_cli::schema::Schema;
use tld_cli_test_support::{bpf::*, hints::*, roles::*};

/// The tasks of `child`, renumbered: its pid becomes `base`, its tids `base + 1`, ...; the
/// process name (the test binary's, which has a hash in it) becomes `name`.
fn tasks_of(doc: &Document, child: &RoleChild, base: i32, name: &str) -> Vec<Task> {
    // The name the iterator read from the group leader, before it is replaced.
    let leader = std::fs::read_to_string(format!("/proc/{}/comm", child.pid))
        .expect("the child's name")
        .trim_end()
        .to_string();
    doc.tasks
        .iter()
        .filter(|t| t.pid == child.pid)
        .map(|t| {
            assert_eq!(t.process, leader, "thread {}'s process name", t.tid);
            let index = child
                .tids
                .iter()
                .position(|&x| x == t.tid)
                .expect("a known tid") as i32;
            Task {
                pid: base,
                tid: base + 1 + index,
                process: name.into(),
                ..t.clone()
            }
        })
        .collect()
}

const MAP: &str = "7:tld_data_map";
const TABLES: &str = "ps_and_show_tables";

#[test]
fn ps_and_show_tables() {
    if let Some(role) = role() {
        return play(&role);
    }
    let Some(fixture) = Fixture::load(TABLES) else {
        return;
    };
    let app = RoleChild::spawn(TABLES, "app", fixture.pin());
    let raw = RoleChild::spawn(TABLES, "raw", fixture.pin());
    assert_eq!(
        fixture.write(
            app.tids[0],
            Page::Data,
            offsets::BPF_COUNTER,
            &42u64.to_ne_bytes()
        ),
        0
    );

    let choice = Choice::Pin {
        path: fixture.pin().to_path_buf(),
        origin: "given with --pin",
    };
    let map = TldMap::open(&choice).expect("open the map");
    let inspector = Inspector::new(&map, None).expect("load the iterator");
    let records = inspector.snapshot().expect("run the iterator");

    let dir = std::env::temp_dir().join(format!("tld-cli-tables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    tld_runtime::header::write(dir.join("tld_generated.h")).unwrap();
    let schema = Schema::load(&[dir.join("tld_generated.schema.json")]).expect("the schema");

    let plain = Document::from_raw(&records, &Schema::empty());
    let typed = Document::from_raw(&records, &schema);
    let app_plain = tasks_of(&plain, &app, 4200, "app");
    let app_typed = tasks_of(&typed, &app, 4200, "app");
    let raw_tasks = tasks_of(&plain, &raw, 4300, "raw-writer");

    let mut all = app_plain.clone();
    all.extend(raw_tasks.clone());
    insta::assert_snapshot!("ps", render::ps(&all, MAP));
    insta::assert_snapshot!("ps_errors", render::errors(&all).join("\n"));
    insta::assert_snapshot!("show", render::show(&app_plain, MAP, false));
    insta::assert_snapshot!("show_schema", render::show(&app_typed, MAP, false));
    insta::assert_snapshot!("show_schema_full", render::show(&app_typed, MAP, true));
    insta::assert_snapshot!("show_hostile", render::show(&raw_tasks, MAP, false));
    // One thread, as `tld show TID` prints it.
    insta::assert_snapshot!("show_thread", render::show(&app_typed[1..], MAP, false));

    app.finish();
    raw.finish();
}
