//! `kvbm cluster` flags and their validation.

use clap::{Args, ValueEnum};

use super::args::{WorkloadArgs, WorkloadSource};
use crate::cluster::{ClusterConfig, RouterChoice};
use crate::error::{CliError, Result};
use crate::sim::Timing;

/// Largest `--workers`.
const MAX_WORKERS: usize = 4096;
/// Largest `--capacity` per worker, in blocks.
const MAX_WORKER_BLOCKS: usize = 1 << 26;

/// `--router`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RouterArg {
    /// Cost of blocks to prefill against load, from the cluster index.
    KvAware,
    /// Request k to worker k mod N.
    RoundRobin,
    /// A uniformly drawn worker.
    Random,
    /// All three.
    All,
}

/// Arguments of `kvbm cluster`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClusterArgs {
    #[command(flatten)]
    /// The workload.
    pub workload: WorkloadArgs,
    /// Number of workers.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub workers: usize,
    /// Blocks per worker (its BlockManager's capacity).
    #[arg(long, default_value_t = 5859, value_name = "BLOCKS")]
    pub capacity: usize,
    /// Router(s) to compare.
    #[arg(long, value_enum, default_value_t = RouterArg::All)]
    pub router: RouterArg,
    /// kv-aware cost: blocks of prefill one block of excess load is worth.
    #[arg(long, default_value_t = 0.1, value_name = "W")]
    pub load_weight: f64,
    /// Send events through a NATS server (`nats://127.0.0.1:4222`) instead
    /// of the in-process channel.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// A validated `kvbm cluster`.
#[derive(Debug, Clone)]
pub(crate) struct ClusterRun {
    /// The workload.
    pub workload: WorkloadSource,
    /// The cluster, shared by every router.
    pub cluster: ClusterConfig,
    /// The routers, in report order.
    pub routers: Vec<RouterChoice>,
    /// JSON output.
    pub json: bool,
    /// No progress bar.
    pub quiet: bool,
}

impl ClusterArgs {
    /// Checks every flag.
    pub(crate) fn validate(&self) -> Result<ClusterRun> {
        let invalid = CliError::InvalidArgument;
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(invalid(format!(
                "--workers {}: from 1 to {MAX_WORKERS}",
                self.workers
            )));
        }
        if !(1..=MAX_WORKER_BLOCKS).contains(&self.capacity) {
            return Err(invalid(format!(
                "--capacity {}: from 1 to {MAX_WORKER_BLOCKS} blocks per worker",
                self.capacity
            )));
        }
        if !(self.load_weight.is_finite() && self.load_weight >= 0.0) {
            return Err(invalid(format!(
                "--load-weight {}: a finite number ≥ 0",
                self.load_weight
            )));
        }
        if let Some(url) = &self.nats {
            if !url.starts_with("nats://") {
                return Err(invalid(format!("--nats {url}: expected nats://HOST:PORT")));
            }
        }
        let routers = match self.router {
            RouterArg::KvAware => vec![RouterChoice::KvAware],
            RouterArg::RoundRobin => vec![RouterChoice::RoundRobin],
            RouterArg::Random => vec![RouterChoice::Random],
            RouterArg::All => RouterChoice::ALL.to_vec(),
        };
        Ok(ClusterRun {
            workload: self.workload.validate(Timing::Instant)?,
            cluster: ClusterConfig {
                workers: self.workers,
                capacity: self.capacity,
                load_weight: self.load_weight,
                seed: self.workload.seed,
                nats: self.nats.clone(),
            },
            routers,
            json: self.json,
            quiet: self.quiet,
        })
    }
}
