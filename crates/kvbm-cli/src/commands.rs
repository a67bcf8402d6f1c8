//! The command line (clap) and the `replay` and `sweep` subcommands.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use kvbm::metrics::{MetricsAggregator, StatsCollector, StatsConfig};

use crate::capacity::{log_spaced, CapacitySpec};
use crate::error::{CliError, Result};
use crate::http::MetricsServer;
use crate::progress::Progress;
use crate::replay_metrics::ReplayMetrics;
use crate::report::{OutputFormat, ReplayReport, SweepPoint, SweepReport};
use crate::sim::explain;
use crate::sim::policy::{build, parse_policies, PolicyKind};
use crate::sim::{self, CachePolicy, Counters, Observer, ReleaseOrder, ServeConfig, Timing};
use crate::trace::{self, TraceOptions};
use crate::workload::generator::{generate, GeneratorConfig};
use crate::workload::Workload;

/// kvbm: KV-cache trace replay and capacity planning.
#[derive(Debug, Parser)]
#[command(name = "kvbm", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a workload through one or more eviction policies at one cache size.
    Replay(ReplayArgs),
    /// Replay a workload at many cache sizes: hit rate versus capacity.
    Sweep(SweepArgs),
}

/// Where requests come from.
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Trace file (Mooncake or token JSONL, optionally gzipped); repeat to
    /// merge several. Without it, the built-in generator is used.
    #[arg(long = "trace", value_name = "PATH")]
    pub traces: Vec<PathBuf>,
    /// Tokens per Mooncake `hash_ids` entry.
    #[arg(long, default_value_t = 512, value_name = "TOKENS")]
    pub trace_block_tokens: u32,
    /// Skip (and count) malformed trace lines instead of failing.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Tokens per KV block (the block manager needs a power of two ≤ 1024).
    #[arg(long, default_value_t = 512, value_name = "TOKENS")]
    pub block_size: u32,
    /// Generator: number of requests.
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

impl WorkloadArgs {
    /// Loads the traces or runs the generator.
    pub fn load(&self) -> Result<Workload> {
        if self.block_size == 0 {
            return Err(CliError::InvalidArgument(
                "--block-size must be at least 1".into(),
            ));
        }
        if !self.traces.is_empty() {
            return trace::load(
                &self.traces,
                &TraceOptions {
                    trace_block_tokens: self.trace_block_tokens,
                    block_size: self.block_size,
                    skip_bad_lines: self.skip_bad_lines,
                },
            );
        }
        if self.requests == 0 {
            return Err(CliError::InvalidArgument(
                "--requests must be at least 1".into(),
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(CliError::InvalidArgument(
                "--rate must be a positive number".into(),
            ));
        }
        let mix: Vec<f64> = self
            .mix
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                CliError::InvalidArgument(format!("--mix `{}`: expected three numbers", self.mix))
            })?;
        let mix: [f64; 3] = mix.try_into().map_err(|_| {
            CliError::InvalidArgument(format!("--mix `{}`: expected three numbers", self.mix))
        })?;
        if mix.iter().any(|x| !x.is_finite() || *x < 0.0) || mix.iter().sum::<f64>() <= 0.0 {
            return Err(CliError::InvalidArgument(format!(
                "--mix `{}`: weights must be non-negative with a positive sum",
                self.mix
            )));
        }
        Ok(generate(&GeneratorConfig {
            requests: self.requests,
            seed: self.seed,
            rate: self.rate,
            mix,
            block_tokens: self.block_size,
            ..GeneratorConfig::default()
        }))
    }
}

/// The timing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimingArg {
    /// Each request matches, allocates, registers and releases before the next.
    Instant,
    /// Discrete-event simulation: blocks are held for prefill + decode, requests queue.
    Serve,
}

/// The order a finished request's blocks are released in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReleaseOrderArg {
    /// Root first: the order of the request's block list.
    RootFirst,
    /// Deepest block first.
    LeafFirst,
}

/// How to simulate and what to print.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
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
    #[arg(long, value_enum, default_value_t = ReleaseOrderArg::RootFirst)]
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

impl SimArgs {
    fn timing(&self) -> Result<Timing> {
        Ok(match self.timing {
            TimingArg::Instant => Timing::Instant,
            TimingArg::Serve => {
                for (name, v) in [
                    ("--prefill-tps", self.prefill_tps),
                    ("--decode-tps", self.decode_tps),
                ] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(CliError::InvalidArgument(format!(
                            "{name} must be a positive number"
                        )));
                    }
                }
                Timing::Serve(ServeConfig {
                    prefill_tps: self.prefill_tps,
                    decode_tps: self.decode_tps,
                })
            }
        })
    }

    fn release(&self) -> ReleaseOrder {
        match self.release_order {
            ReleaseOrderArg::RootFirst => ReleaseOrder::RootFirst,
            ReleaseOrderArg::LeafFirst => ReleaseOrder::LeafFirst,
        }
    }

    fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else if self.csv {
            OutputFormat::Csv
        } else {
            OutputFormat::Table
        }
    }
}

/// Arguments of `kvbm replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    /// The workload.
    pub workload: WorkloadArgs,
    #[command(flatten)]
    /// Simulation and output.
    pub sim: SimArgs,
    /// Policies, comma-separated, or `all`. The unbounded cache is always
    /// reported as well.
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Cache size in blocks (default: a tenth of the unique prompt blocks).
    #[arg(long, conflicts_with = "capacity_tokens", value_name = "N")]
    pub capacity_blocks: Option<u64>,
    /// Cache size in tokens (`3000000`, `3M`), rounded down to whole blocks.
    #[arg(long, value_name = "N")]
    pub capacity_tokens: Option<String>,
    /// Replay at FACTOR× real time instead of as fast as possible.
    #[arg(long, value_name = "FACTOR")]
    pub pace: Option<f64>,
    /// Serve Prometheus metrics at http://ADDR/metrics while replaying.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Keep serving metrics this many seconds after the replay.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub linger: f64,
    /// Split each policy's misses into compulsory (no cache could hit),
    /// capacity (Belady at this size misses too) and policy (Belady hits).
    #[arg(long)]
    pub explain: bool,
}

/// Arguments of `kvbm sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    /// The workload.
    pub workload: WorkloadArgs,
    #[command(flatten)]
    /// Simulation and output.
    pub sim: SimArgs,
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
    /// Number of capacities in the range.
    #[arg(long, default_value_t = 12)]
    pub points: usize,
    /// Write a chart of hit rate versus capacity (`.svg` or `.png`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Sleeps so simulated time advances at `factor`× wall-clock time.
#[derive(Debug)]
struct Pacer {
    factor: f64,
    wall_start: Instant,
    sim_start_ms: Option<u64>,
}

impl Pacer {
    fn pace(&mut self, sim_ms: u64) {
        let start = *self.sim_start_ms.get_or_insert(sim_ms);
        let target =
            Duration::from_secs_f64(sim_ms.saturating_sub(start) as f64 / 1000.0 / self.factor);
        let elapsed = self.wall_start.elapsed();
        if target > elapsed {
            std::thread::sleep(target - elapsed);
        }
    }
}

struct CommandObserver<'a> {
    progress: &'a mut Progress,
    pacer: Option<Pacer>,
    metrics: Option<&'a ReplayMetrics>,
    stats: Option<StatsCollector>,
    last_sample: Instant,
    calls: u32,
}

impl CommandObserver<'_> {
    /// Samples the manager's StatsCollector and publishes it.
    fn sample(&mut self, policy: &dyn CachePolicy) {
        if let (Some(stats), Some(m)) = (&self.stats, self.metrics) {
            stats.sample();
            if let Some(s) = stats.latest() {
                m.update_stats(policy.name(), &s);
            }
        }
        self.last_sample = Instant::now();
    }
}

impl Observer for CommandObserver<'_> {
    fn pace(&mut self, sim_ms: u64) {
        if let Some(p) = &mut self.pacer {
            p.pace(sim_ms);
        }
    }

    fn progress(&mut self, done: u64, _sim_ms: u64, counters: &Counters, policy: &dyn CachePolicy) {
        self.progress.update(done);
        self.calls = self.calls.wrapping_add(1);
        if let Some(m) = self.metrics {
            // Cheap enough per request when paced; every 64 otherwise.
            if self.pacer.is_some() || self.calls % 64 == 0 {
                m.update(counters, policy);
                if self.last_sample.elapsed() >= STATS_INTERVAL {
                    self.sample(policy);
                }
            }
        }
    }
}

/// How often the manager's StatsCollector is sampled during a replay.
const STATS_INTERVAL: Duration = Duration::from_millis(250);

fn with_unbounded(mut kinds: Vec<PolicyKind>) -> Vec<PolicyKind> {
    kinds.retain(|k| *k != PolicyKind::Unbounded);
    kinds.push(PolicyKind::Unbounded);
    kinds
}

/// Runs `kvbm replay`, writing the report to `out`.
pub fn replay(args: &ReplayArgs, out: &mut dyn Write) -> Result<()> {
    let kinds = with_unbounded(parse_policies(&args.policy)?);
    let timing = args.sim.timing()?;
    if let Some(f) = args.pace {
        if !(f.is_finite() && f > 0.0) {
            return Err(CliError::InvalidArgument(
                "--pace must be a positive factor".into(),
            ));
        }
    }
    if !(args.linger.is_finite() && args.linger >= 0.0) {
        return Err(CliError::InvalidArgument(
            "--linger must be a non-negative number of seconds".into(),
        ));
    }
    let w = args.workload.load()?;
    let summary = w.summary();
    let spec = match (&args.capacity_blocks, &args.capacity_tokens) {
        (Some(b), _) => CapacitySpec::Blocks(*b),
        (None, Some(t)) => match CapacitySpec::parse(t)? {
            CapacitySpec::Tokens(t) => CapacitySpec::Tokens(t),
            _ => {
                return Err(CliError::InvalidArgument(format!(
                    "--capacity-tokens `{t}`: expected a token count such as 3000000 or 3M"
                )))
            }
        },
        // A tenth of the unique blocks, but never less than one block, so
        // that tiny traces replay without a capacity flag.
        (None, None) => {
            CapacitySpec::Blocks(((summary.unique_blocks as f64) * 0.1).round().max(1.0) as u64)
        }
    };
    let capacity = spec.blocks(summary.unique_blocks, w.block_tokens)?;

    let registry = prometheus::Registry::new();
    let mut server = None;
    let mut metrics = None;
    let mut aggregator = None;
    if let Some(addr) = &args.metrics_addr {
        let prom_err = |e: prometheus::Error| CliError::Http {
            addr: addr.clone(),
            source: std::io::Error::other(e.to_string()),
        };
        metrics = Some(ReplayMetrics::new(&registry).map_err(prom_err)?);
        let agg = MetricsAggregator::new();
        agg.register_with(&registry).map_err(prom_err)?;
        aggregator = Some(agg);
        let s = MetricsServer::start(addr, registry.clone())?;
        eprintln!("serving Prometheus metrics at http://{}/metrics", s.addr());
        server = Some(s);
    }

    let mut progress = Progress::new(args.sim.quiet, kinds.len() as u64, w.requests.len() as u64);
    let mut results = Vec::new();
    let mut prefix_hits = Vec::new();
    for kind in kinds {
        progress.begin_run(kind.name());
        let mut policy = build(
            kind,
            &w,
            capacity as usize,
            args.sim.release(),
            timing,
            aggregator.as_ref(),
        )?;
        let stats = match (&metrics, policy.pool_metrics()) {
            (Some(_), Some(pool)) => {
                let s = StatsCollector::new(pool, StatsConfig::default());
                s.set_enabled(true);
                s.sample();
                Some(s)
            }
            _ => None,
        };
        let mut observer = CommandObserver {
            progress: &mut progress,
            pacer: args.pace.map(|factor| Pacer {
                factor,
                wall_start: Instant::now(),
                sim_start_ms: None,
            }),
            metrics: metrics.as_ref(),
            stats,
            last_sample: Instant::now(),
            calls: 0,
        };
        let (result, hits) = explain::run(&w, policy.as_mut(), timing, &mut observer, args.explain);
        prefix_hits.push(hits);
        observer.sample(policy.as_ref());
        if let Some(m) = &metrics {
            let c = Counters {
                requests: result.requests,
                hits: result.hits,
                misses: result.misses,
                ..Counters::default()
            };
            m.update(&c, policy.as_ref());
        }
        progress.end_run();
        results.push(result);
    }
    progress.finish();
    if args.explain {
        let (capacity, release) = (capacity as usize, args.sim.release());
        explain::attribute(&w, capacity, release, timing, &mut results, &prefix_hits)?;
    }

    let report = ReplayReport {
        workload: summary,
        capacity_blocks: capacity,
        block_tokens: w.block_tokens,
        capacity_tokens: capacity * w.block_tokens as u64,
        timing: timing.name().to_string(),
        results,
    };
    out.write_all(report.render(args.sim.format()).as_bytes())?;
    out.flush()?;
    if let Some(s) = &server {
        if args.linger > 0.0 {
            eprintln!(
                "replay finished; serving metrics at http://{}/metrics for {}s",
                s.addr(),
                args.linger
            );
            std::thread::sleep(Duration::from_secs_f64(args.linger));
        }
    }
    drop(server);
    Ok(())
}

/// Runs `kvbm sweep`, writing the report to `out`.
pub fn sweep(args: &SweepArgs, out: &mut dyn Write) -> Result<()> {
    let mut kinds = parse_policies(&args.policy)?;
    kinds.retain(|k| *k != PolicyKind::Unbounded);
    let timing = args.sim.timing()?;
    if args.capacities.is_none() && args.points == 0 {
        return Err(CliError::InvalidArgument(
            "--points must be at least 1".into(),
        ));
    }
    let w = args.workload.load()?;
    let summary = w.summary();
    let unique = summary.unique_blocks;
    let bt = w.block_tokens;
    let mut capacities = match &args.capacities {
        Some(list) => list
            .split(',')
            .map(|s| CapacitySpec::parse(s).and_then(|c| c.blocks(unique, bt)))
            .collect::<Result<Vec<_>>>()?,
        None => {
            let from = CapacitySpec::parse(&args.from)?.blocks(unique, bt)?;
            let to = CapacitySpec::parse(&args.to)?.blocks(unique, bt)?;
            log_spaced(from, to, args.points)
        }
    };
    capacities.sort_unstable();
    capacities.dedup();

    let runs = (capacities.len() * kinds.len() + 1) as u64;
    let mut progress = Progress::new(args.sim.quiet, runs, w.requests.len() as u64);
    let run_one = |kind: PolicyKind, capacity: u64, progress: &mut Progress| -> Result<_> {
        progress.begin_run(&format!("{} @ {capacity} blocks", kind.name()));
        let mut policy = build(
            kind,
            &w,
            capacity as usize,
            args.sim.release(),
            timing,
            None,
        )?;
        let mut observer = CommandObserver {
            progress,
            pacer: None,
            metrics: None,
            stats: None,
            last_sample: Instant::now(),
            calls: 0,
        };
        let r = sim::run(&w, policy.as_mut(), timing, &mut observer);
        progress.end_run();
        Ok(r)
    };
    let mut points = Vec::new();
    for &capacity in &capacities {
        let mut results = Vec::new();
        for &kind in &kinds {
            results.push(run_one(kind, capacity, &mut progress)?);
        }
        points.push(SweepPoint {
            capacity_blocks: capacity,
            capacity_tokens: capacity * bt as u64,
            capacity_fraction: capacity as f64 / unique.max(1) as f64,
            results,
        });
    }
    let unbounded = run_one(PolicyKind::Unbounded, 0, &mut progress)?;
    progress.finish();
    let report = SweepReport {
        workload: summary,
        block_tokens: bt,
        timing: timing.name().to_string(),
        points,
        unbounded,
    };
    if let Some(path) = &args.plot {
        crate::plot::plot_sweep(&report, path)?;
        if !args.sim.quiet {
            eprintln!("wrote {}", path.display());
        }
    }
    out.write_all(report.render(args.sim.format()).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Parses the command line and runs it; the binary's whole body.
pub fn main_with(cli: Cli) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        Command::Replay(args) => replay(args, &mut out),
        Command::Sweep(args) => sweep(args, &mut out),
    }
}
