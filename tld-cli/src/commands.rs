//! The commands: each opens the map, runs the iterator, and prints.

use std::io::Write;

use crate::cli::{Cli, Command, MapsArgs, PsArgs, ShowArgs};
use crate::error::{Error, EXIT_FAILURE};
use crate::iter::{not_found, select, Inspector, RawTask};
use crate::map::{Choice, TldMap};
use crate::report::{Document, Task};
use crate::schema::Schema;
use crate::{consistent, maps, privilege, render, watch};

/// Runs the command line; returns the exit status.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let schema = Schema::load(&cli.common.schema).map_err(Error::Other)?;
    let choice = Choice::new(cli.common.pin.clone(), cli.common.map_id);
    match cli.command {
        Command::Ps(args) => ps(&choice, &schema, &args),
        Command::Show(args) => show(&choice, &schema, &args),
        Command::Watch(args) => watch::run(&choice, &schema, &args),
        Command::Maps(args) => list_maps(&args),
    }
}

/// Prints `text` to standard output; a closed pipe (`tld ps | head`) is not an error.
fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            action: "writing to standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn ps(choice: &Choice, schema: &Schema, args: &PsArgs) -> Result<u8, Error> {
    privilege::require_iterator()?;
    let map = TldMap::open(choice)?;
    let inspector = Inspector::new(&map, args.pid)?;
    let mut raw: Vec<RawTask> = Vec::new();
    inspector.for_each(|t| {
        // The iterator's filter also lets through a thread whose tid is the pid.
        let pid_ok = args.pid.is_none_or(|p| t.pid == p);
        let comm_ok = args.comm.as_ref().is_none_or(|c| &t.comm == c);
        if pid_ok && comm_ok {
            raw.push(t);
        }
    })?;
    let doc = Document::from_raw(&raw, schema);
    if args.json {
        print(&format!("{}\n", doc.to_json()))?;
    } else {
        print(&render::ps(&doc.tasks, &map.label()))?;
        for e in render::errors(&doc.tasks) {
            eprintln!("tld: {e}");
        }
    }
    let filtered = args.pid.is_some() || args.comm.is_some();
    if doc.tasks.is_empty() && filtered {
        eprintln!("tld: no registered thread matches in map {}", map.label());
        return Ok(EXIT_FAILURE);
    }
    Ok(0)
}

fn show(choice: &Choice, schema: &Schema, args: &ShowArgs) -> Result<u8, Error> {
    privilege::require_iterator()?;
    let map = TldMap::open(choice)?;
    let inspector = Inspector::new(&map, Some(args.id))?;
    let pick = |raw| select(raw, args.id, args.thread);
    let raw = pick(inspector.snapshot()?);
    if raw.is_empty() {
        return Err(not_found(args.id, &map));
    }
    let doc = consistent::document(&inspector, schema, raw, pick)?;
    if args.json {
        print(&format!("{}\n", doc.to_json()))?;
    } else {
        print(&render::show(&doc.tasks, &map.label(), args.full))?;
    }
    let failed = doc.tasks.iter().any(|t: &Task| t.error.is_some());
    Ok(if failed { EXIT_FAILURE } else { 0 })
}

fn list_maps(args: &MapsArgs) -> Result<u8, Error> {
    let found = maps::candidates()?;
    if args.json {
        print(&format!(
            "{}\n",
            serde_json::to_string(&maps::Listing { maps: found }).expect("serializes")
        ))?;
    } else {
        print(&maps::table(&found))?;
    }
    Ok(0)
}
