//! Runs the churn benchmark workload (`benches/churn.rs`) on one eviction
//! backend for a number of iterations, for counting instructions where
//! wall-clock time is too noisy:
//!
//! ```text
//! cargo build --release -p kvbm --example churn_count
//! valgrind --tool=callgrind target/release/examples/churn_count admission 200
//! valgrind --tool=callgrind target/release/examples/churn_count admission 1200
//! ```
//!
//! The difference of the two totals over 1,000 is the cost of one
//! iteration in steady state (setup and warm-up cancel out).
#[path = "../benches/workloads/mod.rs"]
mod workloads;
use workloads::{Backend, Kvbm, Spec};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "lru".into());
    let Some(backend) = Backend::ALL.into_iter().find(|b| b.name() == name) else {
        eprintln!("unknown backend {name}");
        std::process::exit(2);
    };
    let iters: u64 = match args.next().map(|s| s.parse()) {
        None => 1000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("bad iteration count: {e}");
            std::process::exit(2);
        }
    };
    Spec::Churn(backend).make::<Kvbm>().run(iters);
}
