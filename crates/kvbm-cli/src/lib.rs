//! `kvbm` command line: KV-cache trace replay and capacity planning.
//!
//! The binary's logic lives in this library so it can be tested and
//! benchmarked: [`workload`] (requests, the built-in generator), [`trace`]
//! (trace files), [`sim`] (the cache simulator and its policies),
//! [`report`] (tables, JSON, CSV), [`plot`] (sweep charts), [`http`]
//! (the Prometheus endpoint) and [`commands`] (the subcommands).

pub mod capacity;
pub mod commands;
pub mod error;
pub mod http;
pub mod plot;
pub mod progress;
pub mod replay_metrics;
pub mod report;
pub mod rng;
pub mod sim;
pub mod trace;
pub mod workload;
