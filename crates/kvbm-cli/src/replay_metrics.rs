//! Prometheus gauges the replay publishes about itself, per policy, next to
//! the block manager's own `kvbm_*` metrics.

use kvbm::metrics::StatsSnapshot;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use crate::sim::{CachePolicy, Counters};

/// The simulator's gauges, labelled by `policy`.
#[derive(Debug, Clone)]
pub struct ReplayMetrics {
    requests: IntGaugeVec,
    hits: IntGaugeVec,
    misses: IntGaugeVec,
    evictions: IntGaugeVec,
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

impl ReplayMetrics {
    /// Creates the gauges in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
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
            requests: int(registry, "kvbm_replay_requests", "Requests replayed so far")?,
            hits: int(
                registry,
                "kvbm_replay_block_hits",
                "Prompt blocks hit so far",
            )?,
            misses: int(
                registry,
                "kvbm_replay_block_misses",
                "Prompt blocks missed so far",
            )?,
            evictions: int(
                registry,
                "kvbm_replay_evictions",
                "Cached blocks evicted so far",
            )?,
            available: int(
                registry,
                "kvbm_replay_available_blocks",
                "Blocks an allocation could get now (free or cached)",
            )?,
        })
    }

    /// Publishes a policy's current figures.
    pub fn update(&self, c: &Counters, policy: &dyn CachePolicy) {
        let l = [policy.name()];
        self.requests.with_label_values(&l).set(c.requests as i64);
        self.hits.with_label_values(&l).set(c.hits as i64);
        self.misses.with_label_values(&l).set(c.misses as i64);
        self.evictions
            .with_label_values(&l)
            .set(policy.evictions() as i64);
        self.available
            .with_label_values(&l)
            .set(policy.available() as i64);
        self.hit_rate.with_label_values(&l).set(c.block_hit_rate());
    }

    /// Publishes the latest `StatsCollector` sample of a manager-backed policy.
    pub fn update_stats(&self, policy: &str, s: &StatsSnapshot) {
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
