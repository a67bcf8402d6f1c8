//! kvbm's integration tests, one module per behaviour, linked into one test
//! binary. Fixtures come from `kvbm::testing`.
//!
//! Kept as their own binaries, beside this one:
//! - `allocations.rs` installs a counting global allocator, which would count
//!   every other test running in the same process;
//! - `lease.rs` and `soundness.rs` are the targets CI runs under miri (and
//!   valgrind) by name; a binary of their own keeps that run to them;
//! - `port_*.rs` are written as a kvbm-logical user's code ported to kvbm and
//!   stay stand-alone crates, as such a user's would be.

mod api_bad_arguments;
mod batch_release;
mod builder;
mod duplicates;
mod events_batching;
mod events_dynamo_router;
mod events_model;
mod events_wire;
mod evict_on_reset;
mod eviction_policies;
mod eviction_props;
mod integrations;
mod lifecycle;
mod lifecycle_props;
mod logical_parity;
mod metrics_aggregator;
mod metrics_stats;
mod pins;
mod pool_model;
mod registry_extensions;
mod scattered_match;
mod sequence_assignments;
mod stress;
mod tokens_compat;
mod wire_decoders_fuzz;
