//! StatsCollector: rates, ratios and gradients from known counter deltas over
//! known intervals, driven by `sample_at` on a constructed clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvbm::metrics::{BlockPoolMetrics, StatsCollector, StatsConfig, StatsSnapshot};

fn enabled(window_size: usize) -> (Arc<BlockPoolMetrics>, StatsCollector) {
    let metrics = Arc::new(BlockPoolMetrics::new("test"));
    let config = StatsConfig {
        window_size,
        ..StatsConfig::default()
    };
    let stats = StatsCollector::new(metrics.clone(), config);
    stats.set_enabled(true);
    (metrics, stats)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn default_config() {
    let config = StatsConfig::default();
    assert_eq!(config.window_size, 60);
    assert_eq!(config.sample_interval, Duration::from_secs(1));
}

#[test]
fn disabled_by_default_and_sampling_is_a_no_op() {
    let metrics = Arc::new(BlockPoolMetrics::new("test"));
    let stats = StatsCollector::new(metrics.clone(), StatsConfig::default());
    assert!(!stats.is_enabled());
    metrics.inc_allocations(5);
    stats.sample();
    stats.sample_at(Instant::now() + secs(1.0));
    assert_eq!(stats.latest(), None);
    assert!(stats.window(10).is_empty());

    stats.set_enabled(true);
    assert!(stats.is_enabled());
    stats.sample();
    assert!(stats.latest().is_some());

    stats.set_enabled(false);
    stats.sample();
    assert_eq!(stats.window(10).len(), 1);
}

#[test]
fn first_sample_records_zero_rates_and_copies_gauges() {
    let (metrics, stats) = enabled(8);
    metrics.inc_allocations(100);
    metrics.inc_evictions(7);
    metrics.inc_match_hashes_requested(10);
    metrics.inc_match_blocks_returned(4);
    metrics.set_inflight_mutable(3);
    metrics.set_inflight_immutable(-2);
    metrics.set_reset_pool_size(11);
    metrics.set_inactive_pool_size(5);
    stats.sample_at(Instant::now());
    let expected = StatsSnapshot {
        inflight_mutable: 3,
        inflight_immutable: -2,
        reset_pool_size: 11,
        inactive_pool_size: 5,
        ..StatsSnapshot::default()
    };
    assert_eq!(stats.latest(), Some(expected));
}

#[test]
fn rates_and_hit_ratios_from_known_deltas() {
    let (metrics, stats) = enabled(8);
    let t0 = Instant::now();
    metrics.inc_allocations(1_000);
    metrics.inc_match_hashes_requested(50);
    metrics.inc_match_blocks_returned(50);
    stats.sample_at(t0);

    metrics.inc_allocations(30);
    metrics.inc_evictions(6);
    metrics.inc_match_hashes_requested(8);
    metrics.inc_match_blocks_returned(6);
    metrics.inc_scan_hashes_requested(5);
    metrics.inc_scan_blocks_returned(1);
    metrics.set_reset_pool_size(9);
    stats.sample_at(t0 + secs(2.0));

    let s = stats.latest().expect("two samples taken");
    assert!(close(s.allocation_rate, 15.0), "{s:?}");
    assert!(close(s.eviction_rate, 3.0), "{s:?}");
    assert!(close(s.match_hit_rate, 0.75), "{s:?}");
    assert!(close(s.scan_hit_rate, 0.2), "{s:?}");
    assert_eq!(s.reset_pool_size, 9);

    // Sub-second interval: rates scale up.
    metrics.inc_allocations(5);
    stats.sample_at(t0 + secs(2.5));
    let s = stats.latest().expect("three samples taken");
    assert!(close(s.allocation_rate, 10.0), "{s:?}");
    assert!(close(s.eviction_rate, 0.0), "{s:?}");
}

#[test]
fn nothing_requested_means_zero_hit_ratio() {
    let (metrics, stats) = enabled(8);
    let t0 = Instant::now();
    stats.sample_at(t0);
    metrics.inc_allocations(1);
    stats.sample_at(t0 + secs(1.0));
    let s = stats.latest().expect("sampled");
    assert_eq!(s.match_hit_rate, 0.0);
    assert_eq!(s.scan_hit_rate, 0.0);
}

#[test]
fn gradients_are_rate_changes_per_second() {
    let (metrics, stats) = enabled(8);
    let t0 = Instant::now();
    stats.sample_at(t0);

    // 0 -> 10 allocations/s and 0 -> 4 evictions/s over 1 s.
    metrics.inc_allocations(10);
    metrics.inc_evictions(4);
    stats.sample_at(t0 + secs(1.0));
    let s = stats.latest().expect("sampled");
    assert!(close(s.allocation_gradient, 10.0), "{s:?}");
    assert!(close(s.eviction_gradient, 4.0), "{s:?}");

    // 10 -> 20 allocations/s and 4 -> 0 evictions/s over 2 s.
    metrics.inc_allocations(40);
    stats.sample_at(t0 + secs(3.0));
    let s = stats.latest().expect("sampled");
    assert!(close(s.allocation_rate, 20.0), "{s:?}");
    assert!(close(s.allocation_gradient, 5.0), "{s:?}");
    assert!(close(s.eviction_gradient, -2.0), "{s:?}");
}

#[test]
fn zero_or_negative_interval_records_zeros() {
    let (metrics, stats) = enabled(8);
    let t0 = Instant::now() + secs(10.0);
    stats.sample_at(t0);
    metrics.inc_allocations(10);
    stats.sample_at(t0 + secs(1.0));
    assert!(close(
        stats.latest().expect("sampled").allocation_rate,
        10.0
    ));

    metrics.inc_allocations(10);
    metrics.set_inactive_pool_size(4);
    stats.sample_at(t0 + secs(1.0));
    let s = stats.latest().expect("sampled");
    let zeros = StatsSnapshot {
        inactive_pool_size: 4,
        ..StatsSnapshot::default()
    };
    assert_eq!(s, zeros);

    // An instant before the previous sample is an empty interval too.
    metrics.inc_allocations(10);
    stats.sample_at(t0);
    assert_eq!(stats.latest(), Some(zeros));
    assert_eq!(stats.window(10).len(), 4);
}

#[test]
fn window_is_oldest_first_and_bounded() {
    let (metrics, stats) = enabled(3);
    let t0 = Instant::now();
    for i in 0..5u32 {
        metrics.set_reset_pool_size(i64::from(i));
        stats.sample_at(t0 + secs(f64::from(i)));
    }
    let pools =
        |w: Vec<StatsSnapshot>| -> Vec<i64> { w.iter().map(|s| s.reset_pool_size).collect() };
    assert_eq!(pools(stats.window(10)), vec![2, 3, 4]);
    assert_eq!(pools(stats.window(3)), vec![2, 3, 4]);
    assert_eq!(pools(stats.window(2)), vec![3, 4]);
    assert!(stats.window(0).is_empty());
    assert_eq!(stats.latest().map(|s| s.reset_pool_size), Some(4));
}

#[test]
fn snapshot_serializes_with_field_names() {
    let s = StatsSnapshot {
        allocation_rate: 1.5,
        inflight_mutable: 2,
        ..StatsSnapshot::default()
    };
    let json = serde_json::to_value(s).expect("serializable");
    assert_eq!(json["allocation_rate"], 1.5);
    assert_eq!(json["inflight_mutable"], 2);
    assert_eq!(json["scan_hit_rate"], 0.0);
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn spawn_samples_periodically_and_stops_with_the_collector() {
    let metrics = Arc::new(BlockPoolMetrics::new("test"));
    let config = StatsConfig {
        window_size: 16,
        sample_interval: Duration::from_millis(5),
    };
    let stats = Arc::new(StatsCollector::new(metrics.clone(), config));
    stats.set_enabled(true);
    let handle = stats.spawn();

    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while stats.window(16).len() < 3 {
            metrics.inc_allocations(1);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "background task took no samples");

    drop(stats);
    let ended = tokio::time::timeout(Duration::from_secs(10), handle).await;
    assert!(
        matches!(ended, Ok(Ok(()))),
        "task should end once the collector is dropped"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn spawn_with_zero_interval_does_not_panic() {
    let metrics = Arc::new(BlockPoolMetrics::new("test"));
    let config = StatsConfig {
        window_size: 4,
        sample_interval: Duration::ZERO,
    };
    let stats = Arc::new(StatsCollector::new(metrics, config));
    stats.set_enabled(true);
    let handle = stats.spawn();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while stats.latest().is_none() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(waited.is_ok());
    handle.abort();
}
