//! [`StatsCollector`]: turns the raw counters of a [`BlockPoolMetrics`] into
//! rates, hit ratios and rate gradients, sample by sample, and keeps the most
//! recent samples in a bounded window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::pool::{BlockPoolMetrics, MetricsSnapshot};

/// Settings of a [`StatsCollector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsConfig {
    /// How many samples the collector keeps; older ones are dropped.
    /// A value of 0 is treated as 1, so the latest sample is always kept.
    pub window_size: usize,
    /// Period of the background sampler started by `StatsCollector::spawn`.
    /// Manual calls to [`StatsCollector::sample`] ignore it.
    pub sample_interval: Duration,
}

impl Default for StatsConfig {
    /// One minute of history at one sample per second.
    fn default() -> Self {
        Self {
            window_size: 60,
            sample_interval: Duration::from_secs(1),
        }
    }
}

/// Statistics derived from one sample, relative to the sample before it.
///
/// Rates are per second; hit ratios lie in `[0, 1]` under normal use (they
/// are returned ÷ requested over the interval, and 0 when nothing was
/// requested); gradients are the change of a rate per second. The gauges are
/// copied as they were at the sample.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// Blocks allocated per second.
    pub allocation_rate: f64,
    /// Cached blocks evicted per second.
    pub eviction_rate: f64,
    /// Blocks returned by `match_blocks` per hash requested.
    pub match_hit_rate: f64,
    /// Blocks returned by `scan_matches` per hash requested.
    pub scan_hit_rate: f64,
    /// Change of `allocation_rate` per second.
    pub allocation_gradient: f64,
    /// Change of `eviction_rate` per second.
    pub eviction_gradient: f64,
    // The gauges: the same fields as in `MetricsSnapshot` (kvbm-logical's
    // flat layout of both structs is public API), documented there.
    /// [`MetricsSnapshot::inflight_mutable`] at the sample.
    pub inflight_mutable: i64,
    /// [`MetricsSnapshot::inflight_immutable`] at the sample.
    pub inflight_immutable: i64,
    /// [`MetricsSnapshot::reset_pool_size`] at the sample.
    pub reset_pool_size: i64,
    /// [`MetricsSnapshot::inactive_pool_size`] at the sample.
    pub inactive_pool_size: i64,
}

impl StatsSnapshot {
    /// Derives the statistics of `now` from the previous sample, `interval`
    /// seconds earlier. Without a previous sample, or over an empty interval,
    /// every rate, ratio and gradient is zero.
    fn derive(previous: Option<&Sample>, now: &MetricsSnapshot, interval: f64) -> Self {
        let mut stats = Self {
            inflight_mutable: now.inflight_mutable,
            inflight_immutable: now.inflight_immutable,
            reset_pool_size: now.reset_pool_size,
            inactive_pool_size: now.inactive_pool_size,
            ..Self::default()
        };
        let Some(prev) = previous.filter(|_| interval > 0.0) else {
            return stats;
        };
        let before = &prev.raw;
        let delta = |new: u64, old: u64| new.saturating_sub(old) as f64;
        let ratio = |hits: f64, asked: f64| if asked > 0.0 { hits / asked } else { 0.0 };

        stats.allocation_rate = delta(now.allocations, before.allocations) / interval;
        stats.eviction_rate = delta(now.evictions, before.evictions) / interval;
        stats.match_hit_rate = ratio(
            delta(now.match_blocks_returned, before.match_blocks_returned),
            delta(now.match_hashes_requested, before.match_hashes_requested),
        );
        stats.scan_hit_rate = ratio(
            delta(now.scan_blocks_returned, before.scan_blocks_returned),
            delta(now.scan_hashes_requested, before.scan_hashes_requested),
        );
        stats.allocation_gradient = (stats.allocation_rate - prev.stats.allocation_rate) / interval;
        stats.eviction_gradient = (stats.eviction_rate - prev.stats.eviction_rate) / interval;
        stats
    }
}

/// The raw values and derived statistics of one sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    raw: MetricsSnapshot,
    stats: StatsSnapshot,
}

/// Samples a [`BlockPoolMetrics`] and derives [`StatsSnapshot`]s from it.
///
/// The collector starts disabled: until [`set_enabled(true)`](Self::set_enabled)
/// every call to [`sample`](Self::sample) does nothing. Each enabled sample
/// compares the counters with the previous sample, so the first sample
/// records zero rates and serves as the baseline.
///
/// The collector is `Send + Sync`; share it in an [`Arc`] to sample from a
/// background task (see `spawn`, with the default `tokio` feature) while
/// other threads read [`latest`](Self::latest) or [`window`](Self::window).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use kvbm::metrics::{BlockPoolMetrics, StatsCollector, StatsConfig};
///
/// let metrics = Arc::new(BlockPoolMetrics::new("G1"));
/// let stats = StatsCollector::new(metrics.clone(), StatsConfig::default());
/// stats.set_enabled(true);
///
/// let start = Instant::now();
/// stats.sample_at(start);
/// metrics.inc_allocations(10);
/// stats.sample_at(start + Duration::from_secs(2));
///
/// assert_eq!(stats.latest().map(|s| s.allocation_rate), Some(5.0));
/// ```
#[derive(Debug)]
pub struct StatsCollector {
    metrics: Arc<BlockPoolMetrics>,
    config: StatsConfig,
    enabled: AtomicBool,
    samples: Mutex<VecDeque<Sample>>,
}

impl StatsCollector {
    /// Creates a disabled collector over `metrics`.
    pub fn new(metrics: Arc<BlockPoolMetrics>, config: StatsConfig) -> Self {
        Self {
            metrics,
            config,
            enabled: AtomicBool::new(false),
            samples: Mutex::new(VecDeque::with_capacity(config.window_size.clamp(1, 1024))),
        }
    }

    /// The metrics this collector samples.
    pub fn metrics(&self) -> &Arc<BlockPoolMetrics> {
        &self.metrics
    }

    /// The settings this collector was built with.
    pub fn config(&self) -> &StatsConfig {
        &self.config
    }

    /// Turns sampling on or off. Samples already taken are kept; the first
    /// sample after re-enabling compares with the last one taken before.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Whether [`sample`](Self::sample) currently records anything.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Takes a sample now; does nothing while the collector is disabled.
    pub fn sample(&self) {
        self.sample_at(Instant::now());
    }

    /// Takes a sample as if the clock read `now`; does nothing while the
    /// collector is disabled.
    ///
    /// This lets a simulator or a test drive the collector on its own clock.
    /// An instant that is not after the previous sample counts as an empty
    /// interval: the sample records zero rates, ratios and gradients and
    /// becomes the baseline for the next one.
    pub fn sample_at(&self, now: Instant) {
        if !self.is_enabled() {
            return;
        }
        let raw = self.metrics.snapshot();
        let mut samples = self.samples.lock();
        let previous = samples.back();
        let interval = previous.map_or(0.0, |p| now.saturating_duration_since(p.at).as_secs_f64());
        let stats = StatsSnapshot::derive(previous, &raw, interval);
        samples.push_back(Sample {
            at: now,
            raw,
            stats,
        });
        let keep = self.config.window_size.max(1);
        while samples.len() > keep {
            samples.pop_front();
        }
    }

    /// The statistics of the most recent sample, if any was taken.
    pub fn latest(&self) -> Option<StatsSnapshot> {
        self.samples.lock().back().map(|s| s.stats)
    }

    /// The statistics of the last `n` samples (fewer if fewer are kept),
    /// oldest first.
    pub fn window(&self, n: usize) -> Vec<StatsSnapshot> {
        let samples = self.samples.lock();
        let skip = samples.len().saturating_sub(n);
        samples.iter().skip(skip).map(|s| s.stats).collect()
    }

    /// Starts a tokio task that calls [`sample`](Self::sample) every
    /// [`sample_interval`](StatsConfig::sample_interval) (at least one
    /// millisecond), the first time right away.
    ///
    /// The task holds only a weak reference: it ends by itself once every
    /// [`Arc`] to the collector is dropped, or when the returned handle is
    /// aborted. Ticks missed under load are delayed, not bunched together.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, like [`tokio::spawn`];
    /// [`try_spawn`](Self::try_spawn) returns an error instead.
    #[cfg(feature = "tokio")]
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        match self.try_spawn() {
            Ok(handle) => handle,
            Err(e) => panic!("StatsCollector::spawn: {e}"),
        }
    }

    /// Like [`spawn`](Self::spawn), but outside a tokio runtime it returns
    /// the error instead of panicking.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kvbm::metrics::{BlockPoolMetrics, StatsCollector, StatsConfig};
    ///
    /// let stats = Arc::new(StatsCollector::new(
    ///     Arc::new(BlockPoolMetrics::new("G1")),
    ///     StatsConfig::default(),
    /// ));
    /// assert!(stats.try_spawn().is_err()); // no runtime here
    /// ```
    #[cfg(feature = "tokio")]
    pub fn try_spawn(
        self: &Arc<Self>,
    ) -> Result<tokio::task::JoinHandle<()>, tokio::runtime::TryCurrentError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let collector = Arc::downgrade(self);
        let period = self.config.sample_interval.max(Duration::from_millis(1));
        Ok(runtime.spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match collector.upgrade() {
                    Some(collector) => collector.sample(),
                    None => return,
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn collector_is_send_and_sync() {
        assert_send_sync::<StatsCollector>();
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn try_spawn_outside_a_runtime_is_an_error_and_inside_samples() {
        let metrics = Arc::new(BlockPoolMetrics::new("t"));
        let config = StatsConfig {
            sample_interval: Duration::from_millis(1),
            ..StatsConfig::default()
        };
        let stats = Arc::new(StatsCollector::new(metrics, config));
        stats.set_enabled(true);
        assert!(stats.try_spawn().is_err());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let handle = stats.try_spawn().expect("inside a runtime");
            for _ in 0..10_000 {
                if stats.latest().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            handle.abort();
        });
        assert!(stats.latest().is_some());
    }

    #[test]
    fn window_size_zero_keeps_the_latest_sample() {
        let metrics = Arc::new(BlockPoolMetrics::new("t"));
        let config = StatsConfig {
            window_size: 0,
            ..StatsConfig::default()
        };
        let stats = StatsCollector::new(metrics, config);
        stats.set_enabled(true);
        let t0 = Instant::now();
        stats.sample_at(t0);
        stats.sample_at(t0 + Duration::from_secs(1));
        assert_eq!(stats.window(10).len(), 1);
        assert!(stats.latest().is_some());
    }
}
