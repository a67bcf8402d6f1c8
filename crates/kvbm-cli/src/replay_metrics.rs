//! Prometheus gauges the replay publishes about itself, per policy, next to
//! the block manager's own `kvbm_*` metrics.

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
}

fn int(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["policy"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl ReplayMetrics {
    /// Creates the gauges in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let hit_rate = GaugeVec::new(
            Opts::new(
                "kvbm_replay_block_hit_rate",
                "Fraction of prompt blocks found in the cache so far",
            ),
            &["policy"],
        )?;
        registry.register(Box::new(hit_rate.clone()))?;
        Ok(Self {
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
            hit_rate,
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
}
