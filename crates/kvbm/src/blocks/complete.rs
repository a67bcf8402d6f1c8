//! [`CompleteBlock`]: a filled block waiting to be registered.

use super::mutable::TRANSFERRED;
use super::{BlockMetadata, MutableBlock};
use crate::events::BlockLineage;
use crate::store::StoreRef;
use crate::{BlockId, SequenceHash};

/// A block whose contents are written and identified by a sequence hash,
/// ready for [`BlockManager::register_block`](crate::manager::BlockManager::register_block).
///
/// Dropping it returns the block to the free pool: unregistered data is never
/// cached.
pub struct CompleteBlock<T: BlockMetadata> {
    store: StoreRef<T>,
    id: BlockId,
    seq_hash: SequenceHash,
    /// Known when staged from a token block; reported with the block's
    /// registration to event subscribers that rebuild token prefix trees.
    lineage: Option<BlockLineage>,
}

impl<T: BlockMetadata> CompleteBlock<T> {
    pub(crate) fn new(store: StoreRef<T>, id: BlockId, seq_hash: SequenceHash) -> Self {
        Self {
            store,
            id,
            seq_hash,
            lineage: None,
        }
    }

    pub(crate) fn with_lineage(mut self, lineage: BlockLineage) -> Self {
        self.lineage = Some(lineage);
        self
    }

    /// The block's index in its pool.
    pub fn block_id(&self) -> BlockId {
        self.id
    }

    /// The number of tokens the block holds.
    pub fn block_size(&self) -> usize {
        self.store.get().block_size()
    }

    /// The sequence hash the block was staged with.
    pub fn sequence_hash(&self) -> SequenceHash {
        self.seq_hash
    }

    /// Discards the staged identity and hands the block back for rewriting.
    pub fn reset(mut self) -> MutableBlock<T> {
        let id = std::mem::replace(&mut self.id, TRANSFERRED);
        MutableBlock::new(self.store, id)
    }

    /// Ends this guard for registration, which takes over the block.
    pub(crate) fn into_parts(mut self) -> (BlockId, SequenceHash, Option<BlockLineage>) {
        (
            std::mem::replace(&mut self.id, TRANSFERRED),
            self.seq_hash,
            self.lineage,
        )
    }

    pub(crate) fn store_ref(&self) -> StoreRef<T> {
        self.store
    }
}

impl<T: BlockMetadata> Drop for CompleteBlock<T> {
    fn drop(&mut self) {
        if self.id != TRANSFERRED {
            // Finished after the store call returns: it may free the store.
            self.store.get().release_checked_out(self.id).finish();
        }
    }
}

impl<T: BlockMetadata> std::fmt::Debug for CompleteBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompleteBlock")
            .field("block_id", &self.id)
            .field("sequence_hash", &self.seq_hash)
            .finish()
    }
}
