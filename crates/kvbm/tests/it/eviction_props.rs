//! Property tests: every backend against a plain Vec/BTreeMap model.

use std::collections::HashMap;
use std::sync::Arc;

use kvbm::eviction::{
    AdmissionBackend, FifoBackend, InactiveBackend, LineageBackend, LruBackend, MultiLruBackend,
};
use kvbm::tinylfu::FrequencyTracker;
use kvbm::{BlockId, SequenceHash};
use parking_lot::Mutex;
use proptest::prelude::*;

const BLOCKS: usize = 12;

#[derive(Debug, Clone)]
enum Op {
    /// Insert the block if it is not cached, else remove (revive) it.
    Toggle(usize),
    Pop,
    /// Set the block's frequency count (multi-LRU only).
    Count(usize, u32),
    Drain,
}

fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0..BLOCKS).prop_map(Op::Toggle),
        3 => Just(Op::Pop),
        2 => (0..BLOCKS, 0u32..=16).prop_map(|(b, n)| Op::Count(b, n)),
        1 => Just(Op::Drain),
    ];
    prop::collection::vec(op, 1..max_len)
}

fn h(block: usize) -> SequenceHash {
    SequenceHash::root(block as u64 * 31 + 7)
}

/// Checks a backend's len and invariants after a step.
fn check(backend: &dyn InactiveBackend, model_len: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(backend.validate(), Ok(()));
    prop_assert_eq!(backend.len(), model_len);
    prop_assert_eq!(backend.is_empty(), model_len == 0);
    Ok(())
}

/// Release-order backends (LRU, FIFO): the model is the release queue.
fn run_release_order(
    mut backend: Box<dyn InactiveBackend>,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut queue: Vec<BlockId> = Vec::new();
    for op in ops {
        match *op {
            Op::Toggle(b) => match queue.iter().position(|&x| x == b) {
                Some(i) => {
                    queue.remove(i);
                    backend.remove(b, h(b));
                }
                None => {
                    queue.push(b);
                    backend.insert(b, h(b));
                }
            },
            Op::Pop => {
                let want = (!queue.is_empty()).then(|| queue.remove(0));
                prop_assert_eq!(backend.pop_victim(), want);
            }
            Op::Count(..) => {}
            Op::Drain => {
                let mut got = Vec::new();
                backend.drain(&mut |id| got.push(id));
                prop_assert_eq!(got, std::mem::take(&mut queue));
            }
        }
        check(backend.as_ref(), queue.len())?;
    }
    Ok(())
}

/// Order-free backends (admission): the model is the set of cached blocks;
/// every victim must be one of them and a drain must return all of them.
/// `hash_of` names each block's hash, so chains exercise the tail checks.
fn run_membership(
    mut backend: Box<dyn InactiveBackend>,
    hash_of: &dyn Fn(BlockId) -> SequenceHash,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut cached: Vec<BlockId> = Vec::new();
    for op in ops {
        match *op {
            Op::Toggle(b) => match cached.iter().position(|&x| x == b) {
                Some(i) => {
                    cached.remove(i);
                    backend.remove(b, hash_of(b));
                }
                None => {
                    cached.push(b);
                    backend.insert(b, hash_of(b));
                }
            },
            Op::Pop => match backend.pop_victim() {
                Some(v) => {
                    let i = cached.iter().position(|&x| x == v);
                    prop_assert!(i.is_some(), "victim {} was not cached", v);
                    if let Some(i) = i {
                        cached.remove(i);
                    }
                }
                None => prop_assert!(cached.is_empty(), "no victim among {:?}", cached),
            },
            Op::Count(..) => {}
            Op::Drain => {
                let mut got = Vec::new();
                backend.drain(&mut |id| got.push(id));
                got.sort_unstable();
                cached.sort_unstable();
                prop_assert_eq!(got, std::mem::take(&mut cached));
            }
        }
        check(backend.as_ref(), cached.len())?;
    }
    Ok(())
}

/// Counts set directly by the test.
#[derive(Default)]
struct FixedCounts(Mutex<HashMap<u128, u32>>);

impl FrequencyTracker<u128> for FixedCounts {
    fn touch(&self, key: u128) {
        *self.0.lock().entry(key).or_default() += 1;
    }
    fn count(&self, key: u128) -> u32 {
        self.0.lock().get(&key).copied().unwrap_or(0)
    }
}

fn run_multi_lru(thresholds: [u8; 3], ops: &[Op]) -> Result<(), TestCaseError> {
    let counts = Arc::new(FixedCounts::default());
    let tracker = counts.clone() as Arc<dyn FrequencyTracker<u128>>;
    let mut backend = MultiLruBackend::new(BLOCKS, thresholds, tracker)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut tiers: [Vec<BlockId>; 4] = Default::default();
    for op in ops {
        match *op {
            Op::Toggle(b) => {
                let found = tiers
                    .iter_mut()
                    .find_map(|t| t.iter().position(|&x| x == b).map(|i| t.remove(i)));
                if found.is_some() {
                    backend.remove(b, h(b));
                } else {
                    let n = counts.count(h(b).as_u128());
                    let tier = thresholds.iter().filter(|&&t| n >= u32::from(t)).count();
                    tiers[tier].push(b);
                    backend.insert(b, h(b));
                }
            }
            Op::Pop => {
                let want = tiers
                    .iter_mut()
                    .find(|t| !t.is_empty())
                    .map(|t| t.remove(0));
                prop_assert_eq!(backend.pop_victim(), want);
            }
            Op::Count(b, n) => {
                counts.0.lock().insert(h(b).as_u128(), n);
            }
            Op::Drain => {
                let mut got = Vec::new();
                backend.drain(&mut |id| got.push(id));
                let want: Vec<_> = tiers.iter_mut().flat_map(std::mem::take).collect();
                prop_assert_eq!(got, want);
            }
        }
        let lens = tiers.each_ref().map(Vec::len);
        prop_assert_eq!(backend.tier_lens(), lens);
        check(&backend, lens.iter().sum())?;
    }
    Ok(())
}

/// The lineage model: relations recomputed from scratch after every step,
/// straight from the definitions in the backend's docs.
struct LineageModel {
    hashes: Vec<SequenceHash>,
    /// Per block: `None` if not cached, else whether it holds its key.
    cached: Vec<Option<bool>>,
    /// Per block: when it was released (`None` while not cached).
    released: Vec<Option<u64>>,
    clock: u64,
    /// Keys of blocks that left the cache while they had children, with
    /// their parent keys: they stay in the tree until their last child
    /// goes.
    ghosts: Vec<(Key, Option<Key>)>,
}

/// A block's `(position, fragment)` key.
type Key = (u64, u64);

fn own_key(h: SequenceHash) -> Key {
    (
        h.position(),
        h.parent_fragment_for_child_position(h.position() + 1),
    )
}

fn parent_key(h: SequenceHash) -> Option<Key> {
    (h.position() > 0).then(|| (h.position() - 1, h.parent_hash_fragment()))
}

impl LineageModel {
    fn new(hashes: Vec<SequenceHash>) -> Self {
        let n = hashes.len();
        Self {
            hashes,
            cached: vec![None; n],
            released: vec![None; n],
            clock: 0,
            ghosts: Vec::new(),
        }
    }

    /// Cached blocks and ghosts whose parent key is `key`.
    fn children(&self, key: Key) -> usize {
        let blocks = (0..self.hashes.len())
            .filter(|&c| self.cached[c].is_some() && parent_key(self.hashes[c]) == Some(key))
            .count();
        blocks + self.ghosts.iter().filter(|g| g.1 == Some(key)).count()
    }

    fn is_leaf(&self, b: usize) -> bool {
        match self.cached[b] {
            None => false,
            Some(false) => true,
            Some(true) => self.children(own_key(self.hashes[b])) == 0,
        }
    }

    /// Ghosts without children go, which may leave their parents' ghosts
    /// without children.
    fn prune(&mut self) {
        while let Some(i) = (0..self.ghosts.len()).find(|&i| self.children(self.ghosts[i].0) == 0) {
            self.ghosts.remove(i);
        }
    }

    fn insert(&mut self, b: usize) {
        let key = own_key(self.hashes[b]);
        let taken = (0..self.hashes.len())
            .any(|o| self.cached[o] == Some(true) && own_key(self.hashes[o]) == key);
        if !taken {
            // The block takes its key back from its ghost.
            self.ghosts.retain(|g| g.0 != key);
        }
        self.cached[b] = Some(!taken);
        self.released[b] = Some(self.clock);
        self.clock += 1;
        self.prune();
    }

    /// The block leaves the cache (revived, evicted or drained).
    fn uncache(&mut self, b: usize) {
        let hash = self.hashes[b];
        if self.cached[b] == Some(true) && self.children(own_key(hash)) > 0 {
            self.ghosts.push((own_key(hash), parent_key(hash)));
        }
        self.cached[b] = None;
        self.released[b] = None;
        self.prune();
    }

    /// The leaf released the longest ago, however long it has been a leaf.
    fn victim(&self) -> Option<usize> {
        (0..self.hashes.len())
            .filter(|&b| self.is_leaf(b))
            .filter_map(|b| self.released[b].map(|t| (t, b)))
            .min()
            .map(|(_, b)| b)
    }

    fn len(&self) -> usize {
        self.cached.iter().filter(|c| c.is_some()).count()
    }

    fn leaves(&self) -> usize {
        (0..self.hashes.len()).filter(|&b| self.is_leaf(b)).count()
    }
}

fn run_lineage(hashes: Vec<SequenceHash>, ops: &[Op]) -> Result<(), TestCaseError> {
    let n = hashes.len();
    let mut backend = LineageBackend::new(n);
    let mut model = LineageModel::new(hashes.clone());
    for op in ops {
        match *op {
            Op::Toggle(b) | Op::Count(b, _) => {
                let b = b % n;
                if model.cached[b].is_some() {
                    model.uncache(b);
                    backend.remove(b, hashes[b]);
                } else {
                    model.insert(b);
                    backend.insert(b, hashes[b]);
                }
            }
            Op::Pop => {
                let want = model.victim();
                let got = backend.pop_victim();
                prop_assert_eq!(got, want);
                if let Some(b) = got {
                    prop_assert!(model.is_leaf(b), "victim {} is not a leaf", b);
                    model.uncache(b);
                }
            }
            Op::Drain => {
                let mut got = Vec::new();
                backend.drain(&mut |id| got.push(id));
                // Drained in eviction order: replay the model's pops.
                let mut want = Vec::new();
                while let Some(b) = model.victim() {
                    model.uncache(b);
                    want.push(b);
                }
                prop_assert_eq!(got, want);
            }
        }
        prop_assert_eq!(backend.leaf_count(), model.leaves());
        check(&backend, model.len())?;
    }
    Ok(())
}

/// Blocks with hand-packed hashes drawn from tiny value sets, so that
/// parents, children, duplicates and fragment collisions are all common.
/// Positions sit either at the start or across the 255/256 boundary where
/// fragments shrink from 54 to 46 bits: a high bit at 50 then separates two
/// hashes for children below 256 but collides for children at 256 and up,
/// while a high bit at 60 always collides.
fn crafted_hashes() -> impl Strategy<Value = Vec<SequenceHash>> {
    let block = (
        prop_oneof![Just(0u64), Just(254u64)],
        0u64..4,
        0u64..3,
        prop_oneof![Just(0u64), Just(1 << 50), Just(1 << 60)],
        0u64..3,
    )
        .prop_map(|(base, offset, lo, high, parent)| {
            let pos = base + offset;
            SequenceHash::new(high | lo, (pos > 0).then_some(parent), pos)
        });
    prop::collection::vec(block, 2..=BLOCKS)
}

/// Real hash trees (each node extends an earlier one or starts a root),
/// with several blocks allowed to carry the same node's hash.
fn tree_hashes() -> impl Strategy<Value = Vec<SequenceHash>> {
    let parents = prop::collection::vec(any::<prop::sample::Index>(), 1..10);
    let shape = parents.prop_map(|parents| {
        let mut nodes: Vec<SequenceHash> = Vec::new();
        for (i, p) in parents.iter().enumerate() {
            // Node i extends one of the i earlier nodes or, with chance
            // 1 / (i + 1), starts a new root.
            let node = match (i, p.index(i + 1)) {
                (0, _) => SequenceHash::root(1000),
                (_, j) if j < i => nodes[j].extend(i as u64),
                _ => SequenceHash::root(1000 + i as u64),
            };
            nodes.push(node);
        }
        nodes
    });
    (
        shape,
        prop::collection::vec(any::<prop::sample::Index>(), 2..=BLOCKS),
    )
        .prop_map(|(nodes, picks)| {
            // Every node once, then extra blocks that duplicate a node.
            let mut hashes = nodes.clone();
            hashes.extend(picks.iter().map(|p| nodes[p.index(nodes.len())]));
            hashes.truncate(BLOCKS);
            hashes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lru_matches_release_queue(ops in ops(80)) {
        run_release_order(Box::new(LruBackend::new(BLOCKS)), &ops)?;
    }

    #[test]
    fn fifo_matches_release_queue(ops in ops(80)) {
        run_release_order(Box::new(FifoBackend::new(BLOCKS)), &ops)?;
    }

    #[test]
    fn multi_lru_matches_tiered_queues(
        ops in ops(80),
        thresholds in prop_oneof![Just([3u8, 8, 15]), Just([1u8, 2, 3]), Just([2u8, 5, 9])],
    ) {
        run_multi_lru(thresholds, &ops)?;
    }

    #[test]
    fn admission_holds_what_it_was_given(ops in ops(80)) {
        run_membership(Box::new(AdmissionBackend::new(BLOCKS)), &h, &ops)?;
    }

    #[test]
    fn admission_holds_what_it_was_given_on_trees(hashes in tree_hashes(), ops in ops(80)) {
        let hash_of = |b: BlockId| hashes[b % hashes.len()];
        run_membership(Box::new(AdmissionBackend::new(BLOCKS)), &hash_of, &ops)?;
    }

}

proptest! {
    // The lineage model has the most states to reach: more cases.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn lineage_matches_model_on_crafted_hashes(hashes in crafted_hashes(), ops in ops(80)) {
        run_lineage(hashes, &ops)?;
    }

    #[test]
    fn lineage_matches_model_on_real_trees(hashes in tree_hashes(), ops in ops(80)) {
        run_lineage(hashes, &ops)?;
    }
}
