//! `tld maps`: the candidate maps, with their pins, the programs that use them and the
//! processes that hold them; maps of other kinds are not listed.
use serde_json::Value;
use tld_cli_test_support::{bpf::*, roles::*, run::*};

const MAPS: &str = "maps_lists_task_local_data_maps_only";

#[test]
fn maps_lists_task_local_data_maps_only() {
    if role().is_some() {
        return;
    }
    let Some(fixture) = Fixture::load(MAPS) else {
        return;
    };
    let doc: Value = serde_json::from_str(&tld_ok(&["maps", "--json"])).expect("JSON");
    let maps = doc["maps"].as_array().expect("maps");
    let ours = maps
        .iter()
        .find(|m| m["id"] == fixture.map_id())
        .unwrap_or_else(|| panic!("the fixture's map is not listed: {doc}"));
    assert_eq!(ours["name"], "tld_data_map");
    assert_eq!(
        ours["pins"],
        serde_json::json!([fixture.pin().to_str().unwrap()])
    );
    assert_eq!(
        (ours["data_size"].as_u64(), ours["meta_size"].as_u64()),
        (Some(4096), Some(4036))
    );
    let programs: Vec<&str> = ours["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(programs, ["write_page"]);
    // This test process loaded it and holds its fd.
    let me = std::process::id();
    assert!(
        ours["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == me),
        "{ours}"
    );
    // The fixture's other map (an array) is not a candidate.
    assert!(!maps.iter().any(|m| m["id"] == fixture.other_map_id()));

    // The table has the same row.
    let table = tld_ok(&["maps"]);
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&fixture.map_id().to_string()))
        .unwrap_or_else(|| panic!("no row:\n{table}"));
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        words[1..5],
        [
            "tld_data_map",
            fixture.pin().to_str().unwrap(),
            "7.x",
            "4096+4036"
        ]
    );
    assert!(row.contains(&format!("[{me}]")), "{row}");
    assert!(row.contains("write_page["), "{row}");
}
