//! The `kvbm` binary's integration tests, one module per command or
//! behaviour, linked into one test binary.
//!
//! `conversation_trace.rs` stays a binary of its own: it has its own `main`
//! (`harness = false`) so that a missing trace prints SKIPPED outside CI
//! instead of passing silently.
//!
//! `cluster.rs` stays a binary of its own too: its `--nats` test asserts that
//! a real nats-server loses no event, and run in parallel with the other
//! command tests of this binary it lost some (events_lost 6 of 4432, once in
//! two runs), where cargo runs separate test binaries one after the other.

mod common;

mod admission_hit_rate;
mod explain;
mod metrics_endpoint;
mod replay;
mod run_command;
mod sweep;
