//! Differential tests against kvbm-logical 1.6.1: the same random operation
//! sequences run on both managers, and everything each returns is compared —
//! allocation success, evicted hashes in order, match lengths, registered
//! block hashes, available blocks and the pool gauges — for every backend
//! and both duplicate policies.
//!
//! One deliberate difference: `inflight_immutable` counts *blocks* held by
//! at least one `ImmutableBlock` here (so `validate()` can check it against
//! the store), and *handles* in kvbm-logical. Each side is checked against
//! its own definition.
//!
//! Registering a hash that is still registered (held or cached) is covered
//! under both duplicate policies: with `BlockDuplicationPolicy::Allow` a
//! duplicate holds its primary on both sides, so the primary stays held
//! while any duplicate lives, registering a duplicate revives a cached
//! primary, and dropping the last duplicate caches the primary (which the
//! gauges and the later eviction order show).
//!
//! One difference shows up only when a hash that is still registered is
//! registered again, so the multi-LRU runs leave such fills out:
//! kvbm-logical counts a frequency-tracker access only when a registration
//! creates a new registry entry, this crate on every registration (a block
//! computed again is a use), so blocks land in different tiers.
//!
//! LRU, FIFO and lineage run the full operation mix with both duplicate
//! policies: matches, and registrations of hashes that are still registered
//! (which revive a cached primary). Lineage used to differ there: a revived
//! block with cached descendants left the tree, so its parent became an
//! evictable leaf and evicting it stranded the descendants; both sides now
//! keep the revived block in the tree (a ghost here) until its last cached
//! descendant leaves (`revived_lineage_block_keeps_its_descendants` pins
//! the minimal case).

use kvbm::manager::BlockManager as Ours;
use kvbm::pools::BlockDuplicationPolicy as OurDup;
use kvbm::SequenceHash as OurHash;
use kvbm_logical::blocks::BlockDuplicationPolicy as TheirDup;
use kvbm_logical::manager::{BlockManager as Theirs, FrequencyTrackingCapacity as TheirCapacity};
use kvbm_logical::registry::BlockRegistry as TheirRegistry;
use kvbm_logical::SequenceHash as TheirHash;
use proptest::prelude::*;

const BLOCKS: usize = 8;
const BLOCK_SIZE: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Lru,
    MultiLru,
    Lineage,
    Fifo,
}

#[derive(Clone, Copy, Debug)]
struct Tier;

fn ours(backend: Backend, dup: OurDup) -> Ours<Tier> {
    use kvbm::manager::FrequencyTrackingCapacity;
    use kvbm::registry::BlockRegistry;
    let b = Ours::<Tier>::builder()
        .block_count(BLOCKS)
        .block_size(BLOCK_SIZE)
        .duplication_policy(dup);
    let b = match backend {
        Backend::Lru => b.with_lru_backend(),
        Backend::MultiLru => b
            .registry(
                BlockRegistry::builder()
                    .frequency_tracker(FrequencyTrackingCapacity::Small.create_tracker())
                    .build(),
            )
            .with_multi_lru_backend_custom_thresholds(1, 2, 3),
        Backend::Lineage => b.with_lineage_backend(),
        Backend::Fifo => b.with_hashmap_backend(),
    };
    b.build().expect("valid settings")
}

fn theirs(backend: Backend, dup: TheirDup) -> Theirs<Tier> {
    let registry = if backend == Backend::MultiLru {
        TheirRegistry::builder()
            .frequency_tracker(TheirCapacity::Small.create_tracker())
            .build()
    } else {
        TheirRegistry::new()
    };
    let b = Theirs::<Tier>::builder()
        .block_count(BLOCKS)
        .block_size(BLOCK_SIZE)
        .duplication_policy(dup)
        .registry(registry);
    let b = match backend {
        Backend::Lru => b.with_lru_backend(),
        Backend::MultiLru => b.with_multi_lru_backend_custom_thresholds(1, 2, 3),
        Backend::Lineage => b.with_lineage_backend(),
        Backend::Fifo => b.with_hashmap_backend(),
    };
    b.build().expect("valid settings")
}

/// Three sequences of 6 blocks: b shares a's first 3 blocks, c shares
/// nothing. Built on both sides from the same block hashes.
fn universe() -> (Vec<Vec<OurHash>>, Vec<Vec<TheirHash>>) {
    let spec: [(u64, usize, u64); 3] = [(10, 0, 0), (10, 3, 50), (90, 0, 0)];
    let mut ours_all = Vec::new();
    let mut theirs_all = Vec::new();
    for (seed, shared, fork) in spec {
        let mut o = vec![OurHash::root(seed)];
        let mut t = vec![TheirHash::root(seed)];
        for i in 1..6u64 {
            let block = if (i as usize) < shared.max(1) || shared == 0 {
                seed + i
            } else {
                fork + i
            };
            o.push(o[i as usize - 1].extend(block));
            t.push(t[i as usize - 1].extend(block));
        }
        ours_all.push(o);
        theirs_all.push(t);
    }
    (ours_all, theirs_all)
}

#[derive(Debug, Clone)]
enum Op {
    /// Allocate n blocks and register them as `seq[from..from + n]`.
    Fill {
        seq: usize,
        from: usize,
        n: usize,
    },
    /// Match a prefix of a sequence and hold the hits.
    Match {
        seq: usize,
        len: usize,
    },
    /// Drop one held request (all its handles).
    Release(usize),
    /// Allocate and hold mutable blocks without registering them.
    Hold(usize),
    /// Drop every held mutable block.
    DropMutable,
    ResetInactive,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..6usize, 1..4usize).prop_map(|(seq, from, n)| Op::Fill { seq, from, n }),
        3 => (0..3usize, 0..7usize).prop_map(|(seq, len)| Op::Match { seq, len }),
        4 => any::<usize>().prop_map(Op::Release),
        1 => (1..3usize).prop_map(Op::Hold),
        1 => Just(Op::DropMutable),
        1 => Just(Op::ResetInactive),
    ]
}

type OurReq = Vec<kvbm::ImmutableBlock<Tier>>;
type TheirReq = Vec<kvbm_logical::ImmutableBlock<Tier>>;

fn gauges_ours(m: &Ours<Tier>) -> [i64; 4] {
    let s = m.metrics().snapshot();
    [
        m.available_blocks() as i64,
        s.reset_pool_size,
        s.inactive_pool_size,
        s.inflight_mutable,
    ]
}

fn gauges_theirs(m: &Theirs<Tier>) -> [i64; 4] {
    let s = m.metrics().snapshot();
    [
        m.available_blocks() as i64,
        s.reset_pool_size,
        s.inactive_pool_size,
        s.inflight_mutable,
    ]
}

/// `inflight_immutable` on each side by its own definition: distinct held
/// blocks here (the primaries that duplicates hold included), handles there.
fn check_inflight_immutable(
    om: &Ours<Tier>,
    tm: &Theirs<Tier>,
    ours: &[OurReq],
    theirs: &[TheirReq],
) -> Result<(), TestCaseError> {
    let mut blocks: Vec<_> = ours.iter().flatten().map(|b| b.block_id()).collect();
    // The primary of every held hash is held (by a duplicate, if by no
    // request); a scan finds it and, with nothing to revive, changes nothing.
    let hashes: Vec<_> = ours.iter().flatten().map(|b| b.sequence_hash()).collect();
    blocks.extend(
        om.scan_matches(&hashes, false)
            .values()
            .map(|b| b.block_id()),
    );
    blocks.sort_unstable();
    blocks.dedup();
    let handles: usize = theirs.iter().map(Vec::len).sum();
    prop_assert_eq!(
        om.metrics().snapshot().inflight_immutable,
        blocks.len() as i64
    );
    prop_assert_eq!(tm.metrics().snapshot().inflight_immutable, handles as i64);
    Ok(())
}

fn run(backend: Backend, reject: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let skip_reregistration = backend == Backend::MultiLru;
    let (our_seqs, their_seqs) = universe();
    let (a, b) = if reject {
        (OurDup::Reject, TheirDup::Reject)
    } else {
        (OurDup::Allow, TheirDup::Allow)
    };
    let om = ours(backend, a);
    let tm = theirs(backend, b);
    let mut our_reqs: Vec<OurReq> = Vec::new();
    let mut their_reqs: Vec<TheirReq> = Vec::new();
    let mut our_mut = Vec::new();
    let mut their_mut = Vec::new();
    let ids = |v: &[OurHash]| v.iter().map(|h| h.as_u128()).collect::<Vec<_>>();
    let their_ids = |v: &[TheirHash]| v.iter().map(|h| h.as_u128()).collect::<Vec<_>>();

    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Fill { seq, from, n } => {
                let n = n.min(6 - from);
                if skip_reregistration
                    && their_seqs[seq][from..from + n]
                        .iter()
                        .any(|h| tm.block_registry().is_registered(*h))
                {
                    continue;
                }
                let o = om.allocate_blocks_with_evictions(n);
                let t = tm.allocate_blocks_with_evictions(n);
                prop_assert_eq!(o.is_some(), t.is_some(), "step {}: allocate {}", step, n);
                if let (Some((ob, oe)), Some((tb, te))) = (o, t) {
                    prop_assert_eq!(
                        ids(&oe),
                        their_ids(&te),
                        "step {}: evictions (positions {:?} here, {:?} there)",
                        step,
                        oe.iter().map(|h| h.position()).collect::<Vec<_>>(),
                        te.iter().map(|h| h.position()).collect::<Vec<_>>()
                    );
                    let oc = ob
                        .into_iter()
                        .zip(&our_seqs[seq][from..from + n])
                        .map(|(blk, h)| blk.stage(*h, BLOCK_SIZE).expect("size"))
                        .collect();
                    let tc = tb
                        .into_iter()
                        .zip(&their_seqs[seq][from..from + n])
                        .map(|(blk, h)| {
                            blk.stage(*h, BLOCK_SIZE)
                                .unwrap_or_else(|_| panic!("block size {BLOCK_SIZE}"))
                        })
                        .collect();
                    let or = om.register_blocks(oc);
                    let tr = tm.register_blocks(tc);
                    let oh: Vec<_> = or.iter().map(|x| x.sequence_hash().as_u128()).collect();
                    let th: Vec<_> = tr.iter().map(|x| x.sequence_hash().as_u128()).collect();
                    prop_assert_eq!(oh, th, "step {}: registered", step);
                    our_reqs.push(or);
                    their_reqs.push(tr);
                }
            }
            Op::Match { seq, len } => {
                let len = len.min(6);
                let o = om.match_blocks(&our_seqs[seq][..len]);
                let t = tm.match_blocks(&their_seqs[seq][..len]);
                prop_assert_eq!(o.len(), t.len(), "step {}: match", step);
                our_reqs.push(o);
                their_reqs.push(t);
            }
            Op::Release(i) => {
                if !our_reqs.is_empty() {
                    let i = i % our_reqs.len();
                    // Dropping a Vec drops its handles front to back, on
                    // both sides alike.
                    drop(our_reqs.remove(i));
                    drop(their_reqs.remove(i));
                }
            }
            Op::Hold(n) => {
                let o = om.allocate_blocks_with_evictions(n);
                let t = tm.allocate_blocks_with_evictions(n);
                prop_assert_eq!(o.is_some(), t.is_some(), "step {}: hold {}", step, n);
                if let (Some((ob, oe)), Some((tb, te))) = (o, t) {
                    prop_assert_eq!(ids(&oe), their_ids(&te), "step {}: evictions", step);
                    our_mut.extend(ob);
                    their_mut.extend(tb);
                }
            }
            Op::DropMutable => {
                our_mut.clear();
                their_mut.clear();
            }
            Op::ResetInactive => {
                let o = om.reset_inactive_pool();
                let t = tm.reset_inactive_pool();
                prop_assert_eq!(o.is_ok(), t.is_ok(), "step {}: reset", step);
            }
        }
        prop_assert_eq!(
            gauges_ours(&om),
            gauges_theirs(&tm),
            "step {}: available, reset, inactive, inflight mutable",
            step
        );
        check_inflight_immutable(&om, &tm, &our_reqs, &their_reqs)?;
        for (o, t) in our_seqs.iter().flatten().zip(their_seqs.iter().flatten()) {
            prop_assert_eq!(
                om.block_registry().is_registered(*o),
                tm.block_registry().is_registered(*t),
                "step {}: registry presence",
                step
            );
        }
    }
    drop(our_reqs);
    drop(their_reqs);
    drop(our_mut);
    drop(their_mut);
    prop_assert_eq!(gauges_ours(&om), gauges_theirs(&tm), "at the end");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn lru_matches_kvbm_logical(ops in prop::collection::vec(op(), 1..80), reject in any::<bool>()) {
        run(Backend::Lru, reject, ops)?;
    }

    #[test]
    fn multi_lru_matches_kvbm_logical(ops in prop::collection::vec(op(), 1..80), reject in any::<bool>()) {
        run(Backend::MultiLru, reject, ops)?;
    }

    #[test]
    fn lineage_matches_kvbm_logical(ops in prop::collection::vec(op(), 1..80), reject in any::<bool>()) {
        run(Backend::Lineage, reject, ops)?;
    }

    #[test]
    fn fifo_matches_kvbm_logical(ops in prop::collection::vec(op(), 1..80), reject in any::<bool>()) {
        run(Backend::Fifo, reject, ops)?;
    }
}

/// Issue 11's minimal case, on both managers: positions 2..=5 of one chain
/// cached, 3 revived by registering it again, the free blocks used up, one
/// more block allocated. Evicting 2 would strand 4 and 5; both evict 5.
#[test]
fn revived_lineage_block_keeps_its_descendants() {
    let fill = |from, n| Op::Fill { seq: 0, from, n };
    // 8 blocks: after the release 4 are cached and 4 free; registering 3
    // again revives the cached primary and frees the block it was staged
    // in, so `Hold(4)` takes the free blocks and `Hold(1)` must evict.
    let ops = vec![
        fill(2, 4),
        Op::Release(0),
        fill(3, 1),
        Op::Hold(4),
        Op::Hold(1),
    ];
    run(Backend::Lineage, true, ops).unwrap();

    let (seqs, _) = universe();
    let om = ours(Backend::Lineage, OurDup::Reject);
    let register = |from: usize, n: usize| {
        let (blocks, _) = om.allocate_blocks_with_evictions(n).expect("room");
        let staged = blocks
            .into_iter()
            .zip(&seqs[0][from..from + n])
            .map(|(b, h)| b.stage(*h, BLOCK_SIZE).expect("size"))
            .collect();
        om.register_blocks(staged)
    };
    drop(register(2, 4));
    let revived = register(3, 1);
    let (_free, evicted) = om.allocate_blocks_with_evictions(4).expect("room");
    assert!(evicted.is_empty());
    let (_one, evicted) = om.allocate_blocks_with_evictions(1).expect("room");
    assert_eq!(evicted, vec![seqs[0][5]]);
    drop(revived);
}
