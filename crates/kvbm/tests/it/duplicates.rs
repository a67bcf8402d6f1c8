//! `BlockDuplicationPolicy::Allow`: a duplicate keeps its primary held, as
//! in kvbm-logical 1.6.1 — the primary (the copy matches return) is not
//! evictable while a duplicate lives, registering a duplicate revives a
//! cached primary, and freeing the last duplicate lets the primary go.

use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::manager::BlockManager;
use kvbm::testing::{chain, check, fill, manager, manager_with, Device};

/// (free, cached, held) as the gauges report them.
fn pools(m: &BlockManager<Device>) -> (i64, i64, i64) {
    let s = m.metrics().snapshot();
    (
        s.reset_pool_size,
        s.inactive_pool_size,
        s.inflight_immutable,
    )
}

#[test]
fn a_duplicate_keeps_its_primary_held() {
    for backend in Backend::ALL {
        let m = manager_with(backend, 4);
        let h = chain(1, 1)[0];
        let primary = fill(&m, &[h]).pop().unwrap();
        let primary_id = primary.block_id();
        let duplicate = fill(&m, &[h]).pop().unwrap();
        assert_ne!(duplicate.block_id(), primary_id);
        assert_eq!(primary.use_count(), 2, "{backend:?}: the duplicate's hold");
        assert_eq!(duplicate.use_count(), 1);
        drop(primary);
        assert_eq!(pools(&m), (2, 0, 2), "{backend:?}: primary still held");
        check(&m);
        // Nothing cached: the primary cannot be a victim.
        let (taken, evicted) = m.allocate_blocks_with_evictions(2).unwrap();
        assert!(evicted.is_empty());
        assert!(m.allocate_blocks(1).is_none(), "{backend:?}");
        drop(taken);
        // Matches return the primary, held by the duplicate and the match.
        let hit = m.match_blocks(&[h]).pop().unwrap();
        assert_eq!(hit.block_id(), primary_id);
        assert_eq!(hit.use_count(), 2);
        drop(hit);
        check(&m);
        // The last duplicate gone, the primary is cached and evictable.
        drop(duplicate);
        assert_eq!(pools(&m), (3, 1, 0), "{backend:?}");
        assert!(m.block_registry().is_registered(h));
        let (_all, evicted) = m.allocate_blocks_with_evictions(4).unwrap();
        assert_eq!(evicted, vec![h], "{backend:?}");
        check(&m);
    }
}

#[test]
fn registering_a_duplicate_revives_a_cached_primary() {
    for backend in Backend::ALL {
        let m = manager_with(backend, 4);
        let hashes = chain(2, 2);
        let held = fill(&m, &hashes);
        let primary_id = held[1].block_id();
        drop(held);
        assert_eq!(pools(&m), (2, 2, 0));
        let duplicate = fill(&m, &hashes[1..]).pop().unwrap();
        assert_ne!(duplicate.block_id(), primary_id);
        assert_eq!(pools(&m), (1, 1, 2), "{backend:?}: primary revived");
        check(&m);
        // Only the other cached block can be evicted.
        let (taken, evicted) = m.allocate_blocks_with_evictions(2).unwrap();
        assert_eq!(evicted, vec![hashes[0]], "{backend:?}");
        assert!(m.allocate_blocks(1).is_none());
        drop(taken);
        let hit = m.match_blocks(&hashes[1..]).pop().unwrap();
        assert_eq!(hit.block_id(), primary_id);
        drop((hit, duplicate));
        assert_eq!(pools(&m), (3, 1, 0), "{backend:?}: primary cached again");
        check(&m);
    }
}

#[test]
fn the_primary_stays_held_until_its_last_duplicate_drops() {
    let m = manager(6);
    let h = chain(3, 1)[0];
    let primary = fill(&m, &[h]).pop().unwrap();
    let primary_id = primary.block_id();
    let mut duplicates: Vec<_> = (0..3).map(|_| fill(&m, &[h]).pop().unwrap()).collect();
    // Two in one batch as well, both duplicates of the primary.
    duplicates.extend(fill(&m, &[h, h]));
    assert_eq!(duplicates.len(), 5);
    assert_eq!(primary.use_count(), 6);
    assert_eq!(m.metrics().snapshot().duplicate_blocks, 5);
    drop(primary);
    check(&m);
    while let Some(d) = duplicates.pop() {
        let clone = d.clone();
        drop(d);
        assert_eq!(pools(&m).1, 0, "a clone keeps the duplicate");
        drop(clone);
        let k = duplicates.len() as i64;
        let want = if k > 0 { (5 - k, 0, k + 1) } else { (5, 1, 0) };
        assert_eq!(pools(&m), want, "{k} duplicates left");
        check(&m);
    }
    assert_eq!(
        m.match_blocks(&[h]).pop().map(|b| b.block_id()),
        Some(primary_id)
    );
}

#[test]
fn the_primary_goes_when_its_duplicate_drops_last_and_it_is_flagged() {
    let m = manager(4);
    let h = chain(4, 1)[0];
    let primary = fill(&m, &[h]).pop().unwrap();
    let duplicate = fill(&m, &[h]).pop().unwrap();
    primary.set_evict_on_reset(true);
    drop(primary);
    assert!(m.block_registry().is_registered(h), "held by the duplicate");
    check(&m);
    drop(duplicate);
    assert_eq!(pools(&m), (4, 0, 0), "both freed");
    assert!(!m.block_registry().is_registered(h));
    assert!(m.match_blocks(&[h]).is_empty());
    check(&m);
}

#[test]
fn a_flagged_duplicate_still_lets_its_primary_be_cached() {
    let m = manager(4);
    let h = chain(5, 1)[0];
    drop(fill(&m, &[h]));
    let duplicate = fill(&m, &[h]).pop().unwrap();
    // The flag is the duplicate's own; a duplicate is freed anyway.
    duplicate.set_evict_on_reset(true);
    drop(duplicate);
    assert_eq!(pools(&m), (3, 1, 0));
    assert!(m.block_registry().is_registered(h));
    check(&m);
}

#[test]
fn a_weak_handle_on_a_duplicate_keeps_nothing_and_upgrades_while_it_lives() {
    let m = manager(4);
    let h = chain(6, 1)[0];
    drop(fill(&m, &[h]));
    let duplicate = fill(&m, &[h]).pop().unwrap();
    let weak = duplicate.downgrade();
    let again = weak.upgrade().expect("the duplicate lives");
    assert_eq!(again.block_id(), duplicate.block_id());
    drop((again, duplicate));
    assert!(weak.upgrade().is_none(), "a freed duplicate is gone");
    assert_eq!(pools(&m), (3, 1, 0));
    check(&m);
}

#[test]
fn reset_inactive_waits_for_duplicates_to_let_their_primary_go() {
    let m = manager(3);
    let h = chain(7, 1)[0];
    drop(fill(&m, &[h]));
    let duplicate = fill(&m, &[h]).pop().unwrap();
    assert!(
        m.reset_inactive_pool().is_err(),
        "primary and duplicate held"
    );
    assert!(m.block_registry().is_registered(h));
    drop(duplicate);
    assert!(m.reset_inactive_pool().is_ok());
    assert!(!m.block_registry().is_registered(h));
    check(&m);
}
