//! [`MutableBlock`]: a block being filled.

use super::{BlockError, BlockMetadata, CompleteBlock};
use crate::store::{CheckedOut, FromCheckedOut};
use crate::tokens::TokenBlock;
use crate::{BlockId, SequenceHash};

/// A block handed out by allocation, to be filled with KV data.
///
/// Dropping it returns the block to the free pool.
pub struct MutableBlock<T: BlockMetadata> {
    /// Its drop returns the block (see `store::guard_ops`).
    block: CheckedOut<T>,
}

impl<T: BlockMetadata> MutableBlock<T> {
    /// The block's index in its pool.
    pub fn block_id(&self) -> BlockId {
        self.block.id()
    }

    /// The number of tokens the block holds.
    pub fn block_size(&self) -> usize {
        self.block.store().block_size()
    }

    /// Marks the block as holding the tokens identified by `seq_hash`.
    ///
    /// `block_size` is the number of tokens written; a mismatch with the
    /// block's size returns the block inside the error.
    pub fn stage(
        self,
        seq_hash: SequenceHash,
        block_size: usize,
    ) -> Result<CompleteBlock<T>, BlockError<MutableBlock<T>>> {
        let expected = self.block_size();
        if block_size != expected {
            return Err(BlockError::BlockSizeMismatch {
                expected,
                actual: block_size,
                block: self,
            });
        }
        self.block.store().metrics().inc_stagings();
        Ok(CompleteBlock::new(self.block, seq_hash))
    }

    /// Stages the block with a full token block's lineage hash.
    pub fn complete(
        self,
        token_block: &TokenBlock,
    ) -> Result<CompleteBlock<T>, BlockError<MutableBlock<T>>> {
        self.stage(
            token_block.positional_lineage_hash(),
            token_block.block_size(),
        )
        .map(|staged| staged.with_lineage(crate::events::BlockLineage::of(token_block)))
    }
}

impl<T: BlockMetadata> std::fmt::Debug for MutableBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutableBlock")
            .field("block_id", &self.block_id())
            .finish()
    }
}

impl<T: BlockMetadata> FromCheckedOut<T> for MutableBlock<T> {
    fn from_checked_out(block: CheckedOut<T>) -> Self {
        Self { block }
    }
}
