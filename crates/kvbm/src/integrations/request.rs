//! [`RequestSequence`]: one request's tokens and blocks.

use crate::blocks::{BlockMetadata, ImmutableBlock};
use crate::manager::BlockManager;
use crate::sequence::{
    BlockSequence, BlockSequenceError, LogicalBlockAssignmentError, LogicalBlockAssignments,
};
use crate::tokens::Token;

/// A request's tokens (prompt plus generated) and the blocks holding them.
///
/// The blocks of the sequence, in order, are: assigned (registered, or
/// matched from the cache), staged, then pending — pending blocks are
/// allocated but their tokens are not complete or not yet registered (the
/// block being generated into). [`page_indices`](Self::page_indices) lists
/// them in that order, which is the block table a paged-attention kernel
/// reads.
///
/// Every call is a separate step; nothing is allocated or registered behind
/// the caller's back. [`SchedulableSequence`](super::SchedulableSequence)
/// drives these steps for an engine loop.
pub struct RequestSequence<T: BlockMetadata> {
    sequence: BlockSequence,
    assignments: LogicalBlockAssignments<T>,
    num_input_tokens: usize,
    generated_tokens: usize,
    max_output_tokens: usize,
    prefix_matched_blocks: usize,
}

impl<T: BlockMetadata> RequestSequence<T> {
    /// A request for `tokens` that may generate up to `max_output_tokens`;
    /// no block is touched yet.
    ///
    /// # Panics
    /// If `block_size` is 0 or the prompt fills more than 2^24 blocks, as
    /// [`BlockSequence::new`] does; [`try_new`](Self::try_new) returns an
    /// error instead.
    pub fn new(tokens: Vec<Token>, max_output_tokens: usize, block_size: u32) -> Self {
        match Self::try_new(tokens, max_output_tokens, block_size) {
            Ok(request) => request,
            Err(e) => panic!("cannot build a request sequence: {e}"),
        }
    }

    /// Like [`new`](Self::new), failing instead of panicking.
    ///
    /// ```
    /// use kvbm::integrations::RequestSequence;
    ///
    /// assert!(RequestSequence::<()>::try_new(vec![1, 2, 3], 8, 0).is_err());
    /// let request = RequestSequence::<()>::try_new(vec![1, 2, 3], 8, 2).unwrap();
    /// assert_eq!(request.num_blocks(), 1);
    /// ```
    pub fn try_new(
        tokens: Vec<Token>,
        max_output_tokens: usize,
        block_size: u32,
    ) -> Result<Self, BlockSequenceError> {
        let num_input_tokens = tokens.len();
        Ok(Self {
            sequence: BlockSequence::try_new(tokens, block_size, None)?,
            assignments: LogicalBlockAssignments::new(),
            num_input_tokens,
            generated_tokens: 0,
            max_output_tokens,
            prefix_matched_blocks: 0,
        })
    }

    /// Takes the cached blocks of the longest registered prefix of the
    /// sequence's full blocks as assigned; returns how many.
    ///
    /// Matching continues after the blocks already assigned. When staged or
    /// pending blocks already hold the next positions, nothing can be
    /// matched and `Ok(0)` is returned.
    pub fn match_and_add_prefix(
        &mut self,
        manager: &BlockManager<T>,
    ) -> Result<usize, LogicalBlockAssignmentError<T>> {
        let limit = self.sequence.blocks().len();
        self.match_prefix_up_to(limit, manager)
    }

    /// [`match_and_add_prefix`](Self::match_and_add_prefix) over the first
    /// `limit` full blocks only.
    pub(crate) fn match_prefix_up_to(
        &mut self,
        limit: usize,
        manager: &BlockManager<T>,
    ) -> Result<usize, LogicalBlockAssignmentError<T>> {
        if self.assignments.staged_count() + self.assignments.unassigned_count() > 0 {
            return Ok(0);
        }
        let start = self.assignments.assigned_count();
        let end = limit.min(self.sequence.blocks().len());
        if start >= end {
            return Ok(0);
        }
        let hashes = self.sequence.all_sequence_hashes();
        let matched = manager.match_blocks(&hashes[start..end]);
        self.add_matched(start, matched)
    }

    /// Appends blocks matched for positions `start..` as assigned, checking
    /// each holds the hash of its position.
    fn add_matched(
        &mut self,
        start: usize,
        blocks: Vec<ImmutableBlock<T>>,
    ) -> Result<usize, LogicalBlockAssignmentError<T>> {
        let token_blocks = self.sequence.blocks();
        let mismatch = blocks.iter().enumerate().find_map(|(i, block)| {
            let expected = token_blocks.get(start + i)?.positional_lineage_hash();
            (expected != block.sequence_hash()).then_some((i, expected, block.sequence_hash()))
        });
        if let Some((i, expected, actual)) = mismatch {
            return Err(LogicalBlockAssignmentError::SequenceHashMismatch {
                position: start + i,
                expected,
                actual,
                blocks,
            });
        }
        let n = self.assignments.extend_assigned(blocks)?;
        self.prefix_matched_blocks += n;
        Ok(n)
    }

    /// Allocates `count` blocks as pending; `false` (and nothing
    /// allocated) when the manager has too few.
    pub fn allocate_blocks(&mut self, count: usize, manager: &BlockManager<T>) -> bool {
        if count == 0 {
            return true;
        }
        match manager.allocate_blocks(count) {
            // Fresh blocks from the manager are never already tracked.
            Some(blocks) => self.assignments.extend_blocks(blocks).is_ok(),
            None => false,
        }
    }

    /// Stages pending blocks with the full token blocks that have none yet,
    /// without registering them.
    pub fn stage_pending(&mut self) {
        let limit = self.sequence.blocks().len();
        self.stage_up_to(limit);
    }

    /// Stages pending blocks for the full token blocks before `limit`.
    fn stage_up_to(&mut self, limit: usize) {
        let start = self.assignments.assigned_count() + self.assignments.staged_count();
        let end = limit.min(self.sequence.blocks().len());
        if start < end {
            // The manager's blocks and the sequence share one block size,
            // so completing cannot fail; a failure would hand back a block,
            // which is dropped (returned to the pool) here.
            let _ = self.assignments.stage(&self.sequence.blocks()[start..end]);
        }
    }

    /// Registers the staged blocks; returns how many.
    pub fn register_staged(&mut self, manager: &BlockManager<T>) -> usize {
        self.assignments.register(manager)
    }

    /// Stages and registers every pending block whose tokens are complete.
    /// The block being generated into stays pending.
    pub fn complete_and_register_pending(&mut self, manager: &BlockManager<T>) {
        self.stage_pending();
        self.register_staged(manager);
    }

    /// Stages and registers the pending blocks among the first `limit`
    /// full blocks; returns how many were registered.
    pub(crate) fn register_up_to(&mut self, limit: usize, manager: &BlockManager<T>) -> usize {
        self.stage_up_to(limit);
        self.register_staged(manager)
    }

    /// Appends a generated token; returns the index of the block it
    /// completed. Blocks are not touched.
    ///
    /// # Panics
    /// If the output budget is spent or the sequence is 2^24 blocks long;
    /// [`try_append_token`](Self::try_append_token) returns an error instead.
    pub fn append_token(&mut self, token: Token) -> Option<usize> {
        self.try_append_token(token)
            .unwrap_or_else(|e| panic!("cannot append a token: {e}"))
    }

    /// Like [`append_token`](Self::append_token), failing (and appending
    /// nothing) when the budget is spent or the sequence is full.
    pub fn try_append_token(&mut self, token: Token) -> Result<Option<usize>, AppendError> {
        self.try_append_tokens(&[token])
            .map(|completed| completed.map(|range| range.start))
    }

    /// Appends generated tokens, all or none; returns the indices of the
    /// blocks they completed.
    pub(crate) fn try_append_tokens(
        &mut self,
        tokens: &[Token],
    ) -> Result<Option<std::ops::Range<usize>>, AppendError> {
        let remaining = self.remaining_tokens();
        if tokens.len() > remaining {
            return Err(AppendError::BudgetExceeded {
                requested: tokens.len(),
                remaining,
            });
        }
        let completed = self.sequence.extend_from_slice(tokens)?;
        self.generated_tokens += tokens.len();
        Ok(completed)
    }

    /// Whether the output budget is spent.
    pub fn is_complete(&self) -> bool {
        self.generated_tokens >= self.max_output_tokens
    }

    /// Gives every block back (preemption); the tokens stay. Registered
    /// blocks become cached, so a later [`reacquire`](Self::reacquire) may
    /// find them again.
    pub fn release(&mut self) {
        self.assignments.clear();
    }

    /// After [`release`](Self::release): matches the cached prefix of the
    /// sequence's full blocks, allocates blocks for the rest and registers
    /// them; `true` on success.
    ///
    /// The blocks allocated here hold no KV data yet: the engine must
    /// recompute (or load) them before using them, just as for a prefill.
    /// `false` when blocks are still held (nothing changes) or the manager
    /// has too few blocks (everything taken is given back).
    pub fn reacquire(&mut self, manager: &BlockManager<T>) -> bool {
        let limit = self.sequence.blocks().len();
        self.reacquire_up_to(limit, manager)
    }

    /// [`reacquire`](Self::reacquire) for the first `limit` full blocks.
    pub(crate) fn reacquire_up_to(&mut self, limit: usize, manager: &BlockManager<T>) -> bool {
        if !self.assignments.is_empty() {
            return false;
        }
        let limit = limit.min(self.sequence.blocks().len());
        let before = self.prefix_matched_blocks;
        self.prefix_matched_blocks = 0;
        let matched = match self.match_prefix_up_to(limit, manager) {
            Ok(n) => n,
            Err(_) => {
                self.assignments.clear();
                self.prefix_matched_blocks = before;
                return false;
            }
        };
        if !self.allocate_blocks(limit - matched, manager) {
            self.assignments.clear();
            self.prefix_matched_blocks = before;
            return false;
        }
        self.register_up_to(limit, manager);
        true
    }

    /// Tokens generated so far.
    pub fn generated_tokens(&self) -> usize {
        self.generated_tokens
    }

    /// The output budget.
    pub fn max_output_tokens(&self) -> usize {
        self.max_output_tokens
    }

    /// Prompt tokens.
    pub fn num_input_tokens(&self) -> usize {
        self.num_input_tokens
    }

    /// Prompt plus generated tokens.
    pub fn total_tokens(&self) -> usize {
        self.sequence.total_tokens()
    }

    /// Tokens still allowed to be generated.
    pub fn remaining_tokens(&self) -> usize {
        self.max_output_tokens.saturating_sub(self.generated_tokens)
    }

    /// Full token blocks in the sequence.
    pub fn num_blocks(&self) -> usize {
        self.sequence.blocks().len()
    }

    /// Full token blocks in the sequence (same as
    /// [`num_blocks`](Self::num_blocks)).
    pub fn complete_sequence_blocks(&self) -> usize {
        self.sequence.blocks().len()
    }

    /// Registered or matched blocks held.
    pub fn assigned_blocks(&self) -> usize {
        self.assignments.assigned_count()
    }

    /// Staged blocks held.
    pub fn staged_blocks(&self) -> usize {
        self.assignments.staged_count()
    }

    /// Pending blocks held.
    pub fn unassigned_blocks(&self) -> usize {
        self.assignments.unassigned_count()
    }

    /// Blocks that came from the cache at the last match or reacquire.
    pub fn prefix_matched_blocks(&self) -> usize {
        self.prefix_matched_blocks
    }

    /// Tokens the engine has to compute for a prefill: all but those the
    /// matched prefix covers.
    pub fn new_tokens_for_prefill(&self) -> usize {
        let cached = self.prefix_matched_blocks * self.sequence.block_size();
        self.total_tokens().saturating_sub(cached)
    }

    /// The tokens.
    pub fn sequence(&self) -> &BlockSequence {
        &self.sequence
    }

    /// The blocks.
    pub fn assignments(&self) -> &LogicalBlockAssignments<T> {
        &self.assignments
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.sequence.block_size()
    }

    /// The block table: every held block id in sequence order.
    pub fn page_indices(&self) -> Vec<u32> {
        self.assignments
            .all_block_ids()
            .map(|&id| id as u32)
            .collect()
    }

    /// Drops the newest pending blocks until at most `keep` remain;
    /// returns how many were dropped.
    pub fn drop_excess_unassigned(&mut self, keep: usize) -> usize {
        let mut dropped = 0;
        while self.assignments.unassigned_count() > keep {
            if self.assignments.pop_last_unassigned().is_none() {
                break;
            }
            dropped += 1;
        }
        dropped
    }

    pub(crate) fn assignments_mut(&mut self) -> &mut LogicalBlockAssignments<T> {
        &mut self.assignments
    }
}

impl<T: BlockMetadata> std::fmt::Debug for RequestSequence<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSequence")
            .field("num_input_tokens", &self.num_input_tokens)
            .field("generated_tokens", &self.generated_tokens)
            .field("max_output_tokens", &self.max_output_tokens)
            .field("total_tokens", &self.total_tokens())
            .field("prefix_matched_blocks", &self.prefix_matched_blocks)
            .field("assignments", &self.assignments)
            .finish()
    }
}

/// Why tokens could not be appended; nothing was.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// More tokens than the output budget has left.
    #[error("{requested} tokens requested, {remaining} left in the output budget")]
    BudgetExceeded {
        /// Tokens offered.
        requested: usize,
        /// Tokens the budget allows.
        remaining: usize,
    },
    /// The token sequence cannot grow that far.
    #[error(transparent)]
    Sequence(#[from] BlockSequenceError),
}
