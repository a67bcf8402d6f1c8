//! `kvbm::sequence`: token sequences and the two assignment trackers.

use kvbm::blocks::BlockError;
use kvbm::sequence::{
    zip_assigned, zip_assigned_pending, BlockSequence, BlockSequenceError,
    ExternalBlockAssignments, LogicalBlockAssignmentError, LogicalBlockAssignments,
};
use kvbm::testing::{check, manager, Device};
use kvbm::tokens::TokenBlockSequence;
use kvbm::{BlockId, ImmutableBlock};

fn seq(blocks: usize) -> BlockSequence {
    BlockSequence::new((0..(blocks * 4) as u32).collect(), 4, None)
}

#[test]
fn block_sequence_cuts_hashes_and_grows() {
    let mut s = BlockSequence::new((0..10).collect(), 4, Some(7));
    assert_eq!(
        (s.blocks().len(), s.total_tokens(), s.block_size()),
        (2, 10, 4)
    );
    let reference = TokenBlockSequence::from_slice(&(0..10).collect::<Vec<_>>(), 4, Some(7));
    let expected: Vec<_> = reference
        .blocks()
        .iter()
        .map(|b| b.positional_lineage_hash())
        .collect();
    assert_eq!(s.all_sequence_hashes(), expected);
    assert_eq!(s.append_token(10).unwrap(), None);
    assert_eq!(s.append_token(11).unwrap(), Some(2));
    assert_eq!(s.extend_tokens((12..21).collect()).unwrap(), Some(3..5));
    assert_eq!(s.total_tokens(), 21);
    assert_eq!(s.sequence().current_block().tokens(), &[20]);
    assert!(matches!(
        BlockSequence::try_new(vec![1], 0, None),
        Err(BlockSequenceError::TokenExtension(_))
    ));
}

#[test]
fn external_pending_staged_assigned_positions() {
    let s = seq(3);
    let mut a = ExternalBlockAssignments::new(2);
    a.extend_block_ids([10, 11, 12, 13]).unwrap();
    assert_eq!(a.unassigned_count(), 4);
    assert_eq!(a.pending_positions(), 2..6);
    assert_eq!(a.get_pending_at_position(3), Some(11));
    // Offset 2 over a 3-block sequence: only position 2 is available.
    let s5 = seq(5);
    assert_eq!(a.stage_pending(s5.blocks()).unwrap(), 0..3);
    assert_eq!(a.staged_positions(), 2..5);
    assert_eq!(a.assigned_count(), 0);
    assert_eq!(a.commit_staged(), 0..3);
    assert_eq!(a.assigned_positions(), 2..5);
    assert_eq!(a.next_position(), 5);
    assert_eq!(
        a.get_at_position(2),
        Some((10, s5.all_sequence_hashes()[2]))
    );
    assert_eq!(a.get_at_position(1), None);
    assert_eq!(a.get_at_position(5), None);
    assert_eq!(a.unassigned_iter().collect::<Vec<_>>(), vec![13]);
    // Nothing more to pair: an empty range, nothing changes.
    assert_eq!(a.assign_pending(s.blocks()).unwrap(), 3..3);
    assert_eq!(a.take_unassigned(), vec![13]);
    assert_eq!(a.take_assigned().len(), 3);
    assert!(!a.contains(&10));
    assert_eq!(a.offset(), 2);
}

#[test]
fn external_extend_block_ids_rules() {
    let mut a = ExternalBlockAssignments::new(0);
    a.extend_block_ids([1, 2]).unwrap();
    // The full list again plus new ids: known prefix skipped.
    a.extend_block_ids([1, 2, 3]).unwrap();
    assert_eq!(a.unassigned_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    match a.extend_block_ids([1, 4, 2]) {
        Err(BlockSequenceError::OrderingViolation {
            known_id: 2,
            new_id: 4,
            known_index: 2,
            first_new_index: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.extend_block_ids([5, 5]),
        Err(BlockSequenceError::DuplicateBlockId { block_id: 5 })
    ));
    assert_eq!(a.unassigned_count(), 3, "failed calls change nothing");
    assert!(matches!(
        a.extend_assigned([
            (9, seq(1).all_sequence_hashes()[0]),
            (3, seq(1).all_sequence_hashes()[0])
        ]),
        Err(BlockSequenceError::DuplicateBlockId { block_id: 3 })
    ));
    assert_eq!(a.assigned_count(), 0);
}

#[test]
fn external_position_mismatch_stages_nothing() {
    // A tracker at offset 0 that already assigned one block pairs its next
    // id with position 1; handing it a sequence that starts elsewhere is
    // caught by the position encoded in the hash.
    let s = seq(3);
    let mut a = ExternalBlockAssignments::new(0);
    a.extend_assigned([(1, s.all_sequence_hashes()[0])])
        .unwrap();
    a.extend_block_ids([2, 3]).unwrap();
    let shifted: Vec<_> = s.blocks()[1..].to_vec();
    let mut wrong = vec![s.blocks()[0].clone()];
    wrong.extend(shifted.iter().rev().cloned());
    match a.stage_pending(&wrong) {
        Err(BlockSequenceError::PositionMismatch {
            expected: 1,
            actual: 2,
            block_id: 2,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!((a.staged_count(), a.unassigned_count()), (0, 2));
    assert_eq!(a.assign_pending(s.blocks()).unwrap(), 1..3);
}

#[test]
fn zips_pair_overlapping_positions() {
    let s = seq(4);
    let mut g1 = ExternalBlockAssignments::new(0);
    g1.extend_block_ids([10, 11, 12, 13]).unwrap();
    g1.assign_pending(s.blocks()).unwrap();
    let mut g2 = ExternalBlockAssignments::new(1);
    g2.extend_block_ids([20, 21]).unwrap();
    g2.assign_pending(&s.blocks()[..2]).unwrap();
    assert_eq!(zip_assigned(&g1, &g2), vec![(1, 11, 20)]);
    // Only position 1 was available to g2: block 21 is still pending.
    g2.extend_block_ids([20, 21, 22, 23, 24]).unwrap();
    assert_eq!(g2.pending_positions(), 2..6);
    assert_eq!(
        zip_assigned_pending(&g1, &g2),
        vec![(2, 12, 21), (3, 13, 22)]
    );
}

#[test]
fn logical_pipeline_extend_stage_register() {
    let m = manager(10);
    let s = seq(3);
    let blocks = m.allocate_blocks(4).unwrap();
    let ids: Vec<BlockId> = blocks.iter().map(|b| b.block_id()).collect();
    let mut la = LogicalBlockAssignments::new();
    assert_eq!(la.extend_blocks(blocks).unwrap(), 4);
    assert_eq!(la.stage(&s.blocks()[..2]).unwrap(), 2);
    assert_eq!((la.staged_count(), la.unassigned_count()), (2, 2));
    assert_eq!(la.register(&m), 2);
    assert_eq!(la.stage(&s.blocks()[2..]).unwrap(), 1);
    assert_eq!(la.register(&m), 1);
    assert_eq!(la.all_block_ids().copied().collect::<Vec<_>>(), ids);
    for (i, (id, block)) in la.assigned_iter().enumerate() {
        assert_eq!(*id, ids[i]);
        assert_eq!(block.sequence_hash(), s.all_sequence_hashes()[i]);
    }
    check(&m);
    assert_eq!(m.available_blocks(), 6);
    drop(la);
    // Registered blocks are cached, the leftover pending one is free.
    assert_eq!(m.available_blocks(), 10);
    assert_eq!(m.match_blocks(&s.all_sequence_hashes()).len(), 3);
    check(&m);
}

#[test]
fn logical_duplicates_hand_blocks_back() {
    let m = manager(10);
    let s = seq(2);
    let mut la = LogicalBlockAssignments::<Device>::new();
    la.extend_blocks(m.allocate_blocks(2).unwrap()).unwrap();
    la.stage(s.blocks()).unwrap();
    la.register(&m);
    let again: Vec<ImmutableBlock<Device>> = la.assigned_iter().map(|(_, b)| b.clone()).collect();
    match la.extend_assigned(again) {
        Err(LogicalBlockAssignmentError::DuplicateAssignedBlockId { blocks, .. }) => {
            assert_eq!(blocks.len(), 2)
        }
        other => panic!("{other:?}"),
    }
    let fresh = m.allocate_blocks(1).unwrap();
    let id = fresh[0].block_id();
    let twice = vec![fresh.into_iter().next().unwrap()];
    la.extend_blocks(twice).unwrap();
    assert!(la.contains(&id));
    assert_eq!(la.pop_last_unassigned().map(|e| e.0), Some(id));
    check(&m);
    assert_eq!(m.available_blocks(), 8);
}

#[test]
fn logical_stage_size_mismatch_returns_the_block() {
    let m = manager(10);
    let wide = BlockSequence::new((0..16).collect(), 8, None);
    let mut la = LogicalBlockAssignments::new();
    la.extend_blocks(m.allocate_blocks(3).unwrap()).unwrap();
    match la.stage(wide.blocks()) {
        Err(BlockError::BlockSizeMismatch {
            expected: 4,
            actual: 8,
            block,
        }) => drop(block),
        other => panic!("{other:?}"),
    }
    assert_eq!((la.staged_count(), la.unassigned_count()), (0, 2));
    check(&m);
    assert_eq!(m.available_blocks(), 8);
}

#[test]
fn logical_take_and_clear() {
    let m = manager(10);
    let s = seq(4);
    let mut la = LogicalBlockAssignments::new();
    la.extend_blocks(m.allocate_blocks(4).unwrap()).unwrap();
    la.stage(&s.blocks()[..1]).unwrap();
    la.register(&m);
    la.stage(&s.blocks()[1..2]).unwrap();
    assert_eq!(
        (
            la.assigned_count(),
            la.staged_count(),
            la.unassigned_count()
        ),
        (1, 1, 2)
    );
    let taken = la.take_staged();
    assert_eq!(taken.len(), 1);
    assert!(!la.contains(&taken[0].0));
    drop(taken);
    assert_eq!(la.take_unassigned().len(), 2);
    assert_eq!(la.take_assigned().len(), 1);
    assert!(la.is_empty());
    la.extend_blocks(m.allocate_blocks(2).unwrap()).unwrap();
    la.clear();
    assert!(la.is_empty());
    check(&m);
    assert_eq!(m.available_blocks(), 10);
}

#[test]
fn logical_register_under_reject_keys_by_the_kept_block() {
    use kvbm::blocks::BlockDuplicationPolicy;
    let m = kvbm::testing::builder(kvbm::eviction::EvictionPolicy::Lru)
        .block_count(8)
        .block_size(4)
        .duplication_policy(BlockDuplicationPolicy::Reject)
        .build()
        .unwrap();
    let s = seq(1);
    let mut first = LogicalBlockAssignments::new();
    first.extend_blocks(m.allocate_blocks(1).unwrap()).unwrap();
    first.stage(s.blocks()).unwrap();
    first.register(&m);
    let kept = *first.get_assigned(0).unwrap().0;
    let mut second = LogicalBlockAssignments::new();
    second.extend_blocks(m.allocate_blocks(1).unwrap()).unwrap();
    second.stage(s.blocks()).unwrap();
    second.register(&m);
    let (id, block) = second.get_assigned(0).unwrap();
    assert_eq!((*id, block.block_id()), (kept, kept));
    check(&m);
}
