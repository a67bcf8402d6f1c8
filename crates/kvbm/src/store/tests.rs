//! Store tests that need its test hooks.

use crate::manager::BlockManager;
use crate::SequenceHash;

use super::shares::MAX_SHARES;

/// Issue 7, item 3: the count must stay exact however many shares exist,
/// up to the limit where one more aborts (see
/// `shares::tests::one_share_past_the_limit_aborts`): a wrapped count
/// would let a held block be cached and handed out again.
#[test]
fn use_count_is_exact_near_the_share_limit() {
    let m = BlockManager::<()>::builder()
        .block_count(2)
        .block_size(4)
        .build()
        .unwrap();
    let hash = SequenceHash::root(1);
    let block = m.allocate_blocks(1).unwrap().pop().unwrap();
    let held = m.register_block(block.stage(hash, 4).unwrap());
    let id = held.block_id();
    m.store.pretend_leaked_shares(id, MAX_SHARES as i32 - 3);
    let clone = held.clone();
    let matched = m.match_blocks(&[hash]).pop().unwrap();
    assert_eq!(held.use_count(), MAX_SHARES as usize);
    drop(clone);
    assert_eq!(held.use_count(), MAX_SHARES as usize - 1);
    assert_eq!(m.allocate_blocks(2).map(|b| b.len()), None, "still held");
    m.validate().unwrap();
    m.store.pretend_leaked_shares(id, -(MAX_SHARES as i32 - 3));
    assert_eq!(held.use_count(), 2);
    drop((held, matched));
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 1);
    m.validate().unwrap();
}

/// Issue 7, item 7: `validate` notices a held block without a share (the
/// state a skipped last release leaves behind).
#[test]
fn validate_reports_a_held_block_without_shares() {
    let m = BlockManager::<()>::builder()
        .block_count(2)
        .block_size(4)
        .build()
        .unwrap();
    let block = m.allocate_blocks(1).unwrap().pop().unwrap();
    let held = m.register_block(block.stage(SequenceHash::root(1), 4).unwrap());
    m.validate().unwrap();
    m.store.pretend_leaked_shares(held.block_id(), -1);
    let err = m.validate().unwrap_err();
    assert!(err.to_string().contains("has no share"), "{err}");
    m.store.pretend_leaked_shares(held.block_id(), 1);
    drop(held);
    m.validate().unwrap();
}

/// `validate` notices a primary with fewer shares than the duplicates that
/// hold it (the state a duplicate's drop that forgot its primary leaves).
#[test]
fn validate_reports_a_primary_its_duplicates_do_not_hold() {
    let m = BlockManager::<()>::builder()
        .block_count(3)
        .block_size(4)
        .build()
        .unwrap();
    let hash = SequenceHash::root(1);
    let mut held = Vec::new();
    for _ in 0..3 {
        let block = m.allocate_blocks(1).unwrap().pop().unwrap();
        held.push(m.register_block(block.stage(hash, 4).unwrap()));
    }
    let primary = held.remove(0);
    let id = primary.block_id();
    drop(primary);
    m.validate().unwrap();
    m.store.pretend_leaked_shares(id, -1);
    let err = m.validate().unwrap_err();
    assert!(err.to_string().contains("2 live duplicates"), "{err}");
    m.store.pretend_leaked_shares(id, 1);
    drop(held);
    m.validate().unwrap();
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 1);
}
