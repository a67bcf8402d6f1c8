//! Request lifecycles on top of the manager: what an inference engine's
//! scheduler calls instead of allocating blocks by hand.
//!
//! - [`RequestSequence`] ties a request's tokens ([`BlockSequence`](crate::sequence::BlockSequence))
//!   to its blocks ([`LogicalBlockAssignments`](crate::sequence::LogicalBlockAssignments)):
//!   prefix matching, allocation, registration, preemption and resumption,
//!   each a separate call.
//! - [`SchedulableSequence`] adds the engine's step protocol on top: every
//!   prefill chunk, decode step or speculative step is *scheduled* (blocks
//!   reserved) and later *applied* (tokens appended, finished blocks
//!   registered) or *reverted* (reserved blocks given back). Calls out of
//!   order are errors that change nothing.
//!
//! ```
//! use kvbm::integrations::{DecodeOutcome, SchedulableSequence};
//! use kvbm::manager::BlockManager;
//!
//! let manager = BlockManager::<()>::builder().block_count(16).block_size(4).build()?;
//! let mut seq = SchedulableSequence::<()>::builder()
//!     .tokens((0..10).collect())
//!     .max_output_tokens(3)
//!     .block_size(4)
//!     .build()?;
//! seq.schedule_prefill(10, &manager)?;
//! seq.apply_prefill(Some(100), &manager)?; // the model's first token
//! assert_eq!((seq.kv_position(), seq.tail_tokens()), (10, 1));
//! seq.schedule_decode(&manager)?;
//! // Token 101 is the 12th: it fills the third block, whose KV is complete
//! // (and the block registered) once the next step has run.
//! assert_eq!(seq.apply_decode(101, &manager)?, DecodeOutcome::BlockCompleted);
//! assert_eq!(seq.assigned_blocks(), 2);
//! seq.schedule_decode(&manager)?; // allocates a fourth block for token 13
//! assert_eq!(seq.apply_decode(102, &manager)?, DecodeOutcome::MaxLength);
//! assert_eq!(seq.assigned_blocks(), 3);
//! assert_eq!(seq.inner().page_indices(), vec![0, 1, 2, 3]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod request;
mod scheduled;
mod scheduled_types;

pub use request::{AppendError, RequestSequence};
pub use scheduled::SchedulableSequence;
pub use scheduled_types::{
    ApplyError, DecodeOutcome, NoopDelegate, SchedulableSequenceBuilder,
    SchedulableSequenceBuilderError, ScheduleError, SequenceDelegate, SequenceEvent, SequenceState,
};
