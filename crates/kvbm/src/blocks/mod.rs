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
// Defined by the store, whose parameters they are; public here.
pub use crate::store::{BlockDuplicationPolicy, BlockMetadata};
pub use crate::{BlockId, SequenceHash};

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
