//! `kvbm cluster`: each router over the same workload and cluster.

use std::io::Write;

use serde::Serialize;

use crate::cli::cluster_args::ClusterRun;
use crate::cluster::{self, ClusterResult};
use crate::commands::load;
use crate::error::Result;
use crate::observe::Progress;

#[derive(Serialize)]
struct Report<'a> {
    source: &'a str,
    requests: usize,
    workers: usize,
    capacity_blocks_per_worker: usize,
    block_tokens: u32,
    transport: &'a str,
    results: &'a [ClusterResult],
}

/// Runs a validated `kvbm cluster`, writing the report to `out`.
pub(crate) fn cluster(run: &ClusterRun, out: &mut dyn Write) -> Result<()> {
    let w = load(&run.workload)?;
    let mut progress = Progress::new(run.quiet, run.routers.len() as u64, w.requests.len() as u64);
    let mut results = Vec::new();
    for &router in &run.routers {
        progress.begin_run(router.name());
        let result = cluster::run(&w, &run.cluster, router, &mut |done| progress.update(done))?;
        progress.end_run();
        results.push(result);
    }
    progress.finish();
    let transport = run.cluster.nats.as_deref().unwrap_or("in-process");
    if run.json {
        let report = Report {
            source: &w.source,
            requests: w.requests.len(),
            workers: run.cluster.workers,
            capacity_blocks_per_worker: run.cluster.capacity,
            block_tokens: w.block_tokens,
            transport,
            results: &results,
        };
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| crate::error::CliError::Cluster(e.to_string()))?;
        writeln!(out, "{text}")?;
    } else {
        writeln!(
            out,
            "{}: {} requests, {} workers x {} blocks of {} tokens, events {}",
            w.source,
            w.requests.len(),
            run.cluster.workers,
            run.cluster.capacity,
            w.block_tokens,
            transport
        )?;
        writeln!(
            out,
            "{:<12} {:>9} {:>13} {:>11} {:>11} {:>9} {:>9} {:>8}",
            "router",
            "hit rate",
            "load max/mean",
            "events sent",
            "received",
            "lost",
            "snapshots",
            "seconds"
        )?;
        for r in &results {
            writeln!(
                out,
                "{:<12} {:>8.2}% {:>13.3} {:>11} {:>11} {:>9} {:>9} {:>8.2}",
                r.router,
                100.0 * r.block_hit_rate,
                r.load_max_over_mean,
                r.events_sent,
                r.events_received,
                r.events_lost,
                r.snapshots_requested,
                r.elapsed_s
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
