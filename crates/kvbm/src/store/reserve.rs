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
        /// `huge` for arrays filled here that every operation reaches at
        /// random: backed by huge pages where the kernel allows (see
        /// `huge_pages`). Not for the batch buffers, of which a call
        /// touches only the start.
        fn reserve<V>(what: &str, n: usize, huge: bool) -> Result<Vec<V>, String> {
            let reserved = if huge {
                crate::huge_pages::try_reserve_huge(n)
            } else {
                let mut v = Vec::new();
                v.try_reserve_exact(n).map(|()| v)
            };
            reserved.map_err(|e| format!("cannot reserve the {what} of {n} blocks: {e}"))
        }
        let mut slots = reserve("slots", n, true)?;
        slots.resize(n, Slot::FREE);
        let free = FreeList::all(&mut slots);
        let pending = reserve("registry batch", n, false)?;
        let ids = reserve("block id batch", n, false)?;
        let mut shares = reserve("share counts", n, true)?;
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
