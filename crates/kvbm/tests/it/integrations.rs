//! `kvbm::integrations`: RequestSequence and the SchedulableSequence
//! protocol, step by step.

use std::sync::{Arc, Mutex};

use kvbm::integrations::{
    ApplyError, DecodeOutcome, RequestSequence, SchedulableSequence, ScheduleError,
    SequenceDelegate, SequenceEvent, SequenceState,
};
use kvbm::testing::{check, manager, Device};

type Seq = SchedulableSequence<Device>;

fn seq(prompt: u32, max_out: usize) -> Seq {
    Seq::builder()
        .tokens((0..prompt).collect())
        .max_output_tokens(max_out)
        .block_size(4)
        .build()
        .unwrap()
}

/// Every registered block of `s` holds the hash of the tokens at its
/// position and lies wholly below the KV position, and the page indices
/// list the assigned blocks. Also used by `lifecycle_props`.
pub(crate) fn check_blocks(s: &Seq) {
    let hashes = s.inner().sequence().all_sequence_hashes();
    let block_size = s.inner().sequence().block_size();
    for (i, (id, block)) in s.inner().assignments().assigned_iter().enumerate() {
        assert_eq!(
            block.sequence_hash(),
            hashes[i],
            "block {id} at position {i}"
        );
        assert!(
            (i + 1) * block_size <= s.kv_position(),
            "block {i} registered before its KV"
        );
    }
    let ids: Vec<u32> = s
        .inner()
        .assignments()
        .all_block_ids()
        .map(|&id| id as u32)
        .collect();
    assert_eq!(s.inner().page_indices(), ids);
}

#[test]
fn request_sequence_full_flow_with_prefix_hit_and_preemption() {
    let m = manager(16);
    let mut a = RequestSequence::<Device>::new((0..10).collect(), 4, 4);
    assert_eq!(a.match_and_add_prefix(&m).unwrap(), 0);
    assert!(a.allocate_blocks(3, &m));
    a.complete_and_register_pending(&m);
    assert_eq!((a.assigned_blocks(), a.unassigned_blocks()), (2, 1));
    assert_eq!(a.append_token(100), None);
    assert_eq!(a.append_token(101), Some(2));
    a.complete_and_register_pending(&m);
    assert_eq!(a.assigned_blocks(), 3);
    assert_eq!(a.page_indices(), vec![0, 1, 2]);
    assert_eq!(
        (a.generated_tokens(), a.remaining_tokens(), a.total_tokens()),
        (2, 2, 12)
    );

    // A second request with the same prompt shares two blocks.
    let mut b = RequestSequence::<Device>::new((0..10).collect(), 4, 4);
    assert_eq!(b.match_and_add_prefix(&m).unwrap(), 2);
    assert_eq!(b.new_tokens_for_prefill(), 2);
    assert_eq!(b.page_indices(), vec![0, 1]);

    // Preempt a: its blocks are cached, b keeps the shared ones.
    a.release();
    assert_eq!((a.assigned_blocks(), a.total_tokens()), (0, 12));
    check(&m);
    assert!(a.reacquire(&m));
    assert_eq!(a.prefix_matched_blocks(), 3);
    assert_eq!(a.page_indices(), vec![0, 1, 2]);
    assert!(!a.reacquire(&m), "blocks still held: refused");
    assert_eq!(a.assigned_blocks(), 3);

    assert!(a.try_append_token(1).is_ok());
    assert!(a.try_append_token(2).is_ok());
    assert!(a.is_complete());
    assert!(a.try_append_token(3).is_err());
    assert_eq!(a.total_tokens(), 14);
    drop((a, b));
    check(&m);
    assert_eq!(m.available_blocks(), 16);
}

#[test]
fn request_sequence_allocation_failure_takes_nothing() {
    let m = manager(2);
    let mut a = RequestSequence::<Device>::new((0..12).collect(), 1, 4);
    assert!(!a.allocate_blocks(3, &m));
    assert_eq!(a.unassigned_blocks(), 0);
    assert!(a.allocate_blocks(0, &m));
    assert!(!a.reacquire(&m));
    assert!(a.assignments().is_empty());
    assert_eq!(m.available_blocks(), 2);
    assert!(a.allocate_blocks(2, &m));
    assert_eq!(a.drop_excess_unassigned(1), 1);
    assert_eq!(m.available_blocks(), 1);
}

#[test]
fn prefill_decode_registers_only_computed_blocks() {
    let m = manager(16);
    let mut s = seq(8, 6);
    s.schedule_prefill(8, &m).unwrap();
    assert_eq!(
        s.state(),
        SequenceState::PrefillScheduled {
            num_tokens: 8,
            blocks_allocated: 2
        }
    );
    s.apply_prefill(Some(50), &m).unwrap();
    assert_eq!(
        (s.kv_position(), s.tail_tokens(), s.assigned_blocks()),
        (8, 1, 2)
    );
    check_blocks(&s);
    let mut outcomes = Vec::new();
    for t in 51..56 {
        s.schedule_decode(&m).unwrap();
        outcomes.push(s.apply_decode(t, &m).unwrap());
        assert_eq!(s.tail_tokens(), 1);
        check_blocks(&s);
    }
    use DecodeOutcome::*;
    // Tokens 10, 11, 12 (fills block 2), 13, 14 (the 6th and last output).
    assert_eq!(
        outcomes,
        vec![Continue, Continue, BlockCompleted, Continue, MaxLength]
    );
    assert_eq!(s.assigned_blocks(), 3);
    assert!(matches!(
        s.schedule_decode(&m),
        Err(ScheduleError::GenerationComplete {
            generated: 6,
            max_output: 6
        })
    ));
    check(&m);
}

#[test]
fn chunked_prefill_and_its_errors() {
    let m = manager(16);
    let mut s = seq(10, 2);
    assert!(matches!(
        s.schedule_decode(&m),
        Err(ScheduleError::PrefillNotComplete {
            position: 0,
            num_input_tokens: 10
        })
    ));
    assert!(matches!(
        s.schedule_prefill(11, &m),
        Err(ScheduleError::PrefillOverrun { .. })
    ));
    assert!(matches!(
        s.apply_prefill(None, &m),
        Err(ApplyError::WrongState { .. })
    ));
    s.schedule_prefill(6, &m).unwrap();
    assert!(matches!(
        s.schedule_prefill(1, &m),
        Err(ScheduleError::NotIdle { .. })
    ));
    assert!(matches!(
        s.apply_prefill(Some(1), &m),
        Err(ApplyError::TokenOnNonFinalChunk)
    ));
    s.apply_prefill(None, &m).unwrap();
    // Six tokens prefilled: block 1 is half computed and not registered.
    assert_eq!(
        (
            s.prefill_position(),
            s.assigned_blocks(),
            s.unassigned_blocks()
        ),
        (6, 1, 1)
    );
    s.schedule_prefill(4, &m).unwrap();
    assert!(matches!(
        s.apply_prefill(None, &m),
        Err(ApplyError::MissingTokenOnFinalChunk)
    ));
    s.apply_prefill(Some(99), &m).unwrap();
    assert!(s.is_prefill_complete());
    assert!(matches!(
        s.schedule_prefill(1, &m),
        Err(ScheduleError::PrefillComplete)
    ));
    check_blocks(&s);
    check(&m);
}

#[test]
fn allocation_failure_and_revert_leave_everything_as_it_was() {
    let m = manager(3);
    let mut s = seq(12, 4);
    s.schedule_prefill(12, &m).unwrap();
    s.apply_prefill(Some(7), &m).unwrap();
    assert_eq!(m.available_blocks(), 0);
    let before = (s.kv_position(), s.total_tokens(), s.inner().page_indices());
    // The 13th token needs a fourth block: refused, nothing changes.
    assert!(matches!(
        s.schedule_decode(&m),
        Err(ScheduleError::AllocationFailed { needed: 1 })
    ));
    assert_eq!(s.state(), SequenceState::Idle);
    assert_eq!(
        before,
        (s.kv_position(), s.total_tokens(), s.inner().page_indices())
    );
    // Preempt, then resume: the registered prompt is still cached.
    s.release().unwrap();
    assert_eq!(m.available_blocks(), 3);
    assert!(s.reacquire(&m).unwrap());
    assert_eq!(s.prefix_matched_blocks(), 3);
    assert!(matches!(
        s.schedule_decode(&m),
        Err(ScheduleError::AllocationFailed { .. })
    ));
    s.release().unwrap();
    drop(s);
    let mut t = seq(4, 4);
    t.schedule_prefill(4, &m).unwrap();
    let held = m.available_blocks();
    t.revert_schedule().unwrap();
    assert_eq!(m.available_blocks(), held + 1);
    assert_eq!(t.state(), SequenceState::Idle);
    assert!(matches!(
        t.revert_schedule(),
        Err(ApplyError::WrongState { .. })
    ));
    check(&m);
}

#[test]
fn speculative_keeps_accepted_and_frees_rejected() {
    let m = manager(16);
    let mut s = seq(4, 20);
    s.schedule_prefill(4, &m).unwrap();
    s.apply_prefill(Some(1), &m).unwrap();
    let free = m.available_blocks();
    s.schedule_speculative(9, &m).unwrap();
    // 5 tokens + 9 drafts = 14 tokens: 4 blocks, 3 more than held.
    assert_eq!(
        s.state(),
        SequenceState::SpeculativeScheduled {
            num_tokens: 9,
            blocks_allocated: 3
        }
    );
    assert!(matches!(
        s.apply_speculative(&[0; 10], &m),
        Err(ApplyError::AcceptedExceedsScheduled {
            accepted: 10,
            scheduled: 9
        })
    ));
    let outcome = s.apply_speculative(&[2, 3, 4], &m).unwrap();
    // 8 tokens: block 1 is full; the next token needs a third block.
    assert_eq!(outcome, DecodeOutcome::BlockCompleted);
    assert_eq!((s.tail_tokens(), s.total_tokens()), (1, 8));
    assert_eq!(s.inner().page_indices().len(), 3);
    assert_eq!(m.available_blocks(), free - 2);
    check_blocks(&s);
    // Clamped to the budget.
    s.schedule_speculative(100, &m).unwrap();
    assert!(matches!(
        s.state(),
        SequenceState::SpeculativeScheduled { num_tokens: 16, .. }
    ));
    s.apply_speculative(&[], &m).unwrap();
    assert_eq!(s.inner().page_indices().len(), 3);
    check(&m);
}

#[test]
fn whole_prompt_cached_still_leaves_a_token_to_prefill() {
    let m = manager(16);
    let mut first = seq(8, 1);
    first.schedule_prefill(8, &m).unwrap();
    first.apply_prefill(Some(9), &m).unwrap();
    drop(first);
    let mut s = seq(8, 2);
    assert_eq!(s.match_and_add_prefix(&m).unwrap(), 1);
    assert_eq!(s.prefill_position(), 4);
    s.schedule_prefill(4, &m).unwrap();
    s.apply_prefill(Some(10), &m).unwrap();
    assert_eq!(s.tail_tokens(), 1);
    check_blocks(&s);
    assert_eq!(s.match_and_add_prefix(&m).unwrap(), 0, "not fresh");
}

#[test]
fn append_tokens_and_drop_unassigned() {
    let m = manager(16);
    let mut s = seq(5, 3);
    s.schedule_prefill(5, &m).unwrap();
    assert_eq!(s.drop_unassigned(1), 0, "not idle");
    s.apply_prefill(Some(1), &m).unwrap();
    assert!(matches!(
        s.append_tokens(&[1, 2, 3]),
        Err(ApplyError::AppendExceedsRemaining {
            requested: 3,
            remaining: 2
        })
    ));
    s.append_tokens(&[2]).unwrap();
    assert_eq!(s.tail_tokens(), 2);
    assert!(matches!(
        s.schedule_decode(&m),
        Err(ScheduleError::WrongDanglingCount {
            expected: 1,
            actual: 2
        })
    ));
    // Idle again: the pending block for the tail can be dropped on request.
    let free = m.available_blocks();
    assert_eq!(s.unassigned_blocks(), 1);
    assert_eq!(s.drop_unassigned(10), 1);
    assert_eq!(m.available_blocks(), free + 1);
    check(&m);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<SequenceEvent>>);

impl SequenceDelegate for Recorder {
    fn on_event(&self, event: &SequenceEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[test]
fn delegate_sees_every_transition() {
    let m = manager(16);
    let rec = Arc::new(Recorder::default());
    let mut s = Seq::builder()
        .tokens((0..5).collect())
        .max_output_tokens(2)
        .block_size(4)
        .delegate(rec.clone())
        .build()
        .unwrap();
    s.match_and_add_prefix(&m).unwrap();
    s.schedule_prefill(5, &m).unwrap();
    s.apply_prefill(Some(5), &m).unwrap();
    s.schedule_decode(&m).unwrap();
    s.revert_schedule().unwrap();
    s.schedule_decode(&m).unwrap();
    s.apply_decode(6, &m).unwrap();
    s.release().unwrap();
    s.reacquire(&m).unwrap();
    // Failed calls report nothing.
    assert!(s.schedule_decode(&m).is_err());
    use SequenceEvent::*;
    assert_eq!(
        *rec.0.lock().unwrap(),
        vec![
            Created {
                num_input_tokens: 5,
                max_output_tokens: 2,
                block_size: 4
            },
            PrefixMatched { blocks_matched: 0 },
            PrefillScheduled {
                num_tokens: 5,
                blocks_allocated: 2
            },
            PrefillApplied {
                num_tokens: 5,
                blocks_registered: 1,
                token_emitted: true
            },
            DecodeScheduled {
                blocks_allocated: 0
            },
            ScheduleReverted { blocks_released: 0 },
            DecodeScheduled {
                blocks_allocated: 0
            },
            DecodeApplied {
                token: 6,
                block_completed: false
            },
            Released,
            Reacquired {
                prefix_matched: 1,
                success: true
            },
        ]
    );
}

#[test]
fn builder_reports_missing_settings() {
    use kvbm::integrations::SchedulableSequenceBuilderError as E;
    let missing = Seq::builder()
        .tokens(vec![1])
        .block_size(4)
        .build::<Device>();
    assert_eq!(
        missing.err(),
        Some(E::UninitializedField("max_output_tokens"))
    );
    let zero = Seq::builder()
        .tokens(vec![1])
        .max_output_tokens(1)
        .block_size(0)
        .build::<Device>();
    assert_eq!(zero.err(), Some(E::ZeroBlockSize));
}
