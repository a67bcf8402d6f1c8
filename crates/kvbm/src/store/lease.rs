//! How block guards reach their store without one `Arc` per guard.
//!
//! A guard (`MutableBlock`, `CompleteBlock`, `ImmutableBlock`) holds, in
//! its token (see [`guard_ops`](super::guard_ops)), a [`StoreRef`]: a plain
//! pointer to its store. What keeps that pointer valid
//! is the store's *lease*: while any block is checked out or held, the store
//! keeps an `Arc` to itself (`State::lease`), and it lets go of it only under
//! its lock, when the last guard goes. So a live guard implies a live store,
//! and cloning or moving a guard costs no reference-count traffic on the
//! store — one atomic operation per block instead of two on the hot paths.
//!
//! The release that ends the lease hands the `Arc` back to the token's
//! `Drop`, which drops it after the store's lock and every borrow of the
//! store have ended: the store may be freed right there.

use std::ptr::NonNull;
use std::sync::Arc;

use super::{State, Store};

/// A guard token's pointer to its store; valid while the token accounts for a
/// checked-out block or a share of a held block (see the module docs).
pub(crate) struct StoreRef<T> {
    ptr: NonNull<Store<T>>,
}

impl<T> StoreRef<T> {
    /// Points at `store`. The caller creates it for a guard whose block the
    /// store counts as checked out or held, under the store lock, with the
    /// lease in place.
    #[inline]
    pub(crate) fn new(store: &Arc<Store<T>>) -> Self {
        Self {
            ptr: NonNull::from(store.as_ref()),
        }
    }

    /// The store.
    #[inline]
    pub(crate) fn get(&self) -> &Store<T> {
        // SAFETY: a `StoreRef` lives only inside a guard token (`CheckedOut`
        // or `Share`, through their shared `BlockRef`, which is neither
        // `Copy` nor `Clone`; see `guard_ops`) that accounts for one checked-out
        // block or one share of a held block, or briefly in the operation
        // that is about to build such tokens under the lock. While such a
        // block exists the store's lease holds an `Arc` to the store (the
        // lease is dropped only once, under the store lock, when no block is
        // checked out or held), so the pointee is alive for as long as
        // `self` is borrowed. The store is only ever accessed through shared
        // references. Guards are only built once the store has counted
        // them, after the last call into user code of the operation, so no
        // unwind can drop an uncounted guard (see `store::user_code`).
        // Checked under miri in CI by `store_lives_until_the_last_guard_goes`,
        // `threads_dropping_the_last_guards_after_the_manager` and
        // `last_drop_racing_a_match_of_the_same_block` (`tests/lease.rs`),
        // and by `a_panicking_pop_victim_leaves_the_lease_intact`,
        // `a_panicking_insert_on_the_very_last_guard_ends_the_lease` and the
        // other backend failures of `tests/soundness.rs`.
        unsafe { self.ptr.as_ref() }
    }

    /// Whether this references `store`.
    #[inline]
    pub(crate) fn points_at(&self, store: &Arc<Store<T>>) -> bool {
        std::ptr::eq(self.ptr.as_ptr(), Arc::as_ptr(store))
    }
}

impl<T> Clone for StoreRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for StoreRef<T> {}

// SAFETY: a `StoreRef<T>` is a shared reference to a `Store<T>` in all but
// lifetime, so it may cross threads exactly when `&Store<T>` may, that is
// when the store is `Sync` (both bounds are on the store, not on `T`, so a
// field that made the store non-`Sync` would remove these impls; the
// assertion below makes that a compile error). Checked by
// `threads_dropping_the_last_guards_after_the_manager` (`tests/lease.rs`)
// under miri.
unsafe impl<T> Send for StoreRef<T> where Store<T>: Sync {}
// SAFETY: as for `Send` above: sharing a `&StoreRef` shares a `&Store`.
unsafe impl<T> Sync for StoreRef<T> where Store<T>: Sync {}

/// The store must be `Send + Sync` for guards to move between threads.
const _: () = {
    #[allow(dead_code)]
    fn store_is_thread_safe<T: super::BlockMetadata>() {
        fn check<S: Send + Sync>() {}
        check::<Store<T>>();
    }
};

impl<T: super::BlockMetadata> Store<T> {
    /// Takes the lease when guards exist and none was held: called under
    /// the lock by the operations that hand out guards.
    pub(super) fn take_lease(self: &Arc<Self>, st: &mut State<T>) {
        if st.lease.is_none() && st.checked_out + st.held > 0 {
            st.lease = Some(Arc::clone(self));
        }
    }

    /// Gives the lease back when no guard is left; the caller drops the
    /// returned `Arc` after releasing the lock and its borrow of the store.
    #[must_use]
    pub(super) fn end_lease(&self, st: &mut State<T>) -> Option<Arc<Self>> {
        if st.checked_out + st.held == 0 {
            st.lease.take()
        } else {
            None
        }
    }
}
