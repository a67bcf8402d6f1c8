//! The command line: parsing ([`args`]) and dispatch to the subcommands.

pub(crate) mod args;
pub(crate) mod cluster_args;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::commands;
use crate::error::Result;
use args::{Cli, Command};

/// Parses the process arguments, runs the command and returns the exit
/// code: 0, 1 for an error (printed on stderr), 2 for a usage error.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    match dispatch(&cli, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs one `kvbm` command line and writes what the command prints to `out`.
///
/// `args` are the words after the program name, as a shell would pass them
/// (`["replay", "--json", "--quiet"]`). This is the whole surface embedders
/// (the Python bindings) rely on: the command-line language, which stays
/// stable while the modules behind it change. A usage error comes back as
/// [`CliError::InvalidArgument`](crate::error::CliError::InvalidArgument)
/// carrying clap's message.
pub fn run_command<I, S>(args: I, out: &mut dyn Write) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let argv = std::iter::once(OsString::from("kvbm")).chain(args.into_iter().map(Into::into));
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        crate::error::CliError::InvalidArgument(e.to_string().trim_end().to_string())
    })?;
    dispatch(&cli, out)
}

fn dispatch(cli: &Cli, out: &mut dyn Write) -> Result<()> {
    match &cli.command {
        Command::Replay(args) => commands::replay::replay(&args.validate()?, out),
        Command::Sweep(args) => commands::sweep::sweep(&args.validate()?, out),
        Command::Cluster(args) => commands::cluster::cluster(&args.validate()?, out),
    }
}
