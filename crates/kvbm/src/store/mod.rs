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
//! The store's hash index also answers the registry's presence queries:
//! the store registers itself as a presence source (see [`presence`]).
//! Registry updates happen under the store lock (lock order: store, then
//! registry), one batch per operation, so that the counts the registry
//! keeps for hashes with handles (and events) follow the order of state
//! changes; registry handles released by evictions are dropped after the
//! store lock is let go.
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
mod duplication;
mod free_list;
mod guard_ops;
mod lease;
mod poison;
mod presence;
mod reserve;
mod shares;
mod sync;
mod tier;
mod user_code;
mod validate;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::block_slot::Slot;
use crate::block_slot::SlotState;
use crate::eviction::{BlockHashes, InactiveBackend};
use crate::id_index::IdIndex;
use crate::metrics::BlockPoolMetrics;
use crate::registry::{BlockRegistry, TierId};
use crate::{BlockId, ManagerId, SequenceHash};
use free_list::FreeList;
use poison::Failure;
use shares::ShareCount;
use sync::Mutex;
use user_code::AfterUnlock;

pub use duplication::BlockDuplicationPolicy;
pub(crate) use guard_ops::{
    release_shares, CheckedOut, FromCheckedOut, FromShare, IntoStaged, Share, WeakShare,
};
pub(crate) use lease::StoreRef;
pub(crate) use reserve::Reserved;
pub use tier::BlockMetadata;
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
    /// Block ids of the operation in progress (an allocation's victims, a
    /// match's hits); kept to reuse its allocation.
    ids: Vec<u32>,
    /// Lineage of the new primaries in `pending`, kept only when the
    /// registry reports to an events manager (else empty).
    pending_lineage: Vec<Option<crate::events::BlockLineage>>,
    /// Free blocks, threaded through their slots; allocation takes the
    /// last freed.
    free: FreeList,
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

impl<T> State<T> {
    /// Puts block `id`, already `Free`, back in the free list. Overwrites
    /// its hash with the list's link: read the hash first.
    #[inline]
    fn push_free(&mut self, id: u32) {
        self.free.push(&mut self.slots[id as usize], id);
    }
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

impl<T: BlockMetadata> Store<T> {
    pub(crate) fn new(memory: Reserved, config: StoreConfig) -> Arc<Self> {
        let Reserved {
            slots,
            free,
            pending,
            ids,
            index,
            shares,
        } = memory;
        let backend_name = config.backend.name();
        let state = State {
            slots,
            lease: None,
            pending,
            ids,
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
        let store = Arc::new(store);
        let source: std::sync::Weak<dyn crate::registry::PresenceSource> =
            Arc::downgrade(&store) as _;
        store.registry.add_presence_source(store.tier, source);
        store
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
    pub(crate) fn allocate<G: FromCheckedOut<T>>(
        self: &Arc<Self>,
        n: usize,
        evicted: Option<&mut Vec<SequenceHash>>,
    ) -> Option<Vec<G>> {
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
            st.ids.clear();
            // Victims first: the backend runs before any guard exists, so
            // its failure leaves nothing half handed out.
            let mut failure = None;
            let prefetch = self.block_count() >= crate::prefetch::PREFETCH_MIN_BLOCKS;
            while from_free + st.ids.len() < n {
                let hashes = BlockHashes::from_store(&st.slots);
                let victim =
                    self.call_backend(&mut st.backend, |b| b.pop_victim_with_hashes(hashes));
                let id = match victim {
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
                        // Taken out of the index after the loop, so that
                        // its bucket's miss overlaps the next victims'.
                        if prefetch {
                            st.index.prefetch(slot.hash());
                        }
                        st.pending.push(slot.hash());
                        st.cached -= 1;
                        st.ids.push(id as u32);
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
            if failure.is_none() && !st.ids.is_empty() {
                if let Err(f) = self.call_backend(&mut st.backend, |b| b.evictions_done()) {
                    failure = Some(f);
                }
            }
            for (&id, &hash) in st.ids.iter().zip(&st.pending) {
                st.index.remove_id(hash, id);
            }
            self.registry
                .remove_presence_many(&st.pending, self.tier, &mut after.handles);
            self.metrics.inc_evictions(st.pending.len() as u64);
            if let Some(failure) = failure {
                // The victims taken so far stay evicted, in the free pool.
                for &id in &st.ids {
                    let slot = &mut st.slots[id as usize];
                    slot.state = SlotState::Free;
                    st.free.push(slot, id);
                }
                self.poison(st, failure, &mut after);
                drop(guard);
                after.finish();
                return None;
            }
            let victims = st.ids.len();
            for _ in 0..from_free {
                let Some(id) = st.free.pop(&st.slots) else {
                    break;
                };
                st.slots[id as usize].state = SlotState::CheckedOut;
                st.ids.push(id);
            }
            for &id in &st.ids {
                let slot = &mut st.slots[id as usize];
                slot.generation = slot.generation.wrapping_add(1);
                slot.evict_on_reset = self.default_evict_on_reset;
            }
            // Free blocks first, then the victims; built from the ids in
            // one pass (see `register_blocks`).
            let (evicted_ids, free_ids) = st.ids.split_at(victims);
            blocks.extend(
                free_ids
                    .iter()
                    .chain(evicted_ids)
                    .map(|&id| G::from_checked_out(CheckedOut::adopt(this, id as BlockId))),
            );
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
    pub(crate) fn register_blocks<S: IntoStaged<T>, G: FromShare<T>>(
        self: &Arc<Self>,
        blocks: impl IntoIterator<Item = S>,
        out: &mut Vec<G>,
    ) {
        let this = StoreRef::new(self);
        let start = out.len();
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock_healthy();
            let st = &mut *st;
            st.pending.clear();
            st.pending_lineage.clear();
            st.ids.clear();
            if self.block_count() >= crate::prefetch::PREFETCH_MIN_BLOCKS {
                // Registered `REGISTER_AHEAD` blocks behind the prefetches
                // of their index buckets and share counts (see `guard_ops`).
                let mut ahead = guard_ops::Ahead::new(blocks.into_iter());
                while let Some(staged) = ahead.next(|staged| self.prefetch_registration(st, staged))
                {
                    let id = self.register_locked(st, staged, &mut after);
                    st.ids.push(id as u32);
                }
                // The blocks go to the backend when their last share is
                // dropped, each under a lock of its own whose locked
                // instructions wait for the misses inside it: start loading
                // what those inserts will touch now, while it overlaps.
                if st.poisoned.is_none() {
                    let count = st.ids.len();
                    self.prefetch_inserts(st, count, &mut after);
                }
            } else {
                for block in blocks {
                    let id = self.register_locked(st, block, &mut after);
                    st.ids.push(id as u32);
                }
            }
            // The guards are built after the loop, from the ids: pushing
            // each as it was registered spilled it to the stack and read it
            // back wider, which waits for every pending store — the cache
            // misses of the blocks before it included.
            out.extend(st.ids.iter().map(|&id| {
                let id = id as BlockId;
                G::from_share(Share::adopt(this, id), st.slots[id].hash())
            }));
            self.finish_registrations(st, out.len() - start);
        }
        after.finish();
        self.registry
            .touch_many(out[start..].iter().map(|b| b.sequence_hash()));
    }

    /// Registers one staged block of this store; see
    /// [`register_blocks`](Self::register_blocks).
    pub(crate) fn register_block<S: IntoStaged<T>, G: FromShare<T>>(
        self: &Arc<Self>,
        block: S,
    ) -> G {
        let this = StoreRef::new(self);
        let mut after = AfterUnlock::default();
        let registered = {
            let mut st = self.lock_healthy();
            st.pending.clear();
            st.pending_lineage.clear();
            let id = self.register_locked(&mut st, block, &mut after);
            self.finish_registrations(&st, 1);
            G::from_share(Share::adopt(this, id), st.slots[id].hash())
        };
        after.finish();
        self.registry
            .touch_many(std::iter::once(registered.sequence_hash()));
        registered
    }

    /// Reports the new primaries queued in `st.pending` to the registry in
    /// one batch, counts the `registered` blocks and publishes the gauges;
    /// ends every registration run. Counted once per run, not per block: an
    /// atomic add waits for the stores before it, so one per block would
    /// serialise the blocks' cache misses.
    fn finish_registrations(&self, st: &State<T>, registered: usize) {
        self.metrics.inc_registrations_by(registered as u64);
        self.registry
            .add_presence_many(&st.pending, &st.pending_lineage, self.tier);
        self.publish_gauges(st);
    }

    /// Registers `block` under the lock and returns the block the caller
    /// now holds a share of (the block itself, or the primary it was
    /// deduplicated into), to build its guard from; a new primary's hash is
    /// queued in `st.pending` for the registry. The block count the lease
    /// depends on never reaches zero here: the staged block counted until
    /// now, and the share taken here counts from now on.
    fn register_locked(
        &self,
        st: &mut State<T>,
        block: impl IntoStaged<T>,
        after: &mut AfterUnlock<Self>,
    ) -> BlockId {
        let (checked_out, hash, lineage) = block.into_staged();
        let id = checked_out.hand_over();
        st.checked_out -= 1;
        // The hash first, so that the index can read it through the slot:
        // one probe finds a registered primary or files this block.
        st.slots[id].set_hash(hash);
        let slots = &st.slots;
        let existing = st
            .index
            .find_or_insert(hash, id as u32, |i| slots[i as usize].hash());
        let primary = match existing {
            None => true,
            // Either policy takes a share of the registered primary: Reject
            // hands it to the caller in place of this block, Allow lets this
            // block, a duplicate, hold it (see `duplicates`).
            Some(existing) if self.acquire_locked(st, existing as BlockId, after) => {
                if self.duplication_policy == BlockDuplicationPolicy::Reject {
                    self.metrics.inc_registration_dedup();
                    st.slots[id].state = SlotState::Free;
                    st.push_free(id as u32);
                    return existing as BlockId;
                }
                false
            }
            Some(_) => {
                // Reviving the primary failed and freed (and unfiled) it:
                // this block becomes the primary instead.
                st.index
                    .insert(hash, id as u32, |i| st.slots[i as usize].hash());
                true
            }
        };
        if primary {
            st.slots[id].state = SlotState::Held;
            st.pending.push(hash);
            if self.registry.inner.wants_lineage() {
                st.pending_lineage.push(lineage);
            }
        } else {
            self.metrics.inc_duplicate_blocks();
            st.slots[id].state = SlotState::Duplicate;
        }
        st.held += 1;
        self.shares[id].acquire_locked();
        id
    }

    /// Takes one more share of a registered primary, reviving it from the
    /// cache if nobody held it. `false` if the backend failed to give the
    /// block up: the store is then poisoned and the block freed.
    ///
    /// Inlined into the match loops: a held block costs a state check and
    /// a share count; only a revival leaves the loop for the backend.
    #[inline(always)]
    fn acquire_locked(
        &self,
        st: &mut State<T>,
        id: BlockId,
        after: &mut AfterUnlock<Self>,
    ) -> bool {
        if st.slots[id].state == SlotState::Cached {
            return self.revive_locked(st, id, after);
        }
        debug_assert!(matches!(
            st.slots[id].state,
            SlotState::Held | SlotState::Duplicate
        ));
        self.shares[id].acquire_locked();
        true
    }

    /// [`acquire_locked`](Self::acquire_locked) of a cached block: takes it
    /// out of the backend first.
    fn revive_locked(&self, st: &mut State<T>, id: BlockId, after: &mut AfterUnlock<Self>) -> bool {
        let hash = st.slots[id].hash();
        let hashes = BlockHashes::from_store(&st.slots);
        let removed =
            self.call_backend(&mut st.backend, |b| b.remove_with_hashes(id, hash, hashes));
        if let Err(failure) = removed {
            self.poison(st, failure, after);
            return false;
        }
        st.slots[id].state = SlotState::Held;
        st.cached -= 1;
        st.held += 1;
        self.shares[id].acquire_locked();
        true
    }

    /// Longest prefix of `hashes` whose blocks are registered here.
    pub(crate) fn match_prefix<G: FromShare<T>>(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
    ) -> Vec<G> {
        let mut out = Vec::with_capacity(hashes.len());
        let this = StoreRef::new(self);
        let mut after = AfterUnlock::default();
        {
            let mut guard = self.lock_healthy();
            let st = &mut *guard;
            st.ids.clear();
            for &hash in hashes {
                let Some(id) = st.index.get(hash, |i| st.slots[i as usize].hash()) else {
                    break;
                };
                if !self.acquire_locked(st, id as BlockId, &mut after) {
                    break;
                }
                st.ids.push(id);
            }
            // Guards built in one pass over the hits: pushing each one as
            // it is found spilled its fields to the stack and read them
            // back wider, a store-forwarding stall per block.
            out.extend(
                st.ids
                    .iter()
                    .zip(hashes)
                    .map(|(&id, &hash)| G::from_share(Share::adopt(this, id as BlockId), hash)),
            );
            self.take_lease(st);
            self.publish_gauges(st);
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
    pub(crate) fn match_scattered<G: FromShare<T>>(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
    ) -> Vec<Option<G>> {
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
                        Some(G::from_share(Share::adopt(this, id), hash))
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
    pub(crate) fn scan<G: FromShare<T>>(
        self: &Arc<Self>,
        hashes: &[SequenceHash],
        touch: bool,
    ) -> HashMap<SequenceHash, G> {
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
                out.insert(hash, G::from_share(Share::adopt(this, id as BlockId), hash));
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
    pub(crate) fn free_cached(&self) -> Result<(), (usize, usize)> {
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
                ids,
                cached,
                ..
            } = &mut *guard;
            pending.clear();
            ids.clear();
            // The backend may read the hashes of the blocks it still holds
            // while it drains, so the blocks are freed after it returns.
            let hashes = BlockHashes::from_store(&*slots);
            let total = slots.len();
            let mut bad = None;
            let drained = match backend.as_deref_mut() {
                Some(backend) => user_code::call(addr, || {
                    let mut report = |id: BlockId| {
                        // Past `total` reports some block came twice.
                        if id < total && ids.len() < total {
                            ids.push(id as u32);
                        } else {
                            bad.get_or_insert(id);
                        }
                    };
                    backend.drain_with_hashes(&mut report, hashes)
                })
                .map_err(Failure::Panicked),
                None => Err(Failure::Broke("the backend is gone".into())),
            };
            for &id in ids.iter() {
                let slot = &mut slots[id as usize];
                // Freed from here on, so a block reported twice is no
                // longer `Cached`.
                if slot.state == SlotState::Cached {
                    slot.state = SlotState::Free;
                    index.remove_id(slot.hash(), id);
                    pending.push(slot.hash());
                    free.push(slot, id);
                    *cached -= 1;
                } else {
                    bad.get_or_insert(id as BlockId);
                }
            }
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
