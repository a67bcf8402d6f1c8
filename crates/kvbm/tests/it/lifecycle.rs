//! The block lifecycle through the manager: allocate, stage, register,
//! release into the cache, match, evict, and every failure path.

use kvbm::manager::{BlockManager, BlockManagerResetError};
use kvbm::pools::BlockDuplicationPolicy;
use kvbm::testing::{chain, check, fill, manager, Device};
use kvbm::tokens::TokenBlock;
use kvbm::BlockError;

#[test]
fn allocation_is_all_or_nothing_and_drop_returns_blocks() {
    let m = manager(4);
    let blocks = m.allocate_blocks(3).unwrap();
    assert_eq!(blocks.len(), 3);
    let ids: Vec<_> = blocks.iter().map(|b| b.block_id()).collect();
    assert_eq!(ids, vec![0, 1, 2], "fresh pool hands out blocks in order");
    assert_eq!(m.available_blocks(), 1);
    assert!(m.allocate_blocks(2).is_none(), "only one block left");
    assert_eq!(m.available_blocks(), 1, "a failed allocation takes nothing");
    check(&m);
    drop(blocks);
    assert_eq!(m.available_blocks(), 4);
    let s = m.metrics().snapshot();
    assert_eq!(s.allocations, 3);
    assert_eq!(s.allocations_from_reset, 3);
    assert_eq!(s.reset_pool_size, 4);
    assert_eq!(s.inflight_mutable, 0);
    check(&m);
}

#[test]
fn zero_block_allocation_succeeds_empty() {
    let m = manager(2);
    assert_eq!(m.allocate_blocks(0).unwrap().len(), 0);
    check(&m);
}

#[test]
fn staging_with_the_wrong_size_returns_the_block() {
    let m = manager(2);
    let block = m.allocate_blocks(1).unwrap().pop().unwrap();
    let id = block.block_id();
    let err = block.stage(chain(1, 1)[0], 8).unwrap_err();
    assert!(err.to_string().contains("holds 4 tokens, got 8"));
    let BlockError::BlockSizeMismatch {
        expected, actual, ..
    } = &err;
    assert_eq!((*expected, *actual), (4, 8));
    let block = err.into_block();
    assert_eq!(block.block_id(), id);
    assert_eq!(m.metrics().snapshot().stagings, 0);
    assert_eq!(m.available_blocks(), 1);
    // Dropping the recovered block (or the error holding it) frees it.
    let err = block.stage(chain(1, 1)[0], 2).unwrap_err();
    drop(err);
    assert_eq!(m.available_blocks(), 2);
    check(&m);
}

#[test]
fn complete_uses_the_token_blocks_hash_and_checks_its_size() {
    let m = manager(2);
    let tokens = TokenBlock::new(vec![1, 2, 3, 4], 1337, None).unwrap();
    let block = m.allocate_blocks(1).unwrap().pop().unwrap();
    let complete = block.complete(&tokens).unwrap();
    assert_eq!(complete.sequence_hash(), tokens.positional_lineage_hash());
    assert_eq!(complete.block_size(), 4);
    let short = TokenBlock::new(vec![1, 2], 0, None).unwrap();
    let block = m.allocate_blocks(1).unwrap().pop().unwrap();
    assert!(block.complete(&short).is_err());
    assert_eq!(m.metrics().snapshot().stagings, 1);
    drop(complete);
    assert_eq!(m.available_blocks(), 2, "dropped complete blocks are freed");
    check(&m);
}

#[test]
fn reset_turns_a_complete_block_back_into_a_mutable_one() {
    let m = manager(1);
    let block = m.allocate_blocks(1).unwrap().pop().unwrap();
    let complete = block.stage(chain(5, 1)[0], 4).unwrap();
    let again = complete.reset();
    assert_eq!(again.block_id(), 0);
    assert_eq!(m.metrics().snapshot().inflight_mutable, 1);
    check(&m);
    drop(again);
    assert_eq!(m.available_blocks(), 1);
    check(&m);
}

#[test]
fn released_blocks_are_cached_and_matched_by_prefix() {
    let m = manager(8);
    let hashes = chain(10, 4);
    let held = fill(&m, &hashes);
    assert_eq!(held.len(), 4);
    for (b, h) in held.iter().zip(&hashes) {
        assert_eq!(b.sequence_hash(), *h);
        assert_eq!(b.use_count(), 1);
    }
    let s = m.metrics().snapshot();
    assert_eq!(
        (s.registrations, s.stagings, s.inflight_immutable),
        (4, 4, 4)
    );
    check(&m);
    drop(held);
    let s = m.metrics().snapshot();
    assert_eq!((s.inactive_pool_size, s.inflight_immutable), (4, 0));
    assert_eq!(m.available_blocks(), 8, "cached blocks count as available");
    check(&m);

    // Matching a longer chain stops at the first miss.
    let mut query = hashes.clone();
    query.push(chain(99, 1)[0]);
    let hits = m.match_blocks(&query);
    assert_eq!(hits.len(), 4);
    let s = m.metrics().snapshot();
    assert_eq!((s.match_hashes_requested, s.match_blocks_returned), (5, 4));
    assert_eq!((s.inactive_pool_size, s.inflight_immutable), (0, 4));
    check(&m);

    // A miss in the middle hides everything behind it.
    let gap = [hashes[0], chain(77, 1)[0], hashes[2]];
    let second = m.match_blocks(&gap);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].use_count(), 2, "shared with the first match");
    drop(second);
    assert_eq!(hits[0].use_count(), 1);
    drop(hits);
    check(&m);
}

#[test]
fn scan_finds_hits_at_any_position() {
    let m = manager(8);
    let hashes = chain(1, 6);
    drop(fill(&m, &[hashes[1], hashes[4]]));
    let found = m.scan_matches(
        &[hashes[0], hashes[1], hashes[1], hashes[4], hashes[5]],
        true,
    );
    assert_eq!(found.len(), 2);
    assert_eq!(found[&hashes[1]].sequence_hash(), hashes[1]);
    assert_eq!(found[&hashes[4]].use_count(), 1);
    let s = m.metrics().snapshot();
    assert_eq!((s.scan_hashes_requested, s.scan_blocks_returned), (5, 2));
    assert_eq!(s.inactive_pool_size, 0);
    check(&m);
    drop(found);
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 2);
    check(&m);
}

#[test]
fn allocation_evicts_the_least_recently_released_cached_block() {
    let m = manager(3);
    let a = chain(1, 1)[0];
    let b = chain(2, 1)[0];
    let c = chain(3, 1)[0];
    let ha = fill(&m, &[a]);
    let hb = fill(&m, &[b]);
    let hc = fill(&m, &[c]);
    drop(hb);
    drop(ha);
    drop(hc);
    // Release order b, a, c: b goes first, then a.
    let (blocks, evicted) = m.allocate_blocks_with_evictions(2).unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(evicted, vec![b, a]);
    assert_eq!(m.metrics().snapshot().evictions, 2);
    assert_eq!(m.metrics().snapshot().allocations_from_reset, 3);
    assert!(m.match_blocks(&[b]).is_empty());
    assert!(!m.block_registry().is_registered(b));
    assert_eq!(m.match_blocks(&[c]).len(), 1);
    check(&m);
}

#[test]
fn free_blocks_are_used_before_cached_ones() {
    let m = manager(3);
    let a = chain(1, 1)[0];
    drop(fill(&m, &[a]));
    let (blocks, evicted) = m.allocate_blocks_with_evictions(2).unwrap();
    assert!(evicted.is_empty());
    assert_eq!(m.match_blocks(&[a]).len(), 1);
    drop(blocks);
    check(&m);
}

#[test]
fn matched_blocks_are_not_evicted_while_held() {
    let m = manager(2);
    let hashes = chain(4, 2);
    drop(fill(&m, &hashes));
    let held = m.match_blocks(&hashes[..1]);
    let (blocks, evicted) = m.allocate_blocks_with_evictions(1).unwrap();
    assert_eq!(evicted, vec![hashes[1]]);
    assert!(
        m.allocate_blocks(1).is_none(),
        "the held block is not available"
    );
    drop((held, blocks));
    check(&m);
}

#[test]
fn reject_policy_returns_the_registered_block_and_frees_the_new_one() {
    let m = BlockManager::<Device>::builder()
        .block_count(4)
        .block_size(4)
        .duplication_policy(BlockDuplicationPolicy::Reject)
        .build()
        .unwrap();
    let h = chain(8, 1)[0];
    let first = fill(&m, &[h]).pop().unwrap();
    let second = fill(&m, &[h]).pop().unwrap();
    assert_eq!(second.block_id(), first.block_id());
    assert_eq!(first.use_count(), 2);
    assert_eq!(m.available_blocks(), 3, "the rejected block went back");
    let s = m.metrics().snapshot();
    assert_eq!(
        (s.registrations, s.registration_dedup, s.duplicate_blocks),
        (2, 1, 0)
    );
    drop((first, second));
    // Rejecting against a cached block revives it.
    let third = fill(&m, &[h]).pop().unwrap();
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 0);
    assert_eq!(third.use_count(), 1);
    check(&m);
}

#[test]
fn allow_policy_keeps_duplicates_and_frees_them_on_drop() {
    let m = manager(4);
    let h = chain(8, 1)[0];
    let primary = fill(&m, &[h]).pop().unwrap();
    let duplicate = fill(&m, &[h]).pop().unwrap();
    assert_ne!(duplicate.block_id(), primary.block_id());
    assert_eq!(duplicate.sequence_hash(), h);
    assert_eq!(m.metrics().snapshot().duplicate_blocks, 1);
    assert_eq!(m.metrics().snapshot().inflight_immutable, 2);
    check(&m);
    drop(duplicate);
    let s = m.metrics().snapshot();
    assert_eq!(
        (s.inactive_pool_size, s.reset_pool_size),
        (0, 3),
        "duplicate freed, not cached"
    );
    // Matches return the primary.
    let hit = m.match_blocks(&[h]).pop().unwrap();
    assert_eq!(hit.block_id(), primary.block_id());
    drop((hit, primary));
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 1);
    check(&m);
}

#[test]
fn weak_blocks_upgrade_while_held_or_cached_and_fail_after_eviction() {
    let m = manager(1);
    let h = chain(3, 1)[0];
    let strong = fill(&m, &[h]).pop().unwrap();
    let weak = strong.downgrade();
    assert_eq!(weak.sequence_hash(), h);
    let again = weak.upgrade().expect("held");
    assert_eq!(strong.use_count(), 2);
    drop((strong, again));
    check(&m);
    let revived = weak.upgrade().expect("cached");
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 0);
    drop(revived);
    let evictor = m.allocate_blocks(1).unwrap();
    assert!(weak.upgrade().is_none(), "evicted");
    // Even if the same hash comes back in the same slot.
    drop(evictor);
    let back = fill(&m, &[h]).pop().unwrap();
    assert!(weak.upgrade().is_none());
    assert!(back.downgrade().upgrade().is_some());
    check(&m);
}

#[test]
fn reset_inactive_pool_empties_the_cache_and_reports_held_blocks() {
    let m = manager(4);
    let hashes = chain(2, 3);
    let held = fill(&m, &hashes);
    let err = m.reset_inactive_pool().unwrap_err();
    assert_eq!(
        err,
        BlockManagerResetError::BlockCountMismatch {
            expected: 4,
            actual: 1
        }
    );
    drop(held);
    assert_eq!(m.metrics().snapshot().inactive_pool_size, 3);
    m.reset_inactive_pool().unwrap();
    assert!(m.match_blocks(&hashes).is_empty());
    assert_eq!(m.block_registry().registered_count(), 0);
    let s = m.metrics().snapshot();
    assert_eq!(
        (s.reset_pool_size, s.inactive_pool_size, s.evictions),
        (4, 0, 0)
    );
    check(&m);
}

#[test]
fn registry_follows_registration_and_eviction() {
    let m = manager(2);
    let hashes = chain(6, 2);
    let held = fill(&m, &hashes);
    let registry = m.block_registry();
    assert!(registry.is_registered(hashes[0]));
    assert_eq!(registry.registered_count(), 2);
    let handle = held[1].registration_handle();
    assert_eq!(handle.seq_hash(), hashes[1]);
    assert!(handle.is_from_registry(registry));
    assert!(handle.has_block::<Device>());
    assert!(!handle.has_block::<kvbm::testing::Host>());
    assert_eq!(
        registry
            .match_sequence_hash(hashes[1], false)
            .unwrap()
            .seq_hash(),
        hashes[1]
    );
    drop(held);
    assert!(
        registry.is_registered(hashes[1]),
        "cached blocks stay registered"
    );
    let _evictors = m.allocate_blocks(2).unwrap();
    assert!(!registry.is_registered(hashes[0]));
    // The caller's handle keeps the registration alive, but no block holds it.
    assert!(registry.is_registered(hashes[1]));
    assert!(!handle.has_block::<Device>());
    drop(handle);
    assert!(!registry.is_registered(hashes[1]));
    assert_eq!(registry.registered_count(), 0);
    check(&m);
}

#[test]
fn registering_another_managers_block_is_an_error() {
    let a = manager(2);
    let b = manager(2);
    let h = chain(1, 1)[0];
    let block = a.allocate_blocks(1).unwrap().pop().unwrap();
    let complete = block.stage(h, 4).unwrap();
    let err = b.try_register_block(complete).unwrap_err();
    assert_eq!(err.block_id, 0);
    assert!(err.to_string().contains("another BlockManager"), "{err}");
    assert!(!a.block_registry().is_registered(h));
    assert!(!b.block_registry().is_registered(h));
    // The block comes back whole and registers with its own manager.
    let held = a.register_block(err.blocks);
    assert!(a.block_registry().is_registered(h));
    drop(held);
    check(&a);
    check(&b);

    // A batch with one foreign block is refused as a whole.
    let own = b.allocate_blocks(1).unwrap().pop().unwrap();
    let foreign = a.allocate_blocks(1).unwrap().pop().unwrap();
    let batch = vec![
        own.stage(chain(2, 1)[0], 4).unwrap(),
        foreign.stage(h, 4).unwrap(),
    ];
    let err = b.try_register_blocks(batch).unwrap_err();
    assert_eq!(err.blocks.len(), 2);
    assert_eq!(b.block_registry().registered_count(), 0);
    drop(err);
    assert_eq!(a.available_blocks(), 2);
    assert_eq!(b.available_blocks(), 2);
    check(&a);
    check(&b);

    // The panicking form says why, and loses no block.
    let stray = a
        .allocate_blocks(1)
        .unwrap()
        .pop()
        .unwrap()
        .stage(h, 4)
        .unwrap();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.register_block(stray)))
        .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("another BlockManager"), "{message}");
    assert_eq!(a.available_blocks(), 2);
    check(&a);
}
