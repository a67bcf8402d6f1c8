//! The subcommands: [`replay`], [`sweep`] and [`cluster`], each running
//! validated configurations from [`crate::cli::args`]; and the entry points
//! that parse a command line and dispatch it to them.

pub(crate) mod cluster;
pub(crate) mod replay;
pub(crate) mod sweep;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use kvbm::metrics::MetricsAggregator;

use crate::cli::args::{SimConfig, WorkloadSource};
use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::observe::RunObserver;
use crate::sim::contender::{build, Contender};
use crate::sim::explain::{self, PrefixHits};
use crate::sim::{self, Counters, SimResult};
use crate::trace;
use crate::workload::generator::generate;
use crate::workload::Workload;

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
        Command::Replay(args) => replay::replay(&args.validate()?, out),
        Command::Sweep(args) => sweep::sweep(&args.validate()?, out),
        Command::Cluster(args) => cluster::cluster(&args.validate()?, out),
    }
}

/// Reads the traces or runs the generator.
pub(crate) fn load(source: &WorkloadSource) -> Result<Workload> {
    match source {
        WorkloadSource::Traces(paths, opts) => trace::load(paths, opts),
        WorkloadSource::Generator(config) => Ok(generate(config)),
    }
}

/// Builds one contender at `capacity` blocks and runs it over the workload;
/// `configure` adds pacing or metrics to the run's observer. With
/// `sim.explain`, also returns the prefix each request hit.
pub(crate) fn run_one<'a>(
    contender: Contender,
    w: &Workload,
    capacity: u64,
    sim: &SimConfig,
    aggregator: Option<&MetricsAggregator>,
    observer: RunObserver<'a>,
    configure: impl FnOnce(RunObserver<'a>, &dyn sim::SimCache) -> RunObserver<'a>,
) -> Result<(SimResult, Option<PrefixHits>)> {
    // A capacity beyond the address space is capped by `build` anyway (to
    // the workload's block count), so saturating here changes nothing.
    let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
    let mut cache = build(contender, w, capacity, sim.release, sim.timing, aggregator)?;
    let mut observer = configure(observer, cache.as_ref());
    let (result, hits) = explain::run(w, cache.as_mut(), sim.timing, &mut observer, sim.explain)?;
    let totals = Counters {
        requests: result.requests,
        hits: result.hits,
        misses: result.misses,
        ..Counters::default()
    };
    observer.finish(&totals, cache.as_ref());
    Ok((result, hits))
}
