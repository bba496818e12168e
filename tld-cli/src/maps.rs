//! `tld maps`: the candidate maps on the system.
//!
//! A candidate is a task storage map whose value is the task local data layout (see
//! [`crate::map::check`]). For each, the listing says where it is pinned (a walk of every bpffs
//! mount), which BPF programs use it, and which processes hold an fd of it (from
//! `/proc/PID/fdinfo`): usually the scheduler or tool that loaded it.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, ContentArrangement, Table};
use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
use serde::Serialize;

use crate::error::Error;
use crate::privilege;
use crate::sys;

/// Directories deeper than this under a bpffs mount are not walked.
const MAX_DEPTH: usize = 8;
/// At most this many entries are looked at under all bpffs mounts together.
const MAX_PIN_ENTRIES: usize = 100_000;

/// The `--json` document of `tld maps`.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// The candidate maps, by id.
    pub maps: Vec<Candidate>,
}

/// One candidate map.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Candidate {
    /// The map's id (for `--map-id`).
    pub id: u32,
    /// The map's name.
    pub name: String,
    /// Where it is pinned (for `--pin`).
    pub pins: Vec<String>,
    /// Bytes of a data page, from its BTF.
    pub data_size: u32,
    /// Bytes of a metadata page, from its BTF.
    pub meta_size: u32,
    /// The generation of the format its value speaks: `"6.18"` (`start` in the data page, a
    /// 16-byte value) or `"7.x"` (`start` in the 24-byte value).
    pub format: &'static str,
    /// BPF programs that use it.
    pub programs: Vec<Named>,
    /// Processes that hold an fd of it.
    pub processes: Vec<Named>,
}

/// A program or a process: its id and name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Named {
    /// Program id, or process id.
    pub id: u32,
    /// Program name, or process name.
    pub name: String,
}

/// Every candidate map on the system, by id.
pub fn candidates() -> Result<Vec<Candidate>, Error> {
    privilege::require_sys_admin("listing BPF maps")?;
    let mut found: BTreeMap<u32, Candidate> = BTreeMap::new();
    let mut id = 0;
    loop {
        id = match sys::next_map_id(id) {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => return Err(Error::io("listing BPF maps", e, privilege::BY_ID_NEEDS)),
        };
        // The map may have gone since it was listed.
        let Ok(fd) = sys::open_map_by_id(id) else {
            continue;
        };
        let Ok(info) = sys::map_info(fd.as_fd()) else {
            continue;
        };
        if let Ok((layout, generation, _)) = crate::map::check(&info) {
            found.insert(
                id,
                Candidate {
                    id,
                    name: info.name,
                    pins: Vec::new(),
                    data_size: layout.data_size,
                    meta_size: layout.meta_size,
                    format: generation.name(),
                    programs: Vec::new(),
                    processes: Vec::new(),
                },
            );
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    for (path, id) in pinned_maps() {
        if let Some(c) = found.get_mut(&id) {
            c.pins.push(path.display().to_string());
        }
    }
    let opts = ProgInfoQueryOptions::default().include_map_ids(true);
    for prog in ProgInfoIter::with_query_opts(opts) {
        for map_id in &prog.map_ids {
            if let Some(c) = found.get_mut(map_id) {
                c.programs.push(Named {
                    id: prog.id,
                    name: prog.name.to_string_lossy().into_owned(),
                });
            }
        }
    }
    for (pid, map_id) in map_holders() {
        if let Some(c) = found.get_mut(&map_id) {
            if !c.processes.iter().any(|p| p.id == pid) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim_end().to_string())
                    .unwrap_or_default();
                c.processes.push(Named {
                    id: pid,
                    name: comm,
                });
            }
        }
    }
    let mut list: Vec<Candidate> = found.into_values().collect();
    for c in &mut list {
        c.pins.sort();
        c.processes.sort_by_key(|p| p.id);
    }
    Ok(list)
}

/// The mount points of every bpffs, from `/proc/self/mounts`.
fn bpffs_mounts() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Spaces in mount points are written as \040.
            (f.len() > 2 && f[2] == "bpf").then(|| PathBuf::from(f[1].replace("\\040", " ")))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every map pinned under a bpffs mount, with its id.
fn pinned_maps() -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut budget = MAX_PIN_ENTRIES;
    for dir in bpffs_mounts() {
        walk(&dir, 0, &mut budget, &mut out);
    }
    out
}

fn walk(dir: &Path, depth: usize, budget: &mut usize, out: &mut Vec<(PathBuf, u32)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, depth + 1, budget, out);
            }
        } else if kind.is_file() {
            let Ok(fd) = sys::open_pinned(&path) else {
                continue;
            };
            if sys::is_map_fd(fd.as_fd()) {
                if let Ok(info) = sys::map_info(fd.as_fd()) {
                    out.push((path, info.id));
                }
            }
        }
    }
}

/// `(pid, map id)` for every BPF map fd held by a process, from `/proc/*/fdinfo`.
fn map_holders() -> Vec<(u32, u32)> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(text) = std::fs::read_to_string(fd.path()) else {
                continue;
            };
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("map_id:"))
                .and_then(|v| v.trim().parse::<u32>().ok());
            if let Some(id) = id {
                out.push((pid, id));
            }
        }
    }
    out
}

/// The human listing.
pub fn table(maps: &[Candidate]) -> String {
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "ID",
            "NAME",
            "PINNED",
            "FORMAT",
            "PAGES",
            "PROCESSES",
            "PROGRAMS",
        ]);
    for i in 0..7 {
        if let Some(c) = t.column_mut(i) {
            c.set_padding((0, 2));
        }
    }
    if let Some(c) = t.column_mut(0) {
        c.set_cell_alignment(CellAlignment::Right);
    }
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    for m in maps {
        t.add_row(vec![
            m.id.to_string(),
            m.name.clone(),
            list(m.pins.clone()),
            m.format.to_string(),
            format!("{}+{}", m.data_size, m.meta_size),
            list(
                m.processes
                    .iter()
                    .map(|p| format!("{}[{}]", p.name, p.id))
                    .collect(),
            ),
            list(
                m.programs
                    .iter()
                    .map(|p| format!("{}[{}]", p.name, p.id))
                    .collect(),
            ),
        ]);
    }
    let mut s = t.trim_fmt();
    s.push('\n');
    s
}
