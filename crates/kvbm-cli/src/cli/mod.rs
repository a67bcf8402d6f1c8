//! The command line: its clap types and their validation into typed
//! configurations ([`args`], [`cluster_args`]). Running them is
//! [`crate::commands`]' job. The top-level parser lives here, above both
//! (the cluster arguments reuse the workload arguments of `args`).

pub(crate) mod args;
pub(crate) mod cluster_args;

use clap::{Parser, Subcommand};

/// kvbm: KV-cache trace replay and capacity planning.
#[derive(Debug, Parser)]
#[command(name = "kvbm", version, about, long_about = None)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Replay a workload through one or more eviction policies at one cache size.
    Replay(args::ReplayArgs),
    /// Replay a workload at many cache sizes: hit rate versus capacity.
    Sweep(args::SweepArgs),
    /// Route a workload over N workers: KV-aware routing against baselines.
    Cluster(cluster_args::ClusterArgs),
}
