//! Metrics of a block manager: atomic counters and gauges
//! ([`BlockPoolMetrics`]), a rate sampler over them ([`StatsCollector`]) and a
//! Prometheus exporter for many managers ([`MetricsAggregator`]).

mod pool;

pub use pool::{BlockPoolMetrics, MetricsSnapshot};
