//! Prometheus metrics the replay publishes about itself, per policy, next to
//! the block manager's own `kvbm_*` metrics: counters for what only grows,
//! gauges for the rest.

use kvbm::metrics::StatsSnapshot;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::sim::{Counters, SimCache};

/// The simulator's metrics, labelled by `policy`.
#[derive(Debug, Clone)]
pub(crate) struct ReplayMetrics {
    requests: IntCounterVec,
    hits: IntCounterVec,
    misses: IntCounterVec,
    evictions: IntCounterVec,
    available: IntGaugeVec,
    hit_rate: GaugeVec,
    allocation_rate: GaugeVec,
    eviction_rate: GaugeVec,
    match_hit_ratio: GaugeVec,
}

fn float(registry: &Registry, name: &str, help: &str) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), &["policy"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn int(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["policy"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &["policy"])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Raises a counter to `value` (counters only move up; a run's totals never
/// go down, so the difference is never negative).
fn advance(counter: &IntCounterVec, label: &str, value: u64) {
    let c = counter.with_label_values(&[label]);
    let delta = value.saturating_sub(c.get());
    if delta > 0 {
        c.inc_by(delta);
    }
}

impl ReplayMetrics {
    /// Creates the gauges in `registry`.
    pub(crate) fn new(registry: &Registry) -> prometheus::Result<Self> {
        Ok(Self {
            hit_rate: float(
                registry,
                "kvbm_replay_block_hit_rate",
                "Fraction of prompt blocks found in the cache so far",
            )?,
            allocation_rate: float(
                registry,
                "kvbm_stats_allocation_rate",
                "Blocks allocated per second (StatsCollector, wall clock)",
            )?,
            eviction_rate: float(
                registry,
                "kvbm_stats_eviction_rate",
                "Cached blocks evicted per second (StatsCollector, wall clock)",
            )?,
            match_hit_ratio: float(
                registry,
                "kvbm_stats_match_hit_ratio",
                "Blocks returned by match_blocks per hash asked, over the last sample interval (StatsCollector)",
            )?,
            requests: counter(
                registry,
                "kvbm_replay_requests_total",
                "Requests replayed",
            )?,
            hits: counter(
                registry,
                "kvbm_replay_block_hits_total",
                "Prompt blocks hit",
            )?,
            misses: counter(
                registry,
                "kvbm_replay_block_misses_total",
                "Prompt blocks missed",
            )?,
            evictions: counter(
                registry,
                "kvbm_replay_evictions_total",
                "Cached blocks evicted",
            )?,
            available: int(
                registry,
                "kvbm_replay_available_blocks",
                "Blocks an allocation could get now (free or cached)",
            )?,
        })
    }

    /// Publishes a policy's current figures.
    pub(crate) fn update(&self, c: &Counters, policy: &dyn SimCache) {
        let name = policy.name();
        advance(&self.requests, name, c.requests);
        advance(&self.hits, name, c.hits);
        advance(&self.misses, name, c.misses);
        advance(&self.evictions, name, policy.evictions());
        let l = [name];
        self.available
            .with_label_values(&l)
            .set(i64::try_from(policy.available()).unwrap_or(i64::MAX));
        self.hit_rate.with_label_values(&l).set(c.block_hit_rate());
    }

    /// Publishes the latest `StatsCollector` sample of a manager-backed policy.
    pub(crate) fn update_stats(&self, policy: &str, s: &StatsSnapshot) {
        let l = [policy];
        self.allocation_rate
            .with_label_values(&l)
            .set(s.allocation_rate);
        self.eviction_rate
            .with_label_values(&l)
            .set(s.eviction_rate);
        self.match_hit_ratio
            .with_label_values(&l)
            .set(s.match_hit_rate);
    }
}
