//! # kvbm-router — the cluster side of kvbm cache events
//!
//! Workers publish what they cache as [`kvbm::events`] batches; this crate
//! turns the batches of many workers into one prefix index
//! ([`ClusterIndex`]) and routes requests with it ([`KvAwareRouter`]). It is
//! transport-agnostic and synchronous: `kvbm-nats` feeds it from NATS, the
//! `kvbm cluster` simulator from an in-process channel.
//!
//! ```
//! use kvbm::events::{KvCacheEvents, KvbmCacheEvents};
//! use kvbm::tokens::PositionalLineageHash;
//! use kvbm_router::{Applied, ClusterIndex};
//!
//! let root = PositionalLineageHash::root(11);
//! let chain = [root, root.extend(12), root.extend(12).extend(13)];
//! let mut index = ClusterIndex::new();
//! let batch = KvbmCacheEvents { events: KvCacheEvents::Create(chain[..2].to_vec()), instance_id: 7 };
//! assert_eq!(index.apply(&batch, Some(1))?, Applied::InSync);
//! assert_eq!(index.find_matches(&chain).get(7), 2);
//! # Ok::<(), kvbm_router::IndexError>(())
//! ```
#![deny(missing_docs)]

mod holders;
mod index;
mod matches;
mod routing;
mod table;

pub use index::{Applied, ClusterIndex, IndexError, IndexMemory, SnapshotOutcome};
/// kvbm's hasher for maps keyed by hashes, under the names this crate
/// exported before it shared kvbm's (the index hashes with it too).
pub use kvbm::{PrehashedBuildHasher as PreHashedBuild, PrehashedHasher as PreHashed};
pub use matches::Matches;
pub use routing::{
    Candidate, CostFunction, KvAwareRouter, PrefillLoadCost, RandomRouter, RoundRobinRouter,
    Router, WorkerLoad,
};
