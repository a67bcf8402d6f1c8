//! kvbm against kvbm-logical 1.6.1 on the workloads of `crates/kvbm/benches`,
//! in one process.
//!
//! Each workload is set up once per library and calibrated (which also warms
//! it up) to take about `--ms` milliseconds per run; then the two libraries
//! take turns for `--rounds` rounds, the first to run swapping every round
//! (ABBA…). The table shows the median time per iteration of each library
//! and the speedup of kvbm (kvbm-logical's time over kvbm's), followed by the
//! geometric mean of the speedups.
//!
//! ```text
//! cargo run --release -- [--rounds N] [--ms M] [--lib kvbm|logical] [FILTER…]
//! ```
//!
//! FILTERs keep the workloads whose name contains any of them. `--lib` runs a
//! single library (for profiling) and prints its times only.
//! `--batch-release` (here and for `scale`) has kvbm give back a match's or
//! a request's blocks with `ImmutableBlock::release_all` instead of
//! dropping them one by one (kvbm-logical has no batch release).
//!
//! `cargo run --release -- scale [--rounds N] [--sizes N,…]` runs the scale
//! workloads and the memory per block instead; see [`scale`].

#[path = "../../kvbm/benches/workloads/mod.rs"]
mod workloads;

mod logical;
mod scale;

use std::time::Duration;

use logical::Logical;
use workloads::{Backend, Kvbm, Pool, Spec, Workload};

/// Command-line settings.
struct Options {
    rounds: usize,
    run_time: Duration,
    lib: Option<String>,
    filters: Vec<String>,
}

/// What `--help` prints.
pub const USAGE: &str = "\
kvbm-bench: kvbm against kvbm-logical 1.6.1, side by side

usage:
  kvbm-bench [--rounds N] [--ms M] [--lib kvbm|logical] [--batch-release] [FILTER...]
      the standard workloads (FILTER: substrings of workload names)
  kvbm-bench scale [--rounds N] [--sizes N,N,...] [--family chains|singles]
                   [--backend POLICY] [--mem-blocks N] [--no-memory]
                   [--lib kvbm|logical] [--batch-release]
      fill and steady-state churn from 4K to 4M blocks, and memory per block
  kvbm-bench mem --lib kvbm|kvbm-events|logical [--backend POLICY]
                 [--family chains|singles] [--mem-blocks N]
      resident set growth per cached block (two decimals)
";

/// Prints `problem` and the usage to stderr and exits with status 2.
pub fn usage_error(problem: &str) -> ! {
    eprintln!("kvbm-bench: {problem}\n\n{USAGE}");
    std::process::exit(2)
}

/// `text`, the value of `option`, parsed; a usage error naming the
/// `expected` shape if it does not parse.
pub fn parse_value<T: std::str::FromStr>(text: &str, option: &str, expected: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| usage_error(&format!("{option} needs {expected}, got {text:?}")))
}

fn parse_options() -> Options {
    let mut options = Options {
        rounds: 9,
        run_time: Duration::from_millis(30),
        lib: None,
        filters: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage_error(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0)
            }
            "--rounds" => options.rounds = parse_value(&value("--rounds"), "--rounds", "N"),
            "--ms" => {
                options.run_time = Duration::from_millis(parse_value(&value("--ms"), "--ms", "M"))
            }
            "--lib" => options.lib = Some(value("--lib")),
            "--bench" => {} // passed by `cargo bench`
            "--batch-release" => {
                workloads::BATCH_RELEASE.store(true, std::sync::atomic::Ordering::Relaxed)
            }
            other => options.filters.push(other.to_string()),
        }
    }
    options
}

/// A workload set up on one library, with its iteration count.
struct Runner {
    workload: Box<dyn Workload>,
    iters: u64,
    samples: Vec<f64>,
}

impl Runner {
    fn new<P: Pool>(spec: &Spec, run_time: Duration) -> Self {
        let mut workload = spec.make::<P>();
        let iters = calibrate(workload.as_mut(), run_time);
        Runner {
            workload,
            iters,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self) {
        let took = self.workload.run(self.iters);
        self.samples
            .push(took.as_nanos() as f64 / self.iters as f64);
    }

    fn median(&mut self) -> f64 {
        self.samples.sort_by(f64::total_cmp);
        let n = self.samples.len();
        if n % 2 == 1 {
            self.samples[n / 2]
        } else {
            (self.samples[n / 2 - 1] + self.samples[n / 2]) / 2.0
        }
    }
}

/// Iterations that take about `run_time`, found by doubling.
fn calibrate(workload: &mut dyn Workload, run_time: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = workload.run(iters);
        if took >= run_time / 4 || iters >= 1 << 30 {
            let per_iter = took.as_secs_f64() / iters as f64;
            return ((run_time.as_secs_f64() / per_iter) as u64).max(1);
        }
        iters *= 2;
    }
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

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("scale") => return scale::scale_main(args.skip(1)),
        Some("mem") => return scale::mem_main(args.skip(1)),
        _ => {}
    }
    let options = parse_options();
    let specs: Vec<Spec> = Spec::all()
        .into_iter()
        // kvbm-logical has no counterpart of kvbm's admission backend.
        .filter(|s| s.backend() != Some(Backend::Admission))
        .filter(|s| {
            options.filters.is_empty()
                || options
                    .filters
                    .iter()
                    .any(|f| s.name().contains(f.as_str()))
        })
        .collect();

    if let Some(lib) = &options.lib {
        println!("| workload | {lib} |\n|---|---:|");
        for spec in &specs {
            let mut runner = match lib.as_str() {
                "kvbm" => Runner::new::<Kvbm>(spec, options.run_time),
                "logical" | "kvbm-logical" => Runner::new::<Logical>(spec, options.run_time),
                other => usage_error(&format!("unknown --lib {other}: kvbm or logical")),
            };
            for _ in 0..options.rounds {
                runner.sample();
            }
            println!("| {} | {} |", spec.name(), format_time(runner.median()));
        }
        return;
    }

    println!(
        "{} rounds of ~{} ms per library and workload; times are medians per iteration\n",
        options.rounds,
        options.run_time.as_millis()
    );
    println!("| workload | kvbm | kvbm-logical | speedup |");
    println!("|---|---:|---:|---:|");
    let mut log_sum = 0.0;
    let mut count = 0;
    let mut slowest: Option<(f64, String)> = None;
    let mut notes = Vec::new();
    for spec in &specs {
        let mut ours = Runner::new::<Kvbm>(spec, options.run_time);
        let mut theirs = Runner::new::<Logical>(spec, options.run_time);
        for round in 0..options.rounds {
            if round % 2 == 0 {
                ours.sample();
                theirs.sample();
            } else {
                theirs.sample();
                ours.sample();
            }
        }
        let (a, b) = (ours.median(), theirs.median());
        let speedup = b / a;
        log_sum += speedup.ln();
        count += 1;
        if slowest.as_ref().is_none_or(|(s, _)| speedup < *s) {
            slowest = Some((speedup, spec.name()));
        }
        println!(
            "| {} | {} | {} | {:.2}x |",
            spec.name(),
            format_time(a),
            format_time(b),
            speedup
        );
        if let (Some(x), Some(y)) = (ours.workload.summary(), theirs.workload.summary()) {
            notes.push(format!("{}: kvbm {x}; kvbm-logical {y}", spec.name()));
        }
    }
    if count > 0 {
        println!(
            "\ngeometric mean speedup over {count} workloads: {:.2}x",
            (log_sum / count as f64).exp()
        );
    }
    if let Some((s, name)) = slowest {
        println!("smallest speedup: {name} ({s:.2}x)");
    }
    for note in notes {
        println!("{note}");
    }
}
