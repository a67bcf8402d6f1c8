//! The command line: parsing ([`args`]) and dispatch to the subcommands.

pub(crate) mod args;
pub(crate) mod cluster_args;

use std::process::ExitCode;

use clap::Parser;

use crate::commands;
use crate::error::Result;
use args::{Cli, Command};

/// Parses the process arguments, runs the command and returns the exit
/// code: 0, 1 for an error (printed on stderr), 2 for a usage error.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(cli: &Cli) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        Command::Replay(args) => commands::replay::replay(&args.validate()?, &mut out),
        Command::Sweep(args) => commands::sweep::sweep(&args.validate()?, &mut out),
        Command::Cluster(args) => commands::cluster::cluster(&args.validate()?, &mut out),
    }
}
