use super::*;

fn chain(seed: u64, n: usize) -> Vec<SequenceHash> {
    let mut out = vec![SequenceHash::root(seed)];
    for i in 1..n {
        let next = out[i - 1].extend(seed + i as u64);
        out.push(next);
    }
    out
}

fn pop_all(backend: &mut AdmissionBackend) -> Vec<BlockId> {
    std::iter::from_fn(|| backend.pop_victim()).collect()
}

#[test]
fn first_sightings_leave_in_release_order() {
    let mut backend = AdmissionBackend::new(8);
    for id in [3, 1, 4, 5] {
        backend.insert(id, SequenceHash::root(id as u64));
        backend.validate().unwrap();
    }
    // Unrelated roots are all tails: plain release order.
    assert_eq!(backend.class_lens()[TAIL], 4);
    assert_eq!(pop_all(&mut backend), vec![3, 1, 4, 5]);
    backend.validate().unwrap();
}

#[test]
fn reuse_earns_time_and_tails_lose_it() {
    let blocks = 16;
    let mut backend = AdmissionBackend::new(blocks);
    // Block 0's hash was released four times, each time recomputed after
    // its block had been evicted: reuse the cache missed.
    let popular = SequenceHash::root(99);
    for _ in 0..3 {
        backend.insert(0, popular);
        assert_eq!(backend.pop_victim(), Some(0));
    }
    backend.insert(0, popular);
    // A chain released deepest first: block 5 is its tail.
    let hashes = chain(1, 5);
    for (i, h) in hashes.iter().enumerate().rev() {
        backend.insert(i + 1, *h);
    }
    backend.validate().unwrap();
    let lens = backend.class_lens();
    // Seen four times: class `seen 4`, after tail, deep new, new, 2, 3.
    assert_eq!((lens[TAIL], lens[NEW], lens[5]), (1, 4, 1), "{lens:?}");
    // Tail first, then the chain deepest first, the reused block last.
    assert_eq!(pop_all(&mut backend), vec![5, 4, 3, 2, 1, 0]);
}

#[test]
fn root_first_release_finds_the_tail_too() {
    let mut backend = AdmissionBackend::new(8);
    for (i, h) in chain(7, 4).into_iter().enumerate() {
        backend.insert(i, h);
    }
    backend.validate().unwrap();
    let lens = backend.class_lens();
    assert_eq!((lens[TAIL], lens[NEW]), (1, 3), "{lens:?}");
    assert_eq!(backend.pop_victim(), Some(3));
}

#[test]
fn deep_first_sightings_count_as_unlikely() {
    let hashes = chain(3, DEEP_POSITION as usize + 2);
    let mut backend = AdmissionBackend::new(hashes.len());
    for (i, h) in hashes.iter().enumerate().rev() {
        backend.insert(i, *h);
    }
    let lens = backend.class_lens();
    // Positions 0..8 are new, 8 is deep, 9 (deepest) is the tail.
    assert_eq!((lens[TAIL], lens[DEEP_NEW], lens[NEW]), (1, 1, 8));
    backend.validate().unwrap();
    let mut drained = Vec::new();
    backend.drain(&mut |id| drained.push(id));
    drained.sort_unstable();
    assert_eq!(drained, (0..hashes.len()).collect::<Vec<_>>());
    assert!(backend.is_empty());
    assert_eq!(backend.name(), "admission");
}

/// Replays accesses as the store would: a cached hash is revived and
/// released again, a missing one gets a free or evicted block. Returns
/// the hits.
struct Pool {
    backend: AdmissionBackend,
    cached: std::collections::HashMap<SequenceHash, BlockId>,
    owner: Vec<Option<SequenceHash>>,
    free: Vec<BlockId>,
}

impl Pool {
    fn new(blocks: usize) -> Self {
        Self {
            backend: AdmissionBackend::new(blocks),
            cached: Default::default(),
            owner: vec![None; blocks],
            free: (0..blocks).rev().collect(),
        }
    }

    fn access(&mut self, hash: SequenceHash) -> bool {
        if let Some(&id) = self.cached.get(&hash) {
            self.backend.remove(id, hash);
            self.backend.insert(id, hash);
            return true;
        }
        let id = self.free.pop().unwrap_or_else(|| {
            let victim = self.backend.pop_victim().expect("a cached block");
            let old = self.owner[victim].take().expect("victim was cached");
            self.cached.remove(&old);
            victim
        });
        self.owner[id] = Some(hash);
        self.cached.insert(hash, id);
        self.backend.insert(id, hash);
        false
    }
}

#[test]
fn miniatures_choose_lru_when_old_popularity_is_stale() {
    let blocks = 128;
    let mut pool = Pool::new(blocks);
    // Phase 1: half a cache of hashes, each used many times.
    for _ in 0..20 {
        for i in 0..64 {
            pool.access(SequenceHash::root(i));
        }
    }
    // Phase 2: they never come back; fresh hashes come back once, 100
    // releases later: within LRU's reach, not with the stale blocks kept.
    let mut hits = 0;
    for i in 0..20_000u64 {
        let fresh = 1_000 + i;
        pool.access(SequenceHash::root(fresh));
        if i >= 50 && pool.access(SequenceHash::root(fresh - 50)) {
            hits += 1;
        }
    }
    pool.backend.validate().unwrap();
    assert_eq!(pool.backend.credit_scale(), 0.0, "LRU catches this reuse");
    assert!(hits > 19_000, "hits {hits}");
}

#[test]
fn miniatures_choose_credits_when_popular_hashes_return_late() {
    let blocks = 128;
    let mut pool = Pool::new(blocks);
    // 64 popular hashes, each back after about 3 capacities of one-shot
    // traffic: LRU never keeps them; credits do.
    let mut hits = 0;
    let mut next_fresh = 1_000;
    for round in 0..200 {
        for i in 0..64 {
            if pool.access(SequenceHash::root(i)) && round > 100 {
                hits += 1;
            }
            for _ in 0..6 {
                pool.access(SequenceHash::root(next_fresh));
                next_fresh += 1;
            }
        }
    }
    pool.backend.validate().unwrap();
    assert!(
        pool.backend.credit_scale() >= 1.0,
        "{}",
        pool.backend.credit_scale()
    );
    assert!(hits > 99 * 64 / 2, "hits {hits}");
}

#[test]
fn a_miniature_finds_what_it_keeps_through_evictions() {
    let mut minis = minisim::Miniatures::new(16);
    let mut tick = 0;
    let mut release = |minis: &mut minisim::Miniatures, i: u64| {
        let hash = SequenceHash::root(i);
        minis.release(minisim::mix(hash), NEW, tick);
        tick += 1;
        minis.validate().unwrap();
    };
    let hits = |minis: &mut minisim::Miniatures| -> Vec<u64> {
        (0..minisim::MINIS).map(|m| minis.take_hits(m)).collect()
    };
    for i in 0..16 {
        release(&mut minis, i);
    }
    assert_eq!(hits(&mut minis), [0; minisim::MINIS]);
    // All 16 fit: each comes back as a hit, in every miniature.
    for i in 0..16 {
        release(&mut minis, i);
    }
    assert_eq!(hits(&mut minis), [16; minisim::MINIS]);
    // 1000 more hashes push everything out in LRU order (credits 0).
    for i in 100..1_100 {
        release(&mut minis, i);
    }
    for i in 1_084..1_100 {
        release(&mut minis, i);
    }
    assert_eq!(
        hits(&mut minis),
        [16; minisim::MINIS],
        "the last 16 are kept"
    );
    release(&mut minis, 0);
    assert_eq!(hits(&mut minis), [0; minisim::MINIS], "evicted long ago");
}

#[test]
fn miniatures_with_different_credits_keep_different_hashes() {
    let mut minis = minisim::Miniatures::new(4);
    // Miniature 0 is LRU; miniature 1 gives class 3 a long credit.
    minis.set_offsets(1, [0, 0, 0, 100, 0, 0, 0, 0]);
    let mut tick = 0;
    let mut release = |minis: &mut minisim::Miniatures, i: u64, class: usize| {
        minis.release(minisim::mix(SequenceHash::root(i)), class, tick);
        tick += 1;
        minis.validate().unwrap();
    };
    release(&mut minis, 0, 3);
    for i in 1..9 {
        release(&mut minis, i, NEW);
    }
    release(&mut minis, 0, 3);
    assert_eq!(minis.take_hits(0), 0, "LRU evicted it");
    assert_eq!(minis.take_hits(1), 1, "the credit kept it");
}

#[test]
fn the_unit_follows_the_age_of_hits() {
    let blocks = 64;
    let mut backend = AdmissionBackend::new(blocks);
    assert_eq!(backend.unit, blocks as i64, "starts at the capacity");
    // Every block is revived 10 releases after its release.
    for i in 0..20_000u64 {
        let id = (i % 10) as usize;
        let hash = SequenceHash::root(i);
        if backend.lists.contains(id as u32) {
            let old = backend.ticks[id];
            assert_eq!(backend.next_tick - old, 10);
            backend.remove(id, hash);
        }
        backend.insert(id, hash);
    }
    assert!((9..=11).contains(&backend.unit), "unit {}", backend.unit);
    backend.validate().unwrap();
}

#[test]
fn saturated_prefixes_outlive_hot_ones() {
    let mut backend = AdmissionBackend::new(64);
    let saturated = SequenceHash::root(1);
    let hot = SequenceHash::root(2);
    // Released (and revived) 17 and 7 times: counts 15 and 7.
    for (id, hash, times) in [(0, saturated, 16), (1, hot, 6)] {
        for _ in 0..times {
            backend.insert(id, hash);
            backend.remove(id, hash);
        }
    }
    backend.insert(0, saturated);
    backend.insert(1, hot);
    backend.validate().unwrap();
    let lens = backend.class_lens();
    assert_eq!((lens[SATURATED - 1], lens[SATURATED]), (1, 1), "{lens:?}");
    assert!(backend.credit_scale() > 0.0);
    // Released later, but the hot block leaves first.
    assert_eq!(backend.pop_victim(), Some(1));
    assert_eq!(backend.pop_victim(), Some(0));
}

#[test]
fn small_caches_remember_popularity_for_the_minimum_memory() {
    let blocks = 64;
    let mut pool = Pool::new(blocks);
    let popular = SequenceHash::root(0);
    for _ in 0..6 {
        pool.access(popular);
    }
    // 32 capacities of one-shot traffic would have halved the sketch
    // without the floor; it holds for `MIN_SKETCH_MEMORY` releases.
    let mut fresh = 1;
    while fresh < MIN_SKETCH_MEMORY - 6 {
        pool.access(SequenceHash::root(fresh));
        fresh += 1;
    }
    assert_eq!(pool.backend.sketch.decays(), 0);
    assert!(pool.backend.sketch.estimate(popular) >= 6);
    for _ in 0..blocks {
        pool.access(SequenceHash::root(fresh));
        fresh += 1;
    }
    assert_eq!(pool.backend.sketch.decays(), 1);
    pool.backend.validate().unwrap();
}

#[test]
fn zero_credit_scale_is_lru() {
    let mut backend = AdmissionBackend::new(8);
    backend.scale = 0;
    backend.refresh_offsets();
    let popular = SequenceHash::root(1);
    backend.insert(0, popular);
    backend.remove(0, popular);
    backend.insert(0, popular);
    backend.insert(1, SequenceHash::root(2));
    assert_eq!(backend.pop_victim(), Some(0));
    assert_eq!(backend.credit_scale(), 0.0);
}

mod miniature_model {
    use proptest::prelude::*;

    use super::*;

    /// A miniature as a plain list of (key, tick, class): a release hits
    /// if its key is listed; a miss in a full miniature evicts the entry
    /// with the smallest tick plus class offset (the lower class on ties).
    fn model_release(
        entries: &mut Vec<(u64, i64, usize)>,
        slots: usize,
        offsets: &[i64; CLASSES],
        (key, class, tick): (u64, usize, i64),
    ) -> bool {
        let hit = match entries.iter().position(|e| e.0 == key) {
            Some(at) => {
                entries.remove(at);
                true
            }
            None => {
                if entries.len() == slots {
                    let victim = (0..entries.len())
                        .min_by_key(|&i| (entries[i].1 + offsets[entries[i].2], entries[i].2))
                        .unwrap();
                    entries.remove(victim);
                }
                false
            }
        };
        entries.push((key, tick, class));
        hit
    }

    proptest! {
        /// Every miniature's hits and evictions agree with its own plain
        /// model under any credits, classes and key reuse, and the shared
        /// table (probing, erasing with backward shifts, recorded
        /// positions, the free list) stays consistent.
        #[test]
        fn miniatures_match_plain_models(
            slots in 1usize..12,
            offsets in prop::array::uniform5(prop::array::uniform8(-40i64..40)),
            releases in prop::collection::vec((0u64..24, 0usize..CLASSES, 1i64..4), 1..300),
        ) {
            let mut minis = minisim::Miniatures::new(slots);
            for (m, offsets) in offsets.iter().enumerate() {
                minis.set_offsets(m, *offsets);
            }
            let mut models = vec![Vec::new(); minisim::MINIS];
            let mut tick = 0;
            for (key, class, step) in releases {
                tick += step;
                let mixed = minisim::mix(SequenceHash::root(key));
                minis.release(mixed, class, tick);
                for (m, entries) in models.iter_mut().enumerate() {
                    let hit = model_release(entries, slots, &offsets[m], (mixed, class, tick));
                    prop_assert_eq!(minis.take_hits(m), u64::from(hit));
                }
                prop_assert_eq!(minis.validate(), Ok(()));
            }
        }
    }
}

mod released_model {
    use proptest::prelude::*;

    use super::*;

    /// `is_child` as the lineage hash defines it.
    fn names_as_parent(child: SequenceHash, parent: SequenceHash) -> bool {
        child.position() == parent.position() + 1
            && child.parent_hash_fragment()
                == parent.parent_fragment_for_child_position(child.position())
    }

    /// Packed values of every mode, including mode 3 (never produced).
    fn packed() -> impl Strategy<Value = SequenceHash> {
        prop_oneof![
            any::<u128>(),
            (0u8..4, any::<u128>())
                .prop_map(|(mode, v)| (u128::from(mode) << 126) | (v & ((1 << 126) - 1))),
        ]
        .prop_map(SequenceHash::from_u128)
    }

    /// A parent and a child extending it, at positions around the mode
    /// boundaries.
    fn pair() -> impl Strategy<Value = (SequenceHash, SequenceHash)> {
        (
            prop_oneof![
                0u64..300,
                250u64..260,
                65_530u64..65_540,
                (1u64 << 24) - 3..(1u64 << 24) - 1
            ],
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(position, current, parent, child_block)| {
                let parent_hash = SequenceHash::new(current, Some(parent), position);
                (parent_hash, parent_hash.extend(child_block))
            })
    }

    proptest! {
        /// The branch-free decoding agrees with the lineage hash's own
        /// accessors, in every mode.
        #[test]
        fn decoding_matches_the_lineage_hash(hash in packed()) {
            let released = Released::decode(7, hash);
            prop_assert_eq!(released.id, 7);
            prop_assert_eq!(released.position, hash.position());
            prop_assert_eq!(released.current, hash.current_sequence_hash());
            prop_assert_eq!(released.fragment, hash.parent_hash_fragment());
        }

        /// `is_child` agrees with the lineage hash's definition, for true
        /// parent/child pairs, reversed pairs and unrelated values.
        #[test]
        fn child_check_matches_the_lineage_hash(
            (parent, child) in pair(),
            a in packed(),
            b in packed(),
        ) {
            for (x, y) in [(child, parent), (parent, child), (a, b), (child, a), (a, parent)] {
                prop_assert_eq!(
                    is_child(&Released::decode(0, x), &Released::decode(1, y)),
                    names_as_parent(x, y)
                );
            }
            prop_assert!(is_child(&Released::decode(0, child), &Released::decode(1, parent)));
        }
    }
}
