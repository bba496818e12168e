//! Snapshot tests (insta) of the human tables of `ps` and `show`, made from a real run: real
//! processes, the real iterator and decoder. Process and thread ids change from run to run, so
//! they are renumbered (pid 4200, tids 4201...) before rendering; nothing else is touched.
//!
//! Also: the layout the iterator copies comes from the map's BTF, the map is opened read-only,
//! and the verifier refuses to copy more of a page than the map's BTF says it has.
mod common;

use std::os::fd::{AsFd, AsRawFd};

use common::*;
use tld_cli::btf::UptrLayout;
use tld_cli::iter::Inspector;
use tld_cli::map::{Choice, TldMap};
use tld_cli::render;
use tld_cli::report::{Document, Task};
use tld_cli::schema::Schema;

/// The tasks of `child`, renumbered: its pid becomes `base`, its tids `base + 1`, ...
fn tasks_of(doc: &Document, child: &RoleChild, base: i32) -> Vec<Task> {
    doc.tasks
        .iter()
        .filter(|t| t.pid == child.pid)
        .map(|t| {
            let index = child
                .tids
                .iter()
                .position(|&x| x == t.tid)
                .expect("a known tid") as i32;
            Task {
                pid: base,
                tid: base + 1 + index,
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
    let app_plain = tasks_of(&plain, &app, 4200);
    let app_typed = tasks_of(&typed, &app, 4200);
    let raw_tasks = tasks_of(&plain, &raw, 4300);

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

const LAYOUT: &str = "the_iterator_copies_what_the_maps_btf_allows";

#[test]
fn the_iterator_copies_what_the_maps_btf_allows() {
    if role().is_some() {
        return;
    }
    let Some(fixture) = Fixture::load(LAYOUT) else {
        return;
    };
    let choice = Choice::Pin {
        path: fixture.pin().to_path_buf(),
        origin: "given with --pin",
    };
    let mut map = TldMap::open(&choice).expect("open the map");
    // Root reads the map's BTF: a 4096-byte data page and a 4036-byte metadata page.
    assert!(map.layout_from_btf);
    assert_eq!(map.layout, UptrLayout::standard(4096));
    assert_eq!(
        map.layout,
        UptrLayout {
            data_size: 4096,
            meta_size: 4036
        }
    );

    // The fd is read-only: tld cannot change the map.
    let fdinfo =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", map.fd.as_fd().as_raw_fd()))
            .unwrap();
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(flags & 3, libc::O_RDONLY as u32, "{fdinfo}");

    // The verifier types each pointer from the map's BTF: copying one byte more than the
    // metadata struct is refused at load time, with a message that says why.
    map.layout.meta_size = 4037;
    let err = Inspector::new(&map, None)
        .err()
        .expect("the verifier refuses a copy past the pointee");
    let text = err.to_string();
    assert!(
        text.contains("the verifier refuses to read the pages of map")
            && text.contains("invalid access to memory, mem_size=4036"),
        "{text}"
    );
    map.layout = UptrLayout {
        data_size: 4097,
        meta_size: 4036,
    };
    let text = Inspector::new(&map, None).err().unwrap().to_string();
    assert!(text.contains("mem_size=4096"), "{text}");
    // Smaller copies are allowed (and what the map's BTF says is what tld uses).
    map.layout = UptrLayout {
        data_size: 8,
        meta_size: 4,
    };
    assert!(Inspector::new(&map, None).is_ok());
}
