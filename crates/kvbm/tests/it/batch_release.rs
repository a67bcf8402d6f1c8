//! `ImmutableBlock::release_all` gives blocks back exactly as dropping them
//! one by one, in order, would: same states, same counts and metrics, same
//! eviction order afterwards — for every eviction policy, with several
//! shares of one block in a batch and with batches that mix managers.

use kvbm::eviction::EvictionPolicy;
use kvbm::testing::{chain, check, manager_with, Device};
use kvbm::{BlockManager, ImmutableBlock};
use proptest::prelude::*;

/// One step of the script, run on two managers side by side.
#[derive(Debug, Clone)]
enum Op {
    /// Match the longest cached prefix of chain `seed` (of `len` blocks),
    /// fill the rest if there is room, and keep the blocks as a request.
    Request { seed: u64, len: usize },
    /// Clone the blocks of request `which` (modulo the live ones) into a
    /// new request: the blocks then have two shares each.
    Share { which: usize },
    /// Give back request `which`: one manager drops its blocks one by one,
    /// the other releases them in one batch.
    Release { which: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..5, 1usize..7).prop_map(|(seed, len)| Op::Request { seed, len }),
        1 => any::<usize>().prop_map(|which| Op::Share { which }),
        3 => any::<usize>().prop_map(|which| Op::Release { which }),
    ]
}

/// Serves a request of `len` blocks of chain `seed`; `None` if it does not
/// fit.
fn request(m: &BlockManager<Device>, seed: u64, len: usize) -> Option<Vec<ImmutableBlock<Device>>> {
    let hashes = chain(seed * 100, len);
    let mut held = m.match_blocks(&hashes);
    let rest = &hashes[held.len()..];
    if rest.is_empty() {
        return Some(held);
    }
    let blocks = m.allocate_blocks(rest.len())?;
    let staged = blocks
        .into_iter()
        .zip(rest)
        .map(|(b, h)| b.stage(*h, m.block_size()).unwrap())
        .collect();
    held.extend(m.register_blocks(staged));
    Some(held)
}

/// The same observable state: counts, metrics and invariants.
fn same(a: &BlockManager<Device>, b: &BlockManager<Device>) -> Result<(), TestCaseError> {
    check(a);
    check(b);
    prop_assert_eq!(a.available_blocks(), b.available_blocks());
    prop_assert_eq!(a.metrics().snapshot(), b.metrics().snapshot());
    Ok(())
}

/// Evicts everything cached (all blocks must be free or cached) and
/// returns the hashes in eviction order.
fn eviction_order(m: &BlockManager<Device>) -> Vec<kvbm::SequenceHash> {
    let (_blocks, evicted) = m
        .allocate_blocks_with_evictions(m.total_blocks())
        .expect("every block is free or cached");
    evicted
}

fn run(policy: EvictionPolicy, ops: &[Op]) -> Result<(), TestCaseError> {
    let (a, b) = (manager_with(policy, 16), manager_with(policy, 16));
    let mut held_a: Vec<Vec<ImmutableBlock<Device>>> = Vec::new();
    let mut held_b: Vec<Vec<ImmutableBlock<Device>>> = Vec::new();
    for op in ops {
        match *op {
            Op::Request { seed, len } => {
                let (ra, rb) = (request(&a, seed, len), request(&b, seed, len));
                prop_assert_eq!(ra.is_some(), rb.is_some());
                if let (Some(ra), Some(rb)) = (ra, rb) {
                    let ids = |r: &[ImmutableBlock<Device>]| {
                        r.iter().map(|x| x.block_id()).collect::<Vec<_>>()
                    };
                    prop_assert_eq!(ids(&ra), ids(&rb));
                    held_a.push(ra);
                    held_b.push(rb);
                }
            }
            Op::Share { which } if !held_a.is_empty() => {
                let i = which % held_a.len();
                let (ca, cb) = (held_a[i].clone(), held_b[i].clone());
                held_a.push(ca);
                held_b.push(cb);
            }
            Op::Release { which } if !held_a.is_empty() => {
                let i = which % held_a.len();
                drop(held_a.remove(i));
                ImmutableBlock::release_all(held_b.remove(i));
            }
            Op::Share { .. } | Op::Release { .. } => {}
        }
        same(&a, &b)?;
    }
    // Newest request first, as a stack would unwind.
    while let (Some(ra), Some(rb)) = (held_a.pop(), held_b.pop()) {
        drop(ra);
        ImmutableBlock::release_all(rb);
        same(&a, &b)?;
    }
    prop_assert_eq!(eviction_order(&a), eviction_order(&b));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 2 } else { 64 }))]

    #[test]
    fn a_batch_release_is_a_release_one_by_one(
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        for policy in EvictionPolicy::ALL {
            run(policy, &ops)?;
        }
    }
}

/// A batch of blocks from two managers, interleaved, and one with the same
/// block twice: each manager ends as if the blocks were dropped in order.
#[test]
fn batches_mixing_managers_and_repeating_blocks() {
    let (a, b) = (
        manager_with(EvictionPolicy::Lru, 8),
        manager_with(EvictionPolicy::Lru, 8),
    );
    let (a2, b2) = (
        manager_with(EvictionPolicy::Lru, 8),
        manager_with(EvictionPolicy::Lru, 8),
    );
    let fill = |m: &BlockManager<Device>, seed| request(m, seed, 4).unwrap();
    let (xa, ya) = (fill(&a, 1), fill(&a2, 2));
    let (xb, yb) = (fill(&b, 1), fill(&b2, 2));
    // a/a2 one by one; b/b2 in one interleaved batch with a repeated block.
    let mut one_by_one = Vec::new();
    let mut batch = Vec::new();
    for (i, ((xa, ya), (xb, yb))) in xa
        .into_iter()
        .zip(ya)
        .zip(xb.into_iter().zip(yb))
        .enumerate()
    {
        if i == 1 {
            one_by_one.push(xa.clone());
            batch.push(xb.clone());
        }
        one_by_one.extend([xa, ya]);
        batch.extend([xb, yb]);
    }
    drop(one_by_one);
    ImmutableBlock::release_all(batch);
    for (one, other) in [(&a, &b), (&a2, &b2)] {
        check(one);
        check(other);
        assert_eq!(one.available_blocks(), 8);
        assert_eq!(one.metrics().snapshot(), other.metrics().snapshot());
        assert_eq!(eviction_order(one), eviction_order(other));
    }
    // The last guards are gone: the managers' stores can go too.
    let metrics = b.metrics().clone();
    drop(b);
    assert!(!kvbm::testing::store_alive(&metrics));
}

/// A store large enough to prefetch ahead of its registrations
/// (`PREFETCH_MIN_BLOCKS`, 2^16 blocks) registers batches longer than its
/// prefetch ring (32) in order, deduplicating hashes already registered
/// (within the batch too), and ends consistent.
#[test]
fn a_large_store_registers_long_batches_in_order() {
    let m = kvbm::testing::builder(EvictionPolicy::Lineage)
        .block_count(1 << 16)
        .block_size(4)
        .duplication_policy(kvbm::blocks::BlockDuplicationPolicy::Reject)
        .build()
        .unwrap();
    let first = request(&m, 1, 40).unwrap();
    check(&m);
    // 70 hashes: the 40 above (held), 29 new ones and one repeated.
    let mut hashes = chain(100, 69);
    hashes.push(hashes[45]);
    let blocks = m.allocate_blocks(hashes.len()).unwrap();
    let staged = blocks
        .into_iter()
        .zip(&hashes)
        .map(|(b, h)| b.stage(*h, m.block_size()).unwrap())
        .collect();
    let held = m.register_blocks(staged);
    let got: Vec<_> = held.iter().map(|b| b.sequence_hash()).collect();
    assert_eq!(got, hashes);
    for (i, b) in held.iter().enumerate().take(40) {
        assert_eq!(
            b.block_id(),
            first[i].block_id(),
            "deduplicated into the held block"
        );
    }
    assert_eq!(held[69].block_id(), held[45].block_id());
    check(&m);
    assert_eq!(m.available_blocks(), (1 << 16) - 69);
    drop(first);
    ImmutableBlock::release_all(held);
    check(&m);
    assert_eq!(m.match_blocks(&hashes[..69]).len(), 69);
}
