//! `kvbm sweep`: every contender at many cache sizes.

use std::io::Write;

use crate::capacity::{capacity_tokens, log_spaced};
use crate::cli::args::{CapacityPlan, SweepConfig};
use crate::commands::{load, run_one};
use crate::error::Result;
use crate::observe::{Progress, RunObserver};
use crate::report::{SweepPoint, SweepReport};
use crate::sim::contender::Contender;

/// Runs a validated sweep, writing the report to `out` (before the chart,
/// so a failing chart loses no results).
pub(crate) fn sweep(cfg: &SweepConfig, out: &mut dyn Write) -> Result<()> {
    let w = load(&cfg.workload)?;
    let summary = w.summary();
    let unique = summary.unique_blocks;
    let bt = w.block_tokens;
    let mut capacities = match &cfg.capacities {
        CapacityPlan::List(specs) => specs
            .iter()
            .map(|c| c.blocks(unique, bt))
            .collect::<Result<Vec<_>>>()?,
        CapacityPlan::Range { from, to, points } => {
            log_spaced(from.blocks(unique, bt)?, to.blocks(unique, bt)?, *points)
        }
    };
    capacities.sort_unstable();
    capacities.dedup();

    let runs = (capacities.len() * cfg.contenders.len() + 1) as u64;
    let mut progress = Progress::new(cfg.sim.quiet, runs, w.requests.len() as u64);
    let mut run = |contender: Contender, capacity: u64| {
        progress.begin_run(&format!("{} @ {capacity} blocks", contender.name()));
        let r = run_one(
            contender,
            &w,
            capacity,
            &cfg.sim,
            None,
            RunObserver::new(&mut progress),
            |o, _| o,
        );
        progress.end_run();
        r
    };
    let mut points = Vec::new();
    for &capacity in &capacities {
        let mut results = Vec::new();
        for &contender in &cfg.contenders {
            results.push(run(contender, capacity)?);
        }
        points.push(SweepPoint {
            capacity_blocks: capacity,
            capacity_tokens: capacity_tokens(capacity, bt)?,
            capacity_fraction: capacity as f64 / unique.max(1) as f64,
            results,
        });
    }
    let unbounded = run(Contender::Unbounded, 0)?;
    progress.finish();
    let report = SweepReport {
        workload: summary,
        block_tokens: bt,
        timing: cfg.sim.timing.name().to_string(),
        points,
        unbounded,
    };
    out.write_all(report.render(cfg.sim.format).as_bytes())?;
    out.flush()?;
    if let Some(path) = &cfg.plot {
        crate::plot::plot_sweep(&report, path)?;
        if !cfg.sim.quiet {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
