//! What the store knows about one block.

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
    /// and freed when its handles drop.
    Duplicate,
}

/// One block of the pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) state: SlotState,
    /// Meaningful in `Held`, `Cached` and `Duplicate`.
    pub(crate) hash: SequenceHash,
    /// Bumped whenever the block is handed out again, so that weak handles
    /// to its previous contents fail to upgrade.
    pub(crate) generation: u32,
}

impl Slot {
    pub(crate) const FREE: Slot = Slot {
        state: SlotState::Free,
        hash: SequenceHash::from_u128(0),
        generation: 0,
    };
}
