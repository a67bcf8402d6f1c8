//! Helpers shared by the integration tests.
#![allow(dead_code)]

use kvbm::manager::BlockManager;
use kvbm::SequenceHash;

/// The storage tier used by the tests.
#[derive(Clone, Debug)]
pub struct Device;

/// A second tier, for tests that share a registry.
#[derive(Clone, Debug)]
pub struct Host;

/// A chain of `n` lineage hashes: one sequence of `n` blocks whose block
/// hashes are `seed, seed + 1, …`.
pub fn chain(seed: u64, n: usize) -> Vec<SequenceHash> {
    let mut out = Vec::with_capacity(n);
    let mut h = SequenceHash::root(seed);
    out.push(h);
    for i in 1..n {
        h = h.extend(seed + i as u64);
        out.push(h);
    }
    out.truncate(n);
    out
}

/// The eviction backends a manager can be built with.
pub use kvbm::eviction::EvictionPolicy as Backend;

pub const ALL_BACKENDS: [Backend; 5] = Backend::ALL;

/// A builder preset with `backend` (and, for multi-LRU, a registry with a
/// frequency tracker).
pub fn builder(backend: Backend) -> kvbm::manager::BlockManagerConfigBuilder<Device> {
    use kvbm::manager::FrequencyTrackingCapacity;
    use kvbm::registry::BlockRegistry;
    let b = BlockManager::<Device>::builder().eviction_policy(backend);
    if backend.needs_frequency_tracker() {
        b.registry(
            BlockRegistry::builder()
                .frequency_tracker(FrequencyTrackingCapacity::Small.create_tracker())
                .build(),
        )
    } else {
        b
    }
}

/// A manager of `blocks` blocks of 4 tokens with LRU eviction.
pub fn manager(blocks: usize) -> BlockManager<Device> {
    builder(Backend::Lru)
        .block_count(blocks)
        .block_size(4)
        .build()
        .expect("valid settings")
}

/// Allocates, stages and registers one block per hash, returning the
/// handles.
pub fn fill(
    manager: &BlockManager<Device>,
    hashes: &[SequenceHash],
) -> Vec<kvbm::ImmutableBlock<Device>> {
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

/// Panics with the violation if the manager's invariants do not hold.
pub fn check(manager: &BlockManager<Device>) {
    if let Err(e) = manager.validate() {
        panic!("{e}");
    }
}
