//! The vocabulary of [`SchedulableSequence`](super::SchedulableSequence):
//! its states, outcomes, events, errors and builder.

use std::sync::Arc;

use super::request::AppendError;
use super::SchedulableSequence;
use crate::blocks::BlockMetadata;
use crate::tokens::Token;

/// Where a sequence is in the schedule/apply protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceState {
    /// Nothing scheduled.
    Idle,
    /// A prefill chunk is scheduled.
    PrefillScheduled {
        /// Prompt tokens in the chunk.
        num_tokens: usize,
        /// Blocks the schedule allocated.
        blocks_allocated: usize,
    },
    /// A decode step is scheduled.
    DecodeScheduled {
        /// Blocks the schedule allocated.
        blocks_allocated: usize,
    },
    /// A speculative step is scheduled.
    SpeculativeScheduled {
        /// Draft tokens (after clamping to the output budget).
        num_tokens: usize,
        /// Blocks the schedule allocated.
        blocks_allocated: usize,
    },
}

/// What a decode or speculative step led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeOutcome {
    /// Keep decoding.
    Continue,
    /// The new tokens filled a block.
    BlockCompleted,
    /// The output budget is spent.
    MaxLength,
    /// Both: a block was filled and the budget is spent.
    BlockCompletedAndMaxLength,
}

impl DecodeOutcome {
    pub(crate) fn from_flags(block_completed: bool, max_length: bool) -> Self {
        match (block_completed, max_length) {
            (false, false) => Self::Continue,
            (true, false) => Self::BlockCompleted,
            (false, true) => Self::MaxLength,
            (true, true) => Self::BlockCompletedAndMaxLength,
        }
    }
}

/// A transition of a sequence, as reported to its [`SequenceDelegate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceEvent {
    /// The sequence was built.
    Created {
        /// Prompt tokens.
        num_input_tokens: usize,
        /// Output budget.
        max_output_tokens: usize,
        /// Tokens per block.
        block_size: usize,
    },
    /// Cached prefix blocks were taken.
    PrefixMatched {
        /// Blocks taken from the cache.
        blocks_matched: usize,
    },
    /// A prefill chunk was scheduled.
    PrefillScheduled {
        /// Prompt tokens in the chunk.
        num_tokens: usize,
        /// Blocks allocated for it.
        blocks_allocated: usize,
    },
    /// A prefill chunk was applied.
    PrefillApplied {
        /// Prompt tokens in the chunk.
        num_tokens: usize,
        /// Blocks registered by it.
        blocks_registered: usize,
        /// Whether the first generated token came with it.
        token_emitted: bool,
    },
    /// A decode step was scheduled.
    DecodeScheduled {
        /// Blocks allocated for it.
        blocks_allocated: usize,
    },
    /// A decode step was applied.
    DecodeApplied {
        /// The generated token.
        token: Token,
        /// Whether it filled a block.
        block_completed: bool,
    },
    /// A speculative step was scheduled.
    SpeculativeScheduled {
        /// Draft tokens.
        num_tokens: usize,
        /// Blocks allocated for them.
        blocks_allocated: usize,
    },
    /// A speculative step was applied.
    SpeculativeApplied {
        /// Draft tokens accepted.
        accepted: usize,
        /// Draft tokens scheduled.
        scheduled: usize,
        /// Blocks given back for the rejected drafts.
        blocks_released: usize,
    },
    /// A scheduled step was undone.
    ScheduleReverted {
        /// Blocks given back.
        blocks_released: usize,
    },
    /// Pending blocks were dropped on request.
    UnassignedDropped {
        /// Blocks given back.
        count: usize,
    },
    /// Every block was given back (preemption).
    Released,
    /// Blocks were taken again after a release.
    Reacquired {
        /// Blocks that came from the cache.
        prefix_matched: usize,
        /// Whether every block could be had.
        success: bool,
    },
}

/// Receives every [`SequenceEvent`] of a sequence, as it happens.
pub trait SequenceDelegate: Send + Sync {
    /// Called once per transition, after it took effect.
    fn on_event(&self, event: &SequenceEvent);
}

/// A delegate that ignores every event; the default.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopDelegate;

impl SequenceDelegate for NoopDelegate {
    fn on_event(&self, _event: &SequenceEvent) {}
}

/// A `schedule_*` call that was refused; the sequence is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Something is already scheduled.
    #[error("a step is already scheduled ({state:?})")]
    NotIdle {
        /// The current state.
        state: SequenceState,
    },
    /// The chunk runs past the prompt.
    #[error("prefill chunk of {num_tokens} at position {position} runs past the {num_input_tokens}-token prompt")]
    PrefillOverrun {
        /// Prompt tokens already prefilled.
        position: usize,
        /// Tokens in the chunk.
        num_tokens: usize,
        /// Prompt tokens.
        num_input_tokens: usize,
    },
    /// The whole prompt is prefilled.
    #[error("the prompt is already prefilled")]
    PrefillComplete,
    /// Decoding needs the whole prompt prefilled.
    #[error("prefill is at {position} of {num_input_tokens} prompt tokens")]
    PrefillNotComplete {
        /// Prompt tokens already prefilled.
        position: usize,
        /// Prompt tokens.
        num_input_tokens: usize,
    },
    /// The manager has too few free or cached blocks.
    #[error("{needed} more blocks are needed than the manager can give")]
    AllocationFailed {
        /// Blocks the step needs.
        needed: usize,
    },
    /// The output budget is spent.
    #[error("generation is complete ({generated} of {max_output} tokens)")]
    GenerationComplete {
        /// Tokens generated.
        generated: usize,
        /// The budget.
        max_output: usize,
    },
    /// Decoding needs exactly one token whose KV is not computed yet.
    #[error("expected {expected} token(s) without KV, found {actual}")]
    WrongDanglingCount {
        /// Always 1.
        expected: usize,
        /// Tokens past the KV position.
        actual: usize,
    },
}

/// An `apply_*`, `revert_schedule`, `release`, `reacquire` or
/// `append_tokens` call that was refused; the sequence is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The call does not fit the current state.
    #[error("expected state {expected}, found {actual:?}")]
    WrongState {
        /// The state the call needs.
        expected: &'static str,
        /// The current state.
        actual: SequenceState,
    },
    /// A token came with a chunk that does not finish the prompt.
    #[error("a generated token came with a prefill chunk that does not finish the prompt")]
    TokenOnNonFinalChunk,
    /// More tokens accepted than drafted.
    #[error("{accepted} tokens accepted, only {scheduled} scheduled")]
    AcceptedExceedsScheduled {
        /// Tokens accepted.
        accepted: usize,
        /// Tokens scheduled.
        scheduled: usize,
    },
    /// The chunk that finishes the prompt must bring the first generated
    /// token (unless the output budget is 0).
    #[error("the final prefill chunk needs the first generated token")]
    MissingTokenOnFinalChunk,
    /// More tokens than the output budget has left.
    #[error("{requested} tokens requested, {remaining} left in the output budget")]
    AppendExceedsRemaining {
        /// Tokens offered.
        requested: usize,
        /// Tokens the budget allows.
        remaining: usize,
    },
    /// The token sequence cannot grow that far (2^24 blocks).
    #[error(transparent)]
    Append(AppendError),
}

impl From<AppendError> for ApplyError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::BudgetExceeded {
                requested,
                remaining,
            } => ApplyError::AppendExceedsRemaining {
                requested,
                remaining,
            },
            other => ApplyError::Append(other),
        }
    }
}

/// Builds a [`SchedulableSequence`]: tokens, output budget and block size
/// are required, the delegate is optional.
#[derive(Default)]
pub struct SchedulableSequenceBuilder {
    tokens: Option<Vec<Token>>,
    max_output_tokens: Option<usize>,
    block_size: Option<u32>,
    delegate: Option<Arc<dyn SequenceDelegate>>,
}

/// Why a [`SchedulableSequenceBuilder`] could not build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulableSequenceBuilderError {
    /// A required setting was not given.
    #[error("`{0}` must be set")]
    UninitializedField(&'static str),
    /// The block size is 0.
    #[error("block_size must be at least 1")]
    ZeroBlockSize,
    /// The prompt fills more blocks than a lineage hash can number.
    #[error("the prompt is too long: {0}")]
    PromptTooLong(String),
}

impl SchedulableSequenceBuilder {
    /// The prompt tokens.
    pub fn tokens(mut self, tokens: Vec<Token>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The output budget.
    pub fn max_output_tokens(mut self, max_output_tokens: usize) -> Self {
        self.max_output_tokens = Some(max_output_tokens);
        self
    }

    /// Tokens per block; must match the manager's.
    pub fn block_size(mut self, block_size: u32) -> Self {
        self.block_size = Some(block_size);
        self
    }

    /// The receiver of the sequence's events (default: [`NoopDelegate`]).
    pub fn delegate(mut self, delegate: Arc<dyn SequenceDelegate>) -> Self {
        self.delegate = Some(delegate);
        self
    }

    /// The sequence, or which setting is missing or wrong.
    pub fn build<T: BlockMetadata>(
        self,
    ) -> Result<SchedulableSequence<T>, SchedulableSequenceBuilderError> {
        use SchedulableSequenceBuilderError as E;
        let tokens = self.tokens.ok_or(E::UninitializedField("tokens"))?;
        let max_output_tokens = self
            .max_output_tokens
            .ok_or(E::UninitializedField("max_output_tokens"))?;
        let block_size = self.block_size.ok_or(E::UninitializedField("block_size"))?;
        if block_size == 0 {
            return Err(E::ZeroBlockSize);
        }
        // Checked here so that `new` cannot panic on a long prompt.
        let blocks = tokens.len() / block_size as usize;
        if blocks as u64 >= crate::tokens::MAX_LINEAGE_POSITION {
            return Err(E::PromptTooLong(format!("{blocks} blocks")));
        }
        Ok(SchedulableSequence::new(
            tokens,
            max_output_tokens,
            block_size,
            self.delegate,
        ))
    }
}

impl std::fmt::Debug for SchedulableSequenceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulableSequenceBuilder")
            .field("tokens", &self.tokens.as_ref().map(Vec::len))
            .field("max_output_tokens", &self.max_output_tokens)
            .field("block_size", &self.block_size)
            .field("delegate", &self.delegate.is_some())
            .finish()
    }
}
