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
//! registry), one batch per operation, so that presence counts follow the
//! order of state changes; registry handles released by evictions are
//! dropped after the store lock is let go.
//!
//! Guards reach the store through a [`StoreRef`] kept valid by the store's
//! lease (see [`lease`]), not through an `Arc` each.

pub(crate) mod fold_hasher;
mod handles;
mod lease;
mod slot;
mod validate;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::blocks::{BlockDuplicationPolicy, CompleteBlock, ImmutableBlock, MutableBlock};
use crate::eviction::InactiveBackend;
use crate::metrics::BlockPoolMetrics;
use crate::registry::{BlockRegistrationHandle, BlockRegistry, TierId};
use crate::{BlockId, ManagerId, SequenceHash};
use fold_hasher::FoldHashMap;
use handles::HandleCount;
use slot::{Slot, SlotState};

pub(crate) use lease::StoreRef;
pub use validate::InvariantViolation;

/// The shared state behind a manager and its block guards.
pub(crate) struct Store<T> {
    state: Mutex<State<T>>,
    /// `ImmutableBlock` handles per block.
    handles: Box<[HandleCount]>,
    metrics: Arc<BlockPoolMetrics>,
    registry: BlockRegistry,
    tier: TierId,
    block_size: usize,
    duplication_policy: BlockDuplicationPolicy,
    id: ManagerId,
    default_evict_on_reset: bool,
    _tier: PhantomData<fn() -> T>,
}

struct State<T> {
    slots: Vec<Slot>,
    /// The store's own `Arc`, held while any block is checked out or held,
    /// so that guards can point at the store without owning it.
    lease: Option<Arc<Store<T>>>,
    /// Hashes waiting for one batched registry update; kept to reuse its
    /// allocation.
    pending: Vec<SequenceHash>,
    /// Lineage of the new primaries in `pending`, kept only when the
    /// registry reports to an events manager (else empty).
    pending_lineage: Vec<Option<crate::events::BlockLineage>>,
    /// Free blocks; allocation pops from the end.
    free: Vec<u32>,
    /// Registered primaries (held or cached) by hash.
    index: FoldHashMap<SequenceHash, u32>,
    backend: Box<dyn InactiveBackend>,
    /// Blocks in `CheckedOut`.
    checked_out: usize,
    /// Blocks in `Held` or `Duplicate`.
    held: usize,
    /// Per block: free it instead of caching it when its last handle
    /// drops. Kept through cache and revival (it belongs to the contents),
    /// set back to the store default when the block is handed out again.
    evict_on_reset: Vec<bool>,
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
    /// The per-block evict-on-reset flag of a newly handed out block.
    pub(crate) default_evict_on_reset: bool,
}

impl<T: crate::blocks::BlockMetadata> Store<T> {
    pub(crate) fn new(config: StoreConfig) -> Self {
        let n = config.block_count;
        let mut index = FoldHashMap::default();
        index.reserve(n);
        let state = State {
            slots: vec![Slot::FREE; n],
            lease: None,
            pending: Vec::with_capacity(n),
            pending_lineage: Vec::new(),
            // Reversed so that block 0 is handed out first.
            free: (0..n as u32).rev().collect(),
            index,
            backend: config.backend,
            checked_out: 0,
            held: 0,
            evict_on_reset: vec![config.default_evict_on_reset; n],
        };
        let store = Self {
            state: Mutex::new(state),
            handles: (0..n).map(|_| HandleCount::default()).collect(),
            metrics: config.metrics,
            registry: config.registry,
            tier: config.tier,
            block_size: config.block_size,
            duplication_policy: config.duplication_policy,
            id: ManagerId::next(),
            default_evict_on_reset: config.default_evict_on_reset,
            _tier: PhantomData,
        };
        store.publish_gauges(&store.state.lock());
        store
    }

    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    pub(crate) fn id(&self) -> ManagerId {
        self.id
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

    fn publish_gauges(&self, st: &State<T>) {
        self.metrics.set_reset_pool_size(st.free.len() as i64);
        self.metrics.set_inactive_pool_size(st.backend.len() as i64);
        self.metrics.set_inflight_mutable(st.checked_out as i64);
        self.metrics.set_inflight_immutable(st.held as i64);
    }

    /// Takes the lease when guards exist and none was held: called under
    /// the lock by the operations that hand out guards.
    fn take_lease(self: &Arc<Self>, st: &mut State<T>) {
        if st.lease.is_none() && st.checked_out + st.held > 0 {
            st.lease = Some(Arc::clone(self));
        }
    }

    /// Gives the lease back when no guard is left; the caller drops the
    /// returned `Arc` after releasing the lock and its borrow of the store.
    #[must_use]
    fn end_lease(&self, st: &mut State<T>) -> Option<Arc<Self>> {
        if st.checked_out + st.held == 0 {
            st.lease.take()
        } else {
            None
        }
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
        evicted: Option<&mut Vec<SequenceHash>>,
    ) -> Option<Vec<MutableBlock<T>>> {
        let mut blocks = Vec::with_capacity(n);
        let mut released_handles: Vec<BlockRegistrationHandle> = Vec::new();
        let this = StoreRef::new(self);
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
                st.evict_on_reset[id as usize] = self.default_evict_on_reset;
                blocks.push(MutableBlock::new(this, id as BlockId));
            }
            st.pending.clear();
            while blocks.len() < n {
                let Some(id) = st.backend.pop_victim() else {
                    break;
                };
                // A backend (possibly the caller's own) that names a block it
                // does not hold ends the allocation instead of corrupting the
                // pool; `validate` reports the disagreement.
                let Some(slot) = st
                    .slots
                    .get_mut(id)
                    .filter(|s| s.state == SlotState::Cached)
                else {
                    debug_assert!(false, "backend evicted block {id}, which is not cached");
                    break;
                };
                slot.state = SlotState::CheckedOut;
                slot.generation = slot.generation.wrapping_add(1);
                st.evict_on_reset[id] = self.default_evict_on_reset;
                st.index.remove(&slot.hash);
                st.pending.push(slot.hash);
                blocks.push(MutableBlock::new(this, id));
            }
            self.registry
                .remove_presence_many(&st.pending, self.tier, &mut released_handles);
            if let Some(out) = evicted {
                out.extend_from_slice(&st.pending);
            }
            st.checked_out += blocks.len();
            self.take_lease(st);
            if blocks.len() == n {
                self.metrics.inc_allocations(n as u64);
                self.metrics.inc_allocations_from_reset(from_free as u64);
            }
            self.metrics.inc_evictions(st.pending.len() as u64);
            self.publish_gauges(st);
        }
        // A backend that reported more blocks than it could give up: the
        // partial allocation goes back through the guards' drops.
        (blocks.len() == n).then_some(blocks)
    }

    /// A `MutableBlock` or `CompleteBlock` was dropped. Returns the lease
    /// if this was the last guard, for the caller to drop.
    #[must_use]
    pub(crate) fn release_checked_out(&self, id: BlockId) -> Option<Arc<Self>> {
        let mut st = self.state.lock();
        let slot = &mut st.slots[id];
        debug_assert_eq!(slot.state, SlotState::CheckedOut);
        slot.state = SlotState::Free;
        st.free.push(id as u32);
        st.checked_out -= 1;
        self.publish_gauges(&st);
        self.end_lease(&mut st)
    }

    /// Registers staged blocks under their hashes, locking each store once
    /// per run of blocks that belong to it.
    pub(crate) fn register_blocks(
        blocks: impl IntoIterator<Item = CompleteBlock<T>>,
        out: &mut Vec<ImmutableBlock<T>>,
    ) {
        let mut blocks = blocks.into_iter().peekable();
        while let Some(first) = blocks.next() {
            let this = first.store_ref();
            // The staged block keeps the store alive until it is registered,
            // and the registered handles keep it alive after.
            let store = this.get();
            let start = out.len();
            {
                let mut st = store.state.lock();
                st.pending.clear();
                st.pending_lineage.clear();
                out.push(store.register_locked(&mut st, this, first));
                while let Some(next) = blocks.next_if(|b| b.store_ref().same_store(&this)) {
                    out.push(store.register_locked(&mut st, this, next));
                }
                store.finish_registrations(&st);
            }
            store
                .registry
                .touch_many(out[start..].iter().map(|b| b.sequence_hash()));
        }
    }

    /// Registers one staged block in its own store.
    pub(crate) fn register_block(block: CompleteBlock<T>) -> ImmutableBlock<T> {
        let this = block.store_ref();
        let store = this.get();
        let registered = {
            let mut st = store.state.lock();
            st.pending.clear();
            st.pending_lineage.clear();
            let registered = store.register_locked(&mut st, this, block);
            store.finish_registrations(&st);
            registered
        };
        store
            .registry
            .touch_many(std::iter::once(registered.sequence_hash()));
        registered
    }

    /// Reports the new primaries queued in `st.pending` to the registry in
    /// one batch and publishes the gauges; ends every registration run.
    fn finish_registrations(&self, st: &State<T>) {
        self.registry
            .add_presence_many(&st.pending, &st.pending_lineage, self.tier);
        self.publish_gauges(st);
    }

    /// Registers `block` under the lock; a new primary's hash is queued in
    /// `st.pending` for the registry. The block count the lease depends on
    /// never reaches zero here: the staged block counted until now, and the
    /// returned handle counts from now on.
    fn register_locked(
        &self,
        st: &mut State<T>,
        this: StoreRef<T>,
        block: CompleteBlock<T>,
    ) -> ImmutableBlock<T> {
        let (id, hash, lineage) = block.into_parts();
        self.metrics.inc_registrations();
        st.checked_out -= 1;
        let registered = st.index.get(&hash).map(|&existing| existing as BlockId);
        let (id, hash) = match (registered, self.duplication_policy) {
            (None, _) => {
                st.index.insert(hash, id as u32);
                st.pending.push(hash);
                if self.registry.inner.wants_lineage() {
                    st.pending_lineage.push(lineage);
                }
                let slot = &mut st.slots[id];
                slot.state = SlotState::Held;
                slot.hash = hash;
                st.held += 1;
                self.handles[id].acquire_locked();
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
                self.handles[id].acquire_locked();
                (id, hash)
            }
        };
        ImmutableBlock::adopt(this, id, hash)
    }

    /// Takes one more handle on a registered primary, reviving it from the
    /// cache if nobody held it.
    fn acquire_locked(&self, st: &mut State<T>, id: BlockId) {
        let slot = &mut st.slots[id];
        if slot.state == SlotState::Cached {
            st.backend.remove(id, slot.hash);
            slot.state = SlotState::Held;
            st.held += 1;
        }
        debug_assert!(matches!(slot.state, SlotState::Held | SlotState::Duplicate));
        self.handles[id].acquire_locked();
    }

    /// Longest prefix of `hashes` whose blocks are registered here.
    pub(crate) fn match_prefix(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
    ) -> Vec<ImmutableBlock<T>> {
        let mut out = Vec::with_capacity(hashes.len());
        let this = StoreRef::new(self);
        {
            let mut st = self.state.lock();
            for &hash in hashes {
                let Some(&id) = st.index.get(&hash) else {
                    break;
                };
                self.acquire_locked(&mut st, id as BlockId);
                out.push(ImmutableBlock::adopt(this, id as BlockId, hash));
            }
            self.take_lease(&mut st);
            self.publish_gauges(&st);
        }
        self.metrics.inc_match_hashes_requested(hashes.len() as u64);
        self.metrics.inc_match_blocks_returned(out.len() as u64);
        self.registry
            .touch_many(out.iter().map(|b| b.sequence_hash()));
        out
    }

    /// For each of `hashes`, in order, its registered block or `None`; a
    /// hash given twice gets two handles. One lock for the whole list.
    pub(crate) fn match_scattered(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
    ) -> Vec<Option<ImmutableBlock<T>>> {
        let mut out = Vec::with_capacity(hashes.len());
        let this = StoreRef::new(self);
        {
            let mut st = self.state.lock();
            for &hash in hashes {
                let hit = st.index.get(&hash).map(|&id| id as BlockId);
                out.push(hit.map(|id| {
                    self.acquire_locked(&mut st, id);
                    ImmutableBlock::adopt(this, id, hash)
                }));
            }
            self.take_lease(&mut st);
            self.publish_gauges(&st);
        }
        let hits = out.iter().flatten();
        self.metrics.inc_match_hashes_requested(hashes.len() as u64);
        self.metrics
            .inc_match_blocks_returned(hits.clone().count() as u64);
        // A repeated hash is a repeated access: each hit is touched.
        self.registry.touch_many(hits.map(|b| b.sequence_hash()));
        out
    }

    /// Every block of `hashes` registered here, wherever it is in the list.
    pub(crate) fn scan(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
        touch: bool,
    ) -> HashMap<SequenceHash, ImmutableBlock<T>> {
        let mut out = HashMap::with_capacity(hashes.len());
        let this = StoreRef::new(self);
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
                out.insert(hash, ImmutableBlock::adopt(this, id as BlockId, hash));
            }
            self.take_lease(&mut st);
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
        self.handles[id].clone_handle();
    }

    pub(crate) fn use_count(&self, id: BlockId) -> usize {
        self.handles[id].count() as usize
    }

    /// The handle count of block `id`, for guards that drop a handle
    /// without the lock (see [`release_last_handle`](Self::release_last_handle)).
    pub(crate) fn handle_count(&self, id: BlockId) -> &HandleCount {
        &self.handles[id]
    }

    /// Drops what may be the last handle on block `id`, under the lock: the
    /// decrement to zero happens here, so a block's last release and its
    /// revival by a match are ordered by the lock and no dropper can still
    /// be on its way to the store after the lease ends. Caches (or frees)
    /// the block if no handle is left, and returns the lease if no guard is
    /// left, for the caller to drop.
    #[must_use]
    pub(crate) fn release_last_handle(&self, id: BlockId) -> Option<Arc<Self>> {
        let mut guard = self.state.lock();
        if !self.handles[id].release_locked() {
            // Revived by a match or a clone while we waited for the lock.
            return None;
        }
        let st = &mut *guard;
        let slot = &mut st.slots[id];
        let mut released_handles: Vec<BlockRegistrationHandle> = Vec::new();
        match slot.state {
            SlotState::Held if st.evict_on_reset[id] => {
                // Straight back to the free pool: unregistered, unmatchable.
                slot.state = SlotState::Free;
                st.index.remove(&slot.hash);
                st.free.push(id as u32);
                self.registry.remove_presence_many(
                    std::slice::from_ref(&slot.hash),
                    self.tier,
                    &mut released_handles,
                );
            }
            SlotState::Held => {
                slot.state = SlotState::Cached;
                st.backend.insert(id, slot.hash);
            }
            SlotState::Duplicate => {
                slot.state = SlotState::Free;
                st.free.push(id as u32);
            }
            SlotState::Free | SlotState::CheckedOut | SlotState::Cached => {
                debug_assert!(false, "last handle dropped on a {:?} block", slot.state);
                return None;
            }
        }
        st.held -= 1;
        self.publish_gauges(st);
        let lease = self.end_lease(st);
        drop(guard);
        // Registry handles go after the lock, like evictions' do.
        drop(released_handles);
        lease
    }

    /// Sets whether held block `id` goes back to the free pool, rather
    /// than the cache, when its last handle drops.
    pub(crate) fn set_evict_on_reset(&self, id: BlockId, value: bool) {
        self.state.lock().evict_on_reset[id] = value;
    }

    /// The generation of held block `id` and an owning reference to the
    /// store, for a weak handle.
    pub(crate) fn downgrade(&self, id: BlockId) -> (u32, Arc<Self>) {
        let st = self.state.lock();
        match &st.lease {
            Some(store) => (st.slots[id].generation, Arc::clone(store)),
            None => unreachable!("a held block implies the store's lease"),
        }
    }

    /// Takes a handle on block `id` if it still holds `hash` in the same
    /// generation.
    pub(crate) fn upgrade(
        self: &Arc<Self>,
        id: BlockId,
        hash: SequenceHash,
        generation: u32,
    ) -> bool {
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
        self.take_lease(&mut st);
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
                pending,
                ..
            } = &mut *guard;
            pending.clear();
            backend.drain(&mut |id| {
                let slot = &mut slots[id];
                slot.state = SlotState::Free;
                index.remove(&slot.hash);
                pending.push(slot.hash);
                free.push(id as u32);
            });
            self.registry
                .remove_presence_many(pending, self.tier, &mut released_handles);
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
