//! Property test: random operation sequences against a small reference
//! model of the pools (free count, cache in release order, held blocks), for
//! every backend — with its exact victim — and both duplicate policies (under
//! `Allow` a duplicate holds its primary until the duplicate is freed).

use std::collections::HashMap;
use std::sync::Arc;

use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::pools::BlockDuplicationPolicy;
use kvbm::testing::{builder, chain, Device};
use kvbm::tinylfu::FrequencyTracker;
use kvbm::{BlockId, CompleteBlock, ImmutableBlock, MutableBlock, SequenceHash, WeakBlock};
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

/// A registered block the test holds handles on.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: SequenceHash,
    /// Handles, plus one per live duplicate of this block (a duplicate
    /// holds its primary).
    handles: usize,
    /// `None` for the block the hash index points at; for a duplicate kept
    /// by [`BlockDuplicationPolicy::Allow`], which nobody can match, its
    /// primary.
    duplicate_of: Option<BlockId>,
}

/// A cached (inactive) primary.
#[derive(Debug, Clone, Copy)]
struct Cached {
    id: BlockId,
    hash: SequenceHash,
    /// Multi-LRU tier, fixed when the block was released.
    tier: usize,
}

/// What the pool should look like.
struct Model {
    /// The eviction policy, with multi-LRU's tier thresholds.
    backend: Backend,
    policy: BlockDuplicationPolicy,
    /// The registry's frequency tracker (multi-LRU only): the model asks it
    /// for counts; counting itself is TinyLFU's business, tested elsewhere.
    tracker: Option<Arc<dyn FrequencyTracker<u128>>>,
    /// Parent of each hash in the universe (none for roots).
    parent: HashMap<SequenceHash, SequenceHash>,
    free: usize,
    /// Cached primaries, least recently released first.
    cached: Vec<Cached>,
    /// Lineage's ghosts: hashes of blocks that left the cache while they
    /// had cached children, with their parents. A ghost still counts as its
    /// parent's child until its last cached descendant goes, so the parent
    /// of a revived block is no leaf while the revived block's cached
    /// descendants remain (see `eviction::lineage`).
    ghosts: Vec<(SequenceHash, Option<SequenceHash>)>,
    /// Held registered blocks by id.
    held: HashMap<BlockId, Entry>,
    /// Bumped when a block leaves the pool, to tell stale weak handles.
    epoch: HashMap<BlockId, u64>,
}

impl Model {
    /// The registered primary of `h`, held or cached.
    fn primary(&self, h: &SequenceHash) -> Option<BlockId> {
        self.held
            .iter()
            .find(|(_, e)| e.duplicate_of.is_none() && e.hash == *h)
            .map(|(id, _)| *id)
            .or_else(|| self.cached.iter().find(|c| c.hash == *h).map(|c| c.id))
    }

    fn present(&self, h: &SequenceHash) -> bool {
        self.primary(h).is_some()
    }

    fn cached_ids(&self) -> Vec<BlockId> {
        self.cached.iter().map(|c| c.id).collect()
    }

    /// Cached blocks and ghosts whose parent is `h`.
    fn lineage_children(&self, h: SequenceHash) -> usize {
        let blocks = self
            .cached
            .iter()
            .filter(|c| self.parent.get(&c.hash) == Some(&h))
            .count();
        blocks + self.ghosts.iter().filter(|g| g.1 == Some(h)).count()
    }

    /// Takes the cached block at `pos` out of the cache: it leaves a ghost
    /// if it has children; ghosts left without children go.
    fn uncache(&mut self, pos: usize) -> Cached {
        let c = self.cached.remove(pos);
        if self.lineage_children(c.hash) > 0 {
            self.ghosts
                .push((c.hash, self.parent.get(&c.hash).copied()));
        }
        while let Some(i) =
            (0..self.ghosts.len()).find(|&i| self.lineage_children(self.ghosts[i].0) == 0)
        {
            self.ghosts.remove(i);
        }
        c
    }

    /// One more handle on a registered block, reviving it if cached.
    fn acquire(&mut self, id: BlockId, hash: SequenceHash) {
        if let Some(pos) = self.cached.iter().position(|c| c.id == id) {
            self.uncache(pos);
        }
        self.held
            .entry(id)
            .or_insert(Entry {
                hash,
                handles: 0,
                duplicate_of: None,
            })
            .handles += 1;
    }

    /// The last handle of a primary caches it (in the tier its count gives
    /// now); the last handle of a duplicate frees it and releases the
    /// duplicate's hold on its primary.
    fn release(&mut self, id: BlockId) {
        let e = self
            .held
            .get_mut(&id)
            .expect("model: releasing an unheld block");
        e.handles -= 1;
        if e.handles > 0 {
            return;
        }
        let e = self.held.remove(&id).expect("present");
        if let Some(primary) = e.duplicate_of {
            self.free += 1;
            *self.epoch.entry(id).or_default() += 1;
            self.release(primary);
        } else {
            let count = self
                .tracker
                .as_ref()
                .map_or(0, |t| t.count(e.hash.as_u128()));
            let tier = match self.backend {
                Backend::MultiLru { thresholds } => thresholds
                    .iter()
                    .filter(|&&t| count >= u32::from(t))
                    .count(),
                _ => 0,
            };
            // A block that comes back takes its place back from its ghost.
            self.ghosts.retain(|g| g.0 != e.hash);
            self.cached.push(Cached {
                id,
                hash: e.hash,
                tier,
            });
        }
    }

    /// Where in `cached` the next victim is, by the backend's definition:
    /// LRU and FIFO the oldest release; lineage the oldest release among
    /// leaves (no cached child, no ghost child); multi-LRU the oldest release of the
    /// coldest non-empty tier; admission has no victim the model can name
    /// (its order depends on its private sketch), so any cached block.
    fn victim(&self, h: SequenceHash) -> Option<usize> {
        match self.backend {
            Backend::Admission => self.cached.iter().position(|c| c.hash == h),
            Backend::Lru | Backend::Fifo => (!self.cached.is_empty()).then_some(0),
            Backend::Lineage => self
                .cached
                .iter()
                .position(|c| self.lineage_children(c.hash) == 0),
            Backend::MultiLru { .. } => {
                let coldest = self.cached.iter().map(|c| c.tier).min()?;
                self.cached.iter().position(|c| c.tier == coldest)
            }
        }
    }

    fn evict_next(&mut self, h: SequenceHash) -> Option<Cached> {
        let pos = self.victim(h)?;
        let c = self.uncache(pos);
        *self.epoch.entry(c.id).or_default() += 1;
        Some(c)
    }

    /// The backend evicted `h`: it must be exactly the model's victim.
    fn evict(&mut self, h: SequenceHash) -> Result<(), TestCaseError> {
        let want = self.evict_next(h);
        prop_assert_eq!(
            Some(h),
            want.map(|c| c.hash),
            "{:?} evicted the wrong block",
            self.backend
        );
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

fn run(
    backend: Backend,
    policy: BlockDuplicationPolicy,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let (seq_a, seq_b) = universe();
    let all: Vec<SequenceHash> = seq_a.iter().chain(&seq_b[3..]).copied().collect();
    let m = builder(backend)
        .block_count(BLOCKS)
        .block_size(BLOCK_SIZE)
        .duplication_policy(policy)
        .build()
        .unwrap();
    let mut model = Model {
        backend,
        policy,
        tracker: m.block_registry().frequency_tracker(),
        parent: HashMap::new(),
        free: BLOCKS,
        cached: Vec::new(),
        ghosts: Vec::new(),
        held: HashMap::new(),
        epoch: HashMap::new(),
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
                        model.evict(h)?;
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
                    let own = c.block_id();
                    let existing = model.primary(&h);
                    let b = m.register_block(c);
                    prop_assert_eq!(b.sequence_hash(), h);
                    match (existing, model.policy) {
                        (None, _) => {
                            prop_assert_eq!(b.block_id(), own);
                            model.acquire(own, h);
                        }
                        (Some(primary), BlockDuplicationPolicy::Reject) => {
                            // The new block goes back; the primary is handed out.
                            prop_assert_eq!(b.block_id(), primary);
                            model.free += 1;
                            model.acquire(primary, h);
                        }
                        (Some(primary), BlockDuplicationPolicy::Allow) => {
                            // A duplicate: it holds its primary, reviving
                            // it if cached.
                            prop_assert_eq!(b.block_id(), own);
                            prop_assert_ne!(own, primary);
                            model.acquire(primary, h);
                            model.held.insert(
                                own,
                                Entry {
                                    hash: h,
                                    handles: 1,
                                    duplicate_of: Some(primary),
                                },
                            );
                        }
                    }
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
                    prop_assert_eq!(Some(hit.block_id()), model.primary(h));
                    model.acquire(hit.block_id(), *h);
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
                for (h, b) in &found {
                    prop_assert_eq!(Some(b.block_id()), model.primary(h));
                    model.acquire(b.block_id(), *h);
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
                    let id = b.block_id();
                    drop(b);
                    model.release(id);
                }
            }
            Op::Clone(i) => {
                if !real.immutable.is_empty() {
                    let n = real.immutable.len();
                    let b = real.immutable[i % n].clone();
                    model.acquire(b.block_id(), b.sequence_hash());
                    prop_assert_eq!(b.use_count(), model.held[&b.block_id()].handles);
                    real.immutable.push(b);
                }
            }
            Op::Downgrade(i) => {
                if !real.immutable.is_empty() {
                    let n = real.immutable.len();
                    let b = &real.immutable[i % n];
                    let epoch = model.epoch.get(&b.block_id()).copied().unwrap_or(0);
                    real.weak.push((b.downgrade(), epoch));
                }
            }
            Op::Upgrade(i) => {
                if !real.weak.is_empty() {
                    let n = real.weak.len();
                    let (w, epoch) = &real.weak[i % n];
                    let (id, h) = (w.block_id(), w.sequence_hash());
                    let alive = (model.held.contains_key(&id) || model.cached_ids().contains(&id))
                        && model.epoch.get(&id).copied().unwrap_or(0) == *epoch;
                    let up = w.upgrade();
                    prop_assert_eq!(up.is_some(), alive, "upgrade of {:?}", h);
                    if let Some(b) = up {
                        model.acquire(id, h);
                        real.immutable.push(b);
                    }
                }
            }
            Op::DropWeak(i) => {
                pick(&mut real.weak, i);
            }
            Op::ResetInactive => {
                let res = m.reset_inactive_pool();
                // Drained leaf first: every ghost goes with its last
                // cached descendant.
                model.ghosts.clear();
                for c in std::mem::take(&mut model.cached) {
                    *model.epoch.entry(c.id).or_default() += 1;
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
            prop_assert_eq!(b.use_count(), model.held[&b.block_id()].handles);
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
        run(Backend::Lru, BlockDuplicationPolicy::Reject, ops.clone())?;
        run(Backend::Lru, BlockDuplicationPolicy::Allow, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_fifo(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::Fifo, BlockDuplicationPolicy::Reject, ops.clone())?;
        run(Backend::Fifo, BlockDuplicationPolicy::Allow, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_lineage(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::Lineage, BlockDuplicationPolicy::Reject, ops.clone())?;
        run(Backend::Lineage, BlockDuplicationPolicy::Allow, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_multi_lru(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::MULTI_LRU, BlockDuplicationPolicy::Reject, ops.clone())?;
        // Low thresholds: a block matched once after registering is already
        // warmer than a fresh one, so tiers decide many victims.
        let low = Backend::MultiLru { thresholds: [1, 2, 3] };
        run(low, BlockDuplicationPolicy::Reject, ops.clone())?;
        run(low, BlockDuplicationPolicy::Allow, ops)?;
    }

    #[test]
    fn pools_follow_the_model_with_admission(ops in prop::collection::vec(op(), 1..120)) {
        run(Backend::Admission, BlockDuplicationPolicy::Reject, ops.clone())?;
        run(Backend::Admission, BlockDuplicationPolicy::Allow, ops)?;
    }
}
