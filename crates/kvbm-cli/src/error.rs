//! The CLI's error type: every failure the user can cause, with context.

use std::path::PathBuf;

/// Everything that can go wrong in a `kvbm` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A trace line is malformed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A trace holds no request.
    #[error("{0}: the trace holds no request")]
    EmptyTrace(PathBuf),
    /// A command-line value is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// A policy name the simulator does not know.
    #[error("unknown policy `{name}`; known policies: {known}")]
    UnknownPolicy {
        /// The name given.
        name: String,
        /// The names accepted, comma-separated.
        known: String,
    },
    /// The block manager refused a configuration.
    #[error("block manager: {0}")]
    Manager(String),
    /// Writing a plot failed.
    #[error("plot {path}: {message}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The metrics endpoint could not start.
    #[error("metrics endpoint {addr}: {source}")]
    Http {
        /// The address asked for.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A simulation could not finish.
    #[error("{0}")]
    Sim(#[from] SimError),
    /// `kvbm cluster`: a transport or worker failure.
    #[error("cluster: {0}")]
    Cluster(String),
    /// Writing the report to stdout failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// Why a simulation could not finish. Defined here, below the simulator
/// (`sim` re-exports it), so that the error module names nothing above it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The simulated clock would pass `u64::MAX` microseconds.
    #[error("simulated time overflowed (more than {} years); the prefill/decode rates are too slow for this workload", u64::MAX / 1_000_000 / 31_557_600)]
    ClockOverflow,
}

/// Shorthand for results of the CLI.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
