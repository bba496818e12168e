//! Figures measured in the VM, where the host cannot measure them (no sched_ext, no `fexit`
//! programs): the VM runner (`tld-vm test`, `make demo-sched`) writes each group of figures the
//! guest printed to `<group>.txt` in its cache (`$TLD_VM_CACHE`, else `target/tld-vm/`), one
//! `name value` per line after a few lines that say where and when: `kernel`, `vcpus`, `accel`,
//! `host_load`, `when_unix`. The report reads those files when they exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the VM runner writes the figures of `group` (`p7`, `p4g`).
pub fn path(group: &str) -> PathBuf {
    let cache = std::env::var_os("TLD_VM_CACHE")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tld-vm"));
    cache.join(format!("{group}.txt"))
}

/// One file of figures.
#[derive(Clone, Debug, Default)]
pub struct VmFigures {
    fields: BTreeMap<String, String>,
}

impl VmFigures {
    /// Reads the figures at `path`; `None` if no VM run wrote them.
    pub fn load(path: &Path) -> Option<VmFigures> {
        let text = std::fs::read_to_string(path).ok()?;
        Some(VmFigures::parse(&text))
    }

    /// Parses `name value` lines.
    pub fn parse(text: &str) -> VmFigures {
        let fields = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        VmFigures { fields }
    }

    /// The value of `name` as written, or `?`.
    pub fn text(&self, name: &str) -> &str {
        self.fields.get(name).map_or("?", String::as_str)
    }

    /// The value of `name` as a number, or NaN.
    pub fn num(&self, name: &str) -> f64 {
        self.fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// Whether the file has `name`.
    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// Where and when: kernel, vCPUs, accelerator, the host's load, the date.
    pub fn context(&self) -> String {
        let when = if self.num("when_unix").is_finite() {
            days_ago(self.num("when_unix"))
        } else {
            String::new()
        };
        format!(
            "in the VM ({}, {} vCPUs, {}; host load average {:.1}{when})",
            self.text("kernel"),
            self.text("vcpus"),
            self.text("accel"),
            self.num("host_load")
        )
    }
}

/// The report's verdict cell.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// ", N days ago" (or ", today") for a Unix time.
fn days_ago(when: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    match ((now - when) / 86400.0).floor() {
        d if d < 1.0 => ", today".into(),
        d => format!(", {d:.0} days ago"),
    }
}
