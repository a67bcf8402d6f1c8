//! [`CompleteBlock`]: a filled block waiting to be registered.

use std::sync::Arc;

use super::{BlockMetadata, MutableBlock};
use crate::events::BlockLineage;
use crate::store::{CheckedOut, FromCheckedOut, IntoStaged, Store};
use crate::{BlockId, SequenceHash};

/// A block whose contents are written and identified by a sequence hash,
/// ready for [`BlockManager::register_block`](crate::manager::BlockManager::register_block).
///
/// Dropping it returns the block to the free pool: unregistered data is never
/// cached.
pub struct CompleteBlock<T: BlockMetadata> {
    /// Its drop returns the block (see `store::guard_ops`).
    block: CheckedOut<T>,
    seq_hash: SequenceHash,
    /// Known when staged from a token block; reported with the block's
    /// registration to event subscribers that rebuild token prefix trees.
    lineage: Option<BlockLineage>,
}

impl<T: BlockMetadata> CompleteBlock<T> {
    pub(super) fn new(block: CheckedOut<T>, seq_hash: SequenceHash) -> Self {
        Self {
            block,
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
        self.block.id()
    }

    /// The number of tokens the block holds.
    pub fn block_size(&self) -> usize {
        self.block.store().block_size()
    }

    /// The sequence hash the block was staged with.
    pub fn sequence_hash(&self) -> SequenceHash {
        self.seq_hash
    }

    /// Discards the staged identity and hands the block back for rewriting.
    pub fn reset(self) -> MutableBlock<T> {
        MutableBlock::from_checked_out(self.block)
    }

    /// Whether the block belongs to `store`.
    pub(crate) fn belongs_to(&self, store: &Arc<Store<T>>) -> bool {
        self.block.belongs_to(store)
    }
}

impl<T: BlockMetadata> std::fmt::Debug for CompleteBlock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompleteBlock")
            .field("block_id", &self.block_id())
            .field("sequence_hash", &self.seq_hash)
            .finish()
    }
}

/// Registration ends the guard and takes over the block.
impl<T: BlockMetadata> IntoStaged<T> for CompleteBlock<T> {
    fn into_staged(self) -> (CheckedOut<T>, SequenceHash, Option<BlockLineage>) {
        (self.block, self.seq_hash, self.lineage)
    }
}
