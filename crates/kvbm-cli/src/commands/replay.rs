//! `kvbm replay`: every contender at one cache size.

use std::io::Write;
use std::time::Duration;

use kvbm::metrics::MetricsAggregator;

use crate::capacity::{capacity_tokens, CapacitySpec};
use crate::cli::args::ReplayConfig;
use crate::commands::{load, run_one};
use crate::error::{CliError, Result};
use crate::observe::http::MetricsServer;
use crate::observe::{Progress, ReplayMetrics, RunObserver};
use crate::report::ReplayReport;

/// The metrics endpoint while it runs.
struct Endpoint {
    server: MetricsServer,
    metrics: ReplayMetrics,
    aggregator: MetricsAggregator,
}

fn start_endpoint(addr: &str) -> Result<Endpoint> {
    let prom_err = |e: prometheus::Error| CliError::Http {
        addr: addr.to_string(),
        source: std::io::Error::other(e.to_string()),
    };
    let registry = prometheus::Registry::new();
    let metrics = ReplayMetrics::new(&registry).map_err(prom_err)?;
    let aggregator = MetricsAggregator::new();
    aggregator.register_with(&registry).map_err(prom_err)?;
    let server = MetricsServer::start(addr, registry)?;
    eprintln!(
        "serving Prometheus metrics at http://{}/metrics",
        server.addr()
    );
    Ok(Endpoint {
        server,
        metrics,
        aggregator,
    })
}

/// Runs a validated replay, writing the report to `out`.
pub(crate) fn replay(cfg: &ReplayConfig, out: &mut dyn Write) -> Result<()> {
    // Bind the endpoint first: a taken port is reported before any work.
    let endpoint = cfg
        .metrics
        .as_ref()
        .map(|m| start_endpoint(&m.addr))
        .transpose()?;
    let w = load(&cfg.workload)?;
    let summary = w.summary();
    // Default: a tenth of the unique blocks, but never less than one block,
    // so that tiny traces replay without a capacity flag.
    let spec = cfg.capacity.unwrap_or(CapacitySpec::Fraction(0.1));
    let capacity = match spec.blocks(summary.unique_blocks, w.block_tokens) {
        Err(_) if cfg.capacity.is_none() => 1,
        other => other?,
    };

    let mut progress = Progress::new(
        cfg.sim.quiet,
        cfg.contenders.len() as u64,
        w.requests.len() as u64,
    );
    let mut results = Vec::new();
    for &contender in &cfg.contenders {
        progress.begin_run(contender.name());
        let observer = RunObserver::new(&mut progress).paced(cfg.pace);
        let result = run_one(
            contender,
            &w,
            capacity,
            &cfg.sim,
            endpoint.as_ref().map(|e| &e.aggregator),
            observer,
            |o, cache| o.publishing(endpoint.as_ref().map(|e| &e.metrics), cache),
        )?;
        progress.end_run();
        results.push(result);
    }
    progress.finish();

    let report = ReplayReport {
        workload: summary,
        capacity_blocks: capacity,
        block_tokens: w.block_tokens,
        capacity_tokens: capacity_tokens(capacity, w.block_tokens)?,
        timing: cfg.sim.timing.name().to_string(),
        results,
    };
    out.write_all(report.render(cfg.sim.format).as_bytes())?;
    out.flush()?;
    if let (Some(e), Some(m)) = (&endpoint, &cfg.metrics) {
        if m.linger_s > 0.0 {
            eprintln!(
                "replay finished; serving metrics at http://{}/metrics for {}s",
                e.server.addr(),
                m.linger_s
            );
            // Validation bounds the linger to a week.
            std::thread::sleep(Duration::try_from_secs_f64(m.linger_s).unwrap_or_default());
        }
    }
    Ok(())
}
