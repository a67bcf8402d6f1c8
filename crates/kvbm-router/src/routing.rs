//! Picking a worker for a request: [`KvAwareRouter`] weighs cached prefix
//! against load with a pluggable [`CostFunction`]; [`RoundRobinRouter`] and
//! [`RandomRouter`] are the baselines it is measured against.

use std::num::{NonZeroU64, NonZeroUsize};

use kvbm::events::InstanceId;
use kvbm::SequenceHash;

use crate::index::ClusterIndex;
use crate::matches::Matches;

/// A worker the router may pick, with its current load in whatever unit the
/// caller tracks (in-flight blocks, queued requests, blocks prefilled over a
/// window, …).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerLoad {
    /// The worker's instance id (as in its event batches).
    pub instance: InstanceId,
    /// Its load.
    pub load: f64,
}

/// One worker as a cost function sees it for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The worker.
    pub instance: InstanceId,
    /// Leading blocks of the request it holds (per the index).
    pub cached_blocks: usize,
    /// Blocks it would still have to prefill.
    pub blocks_to_prefill: usize,
    /// Its load minus the least loaded worker's: 0 for the idlest worker.
    pub excess_load: f64,
}

/// The price of sending a request to a worker; the router picks the lowest.
pub trait CostFunction: Send + Sync {
    /// The cost of `candidate`.
    fn cost(&self, candidate: &Candidate) -> f64;
}

impl<F: Fn(&Candidate) -> f64 + Send + Sync> CostFunction for F {
    fn cost(&self, candidate: &Candidate) -> f64 {
        self(candidate)
    }
}

/// `blocks_to_prefill + load_weight · excess_load`: one block of load costs
/// as much as `load_weight` blocks of prefill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefillLoadCost {
    /// Weight of the load term.
    pub load_weight: f64,
}

impl Default for PrefillLoadCost {
    fn default() -> Self {
        Self { load_weight: 1.0 }
    }
}

impl CostFunction for PrefillLoadCost {
    fn cost(&self, c: &Candidate) -> f64 {
        c.blocks_to_prefill as f64 + self.load_weight * c.excess_load
    }
}

/// Picks a worker for each request.
pub trait Router {
    /// A short name for reports (`kv-aware`, `round-robin`, `random`).
    fn name(&self) -> &'static str;

    /// The index in `workers` of the worker `query` goes to; `None` when
    /// `workers` is empty.
    fn route(
        &mut self,
        index: &ClusterIndex,
        query: &[SequenceHash],
        workers: &[WorkerLoad],
    ) -> Option<usize>;
}

/// Routes to the worker of lowest cost; ties go to the first such worker
/// after the previous pick, so equal workers share the traffic.
#[derive(Debug)]
pub struct KvAwareRouter<C = PrefillLoadCost> {
    cost: C,
    matches: Matches,
    next: usize,
}

impl<C: CostFunction> KvAwareRouter<C> {
    /// A router pricing workers with `cost`.
    pub fn new(cost: C) -> Self {
        Self {
            cost,
            matches: Matches::default(),
            next: 0,
        }
    }
}

impl<C: CostFunction> Router for KvAwareRouter<C> {
    fn name(&self) -> &'static str {
        "kv-aware"
    }

    fn route(
        &mut self,
        index: &ClusterIndex,
        query: &[SequenceHash],
        workers: &[WorkerLoad],
    ) -> Option<usize> {
        let n = NonZeroUsize::new(workers.len())?.get();
        index.find_matches_into(query, &mut self.matches);
        let min_load = workers.iter().map(|w| w.load).fold(f64::INFINITY, f64::min);
        let mut best: Option<(f64, usize)> = None;
        for k in 0..n {
            let i = (self.next + k) % n;
            let w = &workers[i];
            let cached = self.matches.get(w.instance).min(query.len());
            let cost = self.cost.cost(&Candidate {
                instance: w.instance,
                cached_blocks: cached,
                blocks_to_prefill: query.len() - cached,
                excess_load: w.load - min_load,
            });
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, i));
            }
        }
        let pick = best.map(|(_, i)| i)?;
        self.next = (pick + 1) % n;
        Some(pick)
    }
}

/// Sends request `k` to worker `k mod n`.
#[derive(Debug, Default)]
pub struct RoundRobinRouter {
    next: usize,
}

impl Router for RoundRobinRouter {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn route(
        &mut self,
        _: &ClusterIndex,
        _: &[SequenceHash],
        workers: &[WorkerLoad],
    ) -> Option<usize> {
        let pick = self.next.checked_rem(workers.len())?;
        self.next = pick + 1;
        Some(pick)
    }
}

/// Sends each request to a uniformly drawn worker (splitmix64, seeded).
#[derive(Debug)]
pub struct RandomRouter {
    state: u64,
}

impl RandomRouter {
    /// A router drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Router for RandomRouter {
    fn name(&self) -> &'static str {
        "random"
    }

    fn route(
        &mut self,
        _: &ClusterIndex,
        _: &[SequenceHash],
        workers: &[WorkerLoad],
    ) -> Option<usize> {
        // Drawn only when there is a worker to draw, as a fixed seed replays.
        let n = NonZeroU64::new(workers.len() as u64)?;
        Some((self.next_u64() % n) as usize)
    }
}
