//! The cache simulator.
//!
//! Words: a *contender* ([`contender::Contender`]) is one entry of the
//! command line's `--policy` list; built for a workload it is a [`SimCache`],
//! the handful of block-level operations an inference server drives a block
//! manager with. The simulator's own caches pick victims through a
//! [`prefix_cache::VictimOrder`]; the library's `kvbm::eviction::EvictionPolicy`
//! names the block manager's inactive backends. Two
//! timing models drive it: [`instant`] (one request at a time, the Mooncake
//! capacity-analysis methodology) and [`serve`] (a discrete-event simulation
//! with prefill/decode durations and a waiting queue).
//!
//! Policies: the block manager's inactive backends ([`manager`]), the
//! simulator's own reference LRU ([`prefix_cache::LruOrder`]), Belady's
//! offline optimum ([`belady`]) and the unbounded cache.

pub mod belady;
pub mod contender;
pub mod explain;
pub mod instant;
pub mod manager;
pub mod prefix_cache;
pub mod serve;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::workload::{ratio, BlockKey, Request};

/// The operations a simulated cache offers, per request `r` (its index in
/// the workload; requests are admitted in increasing order).
pub trait SimCache {
    /// The policy's name in reports.
    fn name(&self) -> &str;
    /// Blocks in the cache.
    fn capacity(&self) -> usize;
    /// Blocks an allocation could get now (free or cached).
    fn available(&self) -> usize;
    /// Finds the longest cached prefix of `req`'s prompt and holds it for
    /// `r`; returns its length in blocks.
    fn match_prefix(&mut self, r: usize, req: &Request) -> usize;
    /// Allocates `n` blocks for `r`, all or nothing, evicting cached blocks
    /// as needed; `false` when fewer than `n` can be had.
    fn allocate(&mut self, r: usize, n: usize) -> bool;
    /// Fills allocated blocks of `r`, one per key in order, and registers
    /// them so later requests can match them.
    fn register(&mut self, r: usize, keys: &[BlockKey]);
    /// Lets go of every block `r` holds; registered ones become cached.
    fn release(&mut self, r: usize);
    /// Cached blocks evicted so far.
    fn evictions(&self) -> u64;
    /// The block manager's metrics, for policies backed by one.
    fn pool_metrics(&self) -> Option<std::sync::Arc<kvbm::metrics::BlockPoolMetrics>> {
        None
    }
}

/// The order in which a finished request's blocks are released, which is
/// the order they enter an LRU-like backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReleaseOrder {
    /// Root first (the order of the request's block list, i.e. what dropping
    /// a `Vec` of handles does). The default, here and on the command line.
    #[default]
    RootFirst,
    /// Deepest block first: a request's root is released last and so is the
    /// most recently used of its blocks.
    LeafFirst,
}

/// The timing model of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timing {
    /// Each request matches, allocates, registers and releases before the next.
    Instant,
    /// Discrete-event simulation on a simulated clock.
    Serve(ServeConfig),
}

impl Timing {
    /// `instant` or `serve`.
    pub fn name(&self) -> &'static str {
        match self {
            Timing::Instant => "instant",
            Timing::Serve(_) => "serve",
        }
    }
}

/// Parameters of the serve timing model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServeConfig {
    /// Prompt tokens computed per second (cache misses only).
    pub prefill_tps: f64,
    /// Tokens generated per second per request.
    pub decode_tps: f64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            prefill_tps: 10_000.0,
            decode_tps: 50.0,
        }
    }
}

/// Running totals of a simulation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Requests processed (admitted, failed or oversized).
    pub requests: u64,
    /// Prompt blocks found in the cache (matched prefixes).
    pub hits: u64,
    /// Prompt blocks not found.
    pub misses: u64,
    /// Prompt tokens covered by hits.
    pub hit_tokens: u64,
    /// Prompt tokens in all.
    pub input_tokens: u64,
    /// Allocations that could not be satisfied.
    pub allocation_failures: u64,
    /// Requests larger than the whole cache, never admitted.
    pub oversized: u64,
    /// Block operations: lookups, allocations, registrations and releases.
    pub block_ops: u64,
}

impl Counters {
    /// Fraction of prompt blocks hit.
    pub fn block_hit_rate(&self) -> f64 {
        ratio(self.hits, self.hits + self.misses)
    }
    /// Fraction of prompt tokens hit.
    pub fn token_hit_rate(&self) -> f64 {
        ratio(self.hit_tokens, self.input_tokens)
    }
}

/// Queueing figures of a serve-timing run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServeStats {
    /// Requests that could not be admitted on arrival and waited.
    pub queued_requests: u64,
    /// Mean wait between arrival and admission over all admitted requests (s).
    pub mean_queue_wait_s: f64,
    /// Longest wait (s).
    pub max_queue_wait_s: f64,
    /// Most requests holding blocks at once.
    pub max_running: u64,
    /// Simulated time from the first arrival to the last completion (s).
    pub simulated_seconds: f64,
}

/// The outcome of one policy on one workload.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimResult {
    /// Policy name.
    pub policy: String,
    /// Hits / (hits + misses), prompt blocks.
    pub block_hit_rate: f64,
    /// Hit tokens / prompt tokens.
    pub token_hit_rate: f64,
    /// Prompt blocks hit.
    pub hits: u64,
    /// Prompt blocks missed.
    pub misses: u64,
    /// Cached blocks evicted.
    pub evictions: u64,
    /// Allocations that failed (oversized requests included).
    pub allocation_failures: u64,
    /// Requests larger than the whole cache.
    pub oversized_requests: u64,
    /// Requests processed.
    pub requests: u64,
    /// Block operations performed.
    pub block_ops: u64,
    /// Wall-clock seconds the simulation took.
    pub seconds: f64,
    /// Requests simulated per wall-clock second.
    pub requests_per_sec: f64,
    /// Block operations per wall-clock second.
    pub block_ops_per_sec: f64,
    /// Queueing figures (serve timing only).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub serve: Option<ServeStats>,
    /// Misses split by cause (`replay --explain` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miss_causes: Option<explain::MissCauses>,
}

impl SimResult {
    /// Builds a result from counters.
    pub fn new(
        policy: &str,
        c: &Counters,
        evictions: u64,
        seconds: f64,
        serve: Option<ServeStats>,
    ) -> Self {
        let per_sec = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Self {
            policy: policy.to_string(),
            block_hit_rate: c.block_hit_rate(),
            token_hit_rate: c.token_hit_rate(),
            hits: c.hits,
            misses: c.misses,
            evictions,
            allocation_failures: c.allocation_failures,
            oversized_requests: c.oversized,
            requests: c.requests,
            block_ops: c.block_ops,
            seconds,
            requests_per_sec: per_sec(c.requests),
            block_ops_per_sec: per_sec(c.block_ops),
            serve,
            miss_causes: None,
        }
    }
}

/// Receives progress while a simulation runs (progress bar, pacing,
/// metrics). Called once per processed request / event batch.
pub trait Observer {
    /// Called before the simulator handles whatever happens at simulated
    /// (trace) time `sim_ms`; a paced replay sleeps here.
    fn pace(&mut self, _sim_ms: u64) {}
    /// `done` requests of the workload are finished; `sim_ms` is the
    /// simulated (or trace) time in milliseconds.
    fn progress(&mut self, _done: u64, _sim_ms: u64, _counters: &Counters, _policy: &dyn SimCache) {
    }
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {}

pub use crate::error::SimError;

/// Runs one cache over a workload with the given timing.
pub fn run(
    w: &crate::workload::Workload,
    cache: &mut dyn SimCache,
    timing: Timing,
    observer: &mut dyn Observer,
) -> Result<SimResult, SimError> {
    match timing {
        Timing::Instant => Ok(instant::run(w, cache, observer)),
        Timing::Serve(cfg) => serve::run(w, cache, &cfg, observer),
    }
}
