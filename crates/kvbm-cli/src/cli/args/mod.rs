//! The command line as clap sees it, and the one validation step that turns
//! it into typed configurations ([`ReplayConfig`], [`SweepConfig`]).
//!
//! Every flag is checked here, before a trace is read or a workload
//! generated, whatever contenders were chosen: a bad flag is reported by
//! name, never as a trace line and never after minutes of work.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::capacity::{CapacitySpec, CAPACITY_FORMS};
use crate::error::{CliError, Result};
use crate::report::OutputFormat;
use crate::sim::contender::{parse_contenders, Contender};
use crate::sim::{ReleaseOrder, ServeConfig, Timing};
use crate::trace::{TraceOptions, STDIN};
use crate::workload::generator::GeneratorConfig;

/// Largest `--requests`: the generator keeps its whole workload in memory
/// (about 1 KiB per request).
pub(crate) const MAX_REQUESTS: usize = 1_000_000;
/// Largest `--points` and longest `--capacities` list.
pub(crate) const MAX_SWEEP_POINTS: usize = 1000;
/// Largest block: what the block manager accepts.
const MAX_BLOCK_SIZE: u32 = kvbm::manager::MAX_BLOCK_SIZE as u32;
/// Bounds of `--prefill-tps` and `--decode-tps`, tokens per second.
const TPS_RANGE: (f64, f64) = (1e-3, 1e12);
/// Bounds of `--rate`, arrivals per second.
const RATE_RANGE: (f64, f64) = (1e-3, 1e6);
/// Bounds of `--pace`.
const PACE_RANGE: (f64, f64) = (1e-3, 1e6);
/// Longest `--linger`, seconds (a week).
const MAX_LINGER_S: f64 = 7.0 * 86_400.0;

/// Where requests come from.
#[derive(Debug, Clone, Args)]
pub(crate) struct WorkloadArgs {
    /// Trace file (Mooncake or token JSONL, optionally gzipped; `-` reads
    /// standard input); repeat to merge several. Without it, the built-in
    /// generator is used.
    #[arg(long = "trace", value_name = "PATH")]
    pub traces: Vec<PathBuf>,
    /// Tokens per Mooncake `hash_ids` entry.
    #[arg(long, default_value_t = 512, value_name = "TOKENS")]
    pub trace_block_tokens: u32,
    /// Skip (and count) malformed trace lines instead of failing.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Tokens per KV block: a power of two from 1 to 1024.
    #[arg(long, default_value_t = 512, value_name = "TOKENS")]
    pub block_size: u32,
    /// Generator: number of requests (at most 1000000).
    #[arg(long, default_value_t = 3000, value_name = "N")]
    pub requests: usize,
    /// Generator: random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Generator: new chat sessions, agent calls and documents per second.
    #[arg(long, default_value_t = 2.0, value_name = "PER_SEC")]
    pub rate: f64,
    /// Generator: relative weights of chat sessions, agent calls, documents.
    #[arg(long, default_value = "0.6,0.25,0.15", value_name = "CHAT,AGENT,DOC")]
    pub mix: String,
}

/// The timing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TimingArg {
    /// Each request matches, allocates, registers and releases before the next.
    Instant,
    /// Discrete-event simulation: blocks are held for prefill + decode, requests queue.
    Serve,
}

/// The order a finished request's blocks are released in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReleaseOrderArg {
    /// Root first: the order of the request's block list.
    RootFirst,
    /// Deepest block first.
    LeafFirst,
}

impl ReleaseOrderArg {
    /// The flag's default: whatever the simulator's default is.
    fn default_value() -> Self {
        match ReleaseOrder::default() {
            ReleaseOrder::RootFirst => Self::RootFirst,
            ReleaseOrder::LeafFirst => Self::LeafFirst,
        }
    }
}

/// How to simulate and what to print.
#[derive(Debug, Clone, Args)]
pub(crate) struct SimArgs {
    /// Timing model.
    #[arg(long, value_enum, default_value_t = TimingArg::Instant)]
    pub timing: TimingArg,
    /// Serve timing: prompt tokens computed per second (misses only).
    #[arg(long, default_value_t = 10_000.0, value_name = "TOKENS_PER_SEC")]
    pub prefill_tps: f64,
    /// Serve timing: tokens generated per second per request.
    #[arg(long, default_value_t = 50.0, value_name = "TOKENS_PER_SEC")]
    pub decode_tps: f64,
    /// Order in which a finished request's blocks are released (and so enter
    /// LRU-like backends).
    #[arg(long, value_enum, default_value_t = ReleaseOrderArg::default_value())]
    pub release_order: ReleaseOrderArg,
    /// Print one JSON document.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What `kvbm replay` and `kvbm sweep` both take.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    /// The workload.
    pub workload: WorkloadArgs,
    #[command(flatten)]
    /// Simulation and output.
    pub sim: SimArgs,
}

/// Arguments of `kvbm replay`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    /// The workload and how to simulate it.
    pub run: RunArgs,
    /// Policies, comma-separated, or `all`. The unbounded cache is always
    /// reported as well.
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Cache size: `10%` of the unique prompt blocks, tokens (`3M`) or
    /// blocks (`5859b`). Default: 10% of the unique prompt blocks.
    #[arg(long, value_name = "SIZE", conflicts_with_all = ["capacity_blocks", "capacity_tokens"])]
    pub capacity: Option<String>,
    /// Cache size in blocks.
    #[arg(long, conflicts_with = "capacity_tokens", value_name = "N")]
    pub capacity_blocks: Option<u64>,
    /// Cache size in tokens (`3000000`, `3M`, `512k`), rounded down to whole blocks.
    #[arg(long, value_name = "N")]
    pub capacity_tokens: Option<String>,
    /// Replay at FACTOR× real time instead of as fast as possible.
    #[arg(long, value_name = "FACTOR")]
    pub pace: Option<f64>,
    /// Serve Prometheus metrics at http://ADDR/metrics while replaying.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Keep serving metrics this many seconds after the replay (needs
    /// --metrics-addr).
    #[arg(long, value_name = "SECS", requires = "metrics_addr")]
    pub linger: Option<f64>,
    /// Split each policy's misses into compulsory (no cache could hit),
    /// capacity (Belady at this size misses too) and policy (Belady hits).
    #[arg(long)]
    pub explain: bool,
}

/// Arguments of `kvbm sweep`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SweepArgs {
    #[command(flatten)]
    /// The workload and how to simulate it.
    pub run: RunArgs,
    /// Policies, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Capacities, comma-separated (`1%,10%,3M,5859b`); overrides --from/--to.
    #[arg(long, value_name = "LIST")]
    pub capacities: Option<String>,
    /// Smallest capacity of a log-spaced range.
    #[arg(long, default_value = "1%")]
    pub from: String,
    /// Largest capacity of a log-spaced range.
    #[arg(long, default_value = "100%")]
    pub to: String,
    /// Number of capacities in the range (at most 1000).
    #[arg(long, default_value_t = 12)]
    pub points: usize,
    /// Write a chart of hit rate versus capacity (`.svg` or `.png`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Where a validated workload comes from.
#[derive(Debug, Clone)]
pub(crate) enum WorkloadSource {
    /// Trace files (`-` is standard input).
    Traces(Vec<PathBuf>, TraceOptions),
    /// The built-in generator.
    Generator(GeneratorConfig),
}

/// Validated simulation and output settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimConfig {
    /// The timing model.
    pub timing: Timing,
    /// Release order of a finished request's blocks.
    pub release: ReleaseOrder,
    /// Output format.
    pub format: OutputFormat,
    /// No progress bar.
    pub quiet: bool,
    /// Record each request's prefix hits to attribute misses (`replay
    /// --explain`; never set by `sweep`).
    pub explain: bool,
}

/// The metrics endpoint of a replay.
#[derive(Debug, Clone)]
pub(crate) struct MetricsConfig {
    /// Address to bind.
    pub addr: String,
    /// Seconds to keep serving after the replay.
    pub linger_s: f64,
}

/// A validated `kvbm replay`.
#[derive(Debug, Clone)]
pub(crate) struct ReplayConfig {
    /// The workload.
    pub workload: WorkloadSource,
    /// Simulation and output.
    pub sim: SimConfig,
    /// What to compare; the unbounded cache last.
    pub contenders: Vec<Contender>,
    /// Cache size; `None` is a tenth of the unique prompt blocks.
    pub capacity: Option<CapacitySpec>,
    /// Replay speed relative to trace time.
    pub pace: Option<f64>,
    /// The Prometheus endpoint.
    pub metrics: Option<MetricsConfig>,
}

/// The capacities of a sweep.
#[derive(Debug, Clone)]
pub(crate) enum CapacityPlan {
    /// An explicit list.
    List(Vec<CapacitySpec>),
    /// `points` log-spaced sizes from `from` to `to`.
    Range {
        /// Smallest size.
        from: CapacitySpec,
        /// Largest size.
        to: CapacitySpec,
        /// How many.
        points: usize,
    },
}

/// A validated `kvbm sweep`.
#[derive(Debug, Clone)]
pub(crate) struct SweepConfig {
    /// The workload.
    pub workload: WorkloadSource,
    /// Simulation and output.
    pub sim: SimConfig,
    /// What to compare (the unbounded cache is run once, separately).
    pub contenders: Vec<Contender>,
    /// Capacities.
    pub capacities: CapacityPlan,
    /// Chart output, its directory already checked.
    pub plot: Option<PathBuf>,
}

fn invalid(message: String) -> CliError {
    CliError::InvalidArgument(message)
}

/// Checks that `value` is a finite number in `[lo, hi]`.
fn in_range(flag: &str, value: f64, (lo, hi): (f64, f64), unit: &str) -> Result<f64> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(format!(
            "{flag} must be between {lo} and {hi:e} {unit}, got {value}"
        )))
    }
}

impl WorkloadArgs {
    pub(crate) fn validate(&self, timing: Timing) -> Result<WorkloadSource> {
        let bs = self.block_size;
        if !(1..=MAX_BLOCK_SIZE).contains(&bs) || !bs.is_power_of_two() {
            return Err(invalid(format!(
                "--block-size {bs}: the block size must be a power of two from 1 to {MAX_BLOCK_SIZE}"
            )));
        }
        if !self.traces.is_empty() {
            let tbt = self.trace_block_tokens;
            if tbt == 0 || tbt % bs != 0 {
                return Err(invalid(format!(
                    "--block-size {bs} must divide --trace-block-tokens {tbt} (each Mooncake hash id becomes --trace-block-tokens / --block-size blocks)"
                )));
            }
            let stdin = self
                .traces
                .iter()
                .filter(|p| p.as_os_str() == STDIN)
                .count();
            if stdin > 1 {
                return Err(invalid(
                    "--trace -: standard input can be read only once".into(),
                ));
            }
            return Ok(WorkloadSource::Traces(
                self.traces.clone(),
                TraceOptions {
                    trace_block_tokens: tbt,
                    block_size: bs,
                    skip_bad_lines: self.skip_bad_lines,
                    output_blocks: matches!(timing, Timing::Serve(_)),
                },
            ));
        }
        if !(1..=MAX_REQUESTS).contains(&self.requests) {
            return Err(invalid(format!(
                "--requests {}: the generator makes 1 to {MAX_REQUESTS} requests (use a trace file for more)",
                self.requests
            )));
        }
        let rate = in_range("--rate", self.rate, RATE_RANGE, "arrivals per second")?;
        let bad_mix = || {
            invalid(format!(
                "--mix `{}`: expected three numbers (chat, agent, document weights)",
                self.mix
            ))
        };
        let mix: Vec<f64> = self
            .mix
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad_mix())?;
        let mix: [f64; 3] = mix.try_into().map_err(|_| bad_mix())?;
        let sum: f64 = mix.iter().sum();
        if mix.iter().any(|x| !x.is_finite() || *x < 0.0) || !(sum.is_finite() && sum > 0.0) {
            return Err(invalid(format!(
                "--mix `{}`: weights must be non-negative with a positive sum",
                self.mix
            )));
        }
        Ok(WorkloadSource::Generator(GeneratorConfig {
            requests: self.requests,
            seed: self.seed,
            rate,
            mix,
            block_tokens: bs,
            ..GeneratorConfig::default()
        }))
    }
}

impl SimArgs {
    fn validate(&self) -> Result<SimConfig> {
        let timing = match self.timing {
            TimingArg::Instant => Timing::Instant,
            TimingArg::Serve => Timing::Serve(ServeConfig {
                prefill_tps: in_range(
                    "--prefill-tps",
                    self.prefill_tps,
                    TPS_RANGE,
                    "tokens per second",
                )?,
                decode_tps: in_range(
                    "--decode-tps",
                    self.decode_tps,
                    TPS_RANGE,
                    "tokens per second",
                )?,
            }),
        };
        let release = match self.release_order {
            ReleaseOrderArg::RootFirst => ReleaseOrder::RootFirst,
            ReleaseOrderArg::LeafFirst => ReleaseOrder::LeafFirst,
        };
        let format = if self.json {
            OutputFormat::Json
        } else if self.csv {
            OutputFormat::Csv
        } else {
            OutputFormat::Table
        };
        Ok(SimConfig {
            timing,
            release,
            format,
            quiet: self.quiet,
            explain: false,
        })
    }
}

/// The unbounded reference moved (or added) to the end.
fn with_unbounded(mut contenders: Vec<Contender>) -> Vec<Contender> {
    contenders.retain(|k| *k != Contender::Unbounded);
    contenders.push(Contender::Unbounded);
    contenders
}

impl ReplayArgs {
    /// Checks every flag and returns the replay to run.
    pub(crate) fn validate(&self) -> Result<ReplayConfig> {
        let contenders = with_unbounded(parse_contenders(&self.policy)?);
        let sim = SimConfig {
            explain: self.explain,
            ..self.run.sim.validate()?
        };
        let workload = self.run.workload.validate(sim.timing)?;
        let bs = self.run.workload.block_size;
        let capacity = match (&self.capacity, self.capacity_blocks, &self.capacity_tokens) {
            (Some(s), _, _) => Some(
                CapacitySpec::parse(s)
                    .map_err(|_| invalid(format!("--capacity `{s}`: expected {CAPACITY_FORMS}")))?,
            ),
            (None, Some(b), _) => Some(CapacitySpec::Blocks(b)),
            (None, None, Some(t)) => Some(CapacitySpec::parse_tokens(t)?),
            (None, None, None) => None,
        };
        // Sizes that need no workload to resolve are checked now.
        if let Some(spec @ (CapacitySpec::Blocks(_) | CapacitySpec::Tokens(_))) = capacity {
            spec.blocks(0, bs)?;
        }
        let pace = self
            .pace
            .map(|f| in_range("--pace", f, PACE_RANGE, "(a speed factor)"))
            .transpose()?;
        let metrics = match &self.metrics_addr {
            Some(addr) => Some(MetricsConfig {
                addr: addr.clone(),
                linger_s: in_range(
                    "--linger",
                    self.linger.unwrap_or(0.0),
                    (0.0, MAX_LINGER_S),
                    "seconds",
                )?,
            }),
            None => None,
        };
        Ok(ReplayConfig {
            workload,
            sim,
            contenders,
            capacity,
            pace,
            metrics,
        })
    }
}

impl SweepArgs {
    /// Checks every flag and returns the sweep to run.
    pub(crate) fn validate(&self) -> Result<SweepConfig> {
        let mut contenders = parse_contenders(&self.policy)?;
        contenders.retain(|k| *k != Contender::Unbounded);
        if contenders.is_empty() {
            return Err(invalid(
                "--policy: a sweep needs a policy besides `unbounded`".into(),
            ));
        }
        let sim = self.run.sim.validate()?;
        let workload = self.run.workload.validate(sim.timing)?;
        let capacities = match &self.capacities {
            Some(list) => {
                let specs = list
                    .split(',')
                    .take(MAX_SWEEP_POINTS + 1)
                    .map(|s| {
                        CapacitySpec::parse(s).map_err(|_| {
                            invalid(format!("--capacities: `{s}`: expected {CAPACITY_FORMS}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if specs.len() > MAX_SWEEP_POINTS {
                    return Err(invalid(format!(
                        "--capacities: at most {MAX_SWEEP_POINTS} sizes"
                    )));
                }
                CapacityPlan::List(specs)
            }
            None => {
                if !(1..=MAX_SWEEP_POINTS).contains(&self.points) {
                    return Err(invalid(format!(
                        "--points {}: a sweep has 1 to {MAX_SWEEP_POINTS} points",
                        self.points
                    )));
                }
                let parse = |flag: &str, s: &str| {
                    CapacitySpec::parse(s)
                        .map_err(|_| invalid(format!("{flag} `{s}`: expected {CAPACITY_FORMS}")))
                };
                CapacityPlan::Range {
                    from: parse("--from", &self.from)?,
                    to: parse("--to", &self.to)?,
                    points: self.points,
                }
            }
        };
        let plot = self.plot.as_deref().map(check_plot_path).transpose()?;
        Ok(SweepConfig {
            workload,
            sim,
            contenders,
            capacities,
            plot,
        })
    }
}

/// Checks, before any work, that a chart can be written to `path`: a known
/// extension and an existing, writable directory.
fn check_plot_path(path: &std::path::Path) -> Result<PathBuf> {
    let err = |message: String| CliError::Plot {
        path: path.to_path_buf(),
        message,
    };
    if crate::plot::ChartFormat::of(path).is_none() {
        return Err(err(crate::plot::ChartFormat::EXPECTED.into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(err(format!(
            "the directory {} does not exist",
            dir.display()
        )));
    }
    // Opening for append creates nothing we keep and truncates nothing.
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| err(format!("cannot write there: {e}")))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests;
