//! Fixtures shared by the crate's unit tests, its integration tests and
//! downstream crates' tests: storage tiers, hash chains, preset builders and
//! an invariant check. Compiled for `cfg(test)` or with the `testing`
//! feature; never part of a normal build.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::events::EventsManager;
use crate::eviction::EvictionPolicy;
use crate::manager::{BlockManager, BlockManagerConfigBuilder, FrequencyTrackingCapacity};
use crate::metrics::BlockPoolMetrics;
use crate::registry::BlockRegistry;
use crate::{BlockMetadata, CompleteBlock, ImmutableBlock, SequenceHash};

/// The storage tier most tests use.
#[derive(Clone, Debug)]
pub struct Device;

/// A second tier, for tests that share a registry between two managers.
#[derive(Clone, Debug)]
pub struct Host;

/// A chain of `n` lineage hashes: one sequence of `n` blocks whose block
/// hashes are `seed, seed + 1, …`.
pub fn chain(seed: u64, n: usize) -> Vec<SequenceHash> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut h = SequenceHash::root(seed);
    out.push(h);
    for i in 1..n {
        h = h.extend(seed + i as u64);
        out.push(h);
    }
    out
}

/// A builder for the [`Device`] tier with eviction `policy` (multi-LRU gets
/// a small frequency tracker from the builder).
pub fn builder(policy: EvictionPolicy) -> BlockManagerConfigBuilder<Device> {
    BlockManager::<Device>::builder()
        .eviction_policy(policy)
        .frequency_tracking_capacity(FrequencyTrackingCapacity::Small)
}

/// A registry that reports to `events`, with a small frequency tracker when
/// `policy` needs one (a registry handed to the builder must bring its own).
pub fn registry_with_events(policy: EvictionPolicy, events: Arc<EventsManager>) -> BlockRegistry {
    let registry = BlockRegistry::builder().event_manager(events);
    if policy.needs_frequency_tracker() {
        registry
            .frequency_tracker(FrequencyTrackingCapacity::Small.create_tracker())
            .build()
    } else {
        registry.build()
    }
}

/// A manager of `blocks` blocks of 4 tokens with LRU eviction.
pub fn manager(blocks: usize) -> BlockManager<Device> {
    manager_with(EvictionPolicy::Lru, blocks)
}

/// A manager of `blocks` blocks of 4 tokens with eviction `policy` (the
/// preset of [`builder`], built).
pub fn manager_with(policy: EvictionPolicy, blocks: usize) -> BlockManager<Device> {
    builder(policy)
        .block_count(blocks)
        .block_size(4)
        .build()
        .expect("valid settings")
}

/// Allocates, stages and registers one block per hash and returns the
/// handles. Panics when the pool has too few free blocks.
pub fn fill<T: BlockMetadata>(
    manager: &BlockManager<T>,
    hashes: &[SequenceHash],
) -> Vec<ImmutableBlock<T>> {
    let blocks = manager
        .allocate_blocks(hashes.len())
        .expect("enough blocks");
    let complete = blocks
        .into_iter()
        .zip(hashes)
        .map(|(b, h)| b.stage(*h, manager.block_size()).expect("right size"))
        .collect();
    manager.register_blocks(complete)
}

/// Allocates one block and stages it under `hash`, ready to register.
/// Panics when the pool has no free block.
pub fn staged<T: BlockMetadata>(manager: &BlockManager<T>, hash: SequenceHash) -> CompleteBlock<T> {
    let block = manager
        .allocate_blocks(1)
        .and_then(|mut blocks| blocks.pop())
        .expect("a free block");
    block.stage(hash, manager.block_size()).expect("right size")
}

/// Whether the store behind `metrics` is still alive: it holds a reference
/// to its metrics while it lives, so there is one besides the caller's.
pub fn store_alive(metrics: &Arc<BlockPoolMetrics>) -> bool {
    Arc::strong_count(metrics) > 1
}

/// Panics with the violation if the manager's invariants do not hold.
pub fn check<T: BlockMetadata>(manager: &BlockManager<T>) {
    if let Err(e) = manager.validate() {
        panic!("{e}");
    }
}

/// A value that raises a shared flag when dropped: shows when an attachment
/// or a callback's captured state is released.
#[derive(Debug)]
pub struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    /// A fresh value and the flag it raises on drop.
    pub fn new() -> (Arc<AtomicBool>, DropFlag) {
        let f = Arc::new(AtomicBool::new(false));
        (f.clone(), DropFlag(f))
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
