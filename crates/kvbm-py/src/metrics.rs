//! `kvbm.StatsCollector`: rates, hit ratios and gradients derived from a
//! pool's counters, sample by sample.

use std::sync::Arc;

use kvbm::metrics::{self as rm, BlockPoolMetrics, StatsConfig};
use pyo3::prelude::*;

/// Samples a `BlockManager`'s counters and derives statistics from each
/// sample relative to the one before (get one from
/// `BlockManager.stats_collector()`).
///
/// `sample()` records a sample now; `latest()` is the newest statistics
/// dict (`allocation_rate`, `eviction_rate`, `match_hit_rate`,
/// `scan_hit_rate`, `allocation_gradient`, `eviction_gradient` and the
/// pool-size gauges) or `None`; `window(n)` the newest `n`, oldest first.
/// The first sample only sets the baseline, so its rates are zero.
#[pyclass(module = "kvbm", frozen)]
pub struct StatsCollector {
    inner: rm::StatsCollector,
}

impl StatsCollector {
    pub(crate) fn over(metrics: Arc<BlockPoolMetrics>, window_size: usize) -> Self {
        let inner = rm::StatsCollector::new(
            metrics,
            StatsConfig {
                window_size,
                ..StatsConfig::default()
            },
        );
        inner.set_enabled(true);
        Self { inner }
    }
}

#[pymethods]
impl StatsCollector {
    /// Records a sample of the counters now (no-op while disabled).
    fn sample(&self) {
        self.inner.sample();
    }

    /// The newest statistics as a dict, or `None` before the first sample.
    fn latest(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        self.inner
            .latest()
            .map(|s| crate::json::serialize(py, &s))
            .transpose()
    }

    /// The newest `n` statistics dicts, oldest first.
    fn window(&self, py: Python<'_>, n: usize) -> PyResult<Vec<PyObject>> {
        self.inner
            .window(n)
            .iter()
            .map(|s| crate::json::serialize(py, s))
            .collect()
    }

    /// Whether `sample()` records anything.
    #[getter]
    fn enabled(&self) -> bool {
        self.inner.is_enabled()
    }

    #[setter]
    fn set_enabled(&self, enabled: bool) {
        self.inner.set_enabled(enabled);
    }

    /// How many samples are kept.
    #[getter]
    fn window_size(&self) -> usize {
        self.inner.config().window_size
    }
}
