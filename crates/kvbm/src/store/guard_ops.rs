//! The guard protocol: everything `MutableBlock`, `CompleteBlock`,
//! `ImmutableBlock` and `WeakBlock` ask of their store, in one place.
//!
//! A guard owns one *token* that the store made for it after counting the
//! block, and the token's `Drop` is the only way the block goes back:
//! - [`CheckedOut`]: one block in `CheckedOut`, counted in `checked_out`.
//!   Dropped, the block returns to the free pool. Staging and resetting
//!   move the token from one guard to the next (no store call at all);
//!   registration ends it with [`hand_over`](CheckedOut::hand_over) under
//!   the lock, where the store counts the block as held instead.
//! - [`Share`]: one share of a held (or duplicate) block, counted in the
//!   block's [`ShareCount`](super::shares::ShareCount). A clone adds a share
//!   without the lock; a drop that is certainly not the last is one atomic
//!   operation, one that may be the last decides under the lock whether the
//!   block is cached (see [`shares`](super::shares)).
//! - [`WeakShare`]: no count at all, a weak reference to the store and the
//!   block's generation; it upgrades to a `Share` while the slot still holds
//!   the same contents.
//!
//! Tokens reach the store through a [`StoreRef`], valid because the block a
//! token accounts for keeps the store's lease (see [`lease`](super::lease)).
//! A release that ends the lease returns the store's `Arc` inside an
//! [`AfterUnlock`], and the token finishes it only once the store call has
//! returned and its borrow of the store has ended: that drop may free the
//! store, and it is the only place a guard can.

use std::mem::ManuallyDrop;
use std::sync::{Arc, Weak};

use super::lease::StoreRef;
use super::user_code::AfterUnlock;
use super::{BlockMetadata, State, Store};
use crate::block_slot::SlotState;
use crate::events::BlockLineage;
use crate::eviction::BlockHashes;
use crate::{BlockId, SequenceHash};

/// What the store builds from a checked-out block's token: blocks'
/// `MutableBlock`. A trait so the store hands out guards it cannot name
/// (blocks/ sits above it), monomorphised, without an allocation.
pub(crate) trait FromCheckedOut<T: BlockMetadata> {
    /// The guard owning `block`.
    fn from_checked_out(block: CheckedOut<T>) -> Self;
}

/// What the store builds from one share's token: blocks' `ImmutableBlock`.
pub(crate) trait FromShare<T: BlockMetadata> {
    /// The guard owning `share` of the block registered under `hash`.
    fn from_share(share: Share<T>, hash: SequenceHash) -> Self;
    /// The hash it was built with.
    fn sequence_hash(&self) -> SequenceHash;
}

/// What registration consumes: blocks' `CompleteBlock`.
pub(crate) trait IntoStaged<T: BlockMetadata> {
    /// The block's token, its hash and, when known, its lineage.
    fn into_staged(self) -> (CheckedOut<T>, SequenceHash, Option<BlockLineage>);
}

/// A staged block taken apart: its token, its hash and its lineage.
pub(crate) type Staged<T> = (CheckedOut<T>, SequenceHash, Option<BlockLineage>);

impl<T: BlockMetadata> IntoStaged<T> for Staged<T> {
    #[inline]
    fn into_staged(self) -> Self {
        self
    }
}

/// How many staged blocks a batch registration takes apart (and
/// prefetches for) before it registers the first: a request's new blocks
/// (typically up to a few dozen) all ahead, so that their misses overlap
/// from the start; 8 measured about half the gain at 4M cached blocks. The
/// ring costs 2 KiB of stack.
const REGISTER_AHEAD: usize = 32;

/// The staged blocks of a batch registration, taken apart
/// [`REGISTER_AHEAD`] blocks ahead of the one being registered, each
/// announced to a prefetch callback when it is taken apart. No allocation:
/// a ring on the stack.
pub(crate) struct Ahead<T: BlockMetadata, I> {
    blocks: I,
    ring: [Option<Staged<T>>; REGISTER_AHEAD],
    head: usize,
    queued: usize,
}

impl<T: BlockMetadata, S: IntoStaged<T>, I: Iterator<Item = S>> Ahead<T, I> {
    pub(crate) fn new(blocks: I) -> Self {
        Self {
            blocks,
            ring: std::array::from_fn(|_| None),
            head: 0,
            queued: 0,
        }
    }

    /// The next staged block, in the order of `blocks`, after taking apart
    /// (and passing to `prefetch`) as many more as the ring holds.
    #[inline]
    pub(crate) fn next(&mut self, mut prefetch: impl FnMut(&Staged<T>)) -> Option<Staged<T>> {
        while self.queued < REGISTER_AHEAD {
            let Some(block) = self.blocks.next() else {
                break;
            };
            let staged = block.into_staged();
            prefetch(&staged);
            self.ring[(self.head + self.queued) % REGISTER_AHEAD] = Some(staged);
            self.queued += 1;
        }
        let staged = self.ring[self.head].take()?;
        self.head = (self.head + 1) % REGISTER_AHEAD;
        self.queued -= 1;
        Some(staged)
    }
}

/// The block a token accounts for: its store and its id. Neither `Copy`
/// nor `Clone`, and built only here, so that it (with its [`StoreRef`])
/// lives only inside a [`CheckedOut`] or a [`Share`]; both deref to it for
/// the accessors they share.
pub(crate) struct BlockRef<T: BlockMetadata> {
    store: StoreRef<T>,
    id: BlockId,
}

impl<T: BlockMetadata> BlockRef<T> {
    /// The block's id.
    #[inline]
    pub(crate) fn id(&self) -> BlockId {
        self.id
    }

    /// The store the block belongs to.
    #[inline]
    pub(crate) fn store(&self) -> &Store<T> {
        self.store.get()
    }

    /// Whether the block belongs to `store`.
    #[inline]
    pub(crate) fn belongs_to(&self, store: &Arc<Store<T>>) -> bool {
        self.store.points_at(store)
    }
}

/// One checked-out block (a `MutableBlock`'s or `CompleteBlock`'s).
pub(crate) struct CheckedOut<T: BlockMetadata>(BlockRef<T>);

impl<T: BlockMetadata> std::ops::Deref for CheckedOut<T> {
    type Target = BlockRef<T>;

    #[inline]
    fn deref(&self) -> &BlockRef<T> {
        &self.0
    }
}

impl<T: BlockMetadata> CheckedOut<T> {
    /// The token of block `id`, which the store has already counted as
    /// checked out for it (under the lock, lease taken).
    #[inline]
    pub(crate) fn adopt(store: StoreRef<T>, id: BlockId) -> Self {
        Self(BlockRef { store, id })
    }

    /// Ends the token without releasing the block: the caller, holding the
    /// store lock, takes the block over (registration counts it as held).
    #[inline]
    pub(super) fn hand_over(self) -> BlockId {
        let id = self.id();
        // Nothing to free: a pointer and an id.
        std::mem::forget(self);
        id
    }
}

impl<T: BlockMetadata> Drop for CheckedOut<T> {
    #[inline]
    fn drop(&mut self) {
        // Finished after the store call returns: it may free the store.
        self.store().release_checked_out(self.id()).finish();
    }
}

/// One share of a held block (an `ImmutableBlock`'s).
pub(crate) struct Share<T: BlockMetadata>(BlockRef<T>);

impl<T: BlockMetadata> std::ops::Deref for Share<T> {
    type Target = BlockRef<T>;

    #[inline]
    fn deref(&self) -> &BlockRef<T> {
        &self.0
    }
}

impl<T: BlockMetadata> Share<T> {
    /// The token of a share the store has already counted in block `id`'s
    /// share count (under the lock, lease taken).
    #[inline]
    pub(crate) fn adopt(store: StoreRef<T>, id: BlockId) -> Self {
        Self(BlockRef { store, id })
    }

    /// Live shares of the block, this one included.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.store().shares[self.id()].count() as usize
    }

    /// Sets whether the block goes back to the free pool, rather than the
    /// cache, when its last share drops.
    pub(crate) fn set_evict_on_reset(&self, value: bool) {
        self.store().lock().slots[self.id()].evict_on_reset = value;
    }

    /// A weak reference to the block while it holds `hash`.
    pub(crate) fn downgrade(&self, hash: SequenceHash) -> WeakShare<T> {
        let store = self.store();
        let st = store.lock();
        // A held block implies the lease, and the lease is the store's own
        // `Arc`: the weak reference is made from it rather than from the
        // `StoreRef`, which owns nothing.
        let Some(lease) = &st.lease else {
            unreachable!("a held block implies the store's lease")
        };
        WeakShare {
            store: Arc::downgrade(lease),
            id: self.id(),
            hash,
            generation: st.slots[self.id()].generation,
        }
    }
}

impl<T: BlockMetadata> Clone for Share<T> {
    #[inline]
    fn clone(&self) -> Self {
        // The block is held (this share counts), so no lock is needed.
        self.store().shares[self.id()].clone_share();
        Self::adopt(self.0.store, self.id())
    }
}

impl<T: BlockMetadata> Drop for Share<T> {
    #[inline]
    fn drop(&mut self) {
        let store = self.store();
        // Not the last share: one atomic operation, no lock. The store is
        // not touched after it, since the other holders may release
        // everything right after.
        if store.shares[self.id()].try_release_fast() {
            return;
        }
        // Possibly the last: decided under the lock. The lease, if it ends,
        // is dropped after the store call returns: it may free the store.
        store.release_last_share(self.id()).finish();
    }
}

/// Drops `shares` as if one by one, in order, but each run of consecutive
/// shares of one store under one lock, from the first share that may be
/// its block's last (shares before it go as their drops would, without the
/// lock): what a request or sequence that gives back all its blocks at
/// once should call instead of dropping them.
///
/// Not just fewer locks: a share's release is a locked instruction, which
/// waits for every store before it, and each block's release touches its
/// slot and the backend's structures — once those miss the CPU caches,
/// releasing blocks one at a time waits for each block's misses in turn.
/// Here the share counts of a run are prefetched and given back first, and
/// the blocks whose last share went are then cached (or freed) in one pass
/// with no locked instruction between them, so their misses overlap.
///
/// `shares` must be an iterator of the crate's own (it is advanced under
/// the store lock, where user code must not run).
pub(crate) fn release_shares<T: BlockMetadata>(shares: impl IntoIterator<Item = Share<T>>) {
    let mut shares = shares.into_iter().peekable();
    while let Some(first) = shares.next() {
        // Certainly not the last share: one atomic operation and no lock,
        // as its drop would; the store is not touched after it.
        if first.store().shares[first.id()].try_release_fast() {
            std::mem::forget(first);
            continue;
        }
        // Possibly the last: this share and the rest of its store's run go
        // under the lock. Its count is given back by `release_run`; if that
        // panicked, the share would leak rather than be released twice.
        let first = ManuallyDrop::new(first);
        let after = first.store().release_run(first.id(), &mut shares);
        // Finished after the store call returns: it may free the store.
        after.finish();
    }
}

/// A weak reference to a held or cached block (a `WeakBlock`'s): it keeps
/// neither the block nor the store.
pub(crate) struct WeakShare<T: BlockMetadata> {
    store: Weak<Store<T>>,
    id: BlockId,
    hash: SequenceHash,
    /// The slot's generation when the reference was made; a reused slot
    /// has another.
    generation: u32,
}

impl<T: BlockMetadata> WeakShare<T> {
    /// The block's id.
    #[inline]
    pub(crate) fn id(&self) -> BlockId {
        self.id
    }

    /// The hash the block held when the reference was made.
    #[inline]
    pub(crate) fn hash(&self) -> SequenceHash {
        self.hash
    }

    /// A share of the block, reviving it from the cache if needed; `None`
    /// once its slot was reused or the store is gone.
    pub(crate) fn upgrade(&self) -> Option<Share<T>> {
        let store = self.store.upgrade()?;
        store
            .upgrade(self.id, self.hash, self.generation)
            .then(|| Share::adopt(StoreRef::new(&store), self.id))
        // `store` (an `Arc`) drops here, after the share took the lease.
    }
}

impl<T: BlockMetadata> Clone for WeakShare<T> {
    fn clone(&self) -> Self {
        Self {
            store: Weak::clone(&self.store),
            id: self.id,
            hash: self.hash,
            generation: self.generation,
        }
    }
}

impl<T: BlockMetadata> Store<T> {
    /// Starts loading what registering `staged` will touch: the index
    /// buckets its hash probes and its share count (its slot was touched
    /// by the allocation that handed it out).
    #[inline]
    pub(super) fn prefetch_registration(&self, st: &State<T>, staged: &Staged<T>) {
        let (block, hash, _) = staged;
        st.index.prefetch(*hash);
        if let Some(count) = self.shares.get(block.id()) {
            crate::prefetch::prefetch(count);
        }
    }

    /// Gives back the share of block `first` and those of the shares at the
    /// head of `rest` that belong to this store, under one lock (see
    /// [`release_shares`]). Returns the work to do after the lock, the
    /// lease included if no guard is left.
    #[must_use]
    fn release_run<I: Iterator<Item = Share<T>>>(
        &self,
        first: BlockId,
        rest: &mut std::iter::Peekable<I>,
    ) -> AfterUnlock<Self> {
        let mut after = AfterUnlock::default();
        let mut guard = self.lock();
        let st = &mut *guard;
        st.ids.clear();
        st.ids.push(first as u32);
        while let Some(share) = rest.next_if(|s| std::ptr::eq(s.store(), self)) {
            // Given back below; leaked, not released twice, on a panic.
            st.ids.push(ManuallyDrop::new(share).id() as u32);
        }
        for &id in &st.ids {
            if let Some(count) = self.shares.get(id as BlockId) {
                crate::prefetch::prefetch(count);
            }
            if let Some(slot) = st.slots.get(id as BlockId) {
                crate::prefetch::prefetch(slot);
            }
        }
        // The counts first (a locked instruction each), keeping the blocks
        // whose last share this was; then those blocks, with no locked
        // instruction between them. The order of the blocks is kept.
        let mut last = 0;
        for i in 0..st.ids.len() {
            let id = st.ids[i];
            if self.shares[id as BlockId].release_locked() {
                st.ids[last] = id;
                last += 1;
            }
        }
        if last > 1 && st.poisoned.is_none() {
            self.prefetch_inserts(st, last, &mut after);
        }
        for i in 0..last {
            let id = st.ids[i] as BlockId;
            self.let_go_locked(st, id, &mut after);
        }
        self.publish_gauges(st);
        after.lease = self.end_lease(st);
        after
    }

    /// Tells the backend which of the first `count` blocks of `st.ids` it
    /// is about to cache (see `InactiveBackend::prefetch_insert`), in one
    /// call into user code. A panic there poisons the store like any
    /// other backend failure.
    pub(super) fn prefetch_inserts(
        &self,
        st: &mut State<T>,
        count: usize,
        after: &mut AfterUnlock<Self>,
    ) {
        let Some(backend) = st.backend.as_deref() else {
            return;
        };
        let (ids, slots) = (&st.ids[..count], &st.slots);
        let hinted = super::user_code::call(self.addr(), || {
            for &id in ids {
                let slot = &slots[id as BlockId];
                if slot.state == SlotState::Held && !slot.evict_on_reset {
                    backend.prefetch_insert(id as BlockId, slot.hash());
                }
            }
        });
        if let Err(panic) = hinted {
            self.poison(st, super::poison::Failure::Panicked(panic), after);
        }
    }

    /// A checked-out block's token was dropped: the block goes back to the
    /// free pool. Returns the work to do after the lock, the lease included
    /// if this was the last guard.
    #[must_use]
    fn release_checked_out(&self, id: BlockId) -> AfterUnlock<Self> {
        let mut after = AfterUnlock::default();
        let mut st = self.lock();
        let slot = &mut st.slots[id];
        debug_assert_eq!(slot.state, SlotState::CheckedOut);
        slot.state = SlotState::Free;
        st.push_free(id as u32);
        st.checked_out -= 1;
        self.publish_gauges(&st);
        after.lease = self.end_lease(&mut st);
        after
    }

    /// Drops what may be the last share of block `id`, under the lock: the
    /// decrement to zero happens here, so a block's last release and its
    /// revival by a match are ordered by the lock and no dropper can still
    /// be on its way to the store after the lease ends. Lets the block go
    /// (see [`let_go_locked`](Self::let_go_locked)) if no share is left.
    /// Returns the work to do after the lock, the lease included if no
    /// guard is left.
    #[must_use]
    fn release_last_share(&self, id: BlockId) -> AfterUnlock<Self> {
        let mut after = AfterUnlock::default();
        let mut guard = self.lock();
        if !self.shares[id].release_locked() {
            // Revived by a match or a clone while we waited for the lock.
            return after;
        }
        let st = &mut *guard;
        self.let_go_locked(st, id, &mut after);
        self.publish_gauges(st);
        after.lease = self.end_lease(st);
        after
    }

    /// The last share of held block `id` is gone (under the lock): a
    /// primary is cached, or freed and unregistered when the store is
    /// poisoned or the block is marked evict-on-reset; a duplicate is freed
    /// and gives back the share it holds of its primary (see
    /// [`duplicates`](super::duplicates)). The gauges and the lease are the
    /// caller's.
    pub(super) fn let_go_locked(
        &self,
        st: &mut State<T>,
        id: BlockId,
        after: &mut AfterUnlock<Self>,
    ) {
        let slot = &mut st.slots[id];
        let hash = slot.hash();
        match slot.state {
            SlotState::Held if st.poisoned.is_some() || slot.evict_on_reset => {
                // Poisoned (no backend to cache it in) or marked evict-on-reset:
                // unregister it and free it.
                slot.state = SlotState::Free;
                st.index.remove_id(hash, id as u32);
                st.push_free(id as u32);
                st.held -= 1;
                self.registry.remove_presence_many(
                    std::slice::from_ref(&hash),
                    self.tier,
                    &mut after.handles,
                );
            }
            SlotState::Held => {
                // Cached (and counted) before the backend hears of it, so
                // that a failing backend's poisoning frees it with the others.
                slot.state = SlotState::Cached;
                st.cached += 1;
                st.held -= 1;
                let hashes = BlockHashes::from_store(&st.slots);
                let inserted =
                    self.call_backend(&mut st.backend, |b| b.insert_with_hashes(id, hash, hashes));
                if let Err(failure) = inserted {
                    self.poison(st, failure, after);
                }
            }
            SlotState::Duplicate => {
                slot.state = SlotState::Free;
                st.push_free(id as u32);
                st.held -= 1;
                self.release_primary(st, hash, after);
            }
            SlotState::Free | SlotState::CheckedOut | SlotState::Cached => {
                debug_assert!(false, "last share dropped on a {:?} block", slot.state);
            }
        }
    }

    /// Takes a share of block `id` if it still holds `hash` in the same
    /// generation (a weak reference's upgrade).
    fn upgrade(self: &Arc<Self>, id: BlockId, hash: SequenceHash, generation: u32) -> bool {
        let mut after = AfterUnlock::default();
        let upgraded = {
            let mut st = self.lock_healthy();
            let slot = st.slots[id];
            let alive = matches!(
                slot.state,
                SlotState::Held | SlotState::Cached | SlotState::Duplicate
            );
            let upgraded = alive
                && slot.generation == generation
                && slot.hash() == hash
                && self.acquire_locked(&mut st, id, &mut after);
            self.take_lease(&mut st);
            self.publish_gauges(&st);
            upgraded
        };
        after.finish();
        upgraded
    }
}
