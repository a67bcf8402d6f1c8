//! The block store: the one place that changes block state.
//!
//! Blocks are slots in a `Vec` indexed by [`BlockId`]. Everything about
//! them — state, hash, the free list, the hash index of registered
//! primaries, the inactive backend's order — sits behind one mutex that each
//! operation takes once, however many blocks it touches. The number of
//! `ImmutableBlock` shares per block lives beside the mutex in atomics
//! (see [`shares`]), so cloning one never locks; the drop that takes the
//! count to zero locks and re-checks before caching the block, because a
//! concurrent match may have revived it in between.
//!
//! Registry updates happen under the store lock (lock order: store, then
//! registry), one batch per operation, so that presence counts follow the
//! order of state changes; registry handles released by evictions are
//! dropped after the store lock is let go.
//!
//! Guards reach the store through a [`StoreRef`] kept valid by the store's
//! lease (see [`lease`]), not through an `Arc` each, and give blocks back
//! only through the tokens of [`guard_ops`], which holds the whole guard
//! protocol.
//!
//! # What the store trusts
//! Only itself. The eviction backend is user code (see [`user_code`]): its
//! calls are made with the store's own state consistent, every block id it
//! returns is checked (in range, cached, not reported twice), the store
//! counts cached blocks itself instead of asking the backend, and guards
//! are built only after the last backend call of an operation, when the
//! store has counted them. A backend that panics or breaks its contract
//! *poisons* the store: the store frees every cached block, drops the
//! backend, and raises the panic once it is consistent and unlocked. Guards
//! keep working on a poisoned store (their drops free blocks instead of
//! caching them); every operation that hands out or registers blocks panics.

mod duplicates;
mod guard_ops;
mod lease;
mod poison;
mod reserve;
mod shares;
mod slot;
mod sync;
mod user_code;
mod validate;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::blocks::{BlockDuplicationPolicy, CompleteBlock, ImmutableBlock, MutableBlock};
use crate::eviction::InactiveBackend;
use crate::id_index::IdIndex;
use crate::metrics::BlockPoolMetrics;
use crate::registry::{BlockRegistry, TierId};
use crate::{BlockId, ManagerId, SequenceHash};
use poison::Failure;
use shares::ShareCount;
use slot::{Slot, SlotState};
use sync::Mutex;
use user_code::AfterUnlock;

pub(crate) use guard_ops::{CheckedOut, Share, WeakShare};
pub(crate) use lease::StoreRef;
pub(crate) use reserve::Reserved;
pub use validate::InvariantViolation;

/// The shared state behind a manager and its block guards.
pub(crate) struct Store<T> {
    state: Mutex<State<T>>,
    /// `ImmutableBlock` shares per block.
    shares: Box<[ShareCount]>,
    metrics: Arc<BlockPoolMetrics>,
    registry: BlockRegistry,
    tier: TierId,
    block_size: usize,
    duplication_policy: BlockDuplicationPolicy,
    id: ManagerId,
    default_evict_on_reset: bool,
    /// The backend's name, read once at construction.
    backend_name: &'static str,
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
    /// Victims of the allocation in progress; kept to reuse its allocation.
    victims: Vec<u32>,
    /// Lineage of the new primaries in `pending`, kept only when the
    /// registry reports to an events manager (else empty).
    pending_lineage: Vec<Option<crate::events::BlockLineage>>,
    /// Free blocks; allocation pops from the end.
    free: Vec<u32>,
    /// Registered primaries (held or cached) by hash.
    index: IdIndex<SequenceHash>,
    /// `None` once poisoned.
    backend: Option<Box<dyn InactiveBackend>>,
    /// Blocks in `CheckedOut`.
    checked_out: usize,
    /// Blocks in `Held` or `Duplicate`.
    held: usize,
    /// Blocks in `Cached`, counted by the store (the backend's `len` is
    /// only compared with it by `validate`).
    cached: usize,
    /// Why the store was poisoned, if it was.
    poisoned: Option<String>,
}

/// Settings a store is built from.
pub(crate) struct StoreConfig {
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
    pub(crate) fn new(memory: Reserved, config: StoreConfig) -> Arc<Self> {
        let Reserved {
            slots,
            free,
            pending,
            victims,
            index,
            shares,
        } = memory;
        let backend_name = config.backend.name();
        let state = State {
            slots,
            lease: None,
            pending,
            victims,
            pending_lineage: Vec::new(),
            free,
            index,
            backend: Some(config.backend),
            checked_out: 0,
            held: 0,
            cached: 0,
            poisoned: None,
        };
        let store = Self {
            state: Mutex::new(state),
            shares,
            metrics: config.metrics,
            registry: config.registry,
            tier: config.tier,
            block_size: config.block_size,
            duplication_policy: config.duplication_policy,
            id: ManagerId::next(),
            default_evict_on_reset: config.default_evict_on_reset,
            backend_name,
            _tier: PhantomData,
        };
        store.publish_gauges(&store.state.lock());
        Arc::new(store)
    }

    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    pub(crate) fn id(&self) -> ManagerId {
        self.id
    }

    pub(crate) fn block_count(&self) -> usize {
        self.shares.len()
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
        self.backend_name
    }

    /// Why the store was poisoned, if it was.
    pub(crate) fn poisoned(&self) -> Option<String> {
        self.lock().poisoned.clone()
    }

    fn publish_gauges(&self, st: &State<T>) {
        self.metrics.set_reset_pool_size(st.free.len() as i64);
        self.metrics.set_inactive_pool_size(st.cached as i64);
        self.metrics.set_inflight_mutable(st.checked_out as i64);
        self.metrics.set_inflight_immutable(st.held as i64);
    }

    /// Free plus cached blocks.
    pub(crate) fn available(&self) -> usize {
        let st = self.lock();
        st.free.len() + st.cached
    }

    /// Hands out `n` blocks, free ones first, then evicted cached ones; all
    /// or nothing. Evicted hashes are appended to `evicted` when given.
    pub(crate) fn allocate(
        self: &Arc<Self>,
        n: usize,
        evicted: Option<&mut Vec<SequenceHash>>,
    ) -> Option<Vec<MutableBlock<T>>> {
        if n > self.block_count() {
            return None;
        }
        let mut blocks = Vec::with_capacity(n);
        let mut after = AfterUnlock::default();
        let this = StoreRef::new(self);
        {
            let mut guard = self.lock_healthy();
            let st = &mut *guard;
            if st.free.len() + st.cached < n {
                return None;
            }
            let from_free = n.min(st.free.len());
            st.pending.clear();
            st.victims.clear();
            // Victims first: the backend runs before any guard exists, so
            // its failure leaves nothing half handed out.
            let mut failure = None;
            while from_free + st.victims.len() < n {
                let id = match self.call_backend(&mut st.backend, |b| b.pop_victim()) {
                    Ok(id) => id,
                    Err(f) => {
                        failure = Some(f);
                        break;
                    }
                };
                // Checked out (but not yet counted) from here on, so a
                // block reported twice is no longer `Cached`.
                match id.and_then(|id| st.slots.get_mut(id).map(|s| (id, s))) {
                    Some((id, slot)) if slot.state == SlotState::Cached => {
                        slot.state = SlotState::CheckedOut;
                        st.index.remove_id(slot.hash(), id as u32);
                        st.pending.push(slot.hash());
                        st.cached -= 1;
                        st.victims.push(id as u32);
                    }
                    _ => {
                        failure = Some(Failure::Broke(match id {
                            None => {
                                format!("pop_victim returned None with {} blocks cached", st.cached)
                            }
                            Some(id) => {
                                format!("pop_victim returned block {id}, which is not cached")
                            }
                        }));
                        break;
                    }
                }
            }
            self.registry
                .remove_presence_many(&st.pending, self.tier, &mut after.handles);
            self.metrics.inc_evictions(st.pending.len() as u64);
            if let Some(failure) = failure {
                // The victims taken so far stay evicted, in the free pool.
                for &id in &st.victims {
                    st.slots[id as usize].state = SlotState::Free;
                    st.free.push(id);
                }
                self.poison(st, failure, &mut after);
                drop(guard);
                after.finish();
                return None;
            }
            for _ in 0..from_free {
                let Some(id) = st.free.pop() else { break };
                let slot = &mut st.slots[id as usize];
                slot.state = SlotState::CheckedOut;
                slot.generation = slot.generation.wrapping_add(1);
                slot.evict_on_reset = self.default_evict_on_reset;
                blocks.push(MutableBlock::new(this, id as BlockId));
            }
            for &id in &st.victims {
                let slot = &mut st.slots[id as usize];
                slot.generation = slot.generation.wrapping_add(1);
                slot.evict_on_reset = self.default_evict_on_reset;
                blocks.push(MutableBlock::new(this, id as BlockId));
            }
            if let Some(out) = evicted {
                out.extend_from_slice(&st.pending);
            }
            st.checked_out += blocks.len();
            self.take_lease(st);
            self.metrics.inc_allocations(n as u64);
            self.metrics.inc_allocations_from_reset(from_free as u64);
            self.publish_gauges(st);
        }
        after.finish();
        Some(blocks)
    }

    /// Registers staged blocks of this store under their hashes, under one
    /// lock. A backend failure poisons the store and panics once every
    /// block is registered (and `out` holds it, to be released).
    pub(crate) fn register_blocks(
        self: &Arc<Self>,
        blocks: impl IntoIterator<Item = CompleteBlock<T>>,
        out: &mut Vec<ImmutableBlock<T>>,
    ) {
        let this = StoreRef::new(self);
        let start = out.len();
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock_healthy();
            st.pending.clear();
            st.pending_lineage.clear();
            for block in blocks {
                out.push(self.register_locked(&mut st, this, block, &mut after));
            }
            self.finish_registrations(&st);
        }
        after.finish();
        self.registry
            .touch_many(out[start..].iter().map(|b| b.sequence_hash()));
    }

    /// Registers one staged block of this store; see
    /// [`register_blocks`](Self::register_blocks).
    pub(crate) fn register_block(self: &Arc<Self>, block: CompleteBlock<T>) -> ImmutableBlock<T> {
        let this = StoreRef::new(self);
        let mut after = AfterUnlock::default();
        let registered = {
            let mut st = self.lock_healthy();
            st.pending.clear();
            st.pending_lineage.clear();
            let registered = self.register_locked(&mut st, this, block, &mut after);
            self.finish_registrations(&st);
            registered
        };
        after.finish();
        self.registry
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
    /// returned share counts from now on.
    fn register_locked(
        &self,
        st: &mut State<T>,
        this: StoreRef<T>,
        block: CompleteBlock<T>,
        after: &mut AfterUnlock<Self>,
    ) -> ImmutableBlock<T> {
        let (checked_out, hash, lineage) = block.into_parts();
        let id = checked_out.hand_over();
        self.metrics.inc_registrations();
        st.checked_out -= 1;
        let registered = st
            .index
            .get(hash, |i| st.slots[i as usize].hash())
            .map(|existing| existing as BlockId);
        let existing = match (registered, self.duplication_policy) {
            (Some(existing), BlockDuplicationPolicy::Reject) => {
                if self.acquire_locked(st, existing, after) {
                    self.metrics.inc_registration_dedup();
                    st.slots[id].state = SlotState::Free;
                    st.free.push(id as u32);
                    return ImmutableBlock::adopt(this, existing, hash);
                }
                // Reviving it failed and freed it: this block becomes the
                // primary instead.
                None
            }
            // The duplicate keeps its primary held (see `duplicates`).
            (Some(existing), BlockDuplicationPolicy::Allow) => {
                self.hold_primary(st, existing, after)
            }
            (None, _) => None,
        };
        let slot = &mut st.slots[id];
        slot.set_hash(hash);
        if existing.is_some() {
            self.metrics.inc_duplicate_blocks();
            slot.state = SlotState::Duplicate;
        } else {
            slot.state = SlotState::Held;
            st.index
                .insert(hash, id as u32, |i| st.slots[i as usize].hash());
            st.pending.push(hash);
            if self.registry.inner.wants_lineage() {
                st.pending_lineage.push(lineage);
            }
        }
        st.held += 1;
        self.shares[id].acquire_locked();
        ImmutableBlock::adopt(this, id, hash)
    }

    /// Takes one more share of a registered primary, reviving it from the
    /// cache if nobody held it. `false` if the backend failed to give the
    /// block up: the store is then poisoned and the block freed.
    fn acquire_locked(
        &self,
        st: &mut State<T>,
        id: BlockId,
        after: &mut AfterUnlock<Self>,
    ) -> bool {
        let slot = st.slots[id];
        if slot.state == SlotState::Cached {
            let removed = self.call_backend(&mut st.backend, |b| b.remove(id, slot.hash()));
            if let Err(failure) = removed {
                self.poison(st, failure, after);
                return false;
            }
            st.slots[id].state = SlotState::Held;
            st.cached -= 1;
            st.held += 1;
        }
        debug_assert!(matches!(
            st.slots[id].state,
            SlotState::Held | SlotState::Duplicate
        ));
        self.shares[id].acquire_locked();
        true
    }

    /// Longest prefix of `hashes` whose blocks are registered here.
    pub(crate) fn match_prefix(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
    ) -> Vec<ImmutableBlock<T>> {
        let mut out = Vec::with_capacity(hashes.len());
        let this = StoreRef::new(self);
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock_healthy();
            for &hash in hashes {
                let Some(id) = st.index.get(hash, |i| st.slots[i as usize].hash()) else {
                    break;
                };
                if !self.acquire_locked(&mut st, id as BlockId, &mut after) {
                    break;
                }
                out.push(ImmutableBlock::adopt(this, id as BlockId, hash));
            }
            self.take_lease(&mut st);
            self.publish_gauges(&st);
        }
        after.finish();
        self.metrics.inc_match_hashes_requested(hashes.len() as u64);
        self.metrics.inc_match_blocks_returned(out.len() as u64);
        self.registry
            .touch_many(out.iter().map(|b| b.sequence_hash()));
        out
    }

    /// For each of `hashes`, in order, its registered block or `None`; a
    /// hash given twice gets two shares. One lock for the whole list.
    pub(crate) fn match_scattered(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
    ) -> Vec<Option<ImmutableBlock<T>>> {
        let mut out = Vec::with_capacity(hashes.len());
        let this = StoreRef::new(self);
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock_healthy();
            for &hash in hashes {
                let hit = st
                    .index
                    .get(hash, |i| st.slots[i as usize].hash())
                    .map(|id| id as BlockId);
                let block = match hit {
                    Some(id) if self.acquire_locked(&mut st, id, &mut after) => {
                        Some(ImmutableBlock::adopt(this, id, hash))
                    }
                    // A failed revival poisoned the store: the rest of the
                    // list finds nothing (`after.finish` raises the failure).
                    Some(_) => break,
                    None => None,
                };
                out.push(block);
            }
            self.take_lease(&mut st);
            self.publish_gauges(&st);
        }
        after.finish();
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
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock_healthy();
            for &hash in hashes {
                if out.contains_key(&hash) {
                    continue;
                }
                let Some(id) = st.index.get(hash, |i| st.slots[i as usize].hash()) else {
                    continue;
                };
                if !self.acquire_locked(&mut st, id as BlockId, &mut after) {
                    break;
                }
                out.insert(hash, ImmutableBlock::adopt(this, id as BlockId, hash));
            }
            self.take_lease(&mut st);
            self.publish_gauges(&st);
        }
        after.finish();
        self.metrics.inc_scan_hashes_requested(hashes.len() as u64);
        self.metrics.inc_scan_blocks_returned(out.len() as u64);
        if touch {
            self.registry.touch_many(out.keys().copied());
        }
        out
    }

    /// Moves every cached block to the free pool; `Err((expected, actual))`
    /// when blocks are still out afterwards.
    pub(crate) fn reset_inactive(&self) -> Result<(), (usize, usize)> {
        let mut after = AfterUnlock::default();
        let result = {
            let mut guard = self.lock_healthy();
            let addr = self.addr();
            let State {
                slots,
                free,
                index,
                backend,
                pending,
                cached,
                ..
            } = &mut *guard;
            pending.clear();
            let mut bad = None;
            let drained = match backend.as_deref_mut() {
                Some(backend) => user_code::call(addr, || {
                    backend.drain(&mut |id| match slots.get_mut(id) {
                        // Freed from here on, so a block reported twice is
                        // no longer `Cached`.
                        Some(slot) if slot.state == SlotState::Cached => {
                            slot.state = SlotState::Free;
                            index.remove_id(slot.hash(), id as u32);
                            pending.push(slot.hash());
                            free.push(id as u32);
                            *cached -= 1;
                        }
                        _ => {
                            bad.get_or_insert(id);
                        }
                    })
                })
                .map_err(Failure::Panicked),
                None => Err(Failure::Broke("the backend is gone".into())),
            };
            let left = *cached;
            let st = &mut *guard;
            self.registry
                .remove_presence_many(&st.pending, self.tier, &mut after.handles);
            let failure = match (drained, bad) {
                (Err(failure), _) => Some(failure),
                (Ok(()), Some(id)) => Some(Failure::Broke(format!(
                    "drain reported block {id}, which is not cached"
                ))),
                (Ok(()), None) if left > 0 => Some(Failure::Broke(format!(
                    "drain left {left} cached blocks unreported"
                ))),
                (Ok(()), None) => None,
            };
            if let Some(failure) = failure {
                self.poison(st, failure, &mut after);
            }
            self.publish_gauges(st);
            let total = self.block_count();
            if st.free.len() == total {
                Ok(())
            } else {
                Err((total, st.free.len()))
            }
        };
        after.finish();
        result
    }

    /// Test hook: pretends `extra` more shares of block `id` (see
    /// `ShareCount::pretend_leaked`).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn pretend_leaked_shares(&self, id: BlockId, extra: i32) {
        let _st = self.lock();
        self.shares[id].pretend_leaked(extra);
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, feature = "shuttle"))]
mod models;
