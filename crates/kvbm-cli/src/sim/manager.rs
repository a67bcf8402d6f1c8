//! Policies backed by the real block manager (`kvbm::manager::BlockManager`)
//! with one of its inactive (eviction) backends.
//!
//! Each simulated request drives the manager as an inference server would:
//! `match_blocks` on its prompt's hash chain (the returned blocks are the
//! prefix hits and stay held), `allocate_blocks` for the rest (all or
//! nothing; evicts cached blocks), `stage` + `register_blocks` for the
//! blocks it computed, and finally dropping every handle, which caches the
//! registered blocks in the backend. Handles are dropped in the configured
//! [`ReleaseOrder`]; root-first is the order of the request's block list,
//! i.e. what dropping the `Vec` of handles does.
//!
//! The manager uses [`BlockDuplicationPolicy::Reject`]: registering a hash
//! that is already registered hands back the registered block, so a block
//! computed twice is cached once.

use std::collections::HashMap;
use std::sync::Arc;

use kvbm::blocks::{BlockDuplicationPolicy, BlockMetadata, ImmutableBlock, MutableBlock};
use kvbm::manager::BlockManager;
use kvbm::metrics::{BlockPoolMetrics, MetricsAggregator};
use kvbm::SequenceHash;

use crate::error::{CliError, Result};
use crate::sim::{ReleaseOrder, SimCache};
use crate::workload::{BlockKey, Request};

pub use kvbm::eviction::EvictionPolicy;

/// The storage tier of the simulated managers. Their metrics are told apart
/// by the `pool` label each gets from [`pool_label`], not by the tier type.
#[derive(Debug, Clone, Copy)]
pub struct SimTier;

/// The `pool` label of a simulated manager's metrics (`pool="Lru"`, …).
pub fn pool_label(policy: EvictionPolicy) -> &'static str {
    match policy {
        EvictionPolicy::Lru => "Lru",
        EvictionPolicy::MultiLru { .. } => "MultiLru",
        EvictionPolicy::Lineage => "Lineage",
        EvictionPolicy::Fifo => "Fifo",
        EvictionPolicy::Admission => "Admission",
    }
}

struct Held<T: BlockMetadata> {
    immutable: Vec<ImmutableBlock<T>>,
    mutable: Vec<MutableBlock<T>>,
}

impl<T: BlockMetadata> Default for Held<T> {
    fn default() -> Self {
        Self {
            immutable: Vec::new(),
            mutable: Vec::new(),
        }
    }
}

/// A [`SimCache`] that is a real `BlockManager`.
pub struct ManagerCache<'w, T: BlockMetadata> {
    name: &'static str,
    manager: BlockManager<T>,
    hashes: &'w [SequenceHash],
    held: HashMap<usize, Held<T>>,
    release: ReleaseOrder,
    scratch: Vec<SequenceHash>,
}

/// Builds a manager-backed policy over a workload's block hashes.
pub fn build<'w>(
    backend: EvictionPolicy,
    capacity: usize,
    block_size: u32,
    hashes: &'w [SequenceHash],
    release: ReleaseOrder,
    aggregator: Option<&MetricsAggregator>,
) -> Result<Box<dyn SimCache + 'w>> {
    let mut builder = BlockManager::<SimTier>::builder()
        .block_count(capacity)
        .block_size(block_size as usize)
        .duplication_policy(BlockDuplicationPolicy::Reject)
        .eviction_policy(backend)
        .metrics_label(pool_label(backend));
    if let Some(a) = aggregator {
        builder = builder.aggregator(a.clone());
    }
    let manager = builder.build().map_err(|e| {
        CliError::Manager(format!(
            "{} backend with {capacity} blocks of {block_size} tokens: {e}",
            backend.name()
        ))
    })?;
    Ok(Box::new(ManagerCache {
        name: backend.name(),
        manager,
        hashes,
        held: HashMap::new(),
        release,
        scratch: Vec::new(),
    }))
}

impl<T: BlockMetadata> SimCache for ManagerCache<'_, T> {
    fn name(&self) -> &str {
        self.name
    }

    fn capacity(&self) -> usize {
        self.manager.total_blocks()
    }

    fn available(&self) -> usize {
        self.manager.available_blocks()
    }

    fn match_prefix(&mut self, r: usize, req: &Request) -> usize {
        self.scratch.clear();
        self.scratch
            .extend(req.blocks.iter().map(|&k| self.hashes[k as usize]));
        let matched = self.manager.match_blocks(&self.scratch);
        let n = matched.len();
        self.held.entry(r).or_default().immutable.extend(matched);
        n
    }

    fn allocate(&mut self, r: usize, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        match self.manager.allocate_blocks(n) {
            Some(blocks) => {
                self.held.entry(r).or_default().mutable.extend(blocks);
                true
            }
            None => false,
        }
    }

    fn register(&mut self, r: usize, keys: &[BlockKey]) {
        let held = self.held.entry(r).or_default();
        let block_size = self.manager.block_size();
        let take = keys.len().min(held.mutable.len());
        let start = held.mutable.len() - take;
        let mut complete = Vec::with_capacity(take);
        for (block, &key) in held.mutable.drain(start..).zip(keys) {
            match block.stage(self.hashes[key as usize], block_size) {
                Ok(c) => complete.push(c),
                // Sizes come from the manager itself; a mismatch cannot
                // happen, and the block would simply go back to the pool.
                Err(e) => drop(e.into_block()),
            }
        }
        let registered = self.manager.register_blocks(complete);
        held.immutable.extend(registered);
    }

    fn release(&mut self, r: usize) {
        let Some(mut held) = self.held.remove(&r) else {
            return;
        };
        drop(std::mem::take(&mut held.mutable));
        if self.release == ReleaseOrder::LeafFirst {
            held.immutable.reverse();
        }
        // Dropping a Vec drops its elements front to back.
        drop(held.immutable);
    }

    fn evictions(&self) -> u64 {
        self.manager.metrics().snapshot().evictions
    }

    fn pool_metrics(&self) -> Option<Arc<BlockPoolMetrics>> {
        Some(Arc::clone(self.manager.metrics()))
    }
}
