//! Type-state guards over the blocks of a manager's pool.
//!
//! A block moves through these states, each owned by a guard whose `Drop`
//! returns the block to the pool:
//!
//! ```text
//! allocate ─► MutableBlock ──stage/complete──► CompleteBlock ──register──► ImmutableBlock ⇄ WeakBlock
//!                  ▲                                │                         │ last drop
//!                  └──────────── reset ─────────────┘                         ▼
//!                 drop: back to the free pool                     cached (inactive), matchable
//!                                                                 until evicted
//! ```
//!
//! A failed transition hands the guard back inside the error, so no block is
//! ever lost on failure.

mod complete;
mod immutable;
mod mutable;
mod pin;

pub use complete::CompleteBlock;
pub use immutable::{ImmutableBlock, WeakBlock};
pub use mutable::MutableBlock;
pub use pin::{LifecyclePin, LifecyclePinRef};

pub use crate::registry::{BlockRegistrationHandle, BlockRegistry};
pub use crate::{BlockId, SequenceHash};

/// The storage tier a manager's blocks live in, as a marker type.
///
/// Implemented for every `Clone + Send + Sync + 'static` type; a unit struct
/// per tier (`struct Device;`) is the usual choice.
pub trait BlockMetadata: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> BlockMetadata for T {}

/// A block state transition that failed; the block comes back in the error.
#[derive(Debug, thiserror::Error)]
pub enum BlockError<B> {
    /// The data offered for the block has a different number of tokens than
    /// the block holds.
    #[error("block size mismatch: the block holds {expected} tokens, got {actual}")]
    BlockSizeMismatch {
        /// The block's size in tokens.
        expected: usize,
        /// The size that was offered.
        actual: usize,
        /// The untouched block, for the caller to retry with or drop.
        block: B,
    },
}

impl<B> BlockError<B> {
    /// Takes the block back out of the error.
    pub fn into_block(self) -> B {
        match self {
            BlockError::BlockSizeMismatch { block, .. } => block,
        }
    }
}

/// What registering a hash that is already registered does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockDuplicationPolicy {
    /// Keep the new block as a duplicate beside the registered one. The
    /// duplicate is matched by no one and goes back to the free pool, not
    /// the cache, when dropped. While it lives it keeps the registered
    /// block held (reviving it if it was cached), so the copy that matches
    /// find is not evicted while identical data is in use.
    #[default]
    Allow,
    /// Hand back the registered block and return the new one to the free
    /// pool.
    Reject,
}
