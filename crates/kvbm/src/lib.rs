//! # kvbm — a logical KV-cache block manager
//!
//! kvbm decides which KV-cache block a request gets, remembers which blocks
//! hold which token prefix, hands cached prefixes back to later requests and
//! evicts cached blocks when memory runs out. It keeps no KV data itself:
//! blocks are indices into the engine's own KV memory.
//!
//! ```
//! use kvbm::manager::BlockManager;
//! use kvbm::tokens::TokenBlockSequence;
//!
//! #[derive(Clone)]
//! struct Device;
//!
//! let manager = BlockManager::<Device>::builder().block_count(64).block_size(4).build()?;
//! let prompt = TokenBlockSequence::try_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 4, None)?;
//! let hashes: Vec<_> = prompt.blocks().iter().map(|b| b.positional_lineage_hash()).collect();
//!
//! // First request: nothing cached; fill two blocks and register them.
//! assert!(manager.match_blocks(&hashes).is_empty());
//! let blocks = manager.allocate_blocks(2).ok_or("pool exhausted")?;
//! let staged = blocks
//!     .into_iter()
//!     .zip(prompt.blocks())
//!     .map(|(block, tokens)| block.complete(tokens))
//!     .collect::<Result<Vec<_>, _>>()?;
//! drop(manager.register_blocks(staged)); // released: cached, not freed
//!
//! // A later request with the same prefix gets both blocks back.
//! assert_eq!(manager.match_blocks(&hashes).len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | module | what it owns |
//! |---|---|
//! | [`tokens`] | token blocks and their block, sequence and lineage hashes (dynamo-tokens compatible) |
//! | [`blocks`] | the type-state guards `MutableBlock → CompleteBlock → ImmutableBlock ⇄ WeakBlock` |
//! | [`manager`] | [`BlockManager`] and its builder |
//! | [`eviction`] | the [`InactiveBackend`](eviction::InactiveBackend) trait and the built-in policies |
//! | [`registry`] | which hashes each tier holds; attachments, touch callbacks, presence |
//! | [`events`] | Create/Remove events of the registry, batching, wire format, Dynamo router export |
//! | [`pubsub`] | the `Publisher` trait event batches are sent through |
//! | [`tinylfu`] | count-min frequency sketch for frequency-aware eviction |
//! | [`metrics`] | counters and gauges, rate statistics, Prometheus export |
//! | [`integrations`] | request lifecycles: `RequestSequence`, the schedule/apply protocol of `SchedulableSequence` |
//! | [`sequence`] | which block holds which part of a token sequence (block ids or guards, by phase) |
//! | [`pools`] | names shared with kvbm-logical's `pools` module |
//! | `testing` | test fixtures, with the `testing` feature only |
#![deny(missing_docs)]

mod block_slot;
pub mod blocks;
mod compat;
pub mod events;
pub mod eviction;
mod huge_pages;
mod id_index;
pub mod integrations;
pub mod manager;
pub mod metrics;
pub mod pools;
mod prefetch;
mod prehashed;
pub mod pubsub;
pub mod registry;
pub mod sequence;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tinylfu;
pub mod tokens;

pub use blocks::{
    BlockError, BlockMetadata, CompleteBlock, ImmutableBlock, LifecyclePin, LifecyclePinRef,
    MutableBlock, WeakBlock,
};
pub use compat::{KvbmSequenceHashProvider, LogicalLayoutHandle};
pub use integrations::{
    ApplyError, DecodeOutcome, NoopDelegate, RequestSequence, SchedulableSequence,
    SchedulableSequenceBuilder, ScheduleError, SequenceDelegate, SequenceEvent, SequenceState,
};
pub use manager::BlockManager;
/// The hasher of kvbm's maps keyed by hashes ([`SequenceHash`] and keys
/// packing hashes with small integers), exported for crates that index
/// kvbm's hashes themselves (kvbm-router's cluster index).
pub use prehashed::{PrehashedBuildHasher, PrehashedHasher};
pub use registry::BlockRegistry;
pub use sequence::{
    zip_assigned, zip_assigned_pending, BlockSequence, BlockSequenceError,
    ExternalBlockAssignments, LogicalBlockAssignmentError, LogicalBlockAssignments,
};
pub use store::InvariantViolation;

/// Index of a block in its manager's pool (`0..block_count`).
pub type BlockId = usize;

/// A process-unique name of a block manager's pool, so that
/// `(ManagerId, BlockId)` names one slot even where the tier type is gone
/// (see [`LifecyclePinRef`]). Never reused within a process.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ManagerId(pub u64);

impl ManagerId {
    /// A value no manager ever gets, for tests and placeholders.
    pub const NULL: Self = Self(0);

    /// The next unused id.
    pub(crate) fn next() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        // Only uniqueness matters, which `fetch_add` gives at any ordering.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The key blocks are registered and matched under: a block's
/// [`PositionalLineageHash`](tokens::PositionalLineageHash).
///
/// Two hashes carry the name "sequence hash". This one (128 bits) is the
/// lineage hash: it packs the block's position and its parent's lineage, so
/// a registry can tell a block's depth and parent without storing them.
/// [`tokens::SequenceHash64`] is the plain 64-bit chained hash of the block
/// and all blocks before it (dynamo-tokens' `SequenceHash`, what the
/// Dynamo router's events carry); a lineage hash contains it as
/// [`current_sequence_hash`](tokens::PositionalLineageHash::current_sequence_hash).
/// Compare either kind only with its own kind.
pub type SequenceHash = tokens::PositionalLineageHash;
