//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Inspect the task local data hints that threads publish, live and decoded.
///
/// Every thread registered in a tld_data_map (a BPF task storage map whose elements point at a
/// data page and a metadata page) publishes its hints there. tld reads those pages from the
/// kernel with a BPF task iterator, decodes them, and prints them. It never changes a page, an
/// element or a map.
///
/// Needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN as well for --map-id and `maps`).
#[derive(Debug, Parser)]
#[command(name = "tld", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Which map, and which types.
    #[command(flatten)]
    pub common: Common,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const AFTER_HELP: &str = "\
The map: --pin PATH, else --map-id ID, else the pin at $TLD_MAP_PATH, else
/sys/fs/bpf/tld_data_map (where tld-runtime applications look by default).

Exit status: 0 on success; 1 if the command failed, found nothing, or (show) a
task it shows cannot be decoded; 2 for a usage error; 77 if a privilege is
missing.";

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Inspect the map pinned at PATH.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "map_id")]
    pub pin: Option<PathBuf>,

    /// Inspect the map with this id, pinned or not, as bpftool does (needs CAP_SYS_ADMIN).
    #[arg(long, global = true, value_name = "ID")]
    pub map_id: Option<u32>,

    /// Decode values with the types in FILE, a schema that tld_runtime::header::write writes
    /// next to the generated header (tld_generated.schema.json). May be given several times.
    /// Without a schema, values of 1, 2, 4 and 8 bytes show as signed integers, others as hex.
    #[arg(long, global = true, value_name = "FILE")]
    pub schema: Vec<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every task that has an element in the map: pid, tid, name, number of keys, map.
    Ps(PsArgs),
    /// Show each key of a process (all its registered threads), or of one thread.
    Show(ShowArgs),
    /// Show a process's keys live, refreshed every --interval ms, changes highlighted. Quit
    /// with q or Ctrl-C.
    Watch(WatchArgs),
    /// List the candidate maps: task storage maps whose value is the task local data layout
    /// (needs CAP_SYS_ADMIN).
    Maps(MapsArgs),
}

/// `tld ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only the threads of this process.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Only threads with exactly this name (comm, as in /proc/TID/comm).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,
    /// Print one JSON document (with every task's keys) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `tld show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A process id (all its registered threads), or the id of one thread.
    #[arg(value_name = "PID|TID")]
    pub id: i32,
    /// Take the id as a thread id even if it is also a process id (its main thread only).
    #[arg(long, short = 't')]
    pub thread: bool,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Do not cut long values.
    #[arg(long)]
    pub full: bool,
}

/// `tld watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A process id (all its registered threads), or the id of one thread.
    #[arg(value_name = "PID|TID")]
    pub id: i32,
    /// Refresh every this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub interval: u64,
    /// Take the id as a thread id even if it is also a process id.
    #[arg(long, short = 't')]
    pub thread: bool,
}

/// `tld maps`.
#[derive(Debug, Args)]
pub struct MapsArgs {
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}
