//! [`LogicalBlockAssignments`]: a sequence's block guards, by phase.

use super::phases::{phase_counts, Phases};
use crate::blocks::{BlockError, BlockMetadata, CompleteBlock, ImmutableBlock, MutableBlock};
use crate::manager::BlockManager;
use crate::tokens::TokenBlock;
use crate::{BlockId, SequenceHash};

/// Why blocks were refused; they come back inside, untouched.
#[derive(thiserror::Error)]
pub enum LogicalBlockAssignmentError<T: BlockMetadata> {
    /// A block offered as pending is already tracked, or offered twice.
    #[error("block id {block_id} is already present")]
    DuplicateBlockId {
        /// The repeated id.
        block_id: BlockId,
        /// Every block offered, for the caller to keep or drop.
        blocks: Vec<MutableBlock<T>>,
    },
    /// A registered block offered as assigned is already tracked, or
    /// offered twice.
    #[error("block id {block_id} is already present")]
    DuplicateAssignedBlockId {
        /// The repeated id.
        block_id: BlockId,
        /// Every block offered.
        blocks: Vec<ImmutableBlock<T>>,
    },
    /// A matched block is registered under another hash than the sequence
    /// block at its position.
    #[error(
        "sequence hash mismatch at position {position}: expected {expected:?}, got {actual:?}"
    )]
    SequenceHashMismatch {
        /// The sequence position.
        position: usize,
        /// The hash of the sequence's block there.
        expected: SequenceHash,
        /// The hash of the block offered for it.
        actual: SequenceHash,
        /// Every block offered.
        blocks: Vec<ImmutableBlock<T>>,
    },
}

impl<T: BlockMetadata> std::fmt::Debug for LogicalBlockAssignmentError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DuplicateBlockId { block_id, blocks } => f
                .debug_struct("DuplicateBlockId")
                .field("block_id", block_id)
                .field("blocks", blocks)
                .finish(),
            Self::DuplicateAssignedBlockId { block_id, blocks } => f
                .debug_struct("DuplicateAssignedBlockId")
                .field("block_id", block_id)
                .field("blocks", blocks)
                .finish(),
            Self::SequenceHashMismatch {
                position,
                expected,
                actual,
                blocks,
            } => f
                .debug_struct("SequenceHashMismatch")
                .field("position", position)
                .field("expected", expected)
                .field("actual", actual)
                .field("blocks", blocks)
                .finish(),
        }
    }
}

/// A sequence's blocks as guards: pending `MutableBlock`s, staged
/// `CompleteBlock`s, assigned `ImmutableBlock`s, each phase in sequence
/// order.
///
/// The tracker owns the guards, so dropping it, clearing it or popping an
/// entry gives the block back to its manager. Every entry is keyed by the
/// id of the block it holds.
pub struct LogicalBlockAssignments<T: BlockMetadata> {
    phases: Phases<MutableBlock<T>, CompleteBlock<T>, ImmutableBlock<T>>,
}

impl<T: BlockMetadata> LogicalBlockAssignments<T> {
    /// An empty tracker.
    pub fn new() -> Self {
        Self {
            phases: Phases::new(),
        }
    }

    phase_counts!();

    /// Whether no block is tracked.
    pub fn is_empty(&self) -> bool {
        self.phases.is_empty()
    }

    /// Whether block `block_id` is tracked, in any phase.
    pub fn contains(&self, block_id: &BlockId) -> bool {
        self.phases.contains(*block_id)
    }

    /// Assigned entry `index`.
    pub fn get_assigned(&self, index: usize) -> Option<(&BlockId, &ImmutableBlock<T>)> {
        self.phases.assigned(index).map(|(id, b)| (id, b))
    }

    /// Staged entry `index`.
    pub fn get_staged(&self, index: usize) -> Option<(&BlockId, &CompleteBlock<T>)> {
        self.phases.staged(index).map(|(id, b)| (id, b))
    }

    /// Pending entry `index`.
    pub fn get_unassigned(&self, index: usize) -> Option<(&BlockId, &MutableBlock<T>)> {
        self.phases.pending(index).map(|(id, b)| (id, b))
    }

    /// Assigned entries in order.
    pub fn assigned_iter(&self) -> impl Iterator<Item = (&BlockId, &ImmutableBlock<T>)> {
        self.phases.assigned_iter().map(|(id, b)| (id, b))
    }

    /// Staged entries in order.
    pub fn staged_iter(&self) -> impl Iterator<Item = (&BlockId, &CompleteBlock<T>)> {
        self.phases.staged_iter().map(|(id, b)| (id, b))
    }

    /// Pending entries in order.
    pub fn unassigned_iter(&self) -> impl Iterator<Item = (&BlockId, &MutableBlock<T>)> {
        self.phases.pending_iter().map(|(id, b)| (id, b))
    }

    /// Every block id in sequence order: assigned, staged, pending.
    pub fn all_block_ids(&self) -> impl Iterator<Item = &BlockId> {
        self.phases
            .assigned_iter()
            .map(|e| &e.0)
            .chain(self.phases.staged_iter().map(|e| &e.0))
            .chain(self.phases.pending_iter().map(|e| &e.0))
    }

    /// Queues freshly allocated blocks as pending; returns how many. A
    /// block already tracked (or given twice) refuses all of them.
    pub fn extend_blocks(
        &mut self,
        blocks: impl IntoIterator<Item = MutableBlock<T>>,
    ) -> Result<usize, LogicalBlockAssignmentError<T>> {
        let blocks: Vec<MutableBlock<T>> = blocks.into_iter().collect();
        if let Some(block_id) = self
            .phases
            .first_duplicate(blocks.iter().map(|b| b.block_id()))
        {
            return Err(LogicalBlockAssignmentError::DuplicateBlockId { block_id, blocks });
        }
        let n = blocks.len();
        for block in blocks {
            self.phases.push_pending(block.block_id(), block);
        }
        Ok(n)
    }

    /// Appends registered blocks (cache hits) as assigned; returns how
    /// many. A block already tracked (or given twice) refuses all.
    pub fn extend_assigned(
        &mut self,
        blocks: impl IntoIterator<Item = ImmutableBlock<T>>,
    ) -> Result<usize, LogicalBlockAssignmentError<T>> {
        let blocks: Vec<ImmutableBlock<T>> = blocks.into_iter().collect();
        if let Some(block_id) = self
            .phases
            .first_duplicate(blocks.iter().map(|b| b.block_id()))
        {
            return Err(LogicalBlockAssignmentError::DuplicateAssignedBlockId { block_id, blocks });
        }
        let n = blocks.len();
        for block in blocks {
            self.phases.push_assigned(block.block_id(), block);
        }
        Ok(n)
    }

    /// Completes pending blocks, oldest first, with `sequence_blocks[0]`,
    /// `[1]`, …, for as many as both have; returns how many were staged.
    ///
    /// `sequence_blocks` starts at the first position still to be staged.
    /// A block whose size does not fit leaves the tracker inside the error
    /// (the blocks staged before it stay staged, the later ones pending).
    pub fn stage(
        &mut self,
        sequence_blocks: &[TokenBlock],
    ) -> Result<usize, BlockError<MutableBlock<T>>> {
        let n = sequence_blocks.len().min(self.phases.pending_len());
        for tokens in &sequence_blocks[..n] {
            match self.phases.stage_front(|block| block.complete(tokens)) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(n)
    }

    /// Registers every staged block with `manager` (one lock for all) and
    /// moves it to the assigned phase; returns how many.
    ///
    /// Under [`Reject`](crate::blocks::BlockDuplicationPolicy::Reject) a
    /// staged block whose hash is already registered is freed and the
    /// registered block takes its place, under its own id.
    pub fn register(&mut self, manager: &BlockManager<T>) -> usize {
        let staged = self.phases.take_staged();
        let n = staged.len();
        if n == 0 {
            return 0;
        }
        let registered = manager.register_blocks(staged.into_iter().map(|e| e.1).collect());
        for block in registered {
            self.phases.push_assigned(block.block_id(), block);
        }
        n
    }

    /// Removes the newest pending block.
    pub fn pop_last_unassigned(&mut self) -> Option<(BlockId, MutableBlock<T>)> {
        self.phases.pop_pending_back()
    }

    /// Drops every block, newest first; the registered ones as one batch
    /// (see [`ImmutableBlock::release_all`]).
    pub fn clear(&mut self) {
        self.phases.clear_releasing(|assigned| {
            ImmutableBlock::release_iter(assigned.map(|(_, block)| block));
        });
    }

    /// Removes and returns the assigned blocks.
    pub fn take_assigned(&mut self) -> Vec<(BlockId, ImmutableBlock<T>)> {
        self.phases.take_assigned()
    }

    /// Removes and returns the staged blocks.
    pub fn take_staged(&mut self) -> Vec<(BlockId, CompleteBlock<T>)> {
        self.phases.take_staged()
    }

    /// Removes and returns the pending blocks.
    pub fn take_unassigned(&mut self) -> Vec<(BlockId, MutableBlock<T>)> {
        self.phases.take_pending()
    }
}

impl<T: BlockMetadata> Default for LogicalBlockAssignments<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: BlockMetadata> Drop for LogicalBlockAssignments<T> {
    fn drop(&mut self) {
        // Newest first, as `clear` does.
        self.clear();
    }
}

impl<T: BlockMetadata> std::fmt::Debug for LogicalBlockAssignments<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicalBlockAssignments")
            .field("assigned", &self.assigned_count())
            .field("staged", &self.staged_count())
            .field("pending", &self.unassigned_count())
            .finish()
    }
}
