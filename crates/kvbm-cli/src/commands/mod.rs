//! The subcommands: [`replay`] and [`sweep`], each running validated
//! configurations from [`crate::cli::args`].

pub(crate) mod cluster;
pub(crate) mod replay;
pub(crate) mod sweep;

use kvbm::metrics::MetricsAggregator;

use crate::cli::args::{SimConfig, WorkloadSource};
use crate::error::Result;
use crate::observe::RunObserver;
use crate::sim::contender::{build, Contender};
use crate::sim::explain::{self, PrefixHits};
use crate::sim::{self, Counters, SimResult};
use crate::trace;
use crate::workload::generator::generate;
use crate::workload::Workload;

/// Reads the traces or runs the generator.
pub(crate) fn load(source: &WorkloadSource) -> Result<Workload> {
    match source {
        WorkloadSource::Traces(paths, opts) => trace::load(paths, opts),
        WorkloadSource::Generator(config) => Ok(generate(config)),
    }
}

/// Builds one contender at `capacity` blocks and runs it over the workload;
/// `configure` adds pacing or metrics to the run's observer. With
/// `sim.explain`, also returns the prefix each request hit.
pub(crate) fn run_one<'a>(
    contender: Contender,
    w: &Workload,
    capacity: u64,
    sim: &SimConfig,
    aggregator: Option<&MetricsAggregator>,
    observer: RunObserver<'a>,
    configure: impl FnOnce(RunObserver<'a>, &dyn sim::SimCache) -> RunObserver<'a>,
) -> Result<(SimResult, Option<PrefixHits>)> {
    // A capacity beyond the address space is capped by `build` anyway (to
    // the workload's block count), so saturating here changes nothing.
    let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
    let mut cache = build(contender, w, capacity, sim.release, sim.timing, aggregator)?;
    let mut observer = configure(observer, cache.as_ref());
    let (result, hits) = explain::run(w, cache.as_mut(), sim.timing, &mut observer, sim.explain)?;
    let totals = Counters {
        requests: result.requests,
        hits: result.hits,
        misses: result.misses,
        ..Counters::default()
    };
    observer.finish(&totals, cache.as_ref());
    Ok((result, hits))
}
