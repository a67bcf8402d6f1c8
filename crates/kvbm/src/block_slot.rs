//! What the store knows about one block.
//!
//! The store alone writes slots. The module sits beside the store rather
//! inside it because eviction backends read cached blocks' hashes straight
//! from the slots (`eviction::BlockHashes`), and eviction must not depend
//! on the store, which depends on eviction.

use crate::SequenceHash;

/// Where a block is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// In the free list, holding nothing.
    Free,
    /// Handed out as a `MutableBlock` or `CompleteBlock`.
    CheckedOut,
    /// Registered primary for its hash, held by `ImmutableBlock`s.
    Held,
    /// Registered primary for its hash, held by no one: in the inactive
    /// backend, matchable until evicted.
    Cached,
    /// Registered beside another block with the same hash; matched by no one
    /// and freed when its handles drop. Holds one share of that primary
    /// meanwhile (see `duplicates`).
    Duplicate,
}

/// One block of the pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) state: SlotState,
    /// Meaningful in `Held`, `Cached` and `Duplicate`; read and written
    /// through [`hash`](Self::hash) and [`set_hash`](Self::set_hash). Two
    /// words keep the slot 8-byte aligned: 24 bytes instead of the 32 a
    /// `u128` field pads it to. A `Free` slot keeps the free list's link
    /// here instead (see `free_list`).
    hash: [u64; 2],
    /// Bumped whenever the block is handed out again, so that weak handles
    /// to its previous contents fail to upgrade.
    pub(crate) generation: u32,
    /// Free the block instead of caching it when its last handle drops
    /// (`ImmutableBlock::set_evict_on_reset`). It belongs to the contents:
    /// kept through cache and revival, set to the store's default whenever
    /// the block is handed out again. Sits in the slot's padding.
    pub(crate) evict_on_reset: bool,
}

impl Slot {
    pub(crate) const FREE: Slot = Slot {
        state: SlotState::Free,
        hash: [0; 2],
        generation: 0,
        evict_on_reset: false,
    };
}

impl Slot {
    /// The block's hash (meaningful in `Held`, `Cached` and `Duplicate`).
    #[inline]
    pub(crate) fn hash(&self) -> SequenceHash {
        SequenceHash::from_u128(u128::from(self.hash[0]) | (u128::from(self.hash[1]) << 64))
    }

    /// Records the block's hash.
    #[inline]
    pub(crate) fn set_hash(&mut self, hash: SequenceHash) {
        let value = hash.as_u128();
        self.hash = [value as u64, (value >> 64) as u64];
    }

    /// The block's hash if it is cached: what an eviction backend may read
    /// (see `BlockHashes`); a free slot's hash words hold the free list's
    /// link instead.
    #[inline]
    pub(crate) fn cached_hash(&self) -> Option<SequenceHash> {
        (self.state == SlotState::Cached).then(|| self.hash())
    }

    /// A free block's link: the block freed before it, `NIL` for none.
    #[inline]
    pub(crate) fn next_free(&self) -> u32 {
        self.hash[0] as u32
    }

    /// Links a free block to the one below it in the free list, in place
    /// of the hash it no longer has.
    #[inline]
    pub(crate) fn set_next_free(&mut self, next: u32) {
        self.hash = [u64::from(next), 0];
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 24);
