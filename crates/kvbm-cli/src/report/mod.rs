//! Reports: human tables, one JSON document, CSV rows.

mod table;

use serde::Serialize;

use crate::sim::SimResult;
use crate::workload::WorkloadSummary;

pub(crate) use table::{format_rate, format_si, Table};

/// Output format of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// One JSON document.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The result of `kvbm replay`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The workload's figures.
    pub workload: WorkloadSummary,
    /// Cache size in blocks.
    pub capacity_blocks: u64,
    /// Tokens per block.
    pub block_tokens: u32,
    /// `capacity_blocks × block_tokens`.
    pub capacity_tokens: u64,
    /// `instant` or `serve`.
    pub timing: String,
    /// One entry per policy, the unbounded cache last.
    pub results: Vec<SimResult>,
}

/// One capacity of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// Cache size in blocks.
    pub capacity_blocks: u64,
    /// Cache size in tokens.
    pub capacity_tokens: u64,
    /// Cache size as a fraction of the workload's unique prompt blocks.
    pub capacity_fraction: f64,
    /// One entry per policy.
    pub results: Vec<SimResult>,
}

/// The result of `kvbm sweep`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The workload's figures.
    pub workload: WorkloadSummary,
    /// Tokens per block.
    pub block_tokens: u32,
    /// `instant` or `serve`.
    pub timing: String,
    /// Capacities, ascending.
    pub points: Vec<SweepPoint>,
    /// The unbounded cache (independent of capacity).
    pub unbounded: SimResult,
}

const CSV_HEADER: &str = "policy,block_hit_rate,token_hit_rate,hits,misses,evictions,allocation_failures,oversized_requests,requests,block_ops,seconds,requests_per_sec,block_ops_per_sec,queued_requests,mean_queue_wait_s,max_queue_wait_s,max_running,simulated_seconds";

fn csv_fields(r: &SimResult) -> String {
    let serve = match &r.serve {
        Some(s) => format!(
            "{},{},{},{},{}",
            s.queued_requests,
            s.mean_queue_wait_s,
            s.max_queue_wait_s,
            s.max_running,
            s.simulated_seconds
        ),
        None => ",,,,".to_string(),
    };
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        r.policy,
        r.block_hit_rate,
        r.token_hit_rate,
        r.hits,
        r.misses,
        r.evictions,
        r.allocation_failures,
        r.oversized_requests,
        r.requests,
        r.block_ops,
        r.seconds,
        r.requests_per_sec,
        r.block_ops_per_sec,
        serve
    )
}

fn result_table(results: &[SimResult]) -> Table {
    let serve = results.iter().any(|r| r.serve.is_some());
    let mut header = vec![
        "policy",
        "block hit",
        "token hit",
        "hits",
        "misses",
        "evictions",
        "alloc fail",
        "oversized",
    ];
    if serve {
        header.extend(["queued", "mean wait", "max wait", "max running"]);
    }
    // The simulator's own speed, not a property of the cache.
    header.extend(["simulator req/s", "simulator block ops/s", "run seconds"]);
    let mut t = Table::new(header);
    for r in results {
        let mut row = vec![
            r.policy.clone(),
            format_rate(r.block_hit_rate),
            format_rate(r.token_hit_rate),
            r.hits.to_string(),
            r.misses.to_string(),
            r.evictions.to_string(),
            r.allocation_failures.to_string(),
            r.oversized_requests.to_string(),
        ];
        if let Some(s) = &r.serve {
            row.extend([
                s.queued_requests.to_string(),
                format!("{:.2}s", s.mean_queue_wait_s),
                format!("{:.2}s", s.max_queue_wait_s),
                s.max_running.to_string(),
            ]);
        } else if serve {
            row.extend(["-".into(), "-".into(), "-".into(), "-".into()]);
        }
        row.extend([
            format_si(r.requests_per_sec),
            format_si(r.block_ops_per_sec),
            format!("{:.3}", r.seconds),
        ]);
        t.row(row);
    }
    t
}

/// `1 request`, `2 requests`: a count with its noun in the right number.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn workload_lines(w: &WorkloadSummary, block_tokens: u32) -> String {
    let mut s = format!(
        "workload   {} ({})\n           {} over {:.1}s, {} ({} unique) of {}, {}\n           maximum prefix ratio (unbounded cache): {}\n",
        w.source,
        w.format,
        count(w.requests as u64, "request"),
        w.duration_s,
        count(w.prompt_blocks, "prompt block"),
        w.unique_blocks,
        count(u64::from(block_tokens), "token"),
        count(w.input_tokens, "prompt token"),
        format_rate(w.max_prefix_ratio),
    );
    if w.skipped_lines > 0 {
        s.push_str(&format!(
            "           {} skipped\n",
            count(w.skipped_lines, "bad line")
        ));
    }
    s
}

/// One pretty-printed JSON document ending in a newline.
fn json_document<T: Serialize>(report: &T) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
    s.push('\n');
    s
}

impl ReplayReport {
    /// Renders the report.
    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Json => json_document(self),
            OutputFormat::Csv => {
                let mut s = format!("{CSV_HEADER}\n");
                for r in &self.results {
                    s.push_str(&csv_fields(r));
                    s.push('\n');
                }
                s
            }
            OutputFormat::Table => {
                let mut s = workload_lines(&self.workload, self.block_tokens);
                s.push_str(&format!(
                    "cache      {} = {} ({} of unique blocks), timing {}\n\n",
                    count(self.capacity_blocks, "block"),
                    count(self.capacity_tokens, "token"),
                    format_rate(
                        self.capacity_blocks as f64 / self.workload.unique_blocks.max(1) as f64
                    ),
                    self.timing
                ));
                s.push_str(&result_table(&self.results).render());
                s
            }
        }
    }
}

impl SweepReport {
    /// Every policy name in the sweep, in order.
    pub fn policies(&self) -> Vec<String> {
        self.points
            .first()
            .map(|p| p.results.iter().map(|r| r.policy.clone()).collect())
            .unwrap_or_default()
    }

    /// Renders the report.
    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Json => json_document(self),
            OutputFormat::Csv => {
                let mut s = format!("capacity_blocks,capacity_tokens,{CSV_HEADER}\n");
                for p in &self.points {
                    for r in p.results.iter().chain(std::iter::once(&self.unbounded)) {
                        s.push_str(&format!(
                            "{},{},{}\n",
                            p.capacity_blocks,
                            p.capacity_tokens,
                            csv_fields(r)
                        ));
                    }
                }
                s
            }
            OutputFormat::Table => {
                let mut s = workload_lines(&self.workload, self.block_tokens);
                s.push_str(&format!(
                    "timing     {}; block hit rate per policy\n\n",
                    self.timing
                ));
                let policies = self.policies();
                let mut header = vec!["blocks", "tokens", "% unique"];
                header.extend(policies.iter().map(String::as_str));
                header.push("unbounded");
                let mut t = Table::new(header);
                for p in &self.points {
                    let mut row = vec![
                        p.capacity_blocks.to_string(),
                        format_si(p.capacity_tokens as f64),
                        format_rate(p.capacity_fraction),
                    ];
                    row.extend(p.results.iter().map(|r| format_rate(r.block_hit_rate)));
                    row.push(format_rate(self.unbounded.block_hit_rate));
                    t.row(row);
                }
                s.push_str(&t.render());
                s
            }
        }
    }
}
