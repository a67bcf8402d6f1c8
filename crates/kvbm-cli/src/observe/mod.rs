//! Watching a simulation run: the progress bar, pacing to trace time, and
//! the Prometheus endpoint with the replay's own metrics.

pub(crate) mod http;
pub(crate) mod metrics;
mod pacer;
pub(crate) mod progress;

use std::time::{Duration, Instant};

use kvbm::metrics::{StatsCollector, StatsConfig};

use crate::sim::{Counters, Observer, SimCache};

pub(crate) use metrics::ReplayMetrics;
pub(crate) use pacer::Pacer;
pub(crate) use progress::Progress;

/// How often the manager's StatsCollector is sampled during a replay.
const STATS_INTERVAL: Duration = Duration::from_millis(250);

/// The [`Observer`] of one simulation run inside a command.
pub(crate) struct RunObserver<'a> {
    progress: &'a mut Progress,
    pacer: Option<Pacer>,
    metrics: Option<&'a ReplayMetrics>,
    stats: Option<StatsCollector>,
    last_sample: Instant,
    calls: u32,
}

impl<'a> RunObserver<'a> {
    /// An observer that only moves the progress bar.
    pub(crate) fn new(progress: &'a mut Progress) -> Self {
        Self {
            progress,
            pacer: None,
            metrics: None,
            stats: None,
            last_sample: Instant::now(),
            calls: 0,
        }
    }

    /// Sleeps so that trace time runs at `factor`× wall-clock time.
    pub(crate) fn paced(mut self, factor: Option<f64>) -> Self {
        self.pacer = factor.map(Pacer::new);
        self
    }

    /// Publishes the run's figures to `metrics`, with a StatsCollector over
    /// the cache's block manager when it has one.
    pub(crate) fn publishing(
        mut self,
        metrics: Option<&'a ReplayMetrics>,
        cache: &dyn SimCache,
    ) -> Self {
        self.metrics = metrics;
        self.stats = match (metrics, cache.pool_metrics()) {
            (Some(_), Some(pool)) => {
                let s = StatsCollector::new(pool, StatsConfig::default());
                s.set_enabled(true);
                s.sample();
                Some(s)
            }
            _ => None,
        };
        self
    }

    /// Samples the manager's StatsCollector and publishes it.
    fn sample(&mut self, cache: &dyn SimCache) {
        if let (Some(stats), Some(m)) = (&self.stats, self.metrics) {
            stats.sample();
            if let Some(s) = stats.latest() {
                m.update_stats(cache.name(), &s);
            }
        }
        self.last_sample = Instant::now();
    }

    /// Publishes the final figures of a finished run.
    pub(crate) fn finish(&mut self, counters: &Counters, cache: &dyn SimCache) {
        self.sample(cache);
        if let Some(m) = self.metrics {
            m.update(counters, cache);
        }
    }
}

impl Observer for RunObserver<'_> {
    fn pace(&mut self, sim_ms: u64) {
        if let Some(p) = &mut self.pacer {
            p.pace(sim_ms);
        }
    }

    fn progress(&mut self, done: u64, _sim_ms: u64, counters: &Counters, cache: &dyn SimCache) {
        self.progress.update(done);
        self.calls = self.calls.wrapping_add(1);
        if let Some(m) = self.metrics {
            // Cheap enough per request when paced; every 64 otherwise.
            if self.pacer.is_some() || self.calls % 64 == 0 {
                m.update(counters, cache);
                if self.last_sample.elapsed() >= STATS_INTERVAL {
                    self.sample(cache);
                }
            }
        }
    }
}
