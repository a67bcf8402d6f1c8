//! The block store: the one place that changes block state.
//!
//! Blocks are slots in a `Vec` indexed by [`BlockId`]. Everything about
//! them — state, hash, the free list, the hash index of registered
//! primaries, the inactive backend's order — sits behind one mutex that each
//! operation takes once, however many blocks it touches. The number of
//! `ImmutableBlock` handles per block lives beside the mutex in atomics, so
//! cloning a handle never locks; the drop that takes the count to zero locks
//! and re-checks before caching the block, because a concurrent match may
//! have revived it in between.
//!
//! Registry updates happen under the store lock (lock order: store, then
//! registry shard) so that presence counts follow the order of state
//! changes; registry handles released by evictions are dropped after the
//! store lock is let go.

pub(crate) mod fold_hasher;
mod slot;
mod validate;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::blocks::{BlockDuplicationPolicy, CompleteBlock, ImmutableBlock, MutableBlock};
use crate::eviction::InactiveBackend;
use crate::metrics::BlockPoolMetrics;
use crate::registry::{BlockRegistrationHandle, BlockRegistry, TierId};
use crate::{BlockId, SequenceHash};
use fold_hasher::FoldHashMap;
use slot::{Slot, SlotState};

pub use validate::InvariantViolation;

/// The shared state behind a manager and its block guards.
pub(crate) struct Store<T> {
    state: Mutex<State>,
    /// `ImmutableBlock` handles per block.
    handles: Box<[AtomicU32]>,
    metrics: Arc<BlockPoolMetrics>,
    registry: BlockRegistry,
    tier: TierId,
    block_size: usize,
    duplication_policy: BlockDuplicationPolicy,
    _tier: PhantomData<fn() -> T>,
}

struct State {
    slots: Vec<Slot>,
    /// Free blocks; allocation pops from the end.
    free: Vec<u32>,
    /// Registered primaries (held or cached) by hash.
    index: FoldHashMap<SequenceHash, u32>,
    backend: Box<dyn InactiveBackend>,
    /// Blocks in `CheckedOut`.
    checked_out: usize,
    /// Blocks in `Held` or `Duplicate`.
    held: usize,
}

/// Settings a store is built from.
pub(crate) struct StoreConfig {
    pub(crate) block_count: usize,
    pub(crate) block_size: usize,
    pub(crate) duplication_policy: BlockDuplicationPolicy,
    pub(crate) backend: Box<dyn InactiveBackend>,
    pub(crate) registry: BlockRegistry,
    pub(crate) tier: TierId,
    pub(crate) metrics: Arc<BlockPoolMetrics>,
}

impl<T: crate::blocks::BlockMetadata> Store<T> {
    pub(crate) fn new(config: StoreConfig) -> Self {
        let n = config.block_count;
        let mut index = FoldHashMap::default();
        index.reserve(n);
        let state = State {
            slots: vec![Slot::FREE; n],
            // Reversed so that block 0 is handed out first.
            free: (0..n as u32).rev().collect(),
            index,
            backend: config.backend,
            checked_out: 0,
            held: 0,
        };
        let store = Self {
            state: Mutex::new(state),
            handles: (0..n).map(|_| AtomicU32::new(0)).collect(),
            metrics: config.metrics,
            registry: config.registry,
            tier: config.tier,
            block_size: config.block_size,
            duplication_policy: config.duplication_policy,
            _tier: PhantomData,
        };
        store.publish_gauges(&store.state.lock());
        store
    }

    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    pub(crate) fn block_count(&self) -> usize {
        self.handles.len()
    }

    pub(crate) fn metrics(&self) -> &Arc<BlockPoolMetrics> {
        &self.metrics
    }

    pub(crate) fn registry(&self) -> &BlockRegistry {
        &self.registry
    }

    pub(crate) fn duplication_policy(&self) -> BlockDuplicationPolicy {
        self.duplication_policy
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        self.state.lock().backend.name()
    }

    fn publish_gauges(&self, st: &State) {
        self.metrics.set_reset_pool_size(st.free.len() as i64);
        self.metrics.set_inactive_pool_size(st.backend.len() as i64);
        self.metrics.set_inflight_mutable(st.checked_out as i64);
        self.metrics.set_inflight_immutable(st.held as i64);
    }

    /// Free plus cached blocks.
    pub(crate) fn available(&self) -> usize {
        let st = self.state.lock();
        st.free.len() + st.backend.len()
    }

    /// Hands out `n` blocks, free ones first, then evicted cached ones; all
    /// or nothing. Evicted hashes are appended to `evicted` when given.
    pub(crate) fn allocate(
        self: &Arc<Self>,
        n: usize,
        mut evicted: Option<&mut Vec<SequenceHash>>,
    ) -> Option<Vec<MutableBlock<T>>> {
        let mut blocks = Vec::with_capacity(n);
        let mut released_handles: Vec<BlockRegistrationHandle> = Vec::new();
        {
            let mut guard = self.state.lock();
            let st = &mut *guard;
            if st.free.len() + st.backend.len() < n {
                return None;
            }
            let from_free = n.min(st.free.len());
            for _ in 0..from_free {
                let Some(id) = st.free.pop() else { break };
                let slot = &mut st.slots[id as usize];
                slot.state = SlotState::CheckedOut;
                slot.generation = slot.generation.wrapping_add(1);
                blocks.push(MutableBlock::new(Arc::clone(self), id as BlockId));
            }
            let mut evictions = 0;
            while blocks.len() < n {
                let Some(id) = st.backend.pop_victim() else {
                    break;
                };
                let slot = &mut st.slots[id];
                let hash = slot.hash;
                debug_assert_eq!(slot.state, SlotState::Cached);
                slot.state = SlotState::CheckedOut;
                slot.generation = slot.generation.wrapping_add(1);
                st.index.remove(&hash);
                if let Some(handle) = self.registry.remove_presence(hash, self.tier) {
                    released_handles.push(handle);
                }
                if let Some(out) = evicted.as_deref_mut() {
                    out.push(hash);
                }
                evictions += 1;
                blocks.push(MutableBlock::new(Arc::clone(self), id));
            }
            st.checked_out += blocks.len();
            if blocks.len() == n {
                self.metrics.inc_allocations(n as u64);
                self.metrics.inc_allocations_from_reset(from_free as u64);
            }
            self.metrics.inc_evictions(evictions);
            self.publish_gauges(st);
        }
        // A backend that reported more blocks than it could give up: the
        // partial allocation goes back through the guards' drops.
        (blocks.len() == n).then_some(blocks)
    }

    /// A `MutableBlock` or `CompleteBlock` was dropped.
    pub(crate) fn release_checked_out(&self, id: BlockId) {
        let mut st = self.state.lock();
        let slot = &mut st.slots[id];
        debug_assert_eq!(slot.state, SlotState::CheckedOut);
        slot.state = SlotState::Free;
        st.free.push(id as u32);
        st.checked_out -= 1;
        self.publish_gauges(&st);
    }

    /// Registers staged blocks under their hashes, locking each store once
    /// per run of blocks that belong to it.
    pub(crate) fn register_blocks(
        blocks: impl IntoIterator<Item = CompleteBlock<T>>,
        out: &mut Vec<ImmutableBlock<T>>,
    ) {
        let mut blocks = blocks.into_iter().peekable();
        while let Some(first) = blocks.next() {
            let store = Arc::clone(first.store());
            let start = out.len();
            {
                let mut st = store.state.lock();
                out.push(store.register_locked(&mut st, first));
                while let Some(next) = blocks.next_if(|b| Arc::ptr_eq(b.store(), &store)) {
                    out.push(store.register_locked(&mut st, next));
                }
                store.publish_gauges(&st);
            }
            store
                .registry
                .touch_many(out[start..].iter().map(|b| b.sequence_hash()));
        }
    }

    /// Registers one staged block in its own store.
    pub(crate) fn register_block(block: CompleteBlock<T>) -> ImmutableBlock<T> {
        let store = Arc::clone(block.store());
        let registered = {
            let mut st = store.state.lock();
            let registered = store.register_locked(&mut st, block);
            store.publish_gauges(&st);
            registered
        };
        store
            .registry
            .touch_many(std::iter::once(registered.sequence_hash()));
        registered
    }

    fn register_locked(
        self: &Arc<Self>,
        st: &mut State,
        block: CompleteBlock<T>,
    ) -> ImmutableBlock<T> {
        let (id, hash) = block.into_parts();
        self.metrics.inc_registrations();
        st.checked_out -= 1;
        let registered = st.index.get(&hash).map(|&existing| existing as BlockId);
        let (id, hash) = match (registered, self.duplication_policy) {
            (None, _) => {
                st.index.insert(hash, id as u32);
                self.registry.add_presence(hash, self.tier);
                let slot = &mut st.slots[id];
                slot.state = SlotState::Held;
                slot.hash = hash;
                st.held += 1;
                self.handles[id].fetch_add(1, Ordering::AcqRel);
                (id, hash)
            }
            (Some(existing), BlockDuplicationPolicy::Reject) => {
                self.metrics.inc_registration_dedup();
                st.slots[id].state = SlotState::Free;
                st.free.push(id as u32);
                self.acquire_locked(st, existing);
                (existing, hash)
            }
            (Some(_), BlockDuplicationPolicy::Allow) => {
                self.metrics.inc_duplicate_blocks();
                let slot = &mut st.slots[id];
                slot.state = SlotState::Duplicate;
                slot.hash = hash;
                st.held += 1;
                self.handles[id].fetch_add(1, Ordering::AcqRel);
                (id, hash)
            }
        };
        ImmutableBlock::adopt(Arc::clone(self), id, hash)
    }

    /// Takes one more handle on a registered primary, reviving it from the
    /// cache if nobody held it.
    fn acquire_locked(&self, st: &mut State, id: BlockId) {
        let slot = &mut st.slots[id];
        if slot.state == SlotState::Cached {
            st.backend.remove(id, slot.hash);
            slot.state = SlotState::Held;
            st.held += 1;
        }
        debug_assert!(matches!(slot.state, SlotState::Held | SlotState::Duplicate));
        self.handles[id].fetch_add(1, Ordering::AcqRel);
    }

    /// Longest prefix of `hashes` whose blocks are registered here.
    pub(crate) fn match_prefix(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
    ) -> Vec<ImmutableBlock<T>> {
        let mut out = Vec::with_capacity(hashes.len());
        {
            let mut st = self.state.lock();
            for &hash in hashes {
                let Some(&id) = st.index.get(&hash) else {
                    break;
                };
                self.acquire_locked(&mut st, id as BlockId);
                out.push(ImmutableBlock::adopt(Arc::clone(self), id as BlockId, hash));
            }
            self.publish_gauges(&st);
        }
        self.metrics.inc_match_hashes_requested(hashes.len() as u64);
        self.metrics.inc_match_blocks_returned(out.len() as u64);
        self.registry
            .touch_many(out.iter().map(|b| b.sequence_hash()));
        out
    }

    /// Every block of `hashes` registered here, wherever it is in the list.
    pub(crate) fn scan(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
        touch: bool,
    ) -> HashMap<SequenceHash, ImmutableBlock<T>> {
        let mut out = HashMap::with_capacity(hashes.len());
        {
            let mut st = self.state.lock();
            for &hash in hashes {
                if out.contains_key(&hash) {
                    continue;
                }
                let Some(&id) = st.index.get(&hash) else {
                    continue;
                };
                self.acquire_locked(&mut st, id as BlockId);
                out.insert(
                    hash,
                    ImmutableBlock::adopt(Arc::clone(self), id as BlockId, hash),
                );
            }
            self.publish_gauges(&st);
        }
        self.metrics.inc_scan_hashes_requested(hashes.len() as u64);
        self.metrics.inc_scan_blocks_returned(out.len() as u64);
        if touch {
            self.registry.touch_many(out.keys().copied());
        }
        out
    }

    /// A clone of an existing handle: the block is held, so no lock.
    pub(crate) fn retain(&self, id: BlockId) {
        self.handles[id].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn use_count(&self, id: BlockId) -> usize {
        self.handles[id].load(Ordering::Acquire) as usize
    }

    /// An `ImmutableBlock` was dropped; the last one caches (or frees) the
    /// block.
    pub(crate) fn release_handle(&self, id: BlockId) {
        if self.handles[id].fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let mut guard = self.state.lock();
        // Revived (or released by another dropper) while we waited for the lock.
        if self.handles[id].load(Ordering::Acquire) != 0 {
            return;
        }
        let st = &mut *guard;
        let slot = &mut st.slots[id];
        match slot.state {
            SlotState::Held => {
                slot.state = SlotState::Cached;
                st.backend.insert(id, slot.hash);
                st.held -= 1;
            }
            SlotState::Duplicate => {
                slot.state = SlotState::Free;
                st.free.push(id as u32);
                st.held -= 1;
            }
            SlotState::Free | SlotState::CheckedOut | SlotState::Cached => return,
        }
        self.publish_gauges(st);
    }

    pub(crate) fn generation(&self, id: BlockId) -> u32 {
        self.state.lock().slots[id].generation
    }

    /// Takes a handle on block `id` if it still holds `hash` in the same
    /// generation.
    pub(crate) fn upgrade(&self, id: BlockId, hash: SequenceHash, generation: u32) -> bool {
        let mut st = self.state.lock();
        let slot = st.slots[id];
        let alive = matches!(
            slot.state,
            SlotState::Held | SlotState::Cached | SlotState::Duplicate
        );
        if !alive || slot.generation != generation || slot.hash != hash {
            return false;
        }
        self.acquire_locked(&mut st, id);
        self.publish_gauges(&st);
        true
    }

    /// Moves every cached block to the free pool; `Err((expected, actual))`
    /// when blocks are still out afterwards.
    pub(crate) fn reset_inactive(&self) -> Result<(), (usize, usize)> {
        let mut released_handles: Vec<BlockRegistrationHandle> = Vec::new();
        let result = {
            let mut guard = self.state.lock();
            let State {
                slots,
                free,
                index,
                backend,
                ..
            } = &mut *guard;
            backend.drain(&mut |id| {
                let slot = &mut slots[id];
                slot.state = SlotState::Free;
                index.remove(&slot.hash);
                if let Some(handle) = self.registry.remove_presence(slot.hash, self.tier) {
                    released_handles.push(handle);
                }
                free.push(id as u32);
            });
            self.publish_gauges(&guard);
            let total = self.block_count();
            if guard.free.len() == total {
                Ok(())
            } else {
                Err((total, guard.free.len()))
            }
        };
        drop(released_handles);
        result
    }
}
