//! [`SchedulableSequence`]: the schedule/apply protocol of an engine step.
//!
//! ```text
//!        schedule_prefill ─► PrefillScheduled ─┐
//! Idle ─ schedule_decode ──► DecodeScheduled ──┼─ apply_* / revert_schedule ─► Idle
//!        schedule_speculative ► SpeculativeScheduled ┘
//! ```
//!
//! Two positions drive it: `prefill_position` (prompt tokens prefilled) and
//! `kv_position` (tokens whose KV the engine has computed). Between decode
//! steps exactly one token — the one the model just produced — is past
//! `kv_position`. A block is registered (made matchable by other requests)
//! only once every one of its tokens is below `kv_position`: a block whose
//! last token has no KV yet would hand a wrong cache to whoever matched it.

use std::sync::Arc;

use super::request::RequestSequence;
use super::scheduled_types::{
    ApplyError, DecodeOutcome, NoopDelegate, SchedulableSequenceBuilder, ScheduleError,
    SequenceDelegate, SequenceEvent, SequenceState,
};
use crate::blocks::BlockMetadata;
use crate::manager::BlockManager;
use crate::tokens::Token;

/// A request driven through prefill, decode and speculative steps, each
/// scheduled (blocks reserved) and then applied or reverted.
///
/// Every refused call returns an error and leaves the sequence, and the
/// manager, as they were.
pub struct SchedulableSequence<T: BlockMetadata> {
    inner: RequestSequence<T>,
    state: SequenceState,
    prefill_position: usize,
    kv_position: usize,
    delegate: Arc<dyn SequenceDelegate>,
}

impl<T: BlockMetadata> SchedulableSequence<T> {
    /// A builder.
    pub fn builder() -> SchedulableSequenceBuilder {
        SchedulableSequenceBuilder::default()
    }

    /// A sequence for `tokens`; `delegate` defaults to [`NoopDelegate`].
    ///
    /// # Panics
    /// If `block_size` is 0 or the prompt fills 2^24 blocks; the
    /// [`builder`](Self::builder) reports these as errors.
    pub fn new(
        tokens: Vec<Token>,
        max_output_tokens: usize,
        block_size: u32,
        delegate: Option<Arc<dyn SequenceDelegate>>,
    ) -> Self {
        let inner = RequestSequence::new(tokens, max_output_tokens, block_size);
        let delegate = delegate.unwrap_or_else(|| Arc::new(NoopDelegate));
        delegate.on_event(&SequenceEvent::Created {
            num_input_tokens: inner.num_input_tokens(),
            max_output_tokens,
            block_size: block_size as usize,
        });
        Self {
            inner,
            state: SequenceState::Idle,
            prefill_position: 0,
            kv_position: 0,
            delegate,
        }
    }

    fn emit(&self, event: SequenceEvent) {
        self.delegate.on_event(&event);
    }

    /// Takes the cached blocks of the prompt's longest registered prefix;
    /// returns how many. Their tokens count as prefilled.
    ///
    /// At least one prompt token is always left to prefill, so that the
    /// prefill step produces the first output token even when the whole
    /// prompt is cached. Only a sequence that has not started prefilling
    /// matches (otherwise `Ok(0)`).
    pub fn match_and_add_prefix(
        &mut self,
        manager: &BlockManager<T>,
    ) -> Result<usize, ScheduleError> {
        self.require_idle()?;
        let fresh = self.prefill_position == 0 && self.inner.assignments().is_empty();
        let limit = self.inner.num_input_tokens().saturating_sub(1) / self.inner.block_size();
        let mut matched = 0;
        if fresh {
            // A fresh sequence holds no block, so nothing can collide and
            // the matched hashes are the sequence's own.
            matched = self.inner.match_prefix_up_to(limit, manager).unwrap_or(0);
            self.prefill_position = matched * self.inner.block_size();
            self.kv_position = self.prefill_position;
        }
        self.emit(SequenceEvent::PrefixMatched {
            blocks_matched: matched,
        });
        Ok(matched)
    }

    /// Blocks held, in any phase.
    fn held_blocks(&self) -> usize {
        self.inner.assigned_blocks() + self.inner.staged_blocks() + self.inner.unassigned_blocks()
    }

    /// Allocates what it takes to hold `tokens` tokens.
    fn reserve_for(
        &mut self,
        tokens: usize,
        manager: &BlockManager<T>,
    ) -> Result<usize, ScheduleError> {
        let needed = tokens
            .div_ceil(self.inner.block_size())
            .saturating_sub(self.held_blocks());
        if !self.inner.allocate_blocks(needed, manager) {
            return Err(ScheduleError::AllocationFailed { needed });
        }
        Ok(needed)
    }

    /// Schedules the next `num_tokens` prompt tokens (a chunk, or the rest
    /// of the prompt), allocating the blocks they need.
    pub fn schedule_prefill(
        &mut self,
        num_tokens: usize,
        manager: &BlockManager<T>,
    ) -> Result<(), ScheduleError> {
        self.require_idle()?;
        let num_input_tokens = self.inner.num_input_tokens();
        if self.is_prefill_complete() {
            return Err(ScheduleError::PrefillComplete);
        }
        let end = self
            .prefill_position
            .checked_add(num_tokens)
            .filter(|&end| end <= num_input_tokens)
            .ok_or(ScheduleError::PrefillOverrun {
                position: self.prefill_position,
                num_tokens,
                num_input_tokens,
            })?;
        let blocks_allocated = self.reserve_for(end, manager)?;
        self.state = SequenceState::PrefillScheduled {
            num_tokens,
            blocks_allocated,
        };
        self.emit(SequenceEvent::PrefillScheduled {
            num_tokens,
            blocks_allocated,
        });
        Ok(())
    }

    /// Applies the scheduled prefill chunk: its tokens now have KV, and the
    /// blocks they fill are registered. The chunk that finishes the prompt
    /// brings the first generated token (`Some`), the others `None`.
    pub fn apply_prefill(
        &mut self,
        token: Option<Token>,
        manager: &BlockManager<T>,
    ) -> Result<(), ApplyError> {
        let SequenceState::PrefillScheduled { num_tokens, .. } = self.state else {
            return Err(self.wrong_state("PrefillScheduled"));
        };
        let end = self.prefill_position + num_tokens;
        let is_final = end >= self.inner.num_input_tokens();
        match token {
            Some(_) if !is_final => return Err(ApplyError::TokenOnNonFinalChunk),
            None if is_final && self.inner.max_output_tokens() > 0 => {
                return Err(ApplyError::MissingTokenOnFinalChunk)
            }
            Some(_) if self.inner.remaining_tokens() == 0 => {
                return Err(ApplyError::AppendExceedsRemaining {
                    requested: 1,
                    remaining: 0,
                })
            }
            _ => {}
        }
        if let Some(token) = token {
            self.inner.try_append_token(token)?;
        }
        self.prefill_position = end;
        self.kv_position = end;
        let blocks_registered = self.register_computed(manager);
        self.state = SequenceState::Idle;
        self.emit(SequenceEvent::PrefillApplied {
            num_tokens,
            blocks_registered,
            token_emitted: token.is_some(),
        });
        Ok(())
    }

    /// Registers every held block whose tokens all have KV.
    fn register_computed(&mut self, manager: &BlockManager<T>) -> usize {
        let computed_blocks = self.kv_position / self.inner.block_size();
        self.inner.register_up_to(computed_blocks, manager)
    }

    /// Schedules one decode step: the model computes the KV of the newest
    /// token and produces the next. Allocates a block if the next token
    /// needs one.
    pub fn schedule_decode(&mut self, manager: &BlockManager<T>) -> Result<(), ScheduleError> {
        self.require_decodable()?;
        let blocks_allocated = self.reserve_for(self.inner.total_tokens() + 1, manager)?;
        self.state = SequenceState::DecodeScheduled { blocks_allocated };
        self.emit(SequenceEvent::DecodeScheduled { blocks_allocated });
        Ok(())
    }

    /// Applies the scheduled decode step with the token the model produced.
    pub fn apply_decode(
        &mut self,
        token: Token,
        manager: &BlockManager<T>,
    ) -> Result<DecodeOutcome, ApplyError> {
        let SequenceState::DecodeScheduled { .. } = self.state else {
            return Err(self.wrong_state("DecodeScheduled"));
        };
        let completed = self.inner.try_append_token(token)?;
        self.kv_position += 1;
        self.register_computed(manager);
        self.state = SequenceState::Idle;
        self.emit(SequenceEvent::DecodeApplied {
            token,
            block_completed: completed.is_some(),
        });
        Ok(DecodeOutcome::from_flags(
            completed.is_some(),
            self.inner.is_complete(),
        ))
    }

    /// Schedules a speculative step of up to `num_draft_tokens` draft
    /// tokens (clamped to the output budget), allocating the blocks they
    /// would need if all were accepted.
    pub fn schedule_speculative(
        &mut self,
        num_draft_tokens: usize,
        manager: &BlockManager<T>,
    ) -> Result<(), ScheduleError> {
        self.require_decodable()?;
        let num_tokens = num_draft_tokens.min(self.inner.remaining_tokens());
        let blocks_allocated = self.reserve_for(self.inner.total_tokens() + num_tokens, manager)?;
        self.state = SequenceState::SpeculativeScheduled {
            num_tokens,
            blocks_allocated,
        };
        self.emit(SequenceEvent::SpeculativeScheduled {
            num_tokens,
            blocks_allocated,
        });
        Ok(())
    }

    /// Applies the scheduled speculative step with the accepted tokens (a
    /// prefix of the drafts, possibly empty). The KV of the newest token
    /// before the step and of every accepted token but the last is now
    /// computed. Blocks reserved for rejected drafts go back, newest first.
    pub fn apply_speculative(
        &mut self,
        accepted: &[Token],
        manager: &BlockManager<T>,
    ) -> Result<DecodeOutcome, ApplyError> {
        let SequenceState::SpeculativeScheduled { num_tokens, .. } = self.state else {
            return Err(self.wrong_state("SpeculativeScheduled"));
        };
        if accepted.len() > num_tokens {
            return Err(ApplyError::AcceptedExceedsScheduled {
                accepted: accepted.len(),
                scheduled: num_tokens,
            });
        }
        let completed = self.inner.try_append_tokens(accepted)?;
        self.kv_position += accepted.len();
        self.register_computed(manager);
        // Keep the blocks the tokens occupy, plus room for the next token
        // unless generation is over.
        let next = usize::from(!self.inner.is_complete());
        let keep_blocks = (self.inner.total_tokens() + next).div_ceil(self.inner.block_size());
        let registered = self.inner.assigned_blocks() + self.inner.staged_blocks();
        let blocks_released = self
            .inner
            .drop_excess_unassigned(keep_blocks.saturating_sub(registered));
        self.state = SequenceState::Idle;
        self.emit(SequenceEvent::SpeculativeApplied {
            accepted: accepted.len(),
            scheduled: num_tokens,
            blocks_released,
        });
        Ok(DecodeOutcome::from_flags(
            completed.is_some(),
            self.inner.is_complete(),
        ))
    }

    /// Undoes the scheduled step: the blocks it allocated go back, newest
    /// first.
    pub fn revert_schedule(&mut self) -> Result<(), ApplyError> {
        let blocks = match self.state {
            SequenceState::PrefillScheduled {
                blocks_allocated, ..
            }
            | SequenceState::DecodeScheduled { blocks_allocated }
            | SequenceState::SpeculativeScheduled {
                blocks_allocated, ..
            } => blocks_allocated,
            SequenceState::Idle => return Err(self.wrong_state("any scheduled state")),
        };
        let blocks_released = self.pop_pending(blocks);
        self.state = SequenceState::Idle;
        self.emit(SequenceEvent::ScheduleReverted { blocks_released });
        Ok(())
    }

    /// Drops up to `count` pending blocks, newest first; returns how many.
    /// Does nothing (returns 0) unless the sequence is idle.
    pub fn drop_unassigned(&mut self, count: usize) -> usize {
        if self.state != SequenceState::Idle {
            return 0;
        }
        let count = self.pop_pending(count);
        if count > 0 {
            self.emit(SequenceEvent::UnassignedDropped { count });
        }
        count
    }

    fn pop_pending(&mut self, count: usize) -> usize {
        let assignments = self.inner.assignments_mut();
        (0..count)
            .take_while(|_| assignments.pop_last_unassigned().is_some())
            .count()
    }

    /// Gives every block back (preemption). Tokens and positions stay.
    pub fn release(&mut self) -> Result<(), ApplyError> {
        self.require_idle_to_apply()?;
        self.inner.release();
        self.emit(SequenceEvent::Released);
        Ok(())
    }

    /// After [`release`](Self::release): takes blocks again for every full
    /// block whose tokens had KV — the cached prefix from the cache, the
    /// rest freshly allocated and registered (their KV must be recomputed
    /// or loaded before the next step). `Ok(false)` when the manager has
    /// too few blocks or blocks are still held; nothing changes then.
    /// The next `schedule_*` allocates the blocks for the remaining tokens.
    pub fn reacquire(&mut self, manager: &BlockManager<T>) -> Result<bool, ApplyError> {
        self.require_idle_to_apply()?;
        let computed_blocks = self.kv_position / self.inner.block_size();
        let success = self.inner.reacquire_up_to(computed_blocks, manager);
        self.emit(SequenceEvent::Reacquired {
            prefix_matched: self.inner.prefix_matched_blocks(),
            success,
        });
        Ok(success)
    }

    /// Appends tokens without computing their KV (each adds one to
    /// [`tail_tokens`](Self::tail_tokens)); all or none.
    pub fn append_tokens(&mut self, tokens: &[Token]) -> Result<(), ApplyError> {
        self.require_idle_to_apply()?;
        self.inner.try_append_tokens(tokens)?;
        Ok(())
    }

    /// The protocol state.
    pub fn state(&self) -> SequenceState {
        self.state
    }

    /// Prompt tokens prefilled (or matched from the cache).
    pub fn prefill_position(&self) -> usize {
        self.prefill_position
    }

    /// Whether the whole prompt is prefilled.
    pub fn is_prefill_complete(&self) -> bool {
        self.prefill_position >= self.inner.num_input_tokens()
    }

    /// Tokens whose KV is computed.
    pub fn kv_position(&self) -> usize {
        self.kv_position
    }

    /// Tokens whose KV is not computed yet: 1 between decode steps.
    pub fn tail_tokens(&self) -> usize {
        self.inner.total_tokens().saturating_sub(self.kv_position)
    }

    /// The receiver of this sequence's events.
    pub fn delegate(&self) -> &Arc<dyn SequenceDelegate> {
        &self.delegate
    }

    /// The request underneath.
    pub fn inner(&self) -> &RequestSequence<T> {
        &self.inner
    }

    /// Tokens generated so far.
    pub fn generated_tokens(&self) -> usize {
        self.inner.generated_tokens()
    }

    /// The output budget.
    pub fn max_output_tokens(&self) -> usize {
        self.inner.max_output_tokens()
    }

    /// Prompt tokens.
    pub fn num_input_tokens(&self) -> usize {
        self.inner.num_input_tokens()
    }

    /// Prompt plus generated tokens.
    pub fn total_tokens(&self) -> usize {
        self.inner.total_tokens()
    }

    /// Tokens still allowed to be generated.
    pub fn remaining_tokens(&self) -> usize {
        self.inner.remaining_tokens()
    }

    /// Full token blocks in the sequence.
    pub fn num_blocks(&self) -> usize {
        self.inner.num_blocks()
    }

    /// Registered or matched blocks held.
    pub fn assigned_blocks(&self) -> usize {
        self.inner.assigned_blocks()
    }

    /// Staged blocks held.
    pub fn staged_blocks(&self) -> usize {
        self.inner.staged_blocks()
    }

    /// Pending blocks held.
    pub fn unassigned_blocks(&self) -> usize {
        self.inner.unassigned_blocks()
    }

    /// Blocks that came from the cache at the last match or reacquire.
    pub fn prefix_matched_blocks(&self) -> usize {
        self.inner.prefix_matched_blocks()
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.inner.block_size()
    }

    /// Whether the output budget is spent.
    pub fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    fn wrong_state(&self, expected: &'static str) -> ApplyError {
        ApplyError::WrongState {
            expected,
            actual: self.state,
        }
    }

    fn require_idle(&self) -> Result<(), ScheduleError> {
        match self.state {
            SequenceState::Idle => Ok(()),
            state => Err(ScheduleError::NotIdle { state }),
        }
    }

    fn require_idle_to_apply(&self) -> Result<(), ApplyError> {
        match self.state {
            SequenceState::Idle => Ok(()),
            _ => Err(self.wrong_state("Idle")),
        }
    }

    /// The preconditions of a decode or speculative step.
    fn require_decodable(&self) -> Result<(), ScheduleError> {
        self.require_idle()?;
        if !self.is_prefill_complete() {
            return Err(ScheduleError::PrefillNotComplete {
                position: self.prefill_position,
                num_input_tokens: self.inner.num_input_tokens(),
            });
        }
        if self.inner.is_complete() {
            return Err(ScheduleError::GenerationComplete {
                generated: self.inner.generated_tokens(),
                max_output: self.inner.max_output_tokens(),
            });
        }
        match self.tail_tokens() {
            1 => Ok(()),
            actual => Err(ScheduleError::WrongDanglingCount {
                expected: 1,
                actual,
            }),
        }
    }
}

impl<T: BlockMetadata> std::fmt::Debug for SchedulableSequence<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulableSequence")
            .field("state", &self.state)
            .field("prefill_position", &self.prefill_position)
            .field("kv_position", &self.kv_position)
            .field("inner", &self.inner)
            .finish()
    }
}
