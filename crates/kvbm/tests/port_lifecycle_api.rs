//! Client code written against kvbm-logical 1.6.1's sequence and
//! integrations API (and the rest of its root names), ported by changing
//! only the crate path. If this stops compiling, porting broke.

use kvbm as kvbm_logical;
use kvbm::tokens as dynamo_tokens;

use std::sync::Arc;

use dynamo_tokens::TokenBlock;
use kvbm_logical::manager::BlockManager;
use kvbm_logical::{
    zip_assigned, zip_assigned_pending, ApplyError, BlockSequence, BlockSequenceError,
    DecodeOutcome, ExternalBlockAssignments, KvbmSequenceHashProvider, LifecyclePin,
    LifecyclePinRef, LogicalBlockAssignmentError, LogicalBlockAssignments, LogicalLayoutHandle,
    ManagerId, NoopDelegate, RequestSequence, SchedulableSequence, SchedulableSequenceBuilder,
    ScheduleError, SequenceDelegate, SequenceEvent, SequenceState,
};

#[derive(Clone, Debug)]
struct G1;

fn manager() -> BlockManager<G1> {
    BlockManager::<G1>::builder()
        .block_count(16)
        .block_size(4)
        .with_lru_backend()
        .build()
        .unwrap()
}

#[test]
fn assignments_port_unchanged() -> Result<(), BlockSequenceError> {
    let seq = BlockSequence::new((0..12).collect(), 4, None);
    let mut g1 = ExternalBlockAssignments::new(0);
    g1.extend_block_ids(vec![10, 20, 30])?;
    let range = g1.assign_pending(seq.blocks())?;
    assert_eq!(range, 0..3);
    let mut g2 = ExternalBlockAssignments::new(0);
    g2.extend_block_ids(vec![1, 2, 3])?;
    let plan: Vec<(usize, usize, usize)> = zip_assigned_pending(&g1, &g2);
    assert_eq!(plan.len(), 3);
    assert!(zip_assigned(&g1, &g2).is_empty());
    let first: &TokenBlock = &seq.blocks()[0];
    assert_eq!(g1.get_assigned(0), Some((10, first.kvbm_sequence_hash())));

    let m = manager();
    let mut la: LogicalBlockAssignments<G1> = LogicalBlockAssignments::new();
    la.extend_blocks(m.allocate_blocks(3).unwrap()).unwrap();
    la.stage(seq.blocks()).unwrap();
    assert_eq!(la.register(&m), 3);
    let dup: Result<usize, LogicalBlockAssignmentError<G1>> =
        la.extend_assigned(vec![la.get_assigned(0).unwrap().1.clone()]);
    assert!(dup.is_err());
    Ok(())
}

#[test]
fn request_and_schedulable_sequences_port_unchanged() -> Result<(), Box<dyn std::error::Error>> {
    let m = manager();
    let mut req = RequestSequence::<G1>::new((0..8).collect(), 4, 4);
    let matched = req.match_and_add_prefix(&m).unwrap_or(0);
    assert!(req.allocate_blocks(req.num_blocks() - matched, &m));
    req.complete_and_register_pending(&m);
    assert_eq!(req.assigned_blocks(), req.num_blocks());
    req.release();
    assert!(req.reacquire(&m));

    struct Count(std::sync::atomic::AtomicUsize);
    impl SequenceDelegate for Count {
        fn on_event(&self, _: &SequenceEvent) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let count = Arc::new(Count(0.into()));
    let builder: SchedulableSequenceBuilder = SchedulableSequence::<G1>::builder();
    let mut seq: SchedulableSequence<G1> = builder
        .tokens((0..8).collect())
        .max_output_tokens(2)
        .block_size(4)
        .delegate(count.clone())
        .build()?;
    seq.match_and_add_prefix(&m)?;
    seq.schedule_prefill(8 - seq.prefill_position(), &m)?;
    seq.apply_prefill(Some(1), &m)?;
    while !seq.is_complete() {
        seq.schedule_decode(&m)?;
        let outcome: DecodeOutcome = seq.apply_decode(2, &m)?;
        if matches!(outcome, DecodeOutcome::MaxLength) {
            break;
        }
    }
    let e: ScheduleError = seq.schedule_decode(&m).unwrap_err();
    assert!(matches!(e, ScheduleError::GenerationComplete { .. }));
    let a: Result<(), ApplyError> = seq.release();
    a?;
    assert_eq!(seq.state(), SequenceState::Idle);
    assert!(count.0.load(std::sync::atomic::Ordering::Relaxed) >= 6);
    let _quiet = SchedulableSequence::<G1>::new(vec![1], 1, 4, Some(Arc::new(NoopDelegate)));
    Ok(())
}

#[test]
fn root_names_port_unchanged() {
    let m = manager();
    let block = m
        .register_blocks(vec![m
            .allocate_blocks(1)
            .unwrap()
            .pop()
            .unwrap()
            .stage(
                BlockSequence::new(vec![1, 2, 3, 4], 4, None).all_sequence_hashes()[0],
                4,
            )
            .unwrap()])
        .pop()
        .unwrap();
    block.set_evict_on_reset(false);
    let pin: LifecyclePinRef = block.pin();
    let id: ManagerId = pin.manager_id();
    assert_eq!(id, m.id());
    fn erased(_: &dyn LifecyclePin) {}
    struct P;
    impl LifecyclePin for P {
        fn block_id(&self) -> usize {
            0
        }
        fn sequence_hash(&self) -> kvbm_logical::SequenceHash {
            kvbm_logical::SequenceHash::root(0)
        }
        fn manager_id(&self) -> ManagerId {
            ManagerId::NULL
        }
        fn registration_handle(&self) -> kvbm_logical::registry::BlockRegistrationHandle {
            kvbm_logical::BlockRegistry::new().register_sequence_hash(self.sequence_hash())
        }
    }
    erased(&P);
    let scattered = m.match_blocks_scattered(&[block.sequence_hash()]);
    assert_eq!(scattered.len(), 1);
    assert_ne!(LogicalLayoutHandle::G1, LogicalLayoutHandle::G2);
}
