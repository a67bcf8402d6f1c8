//! Reserving a store's memory fallibly, before anything else is built.

use super::free_list::FreeList;
use super::shares::ShareCount;
use crate::block_slot::Slot;
use crate::id_index::IdIndex;
use crate::SequenceHash;

/// The memory of a store of `n` blocks, reserved fallibly before anything
/// else is built, so that an absurd block count is an error, not an abort.
pub(crate) struct Reserved {
    pub(super) slots: Vec<Slot>,
    pub(super) free: FreeList,
    pub(super) pending: Vec<SequenceHash>,
    pub(super) ids: Vec<u32>,
    pub(super) index: IdIndex<SequenceHash>,
    pub(super) shares: Box<[ShareCount]>,
}

impl Reserved {
    /// Reserves everything a store of `n` blocks needs; `Err` describes the
    /// allocation that failed.
    pub(crate) fn try_new(n: usize) -> Result<Self, String> {
        fn reserve<V>(what: &str, n: usize) -> Result<Vec<V>, String> {
            let mut v = Vec::new();
            v.try_reserve_exact(n)
                .map_err(|e| format!("cannot reserve the {what} of {n} blocks: {e}"))?;
            Ok(v)
        }
        // The two arrays every operation reaches at random, filled here:
        // backed by huge pages where the kernel allows (see `huge_pages`).
        fn reserve_huge<V>(what: &str, n: usize) -> Result<Vec<V>, String> {
            crate::huge_pages::try_reserve_huge(n)
                .map_err(|e| format!("cannot reserve the {what} of {n} blocks: {e}"))
        }
        let mut slots = reserve_huge("slots", n)?;
        slots.resize(n, Slot::FREE);
        let free = FreeList::all(&mut slots);
        let pending = reserve("registry batch", n)?;
        let ids = reserve("block id batch", n)?;
        let mut shares = reserve_huge("share counts", n)?;
        shares.resize_with(n, ShareCount::default);
        let index = IdIndex::try_with_capacity(n)
            .map_err(|e| format!("cannot reserve the hash index of {n} blocks: {e}"))?;
        Ok(Self {
            slots,
            free,
            pending,
            ids,
            index,
            shares: shares.into_boxed_slice(),
        })
    }
}
