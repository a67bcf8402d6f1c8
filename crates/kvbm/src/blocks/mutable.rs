//! [`MutableBlock`]: a block being filled.

use super::{BlockError, BlockMetadata, CompleteBlock};
use crate::store::StoreRef;
use crate::tokens::TokenBlock;
use crate::{BlockId, SequenceHash};

/// A block handed out by allocation, to be filled with KV data.
///
/// Dropping it returns the block to the free pool.
pub struct MutableBlock<T: BlockMetadata> {
    store: StoreRef<T>,
    id: BlockId,
}

impl<T: BlockMetadata> MutableBlock<T> {
    pub(crate) fn new(store: StoreRef<T>, id: BlockId) -> Self {
        Self { store, id }
    }

    /// The block's index in its pool.
    pub fn block_id(&self) -> BlockId {
        self.id
    }

    /// The number of tokens the block holds.
    pub fn block_size(&self) -> usize {
        self.store.get().block_size()
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
        self.store.get().metrics().inc_stagings();
        let (store, id) = self.into_parts();
        Ok(CompleteBlock::new(store, id, seq_hash))
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

    /// Ends this guard without returning the block to the pool; the block
    /// lives on in whatever guard the caller builds from the parts.
    fn into_parts(mut self) -> (StoreRef<T>, BlockId) {
        let id = std::mem::replace(&mut self.id, TRANSFERRED);
        (self.store, id)
    }
}

/// Marks a guard whose block moved on to another guard; its `Drop` does
/// nothing.
pub(crate) const TRANSFERRED: BlockId = BlockId::MAX;

impl<T: BlockMetadata> Drop for MutableBlock<T> {
    fn drop(&mut self) {
        if self.id != TRANSFERRED {
            // Finished after the store call returns: it may free the store.
            self.store.get().release_checked_out(self.id).finish();
        }
    }
}

impl<T: BlockMetadata> std::fmt::Debug for MutableBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutableBlock")
            .field("block_id", &self.id)
            .finish()
    }
}
