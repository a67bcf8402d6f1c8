//! `ImmutableBlock::set_evict_on_reset` and the manager-wide default.

use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::manager::BlockManager;
use kvbm::testing::{chain, check, fill, manager};

fn gauges(m: &BlockManager<kvbm::testing::Device>) -> (i64, i64) {
    let g = m.metrics().snapshot();
    (g.reset_pool_size, g.inactive_pool_size)
}

#[test]
fn flagged_block_goes_to_the_free_pool_when_its_last_clone_drops() {
    for backend in Backend::ALL {
        let m = kvbm::testing::manager_with(backend, 4);
        let hashes = chain(1, 2);
        let mut held = fill(&m, &hashes);
        let other = held.pop().unwrap();
        let first = held.pop().unwrap();
        let clone = first.clone();
        // Set through one clone, seen by all: the flag is the block's.
        clone.set_evict_on_reset(true);
        drop(clone);
        assert_eq!(
            m.match_blocks(&hashes[..1]).len(),
            1,
            "still held: matchable"
        );
        drop(first);
        drop(other);
        assert_eq!(gauges(&m), (3, 1), "{backend:?}: one freed, one cached");
        assert!(m.match_blocks(&hashes[..1]).is_empty());
        assert!(!m.block_registry().is_registered(hashes[0]));
        assert_eq!(m.available_blocks(), 4);
        check(&m);
    }
}

#[test]
fn flag_can_be_cleared_and_stays_with_the_contents() {
    let m = manager(4);
    let hashes = chain(2, 1);
    let block = fill(&m, &hashes).pop().unwrap();
    block.set_evict_on_reset(true);
    block.set_evict_on_reset(false);
    drop(block);
    assert_eq!(gauges(&m), (3, 1));
    let revived = m.match_blocks(&hashes).pop().unwrap();
    revived.set_evict_on_reset(true);
    drop(revived);
    // A match of a cached block keeps the flag set on it before.
    assert_eq!(gauges(&m), (4, 0));
    check(&m);
}

#[test]
fn manager_default_frees_registered_blocks_unless_a_block_opts_out() {
    let m = kvbm::testing::builder(Backend::Lru)
        .block_count(4)
        .block_size(4)
        .with_default_reset_on_release(true)
        .build()
        .unwrap();
    let hashes = chain(3, 2);
    let mut held = fill(&m, &hashes);
    held[1].set_evict_on_reset(false);
    let kept = held.pop().unwrap();
    drop(held);
    assert_eq!(gauges(&m), (3, 0));
    drop(kept);
    assert_eq!(gauges(&m), (3, 1));
    // The cached block keeps its opt-out through a revival…
    let revived = m
        .match_blocks_scattered(&hashes[1..])
        .pop()
        .unwrap()
        .unwrap();
    drop(revived);
    assert_eq!(gauges(&m), (3, 1));
    // …and a reused slot starts over with the default.
    let fresh = fill(&m, &chain(9, 4));
    drop(fresh);
    assert_eq!(gauges(&m), (4, 0));
    check(&m);
}
