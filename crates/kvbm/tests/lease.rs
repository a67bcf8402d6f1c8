//! Guards keep their store alive without owning it: the store outlives its
//! manager while guards exist and is freed with the last of them.

use std::sync::Arc;

use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::testing::{builder, chain, fill, staged, store_alive};

#[test]
fn store_lives_until_the_last_guard_goes() {
    for backend in Backend::ALL {
        let m = builder(backend)
            .block_count(8)
            .block_size(4)
            .build()
            .unwrap();
        let metrics = Arc::clone(m.metrics());
        let hashes = chain(3, 3);
        let held = fill(&m, &hashes);
        let spare = m.allocate_blocks(2).unwrap();
        let staged = staged(&m, chain(9, 1)[0]);
        drop(m);
        assert!(store_alive(&metrics), "{backend:?}: guards keep the store");
        let clone = held[1].clone();
        drop(held);
        assert_eq!(clone.use_count(), 1);
        assert_eq!(metrics.snapshot().inflight_immutable, 1);
        drop(spare);
        drop(clone);
        assert!(store_alive(&metrics), "the staged block still holds it");
        assert_eq!(metrics.snapshot().inactive_pool_size, 3);
        drop(staged);
        assert!(
            !store_alive(&metrics),
            "{backend:?}: freed with the last guard"
        );
    }
}

#[test]
fn a_store_without_guards_is_freed_with_its_manager() {
    let m = builder(Backend::Lru)
        .block_count(4)
        .block_size(4)
        .build()
        .unwrap();
    let metrics = Arc::clone(m.metrics());
    drop(fill(&m, &chain(1, 2)));
    drop(m.allocate_blocks(4).unwrap());
    drop(m);
    assert!(!store_alive(&metrics));
}

#[test]
fn weak_blocks_keep_neither_the_store_nor_the_block() {
    let m = builder(Backend::Lineage)
        .block_count(2)
        .block_size(4)
        .build()
        .unwrap();
    let metrics = Arc::clone(m.metrics());
    let held = fill(&m, &chain(5, 1)).pop().unwrap();
    let weak = held.downgrade();
    drop(m);
    assert!(store_alive(&metrics), "the held block keeps the store");
    let again = weak.upgrade().expect("still held");
    drop(held);
    drop(again);
    assert!(
        !store_alive(&metrics),
        "a weak handle does not own its store"
    );
    assert!(weak.upgrade().is_none(), "the pool is gone");
}

#[test]
fn threads_dropping_the_last_guards_after_the_manager() {
    // Fewer rounds under miri, which checks each one far more closely.
    let rounds = if cfg!(miri) { 4 } else { 50 };
    for round in 0..rounds {
        let m = builder(Backend::Lru)
            .block_count(64)
            .block_size(4)
            .build()
            .unwrap();
        let metrics = Arc::clone(m.metrics());
        let hashes = chain(100 * round + 1, 16);
        let held = fill(&m, &hashes);
        let matched: Vec<_> = (0..4).map(|_| m.match_blocks(&hashes)).collect();
        drop(m);
        let mut all = vec![held];
        all.extend(matched);
        let threads: Vec<_> = all
            .into_iter()
            .map(|blocks| std::thread::spawn(move || drop(blocks)))
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!store_alive(&metrics), "round {round}");
    }
}

/// The last handle of a block dropped on one thread while another thread
/// matches the same block: the match either revives the cached block or
/// finds it still held, never a block on its way to the cache with no
/// handle. Run under miri in CI, which checks the interleavings it picks
/// for data races and use-after-free.
#[test]
fn last_drop_racing_a_match_of_the_same_block() {
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for round in 0..rounds {
        let m = Arc::new(
            builder(Backend::Lru)
                .block_count(2)
                .block_size(4)
                .build()
                .unwrap(),
        );
        let hash = chain(round + 1, 1);
        let held = fill(&m, &hash);
        let matcher = {
            let m = Arc::clone(&m);
            let hash = hash.clone();
            std::thread::spawn(move || {
                let found = m.match_blocks(&hash);
                assert_eq!(found.len(), 1, "registered blocks stay matchable");
                assert!(found[0].use_count() >= 1);
                found
            })
        };
        drop(held);
        let found = matcher.join().unwrap();
        kvbm::testing::check(&m);
        drop(found);
        kvbm::testing::check(&m);
        assert_eq!(
            m.metrics().snapshot().inactive_pool_size,
            1,
            "round {round}"
        );
    }
}

/// A weak upgrade racing an allocation that evicts the block and reuses its
/// slot for another hash: with one block in the pool, exactly one of them
/// gets it (the upgraded handle is kept until the end), and each sees its
/// own hash.
#[test]
fn weak_upgrade_racing_an_eviction_that_reuses_the_slot() {
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for round in 0..rounds {
        let m = Arc::new(
            builder(Backend::Lru)
                .block_count(1)
                .block_size(4)
                .build()
                .unwrap(),
        );
        let [old, new] = [chain(2 * round + 1, 1)[0], chain(2 * round + 2, 1)[0]];
        let weak = fill(&m, &[old]).pop().unwrap().downgrade();
        let upgrader = std::thread::spawn(move || weak.upgrade());
        let reused = m.allocate_blocks(1).map(|mut b| {
            let block = b.pop().unwrap();
            m.register_block(block.stage(new, 4).unwrap())
        });
        let upgraded = upgrader.join().unwrap();
        match (&upgraded, &reused) {
            (Some(u), None) => assert_eq!(u.sequence_hash(), old),
            (None, Some(r)) => assert_eq!(r.sequence_hash(), new),
            (None, None) => panic!("round {round}: the block was lost"),
            (Some(_), Some(_)) => panic!("round {round}: one block handed out twice"),
        }
        kvbm::testing::check(&m);
        drop((upgraded, reused));
        kvbm::testing::check(&m);
    }
}
