//! Duplicates keep their primary held.
//!
//! Under [`BlockDuplicationPolicy::Allow`](crate::blocks::BlockDuplicationPolicy::Allow)
//! a block registered under a hash whose primary is still registered becomes
//! a *duplicate*: same contents, but matches only ever find the primary. So
//! that the primary — the copy every later match returns — cannot be evicted
//! while identical data is in use, each live duplicate holds one share of
//! its primary: taken when the duplicate is registered (in the store's
//! `register_locked`, which revives the primary if it was cached), given
//! back when the duplicate is freed (which may cache the primary). kvbm-logical 1.6.1 behaves the same way.
//!
//! No per-block link is needed: a duplicate has its primary's hash, and a
//! primary with a share is `Held`, which keeps it in the hash index until
//! its last share is gone.

use super::user_code::AfterUnlock;
use super::{BlockMetadata, State, Store};
use crate::{BlockId, SequenceHash};

impl<T: BlockMetadata> Store<T> {
    /// A duplicate of `hash` was freed: gives back its share of the primary,
    /// and lets the primary go (cached, or freed) if that share was its
    /// last. Under the lock; the gauges and the lease are the caller's.
    pub(super) fn release_primary(
        &self,
        st: &mut State<T>,
        hash: SequenceHash,
        after: &mut AfterUnlock<Self>,
    ) {
        let Some(primary) = st.index.get(hash, |i| st.slots[i as usize].hash()) else {
            // `validate` reports this as a broken invariant.
            debug_assert!(false, "a duplicate of {hash:?} outlived its primary");
            return;
        };
        let primary = primary as BlockId;
        if self.shares[primary].release_locked() {
            self.let_go_locked(st, primary, after);
        }
    }
}
