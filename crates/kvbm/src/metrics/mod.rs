//! Metrics of a block manager: atomic counters and gauges
//! ([`BlockPoolMetrics`]), a rate sampler over them ([`StatsCollector`]) and a
//! Prometheus exporter for many managers ([`MetricsAggregator`]).

mod aggregator;
mod families;
mod pool;
mod stats;
mod type_name;

pub use aggregator::{ExternalLabelError, MetricsAggregator};
pub use pool::{BlockPoolMetrics, MetricsSnapshot};
pub use stats::{StatsCollector, StatsConfig, StatsSnapshot};
pub use type_name::short_type_name;
