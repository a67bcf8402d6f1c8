//! [`MetricsAggregator`]: a Prometheus collector over the metrics of many
//! block managers, read at scrape time.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use super::families::{Kind, FAMILIES};
use super::pool::BlockPoolMetrics;

/// Name of the label carrying [`BlockPoolMetrics::label`].
const POOL_LABEL: &str = "pool";

/// Why [`MetricsAggregator::try_set_external_labels`] refused a label set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalLabelError {
    /// The name does not match `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("`{0}` is not a valid Prometheus label name")]
    InvalidName(String),
    /// The name is `pool` (set per source) or starts with `__` (reserved by
    /// Prometheus).
    #[error("label name `{0}` is reserved")]
    Reserved(String),
    /// The same name appears twice.
    #[error("label name `{0}` is given more than once")]
    Duplicate(String),
}

/// Exports the counters and gauges of any number of [`BlockPoolMetrics`] to
/// Prometheus.
///
/// Every family (`kvbm_allocations_total`, `kvbm_inflight_mutable`, …) gets
/// one series per distinct [`label`](BlockPoolMetrics::label), labelled
/// `pool="<label>"` followed by the external labels. Values are read from the
/// atomics at scrape time, so registering costs nothing on the hot path.
///
/// Sources sharing a label are **summed** into one series, so a scrape never
/// holds two series with the same label set. Registering the same [`Arc`]
/// twice is ignored, so it is not counted twice.
///
/// Cloning is cheap and yields a handle to the same sources and labels: keep
/// one clone to add sources after [`register_with`](Self::register_with).
/// Two aggregators describe the same families, so a registry accepts only one
/// of them (the second registration fails with
/// [`prometheus::Error::AlreadyReg`]).
///
/// ```
/// use std::sync::Arc;
/// use kvbm::metrics::{BlockPoolMetrics, MetricsAggregator};
/// use prometheus::{Encoder, Registry, TextEncoder};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let metrics = Arc::new(BlockPoolMetrics::new("G1"));
/// let aggregator = MetricsAggregator::new();
/// aggregator.register_source(metrics.clone());
///
/// let registry = Registry::new();
/// aggregator.register_with(&registry)?;
///
/// metrics.inc_allocations(3);
/// let mut text = Vec::new();
/// TextEncoder::new().encode(&registry.gather(), &mut text)?;
/// let text = String::from_utf8(text)?;
/// assert!(text.contains("kvbm_allocations_total{pool=\"G1\"} 3"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MetricsAggregator {
    shared: Arc<Shared>,
}

struct Shared {
    sources: RwLock<Vec<Arc<BlockPoolMetrics>>>,
    external_labels: RwLock<Vec<(String, String)>>,
    descs: Vec<Desc>,
}

impl MetricsAggregator {
    /// Creates an aggregator without sources or external labels.
    pub fn new() -> Self {
        let descs = FAMILIES
            .iter()
            .map(|family| {
                Desc::new(
                    family.name.to_string(),
                    family.help.to_string(),
                    vec![POOL_LABEL.to_string()],
                    Default::default(),
                )
                // The catalogue is a constant; a unit test checks every entry.
                .expect("metric family catalogue holds valid names and help texts")
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                sources: RwLock::new(Vec::new()),
                external_labels: RwLock::new(Vec::new()),
                descs,
            }),
        }
    }

    /// Adds a source to export from the next scrape on. A source already
    /// registered (the same [`Arc`]) is ignored.
    pub fn register_source(&self, source: Arc<BlockPoolMetrics>) {
        let mut sources = self.shared.sources.write();
        if !sources.iter().any(|known| Arc::ptr_eq(known, &source)) {
            sources.push(source);
        }
    }

    /// Sets the labels added after `pool` to every exported series (for
    /// example `instance_id` or `worker_id`), replacing earlier ones.
    ///
    /// Labels [`try_set_external_labels`](Self::try_set_external_labels)
    /// would refuse are dropped (for a repeated name, the first one wins);
    /// [`external_labels`](Self::external_labels) shows what was kept.
    pub fn set_external_labels(&self, labels: Vec<(String, String)>) {
        let mut kept: Vec<(String, String)> = Vec::with_capacity(labels.len());
        for (name, value) in labels {
            if check_label_name(&name, &kept).is_ok() {
                kept.push((name, value));
            }
        }
        *self.shared.external_labels.write() = kept;
    }

    /// Sets the external labels like
    /// [`set_external_labels`](Self::set_external_labels), but refuses the
    /// whole set, leaving the current labels in place, if any name is not a
    /// valid Prometheus label name, is reserved (`pool`, `__…`) or repeats.
    pub fn try_set_external_labels(
        &self,
        labels: Vec<(String, String)>,
    ) -> Result<(), ExternalLabelError> {
        for (i, (name, _)) in labels.iter().enumerate() {
            check_label_name(name, &labels[..i])?;
        }
        *self.shared.external_labels.write() = labels;
        Ok(())
    }

    /// The external labels currently added to every series.
    pub fn external_labels(&self) -> Vec<(String, String)> {
        self.shared.external_labels.read().clone()
    }

    /// Registers (a clone of) this aggregator with `registry`.
    ///
    /// Fails with [`prometheus::Error::AlreadyReg`] if the registry already
    /// holds this or another aggregator.
    pub fn register_with(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.clone()))
    }

    /// Current values of every family, summed per pool label, ordered by
    /// label.
    fn totals(&self) -> BTreeMap<String, Vec<f64>> {
        let mut totals: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for source in self.shared.sources.read().iter() {
            let snapshot = source.snapshot();
            let values = totals
                .entry(source.label().to_string())
                .or_insert_with(|| vec![0.0; FAMILIES.len()]);
            for (value, family) in values.iter_mut().zip(FAMILIES) {
                *value += (family.read)(&snapshot);
            }
        }
        totals
    }
}

impl Default for MetricsAggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MetricsAggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sources: Vec<String> = self
            .shared
            .sources
            .read()
            .iter()
            .map(|s| s.label().to_string())
            .collect();
        f.debug_struct("MetricsAggregator")
            .field("sources", &sources)
            .field("external_labels", &*self.shared.external_labels.read())
            .finish()
    }
}

impl Collector for MetricsAggregator {
    fn desc(&self) -> Vec<&Desc> {
        self.shared.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let totals = self.totals();
        if totals.is_empty() {
            return Vec::new();
        }
        let external = self.external_labels();
        let labels: Vec<Vec<LabelPair>> = totals
            .keys()
            .map(|pool| label_pairs(pool, &external))
            .collect();

        FAMILIES
            .iter()
            .enumerate()
            .map(|(i, family)| {
                let metrics = totals
                    .values()
                    .zip(&labels)
                    .map(|(values, labels)| series(family.kind, values[i], labels.clone()))
                    .collect();
                let mut out = MetricFamily::default();
                out.set_name(family.name.to_string());
                out.set_help(family.help.to_string());
                out.set_field_type(match family.kind {
                    Kind::Counter => MetricType::COUNTER,
                    Kind::Gauge => MetricType::GAUGE,
                });
                out.set_metric(metrics);
                out
            })
            .collect()
    }
}

/// One series of a family with the given value and labels.
fn series(kind: Kind, value: f64, labels: Vec<LabelPair>) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(labels);
    match kind {
        Kind::Counter => {
            let mut counter = Counter::default();
            counter.set_value(value);
            metric.set_counter(counter);
        }
        Kind::Gauge => {
            let mut gauge = Gauge::default();
            gauge.set_value(value);
            metric.set_gauge(gauge);
        }
    }
    metric
}

/// The `pool` label followed by the external labels.
fn label_pairs(pool: &str, external: &[(String, String)]) -> Vec<LabelPair> {
    std::iter::once((POOL_LABEL, pool))
        .chain(external.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.to_string());
            pair
        })
        .collect()
}

/// Checks that `name` can be added as an external label after `earlier`.
fn check_label_name(name: &str, earlier: &[(String, String)]) -> Result<(), ExternalLabelError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(ExternalLabelError::InvalidName(name.to_string()));
    }
    if name == POOL_LABEL || name.starts_with("__") {
        return Err(ExternalLabelError::Reserved(name.to_string()));
    }
    if earlier.iter().any(|(known, _)| known == name) {
        return Err(ExternalLabelError::Duplicate(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_a_valid_distinct_descriptor() {
        let aggregator = MetricsAggregator::new();
        let descs = aggregator.desc();
        assert_eq!(descs.len(), FAMILIES.len());
        let mut names: Vec<&str> = descs.iter().map(|d| d.fq_name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len());
        for family in FAMILIES {
            let counter_name = family.name.ends_with("_total");
            assert_eq!(
                counter_name,
                family.kind == Kind::Counter,
                "{}",
                family.name
            );
        }
    }

    #[test]
    fn label_names_are_checked() {
        let none: [(String, String); 0] = [];
        assert!(check_label_name("worker_id", &none).is_ok());
        assert!(check_label_name("_x1", &none).is_ok());
        for bad in ["", "1x", "a-b", "a b", "é"] {
            assert_eq!(
                check_label_name(bad, &none),
                Err(ExternalLabelError::InvalidName(bad.to_string()))
            );
        }
        for reserved in ["pool", "__name__"] {
            assert_eq!(
                check_label_name(reserved, &none),
                Err(ExternalLabelError::Reserved(reserved.to_string()))
            );
        }
        let earlier = [("a".to_string(), "1".to_string())];
        assert_eq!(
            check_label_name("a", &earlier),
            Err(ExternalLabelError::Duplicate("a".to_string()))
        );
    }
}
