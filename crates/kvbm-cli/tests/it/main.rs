//! The `kvbm` binary's integration tests, one module per command or
//! behaviour, linked into one test binary.
//!
//! `conversation_trace.rs` stays a binary of its own: it has its own `main`
//! (`harness = false`) so that a missing trace prints SKIPPED outside CI
//! instead of passing silently.
//!
//! `cluster.rs` stays a binary of its own too: its `--nats` test asserts that
//! a real nats-server loses no event, and it is sensitive to machine load
//! (seen failing with events_lost 6 of 4432 inside this binary, and once on
//! its own at load average 10 on 2 cores). Cargo runs test binaries one after
//! the other, so on its own it competes with 4 tests instead of 30.

mod common;

mod admission_hit_rate;
mod explain;
mod metrics_endpoint;
mod replay;
mod run_command;
mod sweep;
