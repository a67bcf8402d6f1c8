//! Scale workloads: the cost of filling a cache and of serving requests
//! from a full one, from thousands to millions of blocks, and the memory a
//! cached block costs.
//!
//! Two key families, both with random (xxh3-like) block hashes:
//! - `chains`: 32-block lineage chains, as prompts fill a cache;
//! - `singles`: single-block sequences, every block a first block at
//!   position 0 (the family that defeated an unmixed fold of lineage hashes).
//!
//! `fill` fills an empty manager of N blocks in batches of 32 (allocate,
//! stage, register, drop: the blocks end up cached) and reports the time per
//! block. `churn` then serves requests from the full cache: one of 8 shared
//! prompts (16 blocks for chains, 1 block for singles) plus 4–28 fresh
//! blocks, matching the prompt and filling the rest (evicting), with 16
//! requests in flight; time per request, median of `--rounds` samples of
//! [`CHURN_SAMPLE`] requests each, after untimed warm-up samples until the
//! churn has replaced the whole cache once.
//! Requests are generated before each sample, outside the timer.
//!
//! Memory: a child process per library and family builds a manager of
//! `--mem-blocks` blocks, fills it and reports the growth of its resident
//! set (`/proc/self/statm`) divided by the blocks.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::logical::Logical;
use crate::parse_value;
use crate::workloads::{lineage, Backend, Kvbm, Pool, Rng};

/// Blocks per lineage chain of the `chains` family, and per fill batch.
const CHAIN_BLOCKS: usize = 32;
/// Requests per timed churn sample.
const CHURN_SAMPLE: usize = 4096;
/// Requests in flight during churn.
const IN_FLIGHT: usize = 16;
/// The most untimed churn samples before timing: enough to replace a
/// cache of 4M blocks once (about 16 fresh blocks per request).
const WARM_UP_SAMPLES: usize = 80;
/// Shared prompts of the churn requests.
const PROMPTS: usize = 8;
/// Blocks of a shared prompt in the `chains` family.
const PROMPT_BLOCKS: usize = 16;
/// Smallest and largest fresh part of a churn request, in blocks.
const SUFFIX_BLOCKS: (usize, usize) = (4, 28);

/// How the keys of a scale workload are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// 32-block lineage chains.
    Chains,
    /// Single-block sequences: every block at position 0.
    Singles,
}

impl Family {
    const ALL: [Family; 2] = [Family::Chains, Family::Singles];

    fn name(self) -> &'static str {
        match self {
            Family::Chains => "chains",
            Family::Singles => "singles",
        }
    }

    fn parse(s: &str) -> Family {
        match s {
            "chains" => Family::Chains,
            "singles" => Family::Singles,
            other => crate::usage_error(&format!("unknown family {other}: chains or singles")),
        }
    }

    /// The hashes of one fill batch of [`CHAIN_BLOCKS`] blocks.
    fn batch<P: Pool>(self, rng: &mut Rng) -> Vec<P::Hash> {
        match self {
            Family::Chains => lineage::<P>((0..CHAIN_BLOCKS).map(|_| rng.next_u64())),
            Family::Singles => (0..CHAIN_BLOCKS).map(|_| P::root(rng.next_u64())).collect(),
        }
    }

    /// The shared prompts of the churn requests.
    fn prompts<P: Pool>(self, rng: &mut Rng) -> Vec<Vec<P::Hash>> {
        let blocks = match self {
            Family::Chains => PROMPT_BLOCKS,
            Family::Singles => 1,
        };
        (0..PROMPTS)
            .map(|_| lineage::<P>((0..blocks).map(|_| rng.next_u64())))
            .collect()
    }

    /// One churn request: a shared prompt and a fresh suffix.
    fn request<P: Pool>(self, rng: &mut Rng, prompts: &[Vec<P::Hash>]) -> Vec<P::Hash> {
        let mut out = prompts[rng.next_u64() as usize % prompts.len()].clone();
        let suffix = rng.range(SUFFIX_BLOCKS.0, SUFFIX_BLOCKS.1);
        for _ in 0..suffix {
            let block = rng.next_u64();
            let next = match (self, out.last()) {
                (Family::Chains, Some(parent)) => P::extend(parent, block),
                _ => P::root(block),
            };
            out.push(next);
        }
        out
    }
}

/// Fills an empty `pool` with `blocks` blocks of `family`, dropping each
/// batch so that its blocks are cached; returns the time spent in the
/// manager (hash generation excluded).
fn fill<P: Pool>(pool: &P, family: Family, blocks: usize, rng: &mut Rng) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = blocks;
    while left > 0 {
        let mut batch = family.batch::<P>(rng);
        batch.truncate(left);
        let start = Instant::now();
        let held = pool.fill(&batch).expect("an unfilled pool has room");
        P::release(held);
        total += start.elapsed();
        left -= batch.len();
    }
    total
}

/// The requests in flight of a churn run.
struct Churner<P: Pool> {
    in_flight: VecDeque<Vec<P::Held>>,
    reused: u64,
    filled: u64,
}

impl<P: Pool> Churner<P> {
    fn new() -> Self {
        Churner {
            in_flight: VecDeque::with_capacity(IN_FLIGHT),
            reused: 0,
            filled: 0,
        }
    }

    /// Serves `requests` and returns the time they took.
    fn run(&mut self, pool: &P, requests: &[Vec<P::Hash>]) -> Duration {
        let start = Instant::now();
        for hashes in requests {
            if self.in_flight.len() >= IN_FLIGHT {
                if let Some(done) = self.in_flight.pop_front() {
                    P::release(done);
                }
            }
            let mut held = pool.match_prefix(hashes);
            self.reused += held.len() as u64;
            self.filled += (hashes.len() - held.len()) as u64;
            if held.len() < hashes.len() {
                let filled = pool
                    .fill(&hashes[held.len()..])
                    .expect("in-flight requests fit in the pool");
                held.extend(filled);
            }
            self.in_flight.push_back(held);
        }
        start.elapsed()
    }
}

/// What one library measured at one size.
struct Measured {
    fill_ns_per_block: f64,
    churn_ns_per_request: f64,
    reuse: f64,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// Fill and churn on a fresh manager of `blocks` blocks.
fn measure<P: Pool>(backend: Backend, family: Family, blocks: usize, rounds: usize) -> Measured {
    let pool = P::build(backend, blocks);
    let mut rng = Rng::new(0x5ca1e ^ blocks as u64);
    let fill_time = fill(&pool, family, blocks, &mut rng);
    let prompts = family.prompts::<P>(&mut rng);
    let mut churner = Churner::<P>::new();
    let sample = |rng: &mut Rng| -> Vec<Vec<P::Hash>> {
        (0..CHURN_SAMPLE)
            .map(|_| family.request::<P>(rng, &prompts))
            .collect()
    };
    // Warm-up, untimed: until the churn has replaced the whole cache once
    // (at most WARM_UP_SAMPLES samples). Hash tables that leave tombstones
    // on deletion slow down as they pile up, so a cache only just filled
    // is not yet in its steady state.
    for _ in 0..WARM_UP_SAMPLES {
        let requests = sample(&mut rng);
        churner.run(&pool, &requests);
        if churner.filled >= blocks as u64 {
            break;
        }
    }
    let (reused, filled) = (churner.reused, churner.filled);
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let requests = sample(&mut rng);
        let took = churner.run(&pool, &requests);
        samples.push(took.as_nanos() as f64 / CHURN_SAMPLE as f64);
    }
    let (reused, filled) = (churner.reused - reused, churner.filled - filled);
    let reuse = reused as f64 / (reused + filled).max(1) as f64;
    drop(churner);
    drop(pool);
    Measured {
        fill_ns_per_block: fill_time.as_nanos() as f64 / blocks as f64,
        churn_ns_per_request: median(samples),
        reuse,
    }
}

/// Resident set size of this process in bytes (Linux, 4 KiB pages).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages in statm");
    pages * 4096
}

/// Resident set growth per block of a manager of `blocks` blocks, filled
/// with `family` and all cached.
fn memory_per_block<P: Pool>(build: impl FnOnce() -> P, family: Family, blocks: usize) -> f64 {
    let mut rng = Rng::new(0x3e3);
    let before = resident_bytes();
    let pool = build();
    fill(&pool, family, blocks, &mut rng);
    let after = resident_bytes();
    let per_block = after.saturating_sub(before) as f64 / blocks as f64;
    std::hint::black_box(&pool);
    per_block
}

fn format_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn format_blocks(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}

/// Settings of the `scale` and `mem` subcommands.
struct ScaleOptions {
    rounds: usize,
    sizes: Vec<usize>,
    families: Vec<Family>,
    backend: Backend,
    mem_blocks: usize,
    lib: Option<String>,
    skip_memory: bool,
}

fn parse(args: impl Iterator<Item = String>) -> ScaleOptions {
    let mut options = ScaleOptions {
        rounds: 5,
        sizes: vec![1 << 12, 1 << 16, 102_400, 1 << 20, 1 << 22],
        families: Family::ALL.to_vec(),
        backend: Backend::default(),
        mem_blocks: 1 << 20,
        lib: None,
        skip_memory: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| crate::usage_error(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--rounds" => options.rounds = parse_value(&value("--rounds"), "--rounds", "N"),
            "--sizes" => {
                options.sizes = value("--sizes")
                    .split(',')
                    .map(|s| parse_value(s, "--sizes", "N,N,…"))
                    .collect()
            }
            "--family" => options.families = vec![Family::parse(&value("--family"))],
            "--backend" => {
                options.backend = parse_value(&value("--backend"), "--backend", "POLICY")
            }
            "--mem-blocks" => {
                options.mem_blocks = parse_value(&value("--mem-blocks"), "--mem-blocks", "N")
            }
            "--lib" => options.lib = Some(value("--lib")),
            "--no-memory" => options.skip_memory = true,
            "--batch-release" => crate::workloads::BATCH_RELEASE.store(true, Ordering::Relaxed),
            "-h" | "--help" => {
                print!("{}", crate::USAGE);
                std::process::exit(0)
            }
            other => crate::usage_error(&format!("unknown option {other}")),
        }
    }
    options
}

/// `kvbm-bench scale [--rounds N] [--sizes N,…] [--family F] [--backend B]
/// [--mem-blocks N] [--no-memory] [--lib L]`: the scale and memory tables
/// (with `--lib`, one library's times only, for profiling).
pub fn scale_main(args: impl Iterator<Item = String>) {
    let options = parse(args);
    println!(
        "backend {}, churn: median of {} samples of {CHURN_SAMPLE} requests\n",
        options.backend.name(),
        options.rounds
    );
    println!("| family | blocks | fill/block kvbm | kvbm-logical | speedup | churn/request kvbm | kvbm-logical | speedup | reuse |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &family in &options.families {
        for &blocks in &options.sizes {
            // One library at a time: at 4M blocks kvbm-logical alone takes
            // about 2.7 GB.
            if let Some(lib) = options.lib.as_deref() {
                // One library only, for profiling.
                let m = match lib {
                    "kvbm" => measure::<Kvbm>(options.backend, family, blocks, options.rounds),
                    "logical" | "kvbm-logical" => {
                        measure::<Logical>(options.backend, family, blocks, options.rounds)
                    }
                    other => crate::usage_error(&format!("unknown --lib {other}: kvbm or logical")),
                };
                println!(
                    "| {} | {} | {lib}: {} | | | {lib}: {} | | | {:.1}% |",
                    family.name(),
                    format_blocks(blocks),
                    format_time(m.fill_ns_per_block),
                    format_time(m.churn_ns_per_request),
                    100.0 * m.reuse,
                );
                continue;
            }
            let ours = measure::<Kvbm>(options.backend, family, blocks, options.rounds);
            let theirs = measure::<Logical>(options.backend, family, blocks, options.rounds);
            println!(
                "| {} | {} | {} | {} | {:.2}x | {} | {} | {:.2}x | {:.1}% / {:.1}% |",
                family.name(),
                format_blocks(blocks),
                format_time(ours.fill_ns_per_block),
                format_time(theirs.fill_ns_per_block),
                theirs.fill_ns_per_block / ours.fill_ns_per_block,
                format_time(ours.churn_ns_per_request),
                format_time(theirs.churn_ns_per_request),
                theirs.churn_ns_per_request / ours.churn_ns_per_request,
                100.0 * ours.reuse,
                100.0 * theirs.reuse,
            );
        }
    }
    if options.skip_memory || options.lib.is_some() {
        return;
    }
    println!(
        "\nresident set growth per cached block, {} blocks, one child process each\n",
        format_blocks(options.mem_blocks)
    );
    println!("| family | kvbm | kvbm-logical |\n|---|---:|---:|");
    for &family in &options.families {
        let run = |lib: &str| -> String {
            let exe = std::env::current_exe().expect("own executable");
            let output = std::process::Command::new(exe)
                .args(["mem", "--lib", lib, "--family", family.name()])
                .args(["--backend", options.backend.name()])
                .args(["--mem-blocks", &options.mem_blocks.to_string()])
                .output()
                .expect("memory child process");
            assert!(output.status.success(), "memory child for {lib} failed");
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        };
        println!(
            "| {} | {} B | {} B |",
            family.name(),
            run("kvbm"),
            run("logical")
        );
    }
}

/// A kvbm manager like [`Pool::build`]'s whose registry reports to an
/// events manager (with no subscriber): the configuration in which the
/// registry counts every registered hash itself, because events follow a
/// hash across tiers.
fn kvbm_with_events(backend: Backend, blocks: usize) -> Kvbm {
    let events = std::sync::Arc::new(kvbm::events::EventsManager::builder().build());
    let mut registry = kvbm::registry::BlockRegistry::builder().event_manager(events);
    if backend.needs_frequency_tracker() {
        // A registry handed to the builder brings its own tracker.
        let tracker = kvbm::manager::FrequencyTrackingCapacity::Small.create_tracker();
        registry = registry.frequency_tracker(tracker);
    }
    let registry = registry.build();
    kvbm::BlockManager::builder()
        .block_count(blocks)
        .block_size(crate::workloads::BLOCK_SIZE)
        .eviction_policy(backend)
        .frequency_tracking_capacity(kvbm::manager::FrequencyTrackingCapacity::Small)
        .registry(registry)
        .build()
        .expect("valid benchmark manager")
}

/// `kvbm-bench mem --lib L [--family F] [--backend B] [--mem-blocks N]`
/// (`L`: `kvbm`, `kvbm-events` — kvbm with an events manager attached —
/// or `logical`):
/// prints the resident set growth per cached block of one library.
pub fn mem_main(args: impl Iterator<Item = String>) {
    let options = parse(args);
    let family = options.families[0];
    let (backend, blocks) = (options.backend, options.mem_blocks);
    let per_block = match options.lib.as_deref() {
        Some("kvbm") => memory_per_block(|| Kvbm::build(backend, blocks), family, blocks),
        Some("kvbm-events") => {
            memory_per_block(|| kvbm_with_events(backend, blocks), family, blocks)
        }
        Some("logical" | "kvbm-logical") => {
            memory_per_block(|| Logical::build(backend, blocks), family, blocks)
        }
        other => crate::usage_error(&format!(
            "mem needs --lib kvbm, kvbm-events or logical, got {other:?}"
        )),
    };
    // Two decimals: a figure near a budget must not be rounded into it.
    println!("{per_block:.2}");
}
