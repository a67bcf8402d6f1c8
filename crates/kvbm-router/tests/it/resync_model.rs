//! Lost batches and late snapshots: whatever is lost and whenever the
//! snapshots (taken at some batch number, delivered later) land, once a
//! gap is revealed and a snapshot taken after it is applied, the index holds
//! exactly each instance's registry.

use std::collections::{BTreeMap, BTreeSet};

use kvbm::events::{KvCacheEvents, KvbmCacheEvents};
use kvbm::tokens::PositionalLineageHash as H;
use kvbm_router::{ClusterIndex, SnapshotOutcome};
use proptest::prelude::*;

fn hash(root: u8, depth: u8) -> H {
    let mut h = H::root(77 + root as u64);
    for i in 0..depth {
        h = h.extend(i as u64);
    }
    h
}

#[derive(Debug, Clone)]
enum Op {
    /// A batch of instance `i`; `lost` batches never arrive.
    Batch {
        i: u8,
        create: bool,
        hashes: Vec<(u8, u8)>,
        lost: bool,
    },
    /// Instance `i` answers a snapshot request now (if one is wanted).
    Take { i: u8 },
    /// The oldest answer of instance `i` arrives.
    Deliver { i: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, any::<bool>(), prop::collection::vec((0u8..3, 0u8..5), 1..5), prop::bool::weighted(0.25))
            .prop_map(|(i, create, hashes, lost)| Op::Batch { i, create, hashes, lost }),
        2 => (0u8..3).prop_map(|i| Op::Take { i }),
        2 => (0u8..3).prop_map(|i| Op::Deliver { i }),
    ]
}

struct Instance {
    truth: BTreeSet<H>,
    seq: u64,
    answers: Vec<(u64, Vec<H>)>,
}

fn send(
    index: &mut ClusterIndex,
    id: u8,
    inst: &mut Instance,
    create: bool,
    hs: Vec<H>,
    lost: bool,
) {
    for &h in &hs {
        if create {
            inst.truth.insert(h);
        } else {
            inst.truth.remove(&h);
        }
    }
    inst.seq += 1;
    if !lost {
        let events = if create {
            KvCacheEvents::Create(hs)
        } else {
            KvCacheEvents::Remove(hs)
        };
        index
            .apply(
                &KvbmCacheEvents {
                    events,
                    instance_id: id as u128,
                },
                Some(inst.seq),
            )
            .unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn resync_ends_exact(ops in prop::collection::vec(op(), 1..80)) {
        let mut index = ClusterIndex::new();
        let mut insts: BTreeMap<u8, Instance> = (0..3)
            .map(|i| (i, Instance { truth: BTreeSet::new(), seq: 0, answers: Vec::new() }))
            .collect();
        for op in ops {
            match op {
                Op::Batch { i, create, hashes, lost } => {
                    let hs = hashes.iter().map(|&(r, d)| hash(r, d)).collect();
                    send(&mut index, i, insts.get_mut(&i).unwrap(), create, hs, lost);
                }
                Op::Take { i } => {
                    let inst = insts.get_mut(&i).unwrap();
                    if index.is_awaiting_snapshot(i as u128) {
                        inst.answers.push((inst.seq, inst.truth.iter().copied().collect()));
                    }
                }
                Op::Deliver { i } => {
                    let inst = insts.get_mut(&i).unwrap();
                    if !inst.answers.is_empty() {
                        let (seq, hs) = inst.answers.remove(0);
                        if index.is_awaiting_snapshot(i as u128) {
                            index.apply_snapshot(i as u128, seq, &hs).unwrap();
                        }
                    }
                }
            }
        }
        // Finish: one delivered batch reveals any trailing loss, then fresh
        // snapshots until each instance is in sync.
        for (&i, inst) in insts.iter_mut() {
            send(&mut index, i, inst, true, vec![hash(0, 0)], false);
            let mut rounds = 0;
            while index.is_awaiting_snapshot(i as u128) {
                let hs: Vec<H> = inst.truth.iter().copied().collect();
                let out = index.apply_snapshot(i as u128, inst.seq, &hs).unwrap();
                prop_assert_eq!(out, SnapshotOutcome::Resynced);
                rounds += 1;
                prop_assert!(rounds < 2);
            }
            let got: BTreeSet<H> = index.instance_hashes(i as u128).into_iter().collect();
            prop_assert_eq!(&got, &inst.truth);
            prop_assert_eq!(index.instance_len(i as u128), inst.truth.len());
        }
    }
}
