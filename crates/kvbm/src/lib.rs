//! # kvbm — a logical KV-cache block manager
//!
//! kvbm decides which KV-cache block a request gets, remembers which blocks
//! hold which token prefix, hands cached prefixes back to later requests and
//! evicts cached blocks when memory runs out.
#![deny(missing_docs)]

pub mod blocks;
pub mod eviction;
pub mod manager;
pub mod metrics;
pub mod pools;
pub mod registry;
mod store;
pub mod tinylfu;
pub mod tokens;

pub use blocks::{
    BlockError, BlockMetadata, CompleteBlock, ImmutableBlock, MutableBlock, WeakBlock,
};
pub use manager::BlockManager;
pub use registry::BlockRegistry;
pub use store::InvariantViolation;

/// Index of a block in its manager's pool (`0..block_count`).
pub type BlockId = usize;

/// The key blocks are registered and matched under: a block's
/// [`PositionalLineageHash`](tokens::PositionalLineageHash).
pub type SequenceHash = tokens::PositionalLineageHash;
