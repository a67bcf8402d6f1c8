//! What each eviction backend evicts, observed through the manager.

use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::testing::{chain, fill, manager_with};

#[test]
fn lru_evicts_the_root_of_a_chain_released_root_first() {
    let m = manager_with(Backend::Lru, 4);
    let hashes = chain(1, 4);
    drop(fill(&m, &hashes)); // the Vec drops root first
    let (_b, evicted) = m.allocate_blocks_with_evictions(1).unwrap();
    assert_eq!(evicted, vec![hashes[0]]);
    assert!(
        m.match_blocks(&hashes).is_empty(),
        "the whole prefix is lost"
    );
}

#[test]
fn lineage_evicts_leaves_and_keeps_the_prefix_usable() {
    let m = manager_with(Backend::Lineage, 4);
    let hashes = chain(1, 4);
    drop(fill(&m, &hashes));
    let (_b, evicted) = m.allocate_blocks_with_evictions(2).unwrap();
    assert_eq!(evicted, vec![hashes[3], hashes[2]], "deepest first");
    assert_eq!(m.match_blocks(&hashes).len(), 2, "the root half survives");
    m.validate().unwrap();
}

#[test]
fn lineage_prefers_the_oldest_leaf_and_then_an_old_chain_over_a_newer_leaf() {
    let m = manager_with(Backend::Lineage, 4);
    let a = chain(1, 2);
    let b = chain(50, 2);
    drop(fill(&m, &a));
    drop(fill(&m, &b));
    let (_x, evicted) = m.allocate_blocks_with_evictions(1).unwrap();
    assert_eq!(evicted, vec![a[1]], "the oldest leaf across chains");
    // Now a[0] is a leaf, released before b[1]: it goes next rather than
    // queueing behind the newer chain.
    let (_y, evicted) = m.allocate_blocks_with_evictions(1).unwrap();
    assert_eq!(evicted, vec![a[0]]);
    assert_eq!(m.match_blocks(&b).len(), 2, "the newer chain is whole");
    m.validate().unwrap();
}

#[test]
fn fifo_evicts_in_release_order() {
    let m = manager_with(Backend::Fifo, 3);
    let hs: Vec<_> = (0..3).map(|i| chain(10 * i + 1, 1)[0]).collect();
    let held: Vec<_> = hs.iter().map(|h| fill(&m, &[*h])).collect();
    let mut held = held;
    let second = held.remove(1);
    drop(second);
    drop(held);
    let (_b, evicted) = m.allocate_blocks_with_evictions(3).unwrap();
    assert_eq!(evicted, vec![hs[1], hs[0], hs[2]]);
}

#[test]
fn multi_lru_keeps_frequently_used_blocks() {
    let m = manager_with(Backend::MULTI_LRU, 2);
    let hot = chain(1, 1)[0];
    let cold = chain(2, 1)[0];
    drop(fill(&m, &[hot]));
    for _ in 0..10 {
        drop(m.match_blocks(&[hot]));
    }
    assert!(
        m.block_registry().count(hot) >= 10,
        "registration and matches are counted"
    );
    drop(fill(&m, &[cold])); // released after the hot block
    let (_b, evicted) = m.allocate_blocks_with_evictions(1).unwrap();
    assert_eq!(evicted, vec![cold], "the cold tier goes first");
    assert_eq!(m.match_blocks(&[hot]).len(), 1);
}

#[test]
fn registration_and_matches_touch_the_frequency_tracker() {
    let m = manager_with(Backend::MULTI_LRU, 4);
    let hashes = chain(7, 2);
    let r = m.block_registry();
    assert_eq!(r.count(hashes[0]), 0);
    let held = fill(&m, &hashes);
    assert_eq!(r.count(hashes[0]), 1);
    drop(m.match_blocks(&hashes[..1]));
    assert_eq!(r.count(hashes[0]), 2);
    assert_eq!(r.count(hashes[1]), 1);
    drop(m.scan_matches(&hashes, false));
    assert_eq!(r.count(hashes[1]), 1, "scan without touch counts nothing");
    drop(m.scan_matches(&hashes, true));
    assert_eq!(r.count(hashes[1]), 2);
    drop(held);
}

/// A policy written outside the crate: most recently released first.
struct Mru {
    stack: Vec<kvbm::BlockId>,
}

impl kvbm::eviction::InactiveBackend for Mru {
    fn name(&self) -> &'static str {
        "mru"
    }
    fn insert(&mut self, block: kvbm::BlockId, _hash: kvbm::SequenceHash) {
        self.stack.push(block);
    }
    fn remove(&mut self, block: kvbm::BlockId, _hash: kvbm::SequenceHash) {
        self.stack.retain(|b| *b != block);
    }
    fn pop_victim(&mut self) -> Option<kvbm::BlockId> {
        self.stack.pop()
    }
    fn len(&self) -> usize {
        self.stack.len()
    }
    fn drain(&mut self, sink: &mut dyn FnMut(kvbm::BlockId)) {
        self.stack.drain(..).for_each(sink);
    }
}

#[test]
fn a_custom_backend_plugs_into_the_builder() {
    let m = kvbm::BlockManager::<kvbm::testing::Device>::builder()
        .block_count(3)
        .block_size(4)
        .with_inactive_backend(|blocks| {
            Box::new(Mru {
                stack: Vec::with_capacity(blocks),
            })
        })
        .build()
        .unwrap();
    assert_eq!(m.eviction_policy(), "mru");
    let hs: Vec<_> = (0..3).map(|i| chain(10 * i + 1, 1)[0]).collect();
    for h in &hs {
        drop(fill(&m, &[*h]));
    }
    let (_b, evicted) = m.allocate_blocks_with_evictions(2).unwrap();
    assert_eq!(evicted, vec![hs[2], hs[1]]);
    m.validate().unwrap();
    assert_eq!(m.match_blocks(&hs[..1]).len(), 1);
}
