//! `tld`: inspect the task local data hints of every thread, live and decoded.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tld_cli::cli::Cli::parse();
    match tld_cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tld: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
