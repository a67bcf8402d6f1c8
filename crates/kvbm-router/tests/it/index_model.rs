//! ClusterIndex against a plain model: per instance a set of hashes, and
//! find_matches computed from the documented resolution rule.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use kvbm::events::{KvCacheEvents, KvbmCacheEvents};
use kvbm::tokens::PositionalLineageHash as H;
use kvbm_router::{Applied, ClusterIndex};
use proptest::prelude::*;

/// The hash of the path `choices` (each step picks one of 3 children).
fn path(root: u8, choices: &[u8]) -> Vec<H> {
    let mut h = H::root(1000 + root as u64);
    let mut out = vec![h];
    for &c in choices {
        h = h.extend(c as u64 % 3);
        out.push(h);
    }
    out
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8, Vec<(u8, Vec<u8>)>),
    Remove(u8, Vec<(u8, Vec<u8>)>),
    Shutdown(u8),
    Query(u8, Vec<u8>),
}

fn hashes_of(specs: &[(u8, Vec<u8>)]) -> Vec<H> {
    specs
        .iter()
        .map(|(r, c)| *path(*r, c).last().unwrap())
        .collect()
}

fn op() -> impl Strategy<Value = Op> {
    let spec = (0u8..2, prop::collection::vec(0u8..3, 0..6));
    prop_oneof![
        4 => (0u8..5, prop::collection::vec(spec.clone(), 1..8)).prop_map(|(i, s)| Op::Create(i, s)),
        2 => (0u8..5, prop::collection::vec(spec, 1..8)).prop_map(|(i, s)| Op::Remove(i, s)),
        1 => (0u8..5).prop_map(Op::Shutdown),
        3 => (0u8..2, prop::collection::vec(0u8..3, 0..6)).prop_map(|(r, c)| Op::Query(r, c)),
    ]
}

/// The documented rule: walk indexed positions; an instance scores i + 1
/// for the deepest indexed i up to which it held every indexed position.
fn model_matches(
    held: &BTreeMap<u8, HashSet<H>>,
    positions: &BTreeSet<u64>,
    query: &[H],
) -> BTreeMap<u128, usize> {
    let indexed: Vec<usize> = (0..query.len())
        .filter(|&i| positions.contains(&query[i].position()))
        .collect();
    let mut out = BTreeMap::new();
    for (&inst, set) in held {
        let k = indexed
            .iter()
            .take_while(|&&i| set.contains(&query[i]))
            .count();
        if k > 0 {
            out.insert(inst as u128, indexed[k - 1] + 1);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn index_follows_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut index = ClusterIndex::new();
        let mut held: BTreeMap<u8, HashSet<H>> = BTreeMap::new();
        let mut seq: BTreeMap<u8, u64> = BTreeMap::new();
        let mut positions = BTreeSet::new();
        for op in ops {
            match op {
                Op::Create(i, specs) => {
                    let hs = hashes_of(&specs);
                    let s = seq.entry(i).or_insert(0);
                    *s += 1;
                    let batch = KvbmCacheEvents { events: KvCacheEvents::Create(hs.clone()), instance_id: i as u128 };
                    prop_assert_eq!(index.apply(&batch, Some(*s)).unwrap(), Applied::InSync);
                    positions.extend(hs.iter().map(|h| h.position()));
                    held.entry(i).or_default().extend(hs);
                }
                Op::Remove(i, specs) => {
                    let hs = hashes_of(&specs);
                    let s = seq.entry(i).or_insert(0);
                    *s += 1;
                    let batch = KvbmCacheEvents { events: KvCacheEvents::Remove(hs.clone()), instance_id: i as u128 };
                    prop_assert_eq!(index.apply(&batch, Some(*s)).unwrap(), Applied::InSync);
                    let set = held.entry(i).or_default();
                    for h in hs { set.remove(&h); }
                }
                Op::Shutdown(i) => {
                    let batch = KvbmCacheEvents { events: KvCacheEvents::Shutdown, instance_id: i as u128 };
                    prop_assert_eq!(index.apply(&batch, Some(seq.get(&i).unwrap_or(&0) + 1)).unwrap(), Applied::Dropped);
                    held.remove(&i);
                    seq.remove(&i);
                }
                Op::Query(r, c) => {
                    let q = path(r, &c);
                    let got: BTreeMap<u128, usize> = index.find_matches(&q).scores().iter().copied().collect();
                    prop_assert_eq!(got, model_matches(&held, &positions, &q));
                }
            }
            // Entries equal the model, instance by instance.
            let all: HashSet<H> = held.values().flatten().copied().collect();
            prop_assert_eq!(index.len(), all.len());
            for (&i, set) in &held {
                let mut got = index.instance_hashes(i as u128);
                got.sort();
                let mut want: Vec<H> = set.iter().copied().collect();
                want.sort();
                prop_assert_eq!(index.instance_len(i as u128), want.len());
                prop_assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn full_chains_score_leading_blocks() {
    let q = path(0, &[1, 2, 0, 1, 1]);
    let mut index = ClusterIndex::new();
    for (inst, depth) in [(1u128, 6usize), (2, 3), (3, 1)] {
        let b = KvbmCacheEvents {
            events: KvCacheEvents::Create(q[..depth].to_vec()),
            instance_id: inst,
        };
        index.apply(&b, Some(1)).unwrap();
    }
    let m = index.find_matches(&q);
    assert_eq!((m.get(1), m.get(2), m.get(3), m.get(4)), (6, 3, 1, 0));
    assert_eq!(m.best(), 6);
    // A query diverging after block 2 scores at most 2 (wait: 3 blocks shared).
    let other = path(0, &[1, 2, 2, 2]);
    let m = index.find_matches(&other);
    assert_eq!((m.get(1), m.get(2), m.get(3)), (3, 3, 1));
}

#[test]
fn sparse_events_resolve_to_deepest_power_of_two() {
    // A 100-block chain; the instance announces positions 16, 32, 64 of its
    // first 40 blocks only (as PowerOfTwoPolicy does).
    let mut chain = vec![H::root(5)];
    for i in 1..100u64 {
        let next = chain[chain.len() - 1].extend(i);
        chain.push(next);
    }
    let mut index = ClusterIndex::new();
    let announced: Vec<H> = [16usize, 32].iter().map(|&p| chain[p]).collect();
    index
        .apply(
            &KvbmCacheEvents {
                events: KvCacheEvents::Create(announced),
                instance_id: 9,
            },
            Some(1),
        )
        .unwrap();
    // Holding blocks 0..40 resolves to position 32: 33 leading blocks.
    assert_eq!(index.find_matches(&chain).get(9), 33);
    assert_eq!(index.find_matches(&chain[..20]).get(9), 17);
    assert_eq!(index.find_matches(&chain[..10]).get(9), 0);
    // Another instance announcing 64 too makes position 64 indexed; ours
    // stops at 32, theirs reaches 65.
    let deep: Vec<H> = [16usize, 32, 64].iter().map(|&p| chain[p]).collect();
    index
        .apply(
            &KvbmCacheEvents {
                events: KvCacheEvents::Create(deep),
                instance_id: 10,
            },
            Some(1),
        )
        .unwrap();
    let m = index.find_matches(&chain);
    assert_eq!((m.get(9), m.get(10)), (33, 65));
}

#[test]
fn gaps_and_snapshots() {
    let q = path(1, &[0, 1, 2, 0, 1, 2, 0]);
    let mut index = ClusterIndex::new();
    let create = |hs: &[H]| KvbmCacheEvents {
        events: KvCacheEvents::Create(hs.to_vec()),
        instance_id: 4,
    };
    let remove = |hs: &[H]| KvbmCacheEvents {
        events: KvCacheEvents::Remove(hs.to_vec()),
        instance_id: 4,
    };
    assert_eq!(
        index.apply(&create(&q[..2]), Some(1)).unwrap(),
        Applied::InSync
    );
    assert_eq!(
        index.apply(&create(&q[..1]), Some(2)).unwrap(),
        Applied::InSync
    );
    assert_eq!(
        index.apply(&create(&q[..1]), Some(2)).unwrap(),
        Applied::Stale
    );
    // Batches 3 (create q[2..5]) and 4 (remove q[1]) are lost.
    let got = index.apply(&create(&q[5..6]), Some(5)).unwrap();
    assert_eq!(got, Applied::Gap { missed: 2 });
    assert!(got.needs_snapshot());
    assert_eq!(index.awaiting_snapshot().collect::<Vec<_>>(), vec![4]);
    // Between the gap and the snapshot: the stale q[1] is still there, the
    // lost creates are missing.
    assert!(index.holds(4, q[1]) && !index.holds(4, q[3]));
    // Batch 6 arrives before the snapshot reply, which was taken at 5.
    index.apply(&remove(&q[5..6]), Some(6)).unwrap();
    let registry_at_5: Vec<H> = [q[0], q[2], q[3], q[4], q[5]].to_vec();
    assert_eq!(
        index.apply_snapshot(4, 5, &registry_at_5).unwrap(),
        kvbm_router::SnapshotOutcome::Resynced
    );
    let mut got = index.instance_hashes(4);
    got.sort();
    let mut want = vec![q[0], q[2], q[3], q[4]];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(index.awaiting_snapshot().count(), 0);
    assert_eq!(index.last_sequence(4), Some(6));
    assert_eq!(
        index.apply(&create(&q[6..7]), Some(7)).unwrap(),
        Applied::InSync
    );
    // A snapshot older than the batches kept leaves the instance behind.
    assert_eq!(
        index.apply(&create(&q[6..7]), Some(9)).unwrap(),
        Applied::Gap { missed: 1 }
    );
    assert_eq!(
        index.apply_snapshot(4, 7, &registry_at_5).unwrap(),
        kvbm_router::SnapshotOutcome::StillBehind
    );
    assert_eq!(index.awaiting_snapshot().count(), 1);
}

#[test]
fn first_heard_mid_stream_and_restart() {
    let q = path(0, &[2, 2, 2]);
    let mut index = ClusterIndex::new();
    let b = KvbmCacheEvents {
        events: KvCacheEvents::Create(q[..2].to_vec()),
        instance_id: 8,
    };
    assert_eq!(index.apply(&b, Some(17)).unwrap(), Applied::FirstHeard);
    assert_eq!(index.apply(&b, None).unwrap(), Applied::Unsequenced);
    // A restarted sender numbers from 1 again: its old entries go.
    let b = KvbmCacheEvents {
        events: KvCacheEvents::Create(q[3..4].to_vec()),
        instance_id: 8,
    };
    assert_eq!(index.apply(&b, Some(1)).unwrap(), Applied::InSync);
    assert_eq!(index.instance_hashes(8), vec![q[3]]);
    assert_eq!(index.awaiting_snapshot().count(), 0);
}

#[test]
fn many_instances_share_hashes_and_slots_are_reused() {
    let q = path(1, &[1, 1, 1, 1]);
    let mut index = ClusterIndex::new();
    for inst in 0..150u128 {
        let depth = 1 + (inst as usize % 5);
        let b = KvbmCacheEvents {
            events: KvCacheEvents::Create(q[..depth].to_vec()),
            instance_id: inst,
        };
        index.apply(&b, Some(1)).unwrap();
    }
    let m = index.find_matches(&q);
    assert_eq!(m.scores().len(), 150);
    for inst in 0..150u128 {
        assert_eq!(m.get(inst), 1 + inst as usize % 5);
    }
    for inst in 0..140u128 {
        assert!(index.drop_instance(inst));
    }
    assert_eq!(index.instances().count(), 10);
    let b = KvbmCacheEvents {
        events: KvCacheEvents::Create(q.clone()),
        instance_id: 1000,
    };
    index.apply(&b, Some(1)).unwrap();
    let m = index.find_matches(&q);
    assert_eq!(m.get(1000), 5);
    assert_eq!(m.get(145), 1);
    assert_eq!(m.get(3), 0);
    assert!(index.memory().bytes_per_hash() > 0.0);
}
