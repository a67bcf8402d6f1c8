//! [`ExternalBlockAssignments`]: block ids paired with sequence hashes.

use std::ops::Range;

use super::phases::{phase_counts, Phases};
use super::BlockSequenceError;
use crate::tokens::TokenBlock;
use crate::{BlockId, SequenceHash};

/// Which block id holds which position of a sequence, for one tier.
///
/// Ids wait in a FIFO of *pending* ids until a token block is available for
/// the next position; [`stage_pending`](Self::stage_pending) pairs them with
/// their block's hash and [`commit_staged`](Self::commit_staged) makes the
/// pairing final. Assigned entry `i` holds position `offset + i`, so several
/// trackers (one per tier) can cover different stretches of one sequence.
pub struct ExternalBlockAssignments {
    phases: Phases<(), SequenceHash, SequenceHash>,
    offset: usize,
}

impl ExternalBlockAssignments {
    /// An empty tracker whose first block is sequence position `offset`.
    pub fn new(offset: usize) -> Self {
        Self {
            phases: Phases::new(),
            offset,
        }
    }

    /// The sequence position of the first assigned block.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether `block_id` is pending, staged or assigned here.
    pub fn contains(&self, block_id: &BlockId) -> bool {
        self.phases.contains(*block_id)
    }

    /// Assigned entry `index` (position `offset + index`).
    pub fn get_assigned(&self, index: usize) -> Option<(BlockId, SequenceHash)> {
        self.phases.assigned(index).copied()
    }

    /// Staged entry `index`, counted from the first staged one.
    pub fn get_staged(&self, index: usize) -> Option<(BlockId, SequenceHash)> {
        self.phases.staged(index).copied()
    }

    phase_counts!();

    /// Assigned entries in position order.
    pub fn assigned_iter(&self) -> impl Iterator<Item = (BlockId, SequenceHash)> + '_ {
        self.phases.assigned_iter().copied()
    }

    /// Staged entries in position order.
    pub fn staged_iter(&self) -> impl Iterator<Item = (BlockId, SequenceHash)> + '_ {
        self.phases.staged_iter().copied()
    }

    /// Pending ids in the order they will be paired.
    pub fn unassigned_iter(&self) -> impl Iterator<Item = BlockId> + '_ {
        self.phases.pending_iter().map(|e| e.0)
    }

    /// Forgets every id; the offset stays.
    pub fn clear(&mut self) {
        self.phases.clear();
    }

    /// Removes and returns the assigned entries.
    pub fn take_assigned(&mut self) -> Vec<(BlockId, SequenceHash)> {
        self.phases.take_assigned()
    }

    /// Removes and returns the staged entries.
    pub fn take_staged(&mut self) -> Vec<(BlockId, SequenceHash)> {
        self.phases.take_staged()
    }

    /// Removes and returns the pending ids.
    pub fn take_unassigned(&mut self) -> Vec<BlockId> {
        self.phases
            .take_pending()
            .into_iter()
            .map(|e| e.0)
            .collect()
    }

    /// The position the next staged block takes: `offset + assigned +
    /// staged`.
    pub fn next_position(&self) -> usize {
        self.offset + self.phases.assigned_len() + self.phases.staged_len()
    }

    /// Positions held by assigned blocks.
    pub fn assigned_positions(&self) -> Range<usize> {
        self.offset..self.offset + self.phases.assigned_len()
    }

    /// Positions held by staged blocks.
    pub fn staged_positions(&self) -> Range<usize> {
        let start = self.offset + self.phases.assigned_len();
        start..start + self.phases.staged_len()
    }

    /// Positions the pending ids will take, in order.
    pub fn pending_positions(&self) -> Range<usize> {
        let start = self.next_position();
        start..start + self.phases.pending_len()
    }

    /// The assigned entry at sequence position `abs_pos`.
    pub fn get_at_position(&self, abs_pos: usize) -> Option<(BlockId, SequenceHash)> {
        self.get_assigned(abs_pos.checked_sub(self.offset)?)
    }

    /// The pending id that will take sequence position `abs_pos`.
    pub fn get_pending_at_position(&self, abs_pos: usize) -> Option<BlockId> {
        let i = abs_pos.checked_sub(self.next_position())?;
        self.phases.pending(i).map(|e| e.0)
    }

    /// Takes the full, ordered list of ids given to this tracker so far.
    ///
    /// Ids already tracked must come first and are skipped; the new ones are
    /// queued as pending, in order. A known id after a new one is an
    /// [`OrderingViolation`](BlockSequenceError::OrderingViolation), a new
    /// id given twice a [`DuplicateBlockId`](BlockSequenceError::DuplicateBlockId);
    /// either way nothing is queued.
    pub fn extend_block_ids(
        &mut self,
        block_ids: impl IntoIterator<Item = BlockId>,
    ) -> Result<(), BlockSequenceError> {
        let mut fresh: Vec<BlockId> = Vec::new();
        let mut first_new_index = 0;
        for (i, id) in block_ids.into_iter().enumerate() {
            if self.phases.contains(id) {
                if let Some(&new_id) = fresh.first() {
                    return Err(BlockSequenceError::OrderingViolation {
                        known_id: id,
                        new_id,
                        known_index: i,
                        first_new_index,
                    });
                }
                continue;
            }
            if fresh.is_empty() {
                first_new_index = i;
            }
            fresh.push(id);
        }
        if let Some(block_id) = self.phases.first_duplicate(fresh.iter().copied()) {
            return Err(BlockSequenceError::DuplicateBlockId { block_id });
        }
        for id in fresh {
            self.phases.push_pending(id, ());
        }
        Ok(())
    }

    /// Appends already paired blocks (cache hits) to the assigned phase;
    /// returns how many. Any id already tracked, or repeated, refuses all.
    pub fn extend_assigned(
        &mut self,
        items: impl IntoIterator<Item = (BlockId, SequenceHash)>,
    ) -> Result<usize, BlockSequenceError> {
        let items: Vec<(BlockId, SequenceHash)> = items.into_iter().collect();
        if let Some(block_id) = self.phases.first_duplicate(items.iter().map(|e| e.0)) {
            return Err(BlockSequenceError::DuplicateBlockId { block_id });
        }
        let n = items.len();
        for (id, hash) in items {
            self.phases.push_assigned(id, hash);
        }
        Ok(n)
    }

    /// Pairs pending ids, oldest first, with `sequence_blocks[next_position()..]`
    /// for as many as both have; returns the new staged indices.
    ///
    /// `sequence_blocks` is the whole sequence (index = position). Every
    /// block's hash must encode the position it is paired with, or nothing
    /// is staged ([`PositionMismatch`](BlockSequenceError::PositionMismatch)).
    pub fn stage_pending(
        &mut self,
        sequence_blocks: &[TokenBlock],
    ) -> Result<Range<usize>, BlockSequenceError> {
        let first = self.phases.staged_len();
        let start = self.next_position();
        let available = sequence_blocks.get(start..).unwrap_or_default();
        let n = available.len().min(self.phases.pending_len());
        for (i, block) in available[..n].iter().enumerate() {
            let actual = block.positional_lineage_hash().position();
            if actual != (start + i) as u64 {
                let block_id = self.phases.pending(i).map_or(BlockId::MAX, |e| e.0);
                return Err(BlockSequenceError::PositionMismatch {
                    expected: start + i,
                    actual,
                    block_id,
                });
            }
        }
        for block in &available[..n] {
            let hash = block.positional_lineage_hash();
            let staged = self.phases.stage_front(|()| Ok::<_, ()>(hash));
            debug_assert!(matches!(staged, Some(Ok(()))));
        }
        Ok(first..first + n)
    }

    /// Makes every staged pairing final; returns the new assigned indices.
    pub fn commit_staged(&mut self) -> Range<usize> {
        let first = self.phases.assigned_len();
        let n = self.phases.commit_staged(|hash| hash);
        first..first + n
    }

    /// [`stage_pending`](Self::stage_pending) then
    /// [`commit_staged`](Self::commit_staged); returns the new assigned
    /// indices (staged entries from before are committed too).
    pub fn assign_pending(
        &mut self,
        sequence_blocks: &[TokenBlock],
    ) -> Result<Range<usize>, BlockSequenceError> {
        self.stage_pending(sequence_blocks)?;
        Ok(self.commit_staged())
    }
}

impl std::fmt::Debug for ExternalBlockAssignments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalBlockAssignments")
            .field("offset", &self.offset)
            .field("assigned", &self.assigned_count())
            .field("staged", &self.staged_count())
            .field("pending", &self.unassigned_count())
            .finish()
    }
}

/// For every position both trackers have assigned, `(position, a's id, b's
/// id)`, in position order.
pub fn zip_assigned(
    a: &ExternalBlockAssignments,
    b: &ExternalBlockAssignments,
) -> Vec<(usize, BlockId, BlockId)> {
    let (ra, rb) = (a.assigned_positions(), b.assigned_positions());
    (ra.start.max(rb.start)..ra.end.min(rb.end))
        .filter_map(|pos| Some((pos, a.get_at_position(pos)?.0, b.get_at_position(pos)?.0)))
        .collect()
}

/// For every position `src` has assigned and `dst` has a pending id for,
/// `(position, src id, dst id)` in position order: which block to copy
/// into which when moving data between tiers.
pub fn zip_assigned_pending(
    src: &ExternalBlockAssignments,
    dst: &ExternalBlockAssignments,
) -> Vec<(usize, BlockId, BlockId)> {
    let (rs, rd) = (src.assigned_positions(), dst.pending_positions());
    (rs.start.max(rd.start)..rs.end.min(rd.end))
        .filter_map(|pos| {
            Some((
                pos,
                src.get_at_position(pos)?.0,
                dst.get_pending_at_position(pos)?,
            ))
        })
        .collect()
}
