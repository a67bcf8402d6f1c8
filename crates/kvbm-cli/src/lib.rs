//! `kvbm` command line: KV-cache trace replay and capacity planning.
//!
//! The binary's logic lives in this library so it can be tested, fuzzed and
//! benchmarked. Public: [`workload`] (requests, the built-in generator),
//! [`trace`] (trace files), [`capacity`] (cache sizes as users write them),
//! [`sim`] (the cache simulator and its contenders) and [`error`]. Private to
//! the binary: `cli` (clap types and validation), `commands` (replay,
//! sweep), `observe` (progress, pacing, the metrics endpoint), `report` and
//! `plot`.

#![deny(missing_docs)]

pub mod capacity;
mod cli;
mod cluster;
mod commands;
pub mod error;
mod observe;
mod plot;
mod report;
mod rng;
pub mod sim;
pub mod trace;
pub mod workload;

pub use commands::{run, run_command};
