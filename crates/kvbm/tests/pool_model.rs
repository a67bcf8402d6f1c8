//! Property test: random operation sequences against a small reference
//! model of the pools (free count, LRU-ordered cache, held primaries).

mod common;

use std::collections::HashMap;

use common::{builder, chain, Backend, Device};
use kvbm::pools::BlockDuplicationPolicy;
use kvbm::{CompleteBlock, ImmutableBlock, MutableBlock, SequenceHash, WeakBlock};
use proptest::prelude::*;

const BLOCKS: usize = 6;
const BLOCK_SIZE: usize = 4;

/// Two sequences sharing their first three blocks.
fn universe() -> (Vec<SequenceHash>, Vec<SequenceHash>) {
    let a = chain(100, 8);
    let mut b = a[..3].to_vec();
    let mut h = b[2];
    for i in 0..5 {
        h = h.extend(900 + i);
        b.push(h);
    }
    (a, b)
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(usize),
    Stage { block: usize, hash: usize },
    StageWrongSize(usize),
    Register(usize),
    ResetComplete(usize),
    Match { seq_b: bool, len: usize },
    Scan(Vec<usize>),
    DropMutable(usize),
    DropComplete(usize),
    DropImmutable(usize),
    Clone(usize),
    Downgrade(usize),
    Upgrade(usize),
    DropWeak(usize),
    ResetInactive,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4usize).prop_map(Op::Allocate),
        3 => (any::<usize>(), 0..13usize).prop_map(|(block, hash)| Op::Stage { block, hash }),
        1 => any::<usize>().prop_map(Op::StageWrongSize),
        3 => any::<usize>().prop_map(Op::Register),
        1 => any::<usize>().prop_map(Op::ResetComplete),
        3 => (any::<bool>(), 0..9usize).prop_map(|(seq_b, len)| Op::Match { seq_b, len }),
        1 => prop::collection::vec(0..13usize, 0..6).prop_map(Op::Scan),
        1 => any::<usize>().prop_map(Op::DropMutable),
        1 => any::<usize>().prop_map(Op::DropComplete),
        4 => any::<usize>().prop_map(Op::DropImmutable),
        1 => any::<usize>().prop_map(Op::Clone),
        1 => any::<usize>().prop_map(Op::Downgrade),
        1 => any::<usize>().prop_map(Op::Upgrade),
        1 => any::<usize>().prop_map(Op::DropWeak),
        1 => Just(Op::ResetInactive),
    ]
}

/// What the pool should look like.
#[derive(Default)]
struct Model {
    /// Parent of each hash in the universe (none for roots).
    parent: HashMap<SequenceHash, SequenceHash>,
    free: usize,
    /// Cached hashes, least recently released first.
    cached: Vec<SequenceHash>,
    /// Handles per held primary.
    held: HashMap<SequenceHash, usize>,
    /// Bumped when a hash leaves the pool, to tell stale weak handles.
    epoch: HashMap<SequenceHash, u64>,
}

impl Model {
    fn present(&self, h: &SequenceHash) -> bool {
        self.held.contains_key(h) || self.cached.contains(h)
    }

    /// One more handle on a registered hash, reviving it if cached.
    fn acquire(&mut self, h: SequenceHash) {
        if let Some(pos) = self.cached.iter().position(|c| *c == h) {
            self.cached.remove(pos);
        }
        *self.held.entry(h).or_default() += 1;
    }

    fn release(&mut self, h: SequenceHash) {
        let n = self
            .held
            .get_mut(&h)
            .expect("model: releasing an unheld hash");
        *n -= 1;
        if *n == 0 {
            self.held.remove(&h);
            self.cached.push(h);
        }
    }

    fn evict_oldest(&mut self) -> SequenceHash {
        let h = self.cached.remove(0);
        *self.epoch.entry(h).or_default() += 1;
        h
    }

    /// Accepts a victim chosen by `backend`: for LRU and FIFO it must be the
    /// oldest release; for lineage a leaf of the cached forest; for
    /// multi-LRU and admission any cached block (their order depends on
    /// access counts).
    fn evict(&mut self, backend: Backend, h: SequenceHash) -> Result<(), TestCaseError> {
        let pos = self.cached.iter().position(|c| *c == h);
        prop_assert!(pos.is_some(), "evicted {:?} was not cached", h);
        match backend {
            Backend::Lru | Backend::Fifo => {
                prop_assert_eq!(pos, Some(0), "not the oldest release");
            }
            Backend::Lineage => {
                let has_cached_child = self.cached.iter().any(|c| self.parent.get(c) == Some(&h));
                prop_assert!(!has_cached_child, "evicted {:?} has a cached child", h);
            }
            Backend::MultiLru | Backend::Admission => {}
        }
        if let Some(pos) = pos {
            self.cached.remove(pos);
        }
        *self.epoch.entry(h).or_default() += 1;
        Ok(())
    }
}

/// The real side: the guards the test holds.
#[derive(Default)]
struct Held {
    mutable: Vec<MutableBlock<Device>>,
    complete: Vec<CompleteBlock<Device>>,
    immutable: Vec<ImmutableBlock<Device>>,
    weak: Vec<(WeakBlock<Device>, u64)>,
}

fn pick<T>(v: &mut Vec<T>, i: usize) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        let n = v.len();
        Some(v.swap_remove(i % n))
    }
}

fn run(backend: Backend, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (seq_a, seq_b) = universe();
    let all: Vec<SequenceHash> = seq_a.iter().chain(&seq_b[3..]).copied().collect();
    let m = builder(backend)
        .block_count(BLOCKS)
        .block_size(BLOCK_SIZE)
        .duplication_policy(BlockDuplicationPolicy::Reject)
        .build()
        .unwrap();
    let mut model = Model {
        free: BLOCKS,
        ..Model::default()
    };
    for seq in [&seq_a, &seq_b] {
        for pair in seq.windows(2) {
            model.parent.insert(pair[1], pair[0]);
        }
    }
    let mut real = Held::default();

    for op in ops {
        match op {
            Op::Allocate(n) => {
                let got = m.allocate_blocks_with_evictions(n);
                if model.free + model.cached.len() >= n {
                    let (blocks, evicted) = got.expect("model says allocation fits");
                    let from_free = n.min(model.free);
                    model.free -= from_free;
                    prop_assert_eq!(evicted.len(), n - from_free);
                    for h in evicted {
                        model.evict(backend, h)?;
                    }
                    prop_assert_eq!(blocks.len(), n);
                    real.mutable.extend(blocks);
                } else {
                    prop_assert!(got.is_none());
                }
            }
            Op::Stage { block, hash } => {
                if let Some(b) = pick(&mut real.mutable, block) {
                    real.complete.push(b.stage(all[hash], BLOCK_SIZE).unwrap());
                }
            }
            Op::StageWrongSize(block) => {
                if let Some(b) = pick(&mut real.mutable, block) {
                    let back = b.stage(all[0], BLOCK_SIZE * 2).unwrap_err().into_block();
                    real.mutable.push(back);
                }
            }
            Op::Register(i) => {
                if let Some(c) = pick(&mut real.complete, i) {
                    let h = c.sequence_hash();
                    if model.present(&h) {
                        model.free += 1; // rejected duplicate goes back
                    }
                    model.acquire(h);
                    let b = m.register_block(c);
                    prop_assert_eq!(b.sequence_hash(), h);
                    real.immutable.push(b);
                }
            }
            Op::ResetComplete(i) => {
                if let Some(c) = pick(&mut real.complete, i) {
                    real.mutable.push(c.reset());
                }
            }
            Op::Match { seq_b: use_b, len } => {
                let seq = if use_b { &seq_b } else { &seq_a };
                let query = &seq[..len.min(seq.len())];
                let expect = query.iter().take_while(|h| model.present(h)).count();
                let hits = m.match_blocks(query);
                prop_assert_eq!(hits.len(), expect);
                for (hit, h) in hits.iter().zip(query) {
                    prop_assert_eq!(hit.sequence_hash(), *h);
                    model.acquire(*h);
                }
                real.immutable.extend(hits);
            }
            Op::Scan(idx) => {
                let query: Vec<_> = idx.iter().map(|&i| all[i]).collect();
                let found = m.scan_matches(&query, false);
                let mut expect: Vec<_> =
                    query.iter().filter(|h| model.present(h)).copied().collect();
                expect.sort();
                expect.dedup();
                let mut got: Vec<_> = found.keys().copied().collect();
                got.sort();
                prop_assert_eq!(&got, &expect);
                for h in expect {
                    model.acquire(h);
                }
                real.immutable.extend(found.into_values());
            }
            Op::DropMutable(i) => {
                if pick(&mut real.mutable, i).is_some() {
                    model.free += 1;
                }
            }
            Op::DropComplete(i) => {
                if pick(&mut real.complete, i).is_some() {
                    model.free += 1;
                }
            }
            Op::DropImmutable(i) => {
                if let Some(b) = pick(&mut real.immutable, i) {
                    model.release(b.sequence_hash());
                }
            }
            Op::Clone(i) => {
                if !real.immutable.is_empty() {
                    let n = real.immutable.len();
                    let b = real.immutable[i % n].clone();
                    model.acquire(b.sequence_hash());
                    prop_assert_eq!(b.use_count(), model.held[&b.sequence_hash()]);
                    real.immutable.push(b);
                }
            }
            Op::Downgrade(i) => {
                if !real.immutable.is_empty() {
                    let n = real.immutable.len();
                    let b = &real.immutable[i % n];
                    let epoch = model.epoch.get(&b.sequence_hash()).copied().unwrap_or(0);
                    real.weak.push((b.downgrade(), epoch));
                }
            }
            Op::Upgrade(i) => {
                if !real.weak.is_empty() {
                    let n = real.weak.len();
                    let (w, epoch) = &real.weak[i % n];
                    let h = w.sequence_hash();
                    let alive =
                        model.present(&h) && model.epoch.get(&h).copied().unwrap_or(0) == *epoch;
                    let up = w.upgrade();
                    prop_assert_eq!(up.is_some(), alive, "upgrade of {:?}", h);
                    if let Some(b) = up {
                        model.acquire(h);
                        real.immutable.push(b);
                    }
                }
            }
            Op::DropWeak(i) => {
                pick(&mut real.weak, i);
            }
            Op::ResetInactive => {
                let res = m.reset_inactive_pool();
                while !model.cached.is_empty() {
                    model.evict_oldest();
                    model.free += 1;
                }
                prop_assert_eq!(res.is_ok(), model.free == BLOCKS);
            }
        }

        // After every step: the invariants, conservation and the gauges.
        if let Err(e) = m.validate() {
            return Err(TestCaseError::fail(e.to_string()));
        }
        let out = real.mutable.len() + real.complete.len();
        prop_assert_eq!(
            model.free + model.cached.len() + model.held.len() + out,
            BLOCKS
        );
        prop_assert_eq!(m.available_blocks(), model.free + model.cached.len());
        let s = m.metrics().snapshot();
        prop_assert_eq!(s.reset_pool_size, model.free as i64);
        prop_assert_eq!(s.inactive_pool_size, model.cached.len() as i64);
        prop_assert_eq!(s.inflight_mutable, out as i64);
        prop_assert_eq!(s.inflight_immutable, model.held.len() as i64);
        for b in &real.immutable {
            prop_assert_eq!(b.use_count(), model.held[&b.sequence_hash()]);
        }
    }
    drop(real);
    m.validate()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(m.available_blocks(), BLOCKS);
    prop_assert!(m.reset_inactive_pool().is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn pools_follow_the_model_with_lru(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::Lru, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_fifo(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::Fifo, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_lineage(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::Lineage, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_multi_lru(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::MultiLru, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_admission(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::Admission, ops)?;
    }
}
