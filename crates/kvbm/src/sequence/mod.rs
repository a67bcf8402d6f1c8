//! Which block holds which part of a token sequence.
//!
//! A request's tokens are cut into blocks ([`BlockSequence`]); each block of
//! the sequence gets a block of the pool. Both trackers here walk the same
//! three phases per block, in sequence order:
//!
//! ```text
//! pending (a block, no tokens yet) ─► staged (paired with a token block) ─► assigned (committed)
//! ```
//!
//! - [`ExternalBlockAssignments`] tracks identities only (block id ↔
//!   sequence hash), for engines that own their blocks elsewhere.
//! - [`LogicalBlockAssignments`] holds the guards themselves
//!   (`MutableBlock` → `CompleteBlock` → `ImmutableBlock`), so dropping the
//!   tracker, or an entry of it, gives the blocks back.
//!
//! ```
//! use kvbm::sequence::{BlockSequence, ExternalBlockAssignments};
//!
//! let seq = BlockSequence::new((0..10).collect(), 4, None);
//! assert_eq!(seq.blocks().len(), 2); // two full blocks, two tokens pending
//!
//! let mut ids = ExternalBlockAssignments::new(0);
//! ids.extend_block_ids([7, 3, 9])?;
//! assert_eq!(ids.assign_pending(seq.blocks())?, 0..2);
//! assert_eq!(ids.get_at_position(1), Some((3, seq.all_sequence_hashes()[1])));
//! assert_eq!(ids.pending_positions(), 2..3); // block 9 waits for the third block
//! # Ok::<(), kvbm::sequence::BlockSequenceError>(())
//! ```

mod external;
mod logical;
mod phases;

pub use external::{zip_assigned, zip_assigned_pending, ExternalBlockAssignments};
pub use logical::{LogicalBlockAssignmentError, LogicalBlockAssignments};

use std::ops::Range;

use crate::tokens::{SaltHash, Token, TokenBlock, TokenBlockError, TokenBlockSequence};
use crate::{BlockId, SequenceHash};

/// Why an assignment or sequence operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum BlockSequenceError {
    /// A block id already known came after a new one: known ids must form a
    /// prefix of the list.
    #[error(
        "block id {known_id} (index {known_index}) is already known but comes after \
         new block id {new_id} (index {first_new_index})"
    )]
    OrderingViolation {
        /// The known id out of place.
        known_id: BlockId,
        /// The first new id of the list.
        new_id: BlockId,
        /// Where the known id sits in the list.
        known_index: usize,
        /// Where the first new id sits in the list.
        first_new_index: usize,
    },
    /// A token block's lineage hash names another position than the one it
    /// was paired with.
    #[error("block {block_id} was paired with position {expected}, but its hash is for position {actual}")]
    PositionMismatch {
        /// The position the block would have taken.
        expected: usize,
        /// The position encoded in the token block's hash.
        actual: u64,
        /// The block id being paired.
        block_id: BlockId,
    },
    /// The block id is already tracked (or repeats in the input).
    #[error("block id {block_id} is already present")]
    DuplicateBlockId {
        /// The repeated id.
        block_id: BlockId,
    },
    /// The tokens could not be added to the sequence.
    #[error("cannot extend the token sequence: {0}")]
    TokenExtension(#[from] TokenBlockError),
}

/// A token sequence cut into full blocks plus a partial tail, with the
/// hashes blocks are registered under.
#[derive(Debug, Clone)]
pub struct BlockSequence {
    tokens: TokenBlockSequence,
}

impl BlockSequence {
    /// Cuts `tokens` into blocks of `block_size` (salt defaults to 0).
    ///
    /// # Panics
    /// If `block_size` is 0 or the tokens fill more than 2^24 blocks, as
    /// [`TokenBlockSequence::new`] does; [`try_new`](Self::try_new) returns
    /// an error instead.
    pub fn new(tokens: Vec<Token>, block_size: u32, salt_hash: Option<SaltHash>) -> Self {
        Self {
            tokens: TokenBlockSequence::from_slice(&tokens, block_size, salt_hash),
        }
    }

    /// Like [`new`](Self::new), failing instead of panicking.
    pub fn try_new(
        tokens: Vec<Token>,
        block_size: u32,
        salt_hash: Option<SaltHash>,
    ) -> Result<Self, BlockSequenceError> {
        Ok(Self {
            tokens: TokenBlockSequence::try_from_slice(&tokens, block_size, salt_hash)?,
        })
    }

    /// The full blocks, in order.
    pub fn blocks(&self) -> &[TokenBlock] {
        self.tokens.blocks()
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.tokens.block_size()
    }

    /// Every token, the partial tail included.
    pub fn total_tokens(&self) -> usize {
        self.tokens.total_tokens()
    }

    /// The underlying token sequence.
    pub fn sequence(&self) -> &TokenBlockSequence {
        &self.tokens
    }

    /// The hash each full block registers under, in order.
    pub fn all_sequence_hashes(&self) -> Vec<SequenceHash> {
        self.blocks()
            .iter()
            .map(TokenBlock::positional_lineage_hash)
            .collect()
    }

    /// Appends tokens; returns the indices of the blocks they completed.
    /// On error the sequence is unchanged.
    pub fn extend_tokens(
        &mut self,
        tokens: Vec<Token>,
    ) -> Result<Option<Range<usize>>, BlockSequenceError> {
        Ok(self.tokens.extend_from_slice(&tokens)?)
    }

    /// [`extend_tokens`](Self::extend_tokens) for a borrowed slice: no
    /// allocation per decode step.
    pub(crate) fn extend_from_slice(
        &mut self,
        tokens: &[Token],
    ) -> Result<Option<Range<usize>>, BlockSequenceError> {
        Ok(self.tokens.extend_from_slice(tokens)?)
    }

    /// Appends one token; returns the index of the block it completed.
    /// On error the sequence is unchanged.
    pub fn append_token(&mut self, token: Token) -> Result<Option<usize>, BlockSequenceError> {
        Ok(self.tokens.append(token)?)
    }
}
